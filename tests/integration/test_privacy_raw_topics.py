"""Issue: nothing about a person in clear on any topic. After a run that carries consents,
referrals (delivered and refused), a malformed input and a claim to an insurer for persons with
known BSNs, names and birth dates, every topic is read raw with a second Kafka client
(confluent-kafka, not the aiokafka the code uses) and searched for them."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from broker.apps.deployment import LocalParty, create_local
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.config import Settings
from broker.policy import default_policy
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.claim import Claim, Payer, claim_message
from schemas.flows.common import Person
from schemas.messaging import BasisDetail, MessageMeta
from schemas.vocab import EventCode, FinancingRegime, LegalBasis, PartyRole, PurposeOfUse
from schemas.vocab.claims import ClaimService
from tests.helpers.kafka import consume_all
from tests.integration import test_referral_path as path

pytestmark = pytest.mark.integration

INSURER = LocalParty(
    "zilveren-kruis", "Zilveren Kruis", PartyRole.HEALTH_INSURER, None, {"uzovi": "3311"}
)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    state = tmp_path_factory.mktemp("privacy")
    settings = Settings(bootstrap_servers=kafka_bootstrap, state_dir=state)
    s = LocalStack(
        settings,
        create_local(state, [*demo.PARTIES, INSURER]),
        default_policy(),
        StackOptions(
            data_dir=state / "data", http_port=0, session_timeout_ms=2000, poll_interval=0.1
        ),
    )
    await s.start()
    yield s
    await s.stop()


def read_every_topic_raw(bootstrap: str) -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
    """(topic, key, value, headers) of every record on every topic, via librdkafka.

    All partitions are assigned at once from offset 0 and read until nothing arrives for a
    while: watermarks come from ListOffsets, which the embedded broker gets wrong for
    multi-record batches, so they cannot say when we are done."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-scan-{random.randrange(10**9)}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign(
        [
            TopicPartition(name, p, OFFSET_BEGINNING)
            for name, t in metadata.topics.items()
            if not name.startswith("__")
            for p in t.partitions
        ]
    )
    out = []
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < 3.0:
            msgs = consumer.consume(num_messages=1000, timeout=0.5)
            for m in msgs:
                if m.error() is None:
                    out.append(
                        (m.topic(), m.key() or b"", m.value() or b"", list(m.headers() or []))
                    )
            if msgs:
                idle_since = time.monotonic()
    finally:
        consumer.close()
    return out


async def test_no_bsn_name_or_birth_date_in_any_key_header_or_value(stack: LocalStack) -> None:
    rng = random.Random()
    people = [path.person(rng) for _ in range(3)]
    for i, p in enumerate(people):
        p["family_name"] = f"Achternaamvan{rng.randrange(10**6)}"
        p["given_names"] = [f"Voornaam{i}x{rng.randrange(10**6)}"]
        p["birth_date"] = (date(1970, 1, 1) + timedelta(days=rng.randrange(15000))).isoformat()
    consented, refused, claimed = people
    await path.give_consent(stack, consented["bsn"], f"c-{rng.randrange(10**9)}")
    await path.give_consent(stack, claimed["bsn"], f"c-{rng.randrange(10**9)}")
    for p in (consented, refused, claimed):
        mid = await path.refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
        await stack.zvh[path.ZVH].wait_response(mid, 20)
    bad = demo.referral(
        "BAD", "midden-nederland", {**refused, "bsn": refused["bsn"][:-1] + "x"}, date.today()
    )
    demo.drop(stack.inbox(path.ZVH), "bad.json", demo.dump(bad))

    # a claim from the coordinating provider to the insurer (registration phase, EUR 2,000)
    provider: PartyClient = stack.deployment.party_client(path.PROVIDER)
    claim = Claim(
        claim_id=f"CL-{rng.randrange(10**6)}",
        provider=path.PROVIDER,
        created=date.today(),
        person=Person(
            bsn=claimed["bsn"],
            family_name=claimed["family_name"],
            given_names=tuple(claimed["given_names"]),
            birth_date=date.fromisoformat(claimed["birth_date"]),
        ),
        service=ClaimService.REGISTRATION,
        period_start=date.today() - timedelta(days=30),
        period_end=date.today(),
        quantity=1,
        unit_price_cents=200_000,
        amount_cents=200_000,
        regime=FinancingRegime.ZVW,
        payer=Payer(party_id=INSURER.id, role=PartyRole.HEALTH_INSURER, identifier="3311"),
        zvh=path.ZVH,
        referral_id="CASE-1",
    )
    meta = MessageMeta.new(
        EventCode.CLAIM,
        path.PROVIDER,
        PurposeOfUse.HPAYMT,
        LegalBasis.LEGAL_OBLIGATION,
        destinations=(INSURER.id,),
        basis_detail=BasisDetail(citation="Zvw art. 11"),
    )
    key, value, headers = provider.seal_message(claim_message(claim, meta), claimed["bsn"])
    await stack.providers[path.PROVIDER].runtime.send(topics.IN_CLAIM.name, key, value, headers)

    bootstrap = stack.settings.bootstrap_servers or ""
    for _ in range(100):  # until the claim has been delivered to the insurer's topic
        if await consume_all(bootstrap, f"out.{INSURER.id}"):
            break
        await asyncio.sleep(0.2)
    records = read_every_topic_raw(bootstrap)
    topics_seen = {t for t, *_ in records}
    assert {
        "in.referral",
        "in.consent",
        "consent",
        "audit",
        "rejected",
        "dead-letter",
        f"out.{path.PROVIDER}",
        f"out.{path.ZVH}",
        "in.claim",
        f"out.{INSURER.id}",
    } <= topics_seen
    secrets_ = []
    for p in people:
        secrets_ += [
            p["bsn"],
            p["family_name"],
            p["given_names"][0],
            p["birth_date"],
            p["birth_date"].replace("-", ""),
        ]
    for topic, key, value, headers in records:
        blob = key + value + b"".join(k.encode() + (v or b"") for k, v in headers)
        for s in secrets_:
            assert s.encode() not in blob, f"{s!r} in clear on {topic}"
