"""The routing pipeline without Kafka: bytes in, records and facts out."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from adapters.zvh.format import parse_document
from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming, Outgoing, header
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.flows.referral import EXT_REGION, referral_message
from schemas.flows.response import response_from_message
from schemas.messaging import MessageMeta, parse_message
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

ZVH, PROVIDER = "zvh-midden-nederland", "fivoor"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(tmp_path_factory.mktemp("dep"), demo.PARTIES)


@pytest.fixture
def pipeline(deployment: Deployment) -> Pipeline:
    return Pipeline(deployment.router_state(default_policy()))


@pytest.fixture
def zvh(deployment: Deployment) -> PartyClient:
    client: PartyClient = deployment.party_client(ZVH)
    return client


def bsn() -> str:
    return synthetic_bsn(random.Random())


def sealed(client: PartyClient, bundle: dict, person_bsn: str | None, topic: str) -> Incoming:
    key, value, headers = client.seal_message(bundle, person_bsn)
    return Incoming(topic, key, value, headers)


def consent_in(client: PartyClient, person: str, status: str = "active") -> Incoming:
    doc = parse_document(demo.consent("c-1", person, date.today(), status=status))
    rec = doc.to_record(client.party_id)  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.CONSENT, client.party_id, PurposeOfUse.COC, LegalBasis.CONSENT)
    return sealed(client, consent_message(rec, meta), person, topics.IN_CONSENT.name)


def referral_in(client: PartyClient, person: str, region: str = "midden-nederland") -> Incoming:
    p = {"bsn": person, "family_name": "Test", "birth_date": "1980-01-01", "municipality": "0344"}
    doc = parse_document(demo.referral("CASE-1", region, p, date.today()))
    ref = doc.to_referral(client.party_id)  # type: ignore[union-attr]
    meta = MessageMeta.new(
        EventCode.REFERRAL, client.party_id, PurposeOfUse.COC, LegalBasis.CONSENT
    )
    return sealed(client, referral_message(ref, meta), person, topics.IN_REFERRAL.name)


def to(records: list[Outgoing], topic: str) -> list[Outgoing]:
    return [r for r in records if r.topic == topic]


def reply_of(client: PartyClient, records: list[Outgoing]) -> dict:
    out = to(records, f"out.{client.party_id}")
    assert len(out) == 1, "exactly one response goes back to the sender"
    opened = client.open(out[0].key, out[0].value, out[0].headers)
    resp = response_from_message(parse_message(opened.payload))
    return {
        "code": resp.code.value,
        "reasons": [i.reason for i in resp.issues],
        "id": resp.request_id,
    }


def test_consent_is_logged_acknowledged_and_audited(pipeline: Pipeline, zvh: PartyClient) -> None:
    result = pipeline.route(consent_in(zvh, bsn()))
    assert len(to(result.records, topics.CONSENT.name)) == 1
    assert reply_of(zvh, result.records)["code"] == "ok"
    assert [f.kind for f in result.facts] == [FactKind.CONSENT_CHANGE]


def test_referral_with_consent_reaches_the_coordinating_provider_minimised(
    pipeline: Pipeline, zvh: PartyClient, deployment: Deployment
) -> None:
    person = bsn()
    pipeline.route(consent_in(zvh, person))
    rec = referral_in(zvh, person)
    result = pipeline.route(rec)
    delivered = to(result.records, f"out.{PROVIDER}")
    assert len(delivered) == 1
    provider: PartyClient = deployment.party_client(PROVIDER)
    opened = provider.open(delivered[0].key, delivered[0].value, delivered[0].headers)
    bundle = json.loads(opened.payload)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "ServiceRequest" in types and "Task" not in types
    # the Kafka key is the provider's own pseudonym: neither the BSN nor the sender's key
    assert person.encode() not in delivered[0].key and delivered[0].key != rec.key
    assert reply_of(zvh, result.records)["code"] == "ok"
    assert [f.kind for f in result.facts] == [FactKind.PERMIT, FactKind.DELIVERY]


def test_referral_without_consent_is_denied_with_a_reason(
    pipeline: Pipeline, zvh: PartyClient
) -> None:
    result = pipeline.route(referral_in(zvh, bsn()))
    assert not to(result.records, f"out.{PROVIDER}")
    rejected = to(result.records, topics.REJECTED.name)
    assert len(rejected) == 1 and header(rejected[0].headers, "kb-reason") == "no-consent"
    reply = reply_of(zvh, result.records)
    assert reply["code"] == "fatal-error" and reply["reasons"] == ["no-consent"]
    assert [f.kind for f in result.facts] == [FactKind.DENY]


def test_revocation_applies_to_the_next_message(pipeline: Pipeline, zvh: PartyClient) -> None:
    person = bsn()
    pipeline.route(consent_in(zvh, person))
    assert to(pipeline.route(referral_in(zvh, person)).records, f"out.{PROVIDER}")
    pipeline.route(consent_in(zvh, person, status="revoked"))
    assert not to(pipeline.route(referral_in(zvh, person)).records, f"out.{PROVIDER}")


def test_a_duplicate_is_not_delivered_twice_and_gets_its_original_answer(
    pipeline: Pipeline, zvh: PartyClient
) -> None:
    person = bsn()
    pipeline.route(consent_in(zvh, person))
    rec = referral_in(zvh, person)
    first = pipeline.route(rec)
    second = pipeline.route(rec)
    assert to(first.records, f"out.{PROVIDER}") and not to(second.records, f"out.{PROVIDER}")
    assert to(second.records, f"out.{ZVH}")[0].value == to(first.records, f"out.{ZVH}")[0].value
    assert [f.kind for f in second.facts] == [FactKind.DUPLICATE]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (
            lambda r: Incoming(r.topic, r.key, r.value[:-1] + bytes([r.value[-1] ^ 1]), r.headers),
            "bad-signature",
        ),
        (lambda r: Incoming(r.topic, b"p-other", r.value, r.headers), "bad-signature"),
        (
            lambda r: Incoming(r.topic, r.key, r.value, [h for h in r.headers if h[0] != "kb-sig"]),
            "missing-signature",
        ),
    ],
)
def test_altered_or_unsigned_messages_are_refused_and_audited(
    pipeline: Pipeline, zvh: PartyClient, tamper, reason: str
) -> None:
    result = pipeline.route(tamper(referral_in(zvh, bsn())))
    assert not to(result.records, f"out.{PROVIDER}")
    assert header(to(result.records, topics.REJECTED.name)[0].headers, "kb-reason") == reason
    assert result.facts[0].kind is FactKind.REFUSAL and result.facts[0].reason == reason


def test_a_forged_sender_is_refused(pipeline: Pipeline, deployment: Deployment) -> None:
    # fivoor signs a message that claims to come from the ZVH
    fivoor: PartyClient = deployment.party_client(PROVIDER)
    stolen_name = dataclasses.replace(fivoor.keys, party_id=ZVH)
    forger = PartyClient(ZVH, stolen_name, fivoor.keyring, fivoor.registry, fivoor.pseudonyms)
    result = pipeline.route(referral_in(forger, bsn()))
    assert not to(result.records, f"out.{PROVIDER}")
    reasons = {f.reason for f in result.facts}
    assert reasons & {"bad-signature", "unknown-key"}
    # parked and audited, but nothing is said in the ZVH's name or to it (issue 20): the ZVH
    # never sent this message, and its message id may be that of an accepted referral
    assert [r.topic for r in result.records] == [topics.REJECTED.name]


def test_an_unsigned_record_claiming_a_sender_gets_no_response(
    pipeline: Pipeline, zvh: PartyClient
) -> None:
    rec = referral_in(zvh, bsn())
    unsigned = [(k, v) for k, v in rec.headers if not k.startswith("kb-sig")]
    result = pipeline.route(Incoming(rec.topic, rec.key, rec.value, unsigned))
    assert result.facts[0].refused
    assert not [r for r in result.records if r.topic.startswith("out.")]


def test_a_provider_may_not_send_referrals(pipeline: Pipeline, deployment: Deployment) -> None:
    fivoor: PartyClient = deployment.party_client(PROVIDER)
    person = bsn()
    p = {"bsn": person, "family_name": "Test", "birth_date": "1980-01-01"}
    ref = parse_document(demo.referral("C", "oost-nederland", p, date.today())).to_referral(
        PROVIDER
    )  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.REFERRAL, PROVIDER, PurposeOfUse.COC, LegalBasis.CONSENT)
    result = pipeline.route(
        sealed(fivoor, referral_message(ref, meta), person, topics.IN_REFERRAL.name)
    )
    assert not to(result.records, "out.transfore")
    assert result.facts[0].refused


def test_unparseable_payload_is_dead_lettered_with_its_reason(
    pipeline: Pipeline, zvh: PartyClient
) -> None:
    rec = referral_in(zvh, bsn())
    # a correctly sealed envelope around a body that is not JSON
    key, value, headers = zvh.seal_for_router(
        b"{not json", "referral", header(rec.headers, "kb-id") or "x"
    )
    result = pipeline.route(Incoming(rec.topic, key, value, headers))
    dead = to(result.records, topics.DEAD_LETTER.name)
    assert len(dead) == 1 and header(dead[0].headers, "kb-reason") == "not-json"
    assert reply_of(zvh, result.records)["code"] == "fatal-error"


def test_a_referral_for_a_region_without_provider_is_unroutable(
    pipeline: Pipeline, zvh: PartyClient
) -> None:
    result = pipeline.route(referral_in(zvh, bsn(), region="nergens"))
    assert header(result.records[0].headers, "kb-reason") == "no-coordinating-provider"
    assert reply_of(zvh, result.records)["reasons"] == ["no-coordinating-provider"]


def test_stale_messages_are_refused(pipeline: Pipeline, zvh: PartyClient) -> None:
    rec = referral_in(zvh, bsn())
    later = datetime.now(UTC) + timedelta(days=3)
    result = pipeline.route(rec, now=later)
    assert result.facts[0].reason in {"stale", "key-expired"}
    assert not to(result.records, f"out.{PROVIDER}")


def test_nothing_personal_in_clear_in_any_record(
    pipeline: Pipeline, zvh: PartyClient, tmp_path: Path
) -> None:
    person = bsn()
    records = []
    for rec in (consent_in(zvh, person), referral_in(zvh, person), referral_in(zvh, bsn())):
        records += pipeline.route(rec).records
    for r in records:
        blob = (r.key or b"") + r.value + b"".join(k.encode() + v for k, v in r.headers)
        assert person.encode() not in blob
        assert b"Test" not in blob and b"1980-01-01" not in blob


@pytest.mark.parametrize(
    "extension",
    [
        ["not an object"],
        5,
        [{"url": EXT_REGION, "valueCoding": "midden"}],
        [{"url": EXT_REGION, "valueCoding": {"code": 7}}],
    ],
)
def test_a_malformed_region_is_refused_with_a_reason_not_an_internal_error(
    pipeline: Pipeline, zvh: PartyClient, extension: object
) -> None:
    person = bsn()
    pipeline.route(consent_in(zvh, person))
    p = {"bsn": person, "family_name": "Test", "birth_date": "1980-01-01", "municipality": "0344"}
    doc = parse_document(demo.referral("CASE-1", "midden-nederland", p, date.today()))
    ref = doc.to_referral(zvh.party_id)  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.REFERRAL, zvh.party_id, PurposeOfUse.COC, LegalBasis.CONSENT)
    message = referral_message(ref, meta)
    for entry in message["entry"]:
        if entry["resource"]["resourceType"] == "ServiceRequest":
            entry["resource"]["extension"] = extension
    result = pipeline.route(sealed(zvh, message, person, topics.IN_REFERRAL.name))
    assert [(f.kind, f.reason) for f in result.facts] == [(FactKind.REFUSAL, "no-region")]
    assert reply_of(zvh, result.records)["reasons"] == ["no-region"]
