"""The embedded broker restarted under a running stack (it loses everything: memory storage).
Every component notices, reports it in its health, and resumes without operator action: the
router restores the topics and the consent log, the adapters re-subscribe, nothing hangs on a
failing commit and new messages flow again — including under consents given before the restart.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import AsyncIterator

import pytest

from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.config import Settings
from broker.kafka import current_epoch
from broker.kafka.embedded import EmbeddedBroker, free_port
from broker.policy import default_policy
from broker.trust import TrustError, open_sealed
from broker.trust.datakeys import CARRIED_PREFIX, carried, layer_dkid, open_layer
from schemas import topics
from tests.helpers.kafka import async_wait_until, consume_all
from tests.integration import test_referral_path as path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
async def own_broker(tmp_path) -> AsyncIterator[tuple[EmbeddedBroker, int]]:  # type: ignore[no-untyped-def]
    port = free_port()
    broker = EmbeddedBroker(port=port, state_dir=tmp_path / "b1")
    await broker.astart()
    yield broker, port
    await broker.astop()


async def test_components_notice_a_broker_restart_and_resume(own_broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, port = own_broker
    state = tmp_path / "state"
    settings = Settings(bootstrap_servers=first.bootstrap, state_dir=state)
    stack = LocalStack(
        settings,
        create_local(state, demo.PARTIES),
        default_policy(),
        StackOptions(
            data_dir=state / "data", http_port=0, session_timeout_ms=2000, poll_interval=0.1
        ),
    )
    await stack.start()
    second: EmbeddedBroker | None = None
    try:
        for c in stack.zvh.values():
            c.runtime.watch.interval = 0.3  # type: ignore[union-attr]
        stack.router.watch.interval = 0.3  # type: ignore[union-attr]
        rng = random.Random()
        p = path.person(rng)
        await path.give_consent(stack, p["bsn"], f"c-{rng.randrange(10**9)}")
        before = await path.refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
        assert await path.delivered_to(stack, path.PROVIDER, before) is not None
        epoch_before = await current_epoch(settings)

        os.kill(first.pid or 0, signal.SIGKILL)  # the broker dies and forgets everything
        await asyncio.sleep(1.5)
        second = EmbeddedBroker(port=port, state_dir=tmp_path / "b2")
        await second.astart()

        components = [stack.router, *stack.zvh.values(), *stack.providers.values()]
        healths = [c.health if hasattr(c, "health") else c.runtime.health for c in components]  # type: ignore[union-attr]
        assert await async_wait_until(lambda: all(h.ok for h in healths), 60), [
            h.as_dict() for h in healths
        ]
        for h in healths:  # each component saw it happen and said so
            assert any(s in ("broker-restarted", "broker-unreachable") for _, s, _ in h.history), (
                h.as_dict()
            )
        assert stack.router.watch.recoveries >= 1  # type: ignore[union-attr]
        assert await current_epoch(settings) not in (None, epoch_before)

        # the consent given before the restart still counts (re-seeded), and messages flow again
        after = await path.refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
        answer = await stack.zvh[path.ZVH].wait_response(after, 30)
        assert answer is not None and answer["status"] == "accepted", answer
        assert await path.delivered_to(stack, path.PROVIDER, after, timeout=30) is not None
        # ...and so does a refusal
        other = await path.refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", path.person(rng))
        refused = await stack.zvh[path.ZVH].wait_response(other, 30)
        assert refused is not None and refused["status"] == "refused"
        # the re-seeded consent log is under the person's data key, and the router wrote its
        # live data keys back too: a rebuild from the new broker alone opens it (docs/erasure.md)
        store = stack.deployment.key_store(settings)
        await store.load()
        router = stack.deployment.keyring(stack.deployment.router_id)
        opened = 0
        for rec in await consume_all(second.bootstrap, topics.CONSENT.name):
            try:
                sealed = open_sealed(rec.key, rec.value or b"", list(rec.headers or ()),
                                     registry=stack.deployment.registry, keyring=router)
            except TrustError:
                continue  # another deployment's
            payload = sealed.payload
            if carried(payload):  # the key's record travels in front: skip it
                n = int.from_bytes(payload[len(CARRIED_PREFIX) : len(CARRIED_PREFIX) + 4], "big")
                payload = payload[len(CARRIED_PREFIX) + 4 + n :]
            dkid = layer_dkid(payload)
            assert dkid is not None and p["bsn"].encode() not in sealed.payload
            assert store.store.knows(dkid), "the key was not written back to the key store"
            assert p["bsn"].encode() in open_layer(store.store, payload, "consent")
            opened += 1
        assert opened >= 1
    finally:
        await stack.stop()
        if second is not None:
            await second.astop()
