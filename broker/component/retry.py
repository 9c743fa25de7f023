"""Bounded retries for a component's Kafka calls: a transient broker error is retried with
backoff, a lasting one marks the component degraded instead of looping for ever."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, stop_after_attempt, stop_after_delay, wait_exponential

from broker.component.health import Health, HealthStatus

T = TypeVar("T")


async def bounded(
    what: str, health: Health, call: Callable[[], Awaitable[T]], *, attempts: int = 6
) -> T:
    """Retry ``call`` a bounded number of times with backoff (and at most 30 s); cancelling the
    task (Ctrl-C) stops it at once. Giving up marks the component degraded and re-raises."""
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts) | stop_after_delay(30),
            wait=wait_exponential(multiplier=0.1, max=5),
            reraise=True,
        ):
            with attempt:
                return await call()
    except asyncio.CancelledError:
        raise
    except Exception as err:
        health.set(HealthStatus.DEGRADED, f"{what} failed after retries: {type(err).__name__}")
        raise
    raise AssertionError("unreachable")
