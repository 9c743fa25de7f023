"""Faults on a running stack: a poison message, a recipient that is down for a while (no
head-of-line blocking), and retries that are bounded and can be stopped."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import date

import pytest

from adapters.provider.service import ProviderAdapter
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.component.health import Health
from broker.component.retry import bounded
from broker.config import Settings
from broker.policy import default_policy
from schemas import topics
from tests.helpers.kafka import consume_all
from tests.integration import test_referral_path as path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    state = tmp_path_factory.mktemp("faults")
    settings = Settings(bootstrap_servers=kafka_bootstrap, state_dir=state)
    s = LocalStack(
        settings,
        create_local(state, demo.PARTIES),
        default_policy(),
        StackOptions(
            data_dir=state / "data", http_port=0, session_timeout_ms=2000, poll_interval=0.1
        ),
    )
    await s.start()
    yield s
    await s.stop()


async def test_a_poison_message_is_dead_lettered_and_the_stream_goes_on(stack: LocalStack) -> None:
    rng = random.Random()
    provider = stack.providers[path.PROVIDER]
    poison = b"\x00\xff not a sealed envelope \xfe" * 10
    await provider.runtime.send(topics.IN_REFERRAL.name, b"garbage", poison, [("kb-id", b"x")])
    p = path.person(rng)
    await path.give_consent(stack, p["bsn"], f"c-{rng.randrange(10**9)}")
    mid = await path.refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
    assert await path.delivered_to(stack, path.PROVIDER, mid) is not None
    dead = await consume_all(stack.settings.bootstrap_servers or "", topics.DEAD_LETTER.name)
    parked = [d for d in dead if d.value == poison]
    assert len(parked) == 1
    assert dict(parked[0].headers)["kb-reason"] == b"malformed-envelope"


async def test_a_recipient_that_is_down_gets_its_backlog_and_blocks_nobody(
    stack: LocalStack,
) -> None:
    rng = random.Random()
    down = stack.providers.pop("transfore")
    await down.stop()
    try:
        east, west = path.person(rng), path.person(rng)
        await path.give_consent(stack, west["bsn"], f"c-{rng.randrange(10**9)}")
        on_consent = demo.consent(f"c-{rng.randrange(10**9)}", east["bsn"], date.today())
        name = f"consent-{rng.randrange(10**9)}.json"
        demo.drop(stack.inbox("zvh-ijsselland"), name, demo.dump(on_consent))
        backlog = []
        for i in range(5):
            doc = demo.referral(
                f"ON-{rng.randrange(10**9)}-{i}", "oost-nederland", east, date.today()
            )
            fname = f"ref-{rng.randrange(10**9)}.json"
            demo.drop(stack.inbox("zvh-ijsselland"), fname, demo.dump(doc))
            backlog.append(fname)
        await asyncio.sleep(1.0)
        # meanwhile the other region's provider is served at once
        mid = await path.refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", west)
        assert await path.delivered_to(stack, path.PROVIDER, mid, timeout=10) is not None
        assert not list(stack.outbox("transfore").glob("*.json")), "nobody to deliver to yet"
        # the recipient comes back and gets everything that waited for it
        client = stack.deployment.party_client("transfore")
        back = ProviderAdapter(
            stack.settings, client, stack.outbox("transfore"), session_timeout_ms=2000
        )
        await back.start()
        stack.providers["transfore"] = back
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and back.runtime.delivered < 5:
            await asyncio.sleep(0.1)
        assert back.runtime.delivered >= 5
    finally:
        if "transfore" not in stack.providers:
            stack.providers["transfore"] = down


async def test_retries_are_bounded() -> None:
    calls = 0
    health = Health("t")

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("kafka is away")

    with pytest.raises(ConnectionError):
        await bounded("sending", health, always_fails, attempts=4)
    assert calls == 4
    assert health.status == "degraded" and "sending" in health.detail


async def test_retries_can_be_stopped() -> None:
    health = Health("t")

    async def always_fails() -> None:
        raise ConnectionError("kafka is away")

    task = asyncio.create_task(bounded("sending", health, always_fails, attempts=1000))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
