"""Several routers side by side share one notion of broker state (issue 19, point 2).

Before: each router took any other router's epoch for "the broker lost its state" and made its
own, so two routers started at the same instant (1 start in 6) or under a broker restart restored
against each other for ever. Now one router per broker life wins the epoch claim (an atomic
CreateTopics) and restores; the others follow its epoch. These tests start 2 and 3 routers at the
same instant, repeatedly, and restart the embedded broker under two of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.config import Settings
from broker.kafka import ensure_topics, topic_partitions
from broker.kafka.clients import make_admin
from broker.kafka.embedded import EmbeddedBroker, free_port
from broker.kafka.epoch import CLAIM_TOPIC, EPOCH_PREFIX
from broker.policy import default_policy
from broker.router.service import RouterService
from schemas import topics
from tests.helpers.kafka import async_wait_until, fresh_name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

WATCH = 0.2  # seconds between epoch checks: a ping-pong shows within a few of them


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    b = EmbeddedBroker(port=free_port(), state_dir=tmp_path / "b1")
    await b.astart()
    yield b
    await b.astop()


async def _epochs(settings: Settings) -> list[str]:
    names = await topic_partitions(settings)
    return sorted(n.removeprefix(EPOCH_PREFIX) for n in names if n.startswith(EPOCH_PREFIX))


async def _forget_epoch(settings: Settings) -> None:
    """Make the broker look fresh to the next routers: no epoch, no claim."""
    names = [EPOCH_PREFIX + e for e in await _epochs(settings)] + [CLAIM_TOPIC]
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.delete_topics([n for n in names if n in await topic_partitions(settings)])
    finally:
        await admin.close()
    for _ in range(100):
        existing = await topic_partitions(settings)
        if not any(n in existing for n in names):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"epoch topics not deleted: {names}")


def _routers(settings: Settings, dep: Deployment, n: int) -> list[RouterService]:
    """``n`` routers in one consumer group of their own: on the embedded broker a group whose
    previous members just left can keep a new member's join waiting for minutes (seen in 2 of 5
    runs here; a restart matter of issue 19, not the epoch's)."""
    policy = default_policy()
    group = fresh_name("router")
    return [
        RouterService(
            settings,
            dep.router_state(policy),
            group_id=group,
            session_timeout_ms=2000,
            watch_interval=WATCH,
        )
        for _ in range(n)
    ]


async def _settle(settings: Settings, routers: list[RouterService]) -> None:
    """Several watch ticks: long enough for a ping-pong to show as recoveries or new epochs."""
    await asyncio.sleep(WATCH * 8)
    epochs = await _epochs(settings)
    assert len(epochs) == 1, epochs
    assert all(r.watch is not None and r.watch.epoch == epochs[0] for r in routers), [
        (r.watch.epoch if r.watch else None) for r in routers
    ]


async def test_routers_started_at_the_same_instant_agree_on_one_epoch(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = Settings(bootstrap_servers=broker.bootstrap, state_dir=tmp_path / "state")
    dep = create_local(tmp_path / "state", demo.PARTIES)
    await ensure_topics(settings, topics.catalogue([p.id for p in dep.registry.parties]))
    for n in (2, 3, 2, 3):
        await _forget_epoch(settings)
        routers = _routers(settings, dep, n)
        await asyncio.gather(*(r.start() for r in routers))
        try:
            await _settle(settings, routers)
            assert [r.watch.recoveries for r in routers if r.watch] == [0] * n
        finally:
            await asyncio.gather(*(r.stop() for r in routers), return_exceptions=True)


async def test_a_broker_restart_under_two_routers_is_restored_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    port = broker.port
    settings = Settings(bootstrap_servers=broker.bootstrap, state_dir=tmp_path / "state")
    dep = create_local(tmp_path / "state", demo.PARTIES)
    await ensure_topics(settings, topics.catalogue([p.id for p in dep.registry.parties]))
    routers = _routers(settings, dep, 2)
    await asyncio.gather(*(r.start() for r in routers))
    second: EmbeddedBroker | None = None
    try:
        await _settle(settings, routers)
        before = (await _epochs(settings))[0]
        os.kill(broker.pid or 0, signal.SIGKILL)  # the broker dies and forgets everything
        await asyncio.sleep(1.0)
        second = EmbeddedBroker(port=port, state_dir=tmp_path / "b2")
        await second.astart()
        assert await async_wait_until(
            lambda: all(r.watch is not None and r.watch.recoveries >= 1 for r in routers), 60
        ), [r.health.as_dict() for r in routers]
        await _settle(settings, routers)
        assert (await _epochs(settings))[0] != before
        watches = [r.watch for r in routers if r.watch]
        assert sum(w.restores for w in watches) == 1  # one restore per real broker loss
        assert [w.recoveries for w in watches] == [1, 1]  # the other followed, once
        assert all(r.health.ok for r in routers)
    finally:
        await asyncio.gather(*(r.stop() for r in routers), return_exceptions=True)
        if second is not None:
            await second.astop()
