"""AuditEvents: valid FHIR R4 (R4B models), NEN 7513 fields in place, never a BSN."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from audit_support import T0, record
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fhir.resources.R4B.auditevent import AuditEvent
from pydantic import ValidationError

from broker.audit import (
    AuditKind,
    AuditRecord,
    build_audit_event,
    compliance_search_record,
    consent_change_record,
    decision_record,
)
from broker.audit.event import ROUTER_PSEUDONYM_SYSTEM
from broker.audit.sealed import SealedDetailError, SealReader, open_detail
from broker.policy import (
    ConsentView,
    DecisionRequest,
    decide,
    default_policy,
)
from schemas.flows.consent import ConsentRecord
from schemas.identifiers import BSN_SYSTEM, PARTY_SYSTEM
from schemas.messaging import BasisDetail
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

BSN = "111222333"


def valid(event: dict[str, Any]) -> dict[str, Any]:
    AuditEvent.model_validate(event)
    return event


@pytest.mark.parametrize("kind", list(AuditKind))
def test_every_kind_is_a_valid_r4_auditevent(kind: AuditKind) -> None:
    event = valid(build_audit_event(record(0, kind=kind)))
    assert event["type"] == {"system": "https://ketenbus.nl/fhir/CodeSystem/audit-event-type",
                             "code": kind.value, "display": kind.display}


def test_minimal_record_is_valid() -> None:
    rec = AuditRecord(kind=AuditKind.REFUSAL, recorded=T0, source="router-1",
                      reason="unsigned", actor="unknown", actor_role=PartyRole.ROUTER)
    event = valid(build_audit_event(rec))
    assert event["outcome"] == "8" and "entity" not in event


def _decision(**changes: Any):
    view = ConsentView()
    view.apply("psn-42", ConsentRecord(
        consent_id="consent-7", person_bsn=BSN, recipient_roles=(PartyRole.COORDINATING_PROVIDER,),
        purposes=(PurposeOfUse.COC,), categories=(DataCategory.IDENTITY,
                                                   DataCategory.REFERRAL_SIGNAL),
        period_start=date(2024, 1, 1), recorded_at=T0, recorded_by="zvh-utrecht"))
    req = DecisionRequest(EventCode.REFERRAL, "zvh-utrecht", PartyRole.ZVH, "transfore",
                          PartyRole.COORDINATING_PROVIDER, PurposeOfUse.COC, LegalBasis.CONSENT,
                          None, frozenset({DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL,
                                           DataCategory.RISK_ASSESSMENT}), "psn-42",
                          date(2024, 6, 1))
    req = dataclasses.replace(req, **changes)
    return req, decide(req, default_policy(), view)


def test_permit_decision_carries_the_nen7513_fields() -> None:
    req, decision = _decision()
    assert decision.permit
    rec = decision_record(req, decision, source="router-1", message_id="msg-1",
                          recorded=datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC))
    event = valid(build_audit_event(rec))
    assert event["type"]["code"] == "decision-permit"
    assert event["subtype"][0]["code"] == "referral"
    assert event["action"] == "E"
    assert event["recorded"] == "2024-06-01T10:00:00.123Z"
    assert (event["outcome"], event["outcomeDesc"]) == ("0", "permitted")
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "COC"
    actor, recipient = event["agent"]
    assert actor["who"]["identifier"] == {"system": PARTY_SYSTEM, "value": "zvh-utrecht"}
    assert actor["role"][0]["coding"][0]["code"] == "zvh"
    assert actor["requestor"] is True
    assert actor["policy"] == ["https://ketenbus.nl/fhir/CodeSystem/legal-basis#consent",
                               "Consent/consent-7"]
    assert recipient["who"]["identifier"]["value"] == "transfore"
    assert recipient["role"][0]["coding"][0]["code"] == "coordinating-provider"
    assert recipient["requestor"] is False
    assert event["source"]["observer"]["identifier"]["value"] == "router-1"
    person, message, consent = event["entity"]
    assert person["what"]["identifier"] == {"system": ROUTER_PSEUDONYM_SYSTEM,
                                            "value": "psn-42"}
    assert message["what"]["identifier"]["value"] == "msg-1"
    assert {c["code"] for c in message["securityLabel"]} == {"identity", "referral-signal"}
    details = {d["type"]: d["valueString"] for d in message["detail"]}
    assert details["legal-basis"] == "consent"
    assert details["withheld-categories"] == "risk-assessment"
    assert details["controles"] == "TFTF"
    assert consent["what"]["reference"] == "Consent/consent-7"
    assert BSN not in json.dumps(event)


def test_deny_decision_and_conflict_of_duties() -> None:
    req, decision = _decision(legal_basis=LegalBasis.CONFLICT_OF_DUTIES,
                              purpose=PurposeOfUse.SAFETY,
                              basis_detail=BasisDetail(justification="kort", decided_by="dr. B"))
    assert not decision.permit
    reader = X25519PrivateKey.generate()
    event = valid(build_audit_event(decision_record(
        req, decision, source="router-1", message_id="m",
        reader=SealReader("web-k1", reader.public_key()))))
    assert event["type"]["code"] == "decision-deny"
    assert (event["outcome"], event["outcomeDesc"]) == ("4", "justification-missing")
    details = {d["type"]: d for d in event["entity"][1]["detail"]}
    assert details["controles"]["valueString"] == "FFFT"
    assert not {"professional", "justification", "citation"} & set(details)
    assert "dr. B" not in json.dumps(event) and "kort" not in json.dumps(event)
    assert event["agent"][2]["type"]["coding"][0]["code"] == "responsible-professional"
    assert "who" not in event["agent"][2]  # the name stays sealed
    sealed = details["sealed"]["valueBase64Binary"]
    opened = open_detail(sealed, chain="router-1", event_id=event["id"],
                         keys={"web-k1": reader})
    assert opened == {"justification": "kort", "professional": "dr. B"}
    with pytest.raises(SealedDetailError):  # another valid key does not open it
        open_detail(sealed, chain="router-1", event_id=event["id"],
                    keys={"web-k1": X25519PrivateKey.generate()})
    with pytest.raises(SealedDetailError):  # nor does it open in another record
        open_detail(sealed, chain="router-2", event_id=event["id"], keys={"web-k1": reader})


def test_consent_change_and_compliance_search() -> None:
    view = ConsentView()
    change = view.apply("psn-42", ConsentRecord(
        consent_id="consent-7", person_bsn=BSN, recipients=("transfore",),
        purposes=(PurposeOfUse.COC,), categories=(DataCategory.IDENTITY,),
        period_start=date(2024, 1, 1), recorded_at=T0, recorded_by="zvh-utrecht"))
    event = valid(build_audit_event(consent_change_record(
        change, actor="zvh-utrecht", actor_role=PartyRole.ZVH, source="router-1")))
    assert event["type"]["code"] == "consent-change" and event["action"] == "U"
    assert event["outcomeDesc"] == "granted"
    assert BSN not in json.dumps(event)
    query = {"persons": ["psn-42"], "since": "2024-01-01"}
    event = valid(build_audit_event(compliance_search_record(
        query, actor="fg-officer", actor_role=PartyRole.ZVH, source="cli", results=3)))
    message = event["entity"][0]
    assert message["role"]["code"] == "24"
    assert json.loads(base64.b64decode(message["query"])) == query
    assert "name" not in message  # sev-1: name or query, not both


@pytest.mark.parametrize("bad", ["111222333", "11222333", " 111222333 "])
def test_a_bsn_is_never_accepted_as_the_person(bad: str) -> None:
    with pytest.raises(ValidationError, match="never by BSN"):
        record(0, pseudonym=bad)


def test_the_bsn_system_is_never_the_pseudonym_system() -> None:
    with pytest.raises(ValidationError):
        record(0, pseudonym_system=BSN_SYSTEM)
    record(0, pseudonym_system="https://ketenbus.nl/fhir/NamingSystem/pseudonym/gemeente-0344")


def test_flow_and_purpose_with_the_same_code_keep_their_own_systems() -> None:
    """EventCode and PurposeOfUse both have "escalation", equal as strings: the Coding of one
    must never be served for the other (a cache keyed by the member once did that)."""
    event = build_audit_event(
        record(0, flow=EventCode.ESCALATION, purpose=PurposeOfUse.ESCALATION)
    )
    assert event["subtype"][0]["system"] == EventCode.default_system()
    assert event["purposeOfEvent"][0]["coding"][0]["system"] == PurposeOfUse.ESCALATION.system
    assert PurposeOfUse.ESCALATION.system != EventCode.default_system()
