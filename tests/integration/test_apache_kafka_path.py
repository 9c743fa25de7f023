"""The happy path on Apache Kafka (testcontainers). Runs where a Docker engine exists; elsewhere
it is skipped with the reason (no engine on these build machines)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.config import Settings
from broker.policy import default_policy
from tests.integration import test_referral_path as path

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture(scope="module")
async def apache_stack(
    apache_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    state = tmp_path_factory.mktemp("apache")
    settings = Settings(bootstrap_servers=apache_kafka_bootstrap, state_dir=state)
    stack = LocalStack(
        settings,
        create_local(state, demo.PARTIES),
        default_policy(),
        # no timeout given: Apache Kafka's kind gets its default minimum (broker/kafka/group.py)
        StackOptions(data_dir=state / "data", http_port=0),
    )
    await stack.start()
    yield stack
    await stack.stop()


async def test_apache_kafka_is_told_apart_from_tansu(apache_stack: LocalStack) -> None:
    from broker.kafka.group import KAFKA_SESSION_TIMEOUT_MS, BrokerKind, broker_kind

    assert await broker_kind(apache_stack.settings) is BrokerKind.KAFKA
    assert apache_stack.router.session_timeout_ms == KAFKA_SESSION_TIMEOUT_MS


async def test_referral_with_consent_is_delivered_on_apache_kafka(apache_stack: LocalStack) -> None:
    rng = random.Random()
    p = path.person(rng)
    await path.give_consent(apache_stack, p["bsn"], f"c-{rng.randrange(10**9)}")
    mid = await path.refer_by_file(apache_stack, f"CASE-{rng.randrange(10**9)}", p)
    answer = await apache_stack.zvh[path.ZVH].wait_response(mid, 30)
    assert answer is not None and answer["status"] == "accepted", answer
    assert await path.delivered_to(apache_stack, path.PROVIDER, mid) is not None
