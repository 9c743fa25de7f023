"""Health of a component, and the watch that notices a broker restart and drives recovery.

Status values: ``starting``, ``ok``, ``broker-unreachable`` (probe failed), ``broker-restarted``
(the epoch vanished: the broker lost its state), ``recovering`` (re-creating topics or
re-subscribing), ``degraded`` (a bounded retry gave up; see ``detail``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broker.config import Settings
from broker.kafka.epoch import current_epoch

log = logging.getLogger(__name__)


@dataclass
class Health:
    component: str
    status: str = "starting"
    detail: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: list[tuple[datetime, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def set(self, status: str, detail: str = "") -> None:
        if (status, detail) == (self.status, self.detail):
            return
        self.status, self.detail, self.since = status, detail, datetime.now(UTC)
        self.history = [*self.history[-19:], (self.since, status, detail)]
        level = logging.INFO if status == "ok" else logging.WARNING
        log.log(level, "%s health: %s %s", self.component, status, detail)

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "status": self.status,
            "detail": self.detail,
            "since": self.since.isoformat(),
            "history": [
                {"at": at.isoformat(), "status": s, "detail": d} for at, s, d in self.history
            ],
        }


Recover = Callable[[], Awaitable[str | None]]


class BrokerWatch:
    """Polls the broker's epoch. The owner (the router) recovers when the epoch vanished;
    followers (adapters) recover when it changed. Recovery runs in this task, one at a time."""

    def __init__(
        self,
        settings: Settings,
        health: Health,
        epoch: str | None,
        recover: Recover,
        *,
        owner: bool,
        on_lost: Callable[[], Awaitable[None]] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.health = health
        self.epoch = epoch
        self.recover = recover
        self.owner = owner
        self.on_lost = on_lost
        self.interval = interval
        self.recoveries = 0
        self._lost_handled = False

    async def check_once(self) -> None:
        try:
            now = await current_epoch(self.settings)
        except Exception as err:  # unreachable, timeout, connection reset...
            self.health.set("broker-unreachable", type(err).__name__)
            return
        if now is not None and now == self.epoch:
            if not self.health.ok and self.health.status != "degraded":
                self.health.set("ok")
            return
        if now is None:
            if not self._lost_handled and self.on_lost is not None:
                await self.on_lost()  # stop consuming and sending at once
            self._lost_handled = True
            if not self.owner:
                self.health.set(
                    "broker-restarted", "the broker lost its state; waiting for the router"
                )
                return
            self.health.set("broker-restarted", "the broker lost its state; re-creating topics")
        self.health.set("recovering", "re-subscribing" if not self.owner else "restoring topics")
        new = await self.recover()
        self.epoch = new if self.owner else now
        self._lost_handled = False
        self.recoveries += 1
        self.health.set("ok", f"recovered (epoch {self.epoch})")

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a failed recovery is retried on the next tick
                log.exception("recovery failed")
                self.health.set("degraded", f"recovery failed: {type(err).__name__}")
            await asyncio.sleep(self.interval)
