"""The router killed with SIGKILL in the middle of a stream of 10,000 messages and restarted:
every message reaches its recipient's system exactly once (the receiving adapter de-duplicates
on the message id), none is lost. The router runs as its own process (``ketenbus router``) with
the deployed session timeout (the broker kind's: 2 s on the embedded broker, issue 19 point 6),
and the killed member leaves the router's group: the restarted router is its only member."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from adapters.provider.service import ProviderAdapter
from adapters.zvh.format import parse_document
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.config import Settings
from broker.kafka import EmbeddedBroker, ensure_topics, make_admin, make_producer
from broker.router.service import ROUTER_GROUP
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.flows.referral import referral_message
from schemas.messaging import MessageMeta
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse
from tests.conftest import ROOT
from tests.helpers.cli import cli_env
from tests.helpers.kafka import consume_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(720)]

TOTAL = 10_000
PERSONS = 20
ZVH, PROVIDER = "zvh-midden-nederland", "fivoor"


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    b = EmbeddedBroker(state_dir=tmp_path / "broker")
    await b.astart()
    yield b
    await b.astop()


def start_router(bootstrap: str, state: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **cli_env(),
        "KETENBUS_BOOTSTRAP_SERVERS": bootstrap,
        "KETENBUS_STATE_DIR": str(state),
    }
    env.pop("KETENBUS_SESSION_TIMEOUT_MS", None)  # as deployed: chosen by the broker's kind
    return subprocess.Popen(
        [sys.executable, "-m", "broker.apps.cli.main", "router"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def sealed_referral(
    zvh: PartyClient, bsn: str, n: int
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    p = {"bsn": bsn, "family_name": "Test", "birth_date": "1980-01-01", "municipality": "0344"}
    ref = parse_document(demo.referral(f"K-{n}", "midden-nederland", p, date.today())).to_referral(
        ZVH
    )  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.REFERRAL, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT)
    key, value, headers = zvh.seal_message(referral_message(ref, meta), bsn)
    return meta.message_id, key, value, headers


async def group_members(settings: Settings) -> tuple[str, list[str]]:
    """The router group's state and member ids, as the coordinator sees them."""
    admin = make_admin(settings)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([ROUTER_GROUP])
        [g] = response.to_object()["groups"]
        return g["state"], [m["member_id"] for m in g["members"]]
    finally:
        await admin.close()


async def test_router_sigkill_mid_stream_delivers_every_message_exactly_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    dep = create_local(state, demo.PARTIES)
    settings = Settings(bootstrap_servers=broker.bootstrap, state_dir=state)
    await ensure_topics(settings, topics.catalogue([p.id for p in dep.registry.parties]))
    log = tmp_path / "router.log"
    router = start_router(broker.bootstrap, state, log)
    provider = ProviderAdapter(
        settings, dep.party_client(PROVIDER), tmp_path / "outbox", session_timeout_ms=2000
    )
    await provider.start()
    restarted: subprocess.Popen[bytes] | None = None
    producer = make_producer(settings)
    await producer.start()
    try:
        zvh: PartyClient = dep.party_client(ZVH)
        rng = random.Random(7)
        persons = [synthetic_bsn(rng) for _ in range(PERSONS)]
        for i, bsn in enumerate(persons):
            rec = parse_document(demo.consent(f"c-{i}", bsn, date.today())).to_record(ZVH)  # type: ignore[union-attr]
            meta = MessageMeta.new(EventCode.CONSENT, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT)
            key, value, headers = zvh.seal_message(consent_message(rec, meta), bsn)
            await producer.send(topics.IN_CONSENT.name, value=value, key=key, headers=headers)
        await producer.flush()
        for _ in range(300):  # until the router has applied every consent
            if len(await consume_all(broker.bootstrap, topics.CONSENT.name)) >= PERSONS:
                break
            await asyncio.sleep(0.2)

        sent: set[str] = set()
        for n in range(TOTAL):
            mid, key, value, headers = sealed_referral(zvh, persons[n % PERSONS], n)
            sent.add(mid)
            await producer.send(topics.IN_REFERRAL.name, value=value, key=key, headers=headers)
        await producer.flush()

        outbox = tmp_path / "outbox"

        def delivered() -> int:  # the adapter's own count of what it wrote (cheaper than a glob)
            return provider.runtime.delivered

        deadline = time.monotonic() + 540
        while delivered() < TOTAL // 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        at_kill = delivered()
        state_before, killed = await group_members(settings)
        assert state_before == "Stable" and len(killed) == 1
        os.kill(router.pid, signal.SIGKILL)  # mid-stream, no goodbye
        router.wait(10)
        assert 0 < at_kill < TOTAL, "the kill must land in the middle of the stream"
        restarted = start_router(broker.bootstrap, state, log)
        while delivered() < TOTAL and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # let redeliveries (duplicates) arrive, if any
        files = {p.name.removesuffix(".json") for p in outbox.glob("*.json")}
        assert files == sent, f"missing {len(sent - files)}, unexpected {len(files - sent)}"
        # the dead member was evicted, not left holding partitions: one member, a new one
        state_after, members = await group_members(settings)
        assert state_after == "Stable" and len(members) == 1 and members != killed
        print(
            f"\ndelivered {len(files)} once; killed at {at_kill}; "
            f"duplicates dropped at the adapter: {provider.runtime.duplicates}"
        )
    finally:
        await producer.stop()
        await provider.stop()
        for proc in (router, restarted):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
