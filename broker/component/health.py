"""Health of a component, and the watch that notices a broker restart and drives recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from broker.config import Settings
from broker.kafka import claim_epoch, current_epoch, release_claim
from broker.kafka.epoch import CLAIM_TIMEOUT

log = logging.getLogger(__name__)


class HealthStatus(StrEnum):
    """Where a component stands; shown on ``/health``, in the console and in the web app."""

    STARTING = "starting"
    OK = "ok"
    BROKER_UNREACHABLE = "broker-unreachable"  # the probe failed
    BROKER_RESTARTED = "broker-restarted"  # the epoch vanished: the broker lost its state
    RECOVERING = "recovering"  # re-creating topics or re-subscribing
    DEGRADED = "degraded"  # a bounded retry gave up; see ``detail``


#: Not sending while in these: a record sent to a topic the broker lost would vanish unnoticed.
NOT_SENDING = frozenset({HealthStatus.BROKER_RESTARTED, HealthStatus.RECOVERING})
#: Not taking new input while in these: it would only wait or fail.
NOT_TAKING_INPUT = NOT_SENDING | {HealthStatus.BROKER_UNREACHABLE}


@dataclass
class Health:
    component: str
    status: HealthStatus = HealthStatus.STARTING
    detail: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: list[tuple[datetime, HealthStatus, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is HealthStatus.OK

    def set(self, status: HealthStatus, detail: str = "") -> None:
        if (status, detail) == (self.status, self.detail):
            return
        self.status, self.detail, self.since = status, detail, datetime.now(UTC)
        self.history = [*self.history[-19:], (self.since, status, detail)]
        level = logging.INFO if status is HealthStatus.OK else logging.WARNING
        log.log(level, "%s health: %s %s", self.component, status, detail)

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "status": self.status.value,
            "detail": self.detail,
            "since": self.since.isoformat(),
            "history": [
                {"at": at.isoformat(), "status": s.value, "detail": d} for at, s, d in self.history
            ],
        }


Recover = Callable[[], Awaitable[str | None]]


class BrokerWatch:
    """Polls the broker's epoch and drives recovery, one at a time, in this task.

    When the epoch vanished (the broker lost its state) an owner (a router) restores the topics
    and makes a new epoch, but only the one owner that wins the epoch claim does; the other
    owners and every follower (adapter) wait for the new epoch and then ``follow`` it:
    re-subscribe and rebuild what they read from topics. An epoch that *changed* is never
    taken for a loss: it is another router's restore, so even an owner follows it. This is what
    keeps several routers from restoring against each other for ever (issue 19).
    """

    def __init__(
        self,
        settings: Settings,
        health: Health,
        epoch: str | None,
        recover: Recover,
        *,
        owner: bool,
        follow: Recover | None = None,
        on_lost: Callable[[], Awaitable[None]] | None = None,
        interval: float = 1.0,
        claim_timeout: float = CLAIM_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.health = health
        self.epoch = epoch
        self.recover = recover
        self.follow = follow or recover
        self.owner = owner
        self.on_lost = on_lost
        self.interval = interval
        self.claim_timeout = claim_timeout
        self.recoveries = 0  # every recovery, restored or followed
        self.restores = 0  # the ones where this component restored the broker's state
        self._lost_handled = False
        self._waiting_since: float | None = None

    async def check_once(self) -> None:
        try:
            now = await current_epoch(self.settings)
        except Exception as err:  # unreachable, timeout, connection reset...
            self.health.set(HealthStatus.BROKER_UNREACHABLE, type(err).__name__)
            return
        if now is not None and now == self.epoch:
            if not self.health.ok and self.health.status is not HealthStatus.DEGRADED:
                self.health.set(HealthStatus.OK)
            return
        if now is None:
            if not self._lost_handled and self.on_lost is not None:
                await self.on_lost()  # stop consuming and sending at once
            self._lost_handled = True
            if not self.owner or not await self._won_claim():
                self.health.set(
                    HealthStatus.BROKER_RESTARTED,
                    "the broker lost its state; waiting for the router"
                    if not self.owner
                    else "the broker lost its state; another router is restoring it",
                )
                return
            self.health.set(
                HealthStatus.BROKER_RESTARTED, "the broker lost its state; re-creating topics"
            )
            self.health.set(HealthStatus.RECOVERING, "restoring topics")
            created = await self.recover()
            # Read back what every reader sees (the newest epoch), not what we drew.
            self.epoch = await current_epoch(self.settings, max_age=0) or created
            self.restores += 1
        else:
            self.health.set(HealthStatus.RECOVERING, "re-subscribing")
            await self.follow()
            self.epoch = now
        self._lost_handled = False
        self._waiting_since = None
        self.recoveries += 1
        self.health.set(HealthStatus.OK, f"recovered (epoch {self.epoch})")

    async def _won_claim(self) -> bool:
        """True if this owner is the one to restore; drops a claim nobody acted on in time."""
        if await claim_epoch(self.settings):
            return True
        loop = asyncio.get_running_loop()
        if self._waiting_since is None:
            self._waiting_since = loop.time()
        elif loop.time() - self._waiting_since > self.claim_timeout:
            log.warning("an epoch claim stood %.0f s without an epoch; dropped", self.claim_timeout)
            await release_claim(self.settings)
            self._waiting_since = None
        return False

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a failed recovery is retried on the next tick
                log.exception("recovery failed")
                self.health.set(HealthStatus.DEGRADED, f"recovery failed: {type(err).__name__}")
            await asyncio.sleep(self.interval)
