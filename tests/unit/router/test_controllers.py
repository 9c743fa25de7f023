"""Every message carries its controller (issue 16 §2): ``MessageHeader.responsible`` names it,
the router checks it against the registry and the audit records it with the processor.

A ZVH has no legal basis of its own: it processes for the covenant partner that brought the case
(Handvat gegevensdeling ZVH; AVG art. 4(7) and 28). A controller that is no party, or a party the
sender does not process for, is refused with a stable reason; a message without one is the
sender's own (a provider's)."""

from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import pytest

from adapters.zvh.format import parse_document
from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.audit import ChainRecord
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.flows.referral import referral_message
from schemas.messaging import MessageMeta, parse_message
from schemas.vocab import EventCode, LegalBasis, PartyRole, PurposeOfUse
from tests.unit.router.test_audit_records import details, entity, sink

ZVH, PARTNER, OTHER = "zvh-midden-nederland", "gemeente-utrecht", "gemeente-zwolle"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    parties = [
        LocalParty(ZVH, "ZVH Midden-Nederland", PartyRole.ZVH, "midden-nederland",
                   processes_for=(PARTNER,)),
        *(p for p in demo.PARTIES if p.id != ZVH),
        LocalParty(PARTNER, "Gemeente Utrecht", PartyRole.MUNICIPALITY),
        LocalParty(OTHER, "Gemeente Zwolle", PartyRole.MUNICIPALITY),
    ]  # fmt: skip
    return create_local(tmp_path_factory.mktemp("controllers"), parties)


def _referral(client: PartyClient, person: str, controller: str | None) -> Incoming:
    p = {"bsn": person, "family_name": "Test", "birth_date": "1980-01-01", "municipality": "0344"}
    doc = parse_document(demo.referral("CASE-C", "midden-nederland", p, date.today()))
    ref = doc.to_referral(client.party_id)  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.REFERRAL, client.party_id, PurposeOfUse.COC,
                           LegalBasis.CONSENT, controller=controller)  # fmt: skip
    key, value, headers = client.seal_message(referral_message(ref, meta), person)
    return Incoming(topics.IN_REFERRAL.name, key, value, headers)


def _consent(client: PartyClient, person: str) -> Incoming:
    doc = parse_document(demo.consent("c-ctl", person, date.today()))
    rec = doc.to_record(client.party_id)  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.CONSENT, client.party_id, PurposeOfUse.COC, LegalBasis.CONSENT)
    key, value, headers = client.seal_message(consent_message(rec, meta), person)
    return Incoming(topics.IN_CONSENT.name, key, value, headers)


def _route(deployment: Deployment, controller: str | None) -> tuple[Any, list[bytes]]:
    pipeline = Pipeline(deployment.router_state(default_policy()))
    client = deployment.party_client(ZVH)
    person = synthetic_bsn(random.Random(7))
    pipeline.route(_consent(client, person))
    result = pipeline.route(_referral(client, person, controller))
    return result, sink(deployment).prepare(result.facts)


def test_the_controller_travels_in_the_message_header() -> None:
    meta = MessageMeta.new(EventCode.REFERRAL, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT,
                           controller=PARTNER)  # fmt: skip
    p = {"bsn": "999990020", "family_name": "T", "birth_date": "1980-01-01"}
    ref = parse_document(demo.referral("C", "midden-nederland", p, date.today()))
    bundle = referral_message(ref.to_referral(ZVH), meta)  # type: ignore[union-attr]
    header = bundle["entry"][0]["resource"]
    assert header["responsible"]["identifier"]["value"] == PARTNER
    read = parse_message(json.dumps(bundle)).meta
    assert (read.controller, read.responsible, read.processor) == (PARTNER, PARTNER, ZVH)
    own = MessageMeta.new(EventCode.REFERRAL, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT)
    assert (own.responsible, own.processor) == (ZVH, None)


def test_a_zvh_processing_for_its_partner_is_delivered_and_audited(deployment: Deployment) -> None:
    result, values = _route(deployment, PARTNER)
    kinds = [f.kind for f in result.facts]
    assert FactKind.DELIVERY in kinds, result.facts
    permits = [ChainRecord.decode(v).event for v in values]
    permit = next(e for e in permits if e["type"]["code"] == "decision-permit")
    d = details(permit)
    assert (d["controller"], d["processor"]) == (PARTNER, ZVH)
    assert entity(permit, "2")


def test_without_a_controller_the_sender_is_its_own(deployment: Deployment) -> None:
    _, values = _route(deployment, None)
    permit = next(
        ChainRecord.decode(v).event for v in values
        if ChainRecord.decode(v).event["type"]["code"] == "decision-permit"
    )  # fmt: skip
    d = details(permit)
    assert d["controller"] == ZVH and "processor" not in d


@pytest.mark.parametrize(
    ("controller", "reason"),
    [
        (OTHER, "controller-not-represented"),  # a real party, not one it processes for
        ("gemeente-nergens", "unknown-controller"),  # not in the registry at all
        ("fivoor", "controller-not-represented"),  # a provider: not the ZVH's partner
    ],
)
def test_a_controller_the_sender_may_not_name_is_refused(
    deployment: Deployment, controller: str, reason: str
) -> None:
    result, _ = _route(deployment, controller)
    assert not any(f.kind is FactKind.DELIVERY for f in result.facts)
    refusals = [f for f in result.facts if f.kind is FactKind.REFUSAL]
    assert refusals and refusals[0].reason == reason, result.facts
    parked = [r for r in result.records if r.topic == topics.REJECTED.name]
    assert parked, "the refused message lands on rejected with its reason"
