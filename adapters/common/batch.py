"""What one fetched batch of deliveries owes before its offsets are committed.

An adapter handles the deliveries of a fetched batch one after another, but settles them once:
the records it sent for them (a provider's journal) are awaited together and the outbox files
are made durable together, then the offsets are committed (issue 19: a provider delivered about
110 referrals/s when each one waited for its own journal acknowledgement and its own fsync).
The guarantee stays: a delivery is acknowledged to Kafka only after it is durably in the outbox,
and after everything sent on its behalf is acknowledged.

The batch is found through a context variable, so only the task that handles deliveries sends
this way; an inbox poll running beside it still waits for each of its own sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DeliveryBatch", "current_batch"]

_CURRENT: ContextVar[DeliveryBatch | None] = ContextVar("ketenbus_delivery_batch", default=None)


def current_batch() -> DeliveryBatch | None:
    """The batch the calling task is handling, if any."""
    return _CURRENT.get()


@dataclass
class DeliveryBatch:
    """The sends of one batch still to be acknowledged, and whether a follow-up is due."""

    pending: list[asyncio.Future[Any]] = field(default_factory=list)
    follow_up: bool = False  # e.g. the provider's claims desk ticks once, after the batch
    delivered: int = 0  # deliveries handled, counted by the runtime once they are durable
    finishing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    durable: list[Callable[[], None]] = field(default_factory=list)
    _token: Token[DeliveryBatch | None] | None = None

    def __enter__(self) -> DeliveryBatch:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None

    def add(self, future: asyncio.Future[Any]) -> None:
        self.pending.append(future)

    def at_end(self, finish: Callable[[], Awaitable[None]]) -> None:
        """Run ``finish`` once the batch's deliveries are handled, before it is settled (e.g.
        the journal signs the batch's records under one signature and sends them)."""
        self.finishing.append(finish)

    def when_durable(self, then: Callable[[], None]) -> None:
        """Run ``then`` once the batch's outbox files are durable and visible (e.g. the ZVH
        adapter makes a response known only when its file is in the outbox)."""
        self.durable.append(then)

    def made_durable(self) -> None:
        done, self.durable = self.durable, []
        for then in done:
            then()

    async def finish(self) -> None:
        """Run what waits for the end of the batch, in the order it was asked for."""
        finishing, self.finishing = self.finishing, []
        for f in finishing:
            await f()

    async def acknowledged(self) -> int:
        """Wait until every send of the batch is acknowledged (the first failure is raised,
        after all have finished); returns how many."""
        pending, self.pending = self.pending, []
        results = await asyncio.gather(*pending, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return len(results)
