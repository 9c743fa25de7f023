"""The whole chain over mutual TLS (issue 21, point 3): the router and every adapter connect
through a TLS-terminating proxy that demands a client certificate from the test CA, each with a
certificate of its own (one per party, common name = party id); a referral travels end to end.
A component with a certificate from another CA, or with none, cannot connect.

The CA, the server certificate and every party's certificate are made at run time.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.config import Settings
from broker.kafka import kafka_connection
from broker.kafka.errors import KafkaUnavailableError
from broker.policy import default_policy
from tests.helpers.tls import issue_client_cert, make_tls_files
from tests.integration import test_referral_path as path
from tests.integration.test_tls import TlsKafka, _tls_kafka

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
async def mtls(tmp_path: Path) -> AsyncIterator[TlsKafka]:
    async for k in _tls_kafka(tmp_path, mutual=True):
        yield k


def _party_settings(kafka: TlsKafka, base: Settings, certs: Path, party: str) -> Settings:
    cert, key = issue_client_cert(kafka.tls, certs, party)
    return base.model_copy(update={"ssl_certfile": cert, "ssl_keyfile": key})


async def test_router_and_adapters_deliver_a_referral_over_mutual_tls(
    mtls: TlsKafka, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    base = mtls.settings(state, session_timeout_ms=2000)
    deployment = create_local(state, demo.PARTIES)
    certs = tmp_path / "certs"
    per_party = {
        p.id: _party_settings(mtls, base, certs, p.id) for p in deployment.registry.parties
    }
    stack = LocalStack(
        base,
        deployment,
        default_policy(),
        StackOptions(
            data_dir=state / "data",
            http_port=0,
            session_timeout_ms=2000,
            poll_interval=0.1,
            settings_for=per_party.__getitem__,
        ),
    )
    await stack.start()
    try:
        rng = random.Random()
        p = path.person(rng)
        await path.give_consent(stack, p["bsn"], f"c-{rng.randrange(10**9)}")
        mid = await path.refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
        assert await path.delivered_to(stack, path.PROVIDER, mid, timeout=30) is not None
        # every component came through the proxy with its own certificate
        running = {stack.router.state.keys.party_id if stack.router else "", *stack.zvh,
                   *stack.providers, *stack.payers}
        assert running <= mtls.proxy.peers, running - mtls.proxy.peers
    finally:
        await stack.stop()


async def test_a_component_without_a_valid_certificate_cannot_connect(
    mtls: TlsKafka, tmp_path: Path
) -> None:
    base = mtls.settings(tmp_path / "state")
    foreign = make_tls_files(tmp_path / "other-ca", ca_name="not our CA")
    wrong = base.model_copy(
        update={"ssl_certfile": foreign.client_cert, "ssl_keyfile": foreign.client_key}
    )
    for settings in (wrong, base):  # a certificate of another CA; no certificate at all
        with pytest.raises(KafkaUnavailableError):
            async with kafka_connection(settings, timeout=3):
                pytest.fail("connected without a certificate of our CA")
    assert mtls.proxy.peers == set()  # no client certificate got through a handshake
    own = _party_settings(mtls, base, tmp_path / "certs", "fivoor")
    async with kafka_connection(own, timeout=10):
        pass
    assert mtls.proxy.peers == {"fivoor"}
