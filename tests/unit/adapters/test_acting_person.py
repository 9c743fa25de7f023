"""The acting person (issue 17, NEN 7513 "gebruiker"): the source systems name who acted, the
adapters pass that person through as ``MessageHeader.author`` and the router's audit record names
them. An identifier only: a name, an over-long value, control characters, an unknown kind or a BSN
posing as an employee number is refused with reason ``acting-person``."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from adapters.provider.inputs import Submission, parse_csv, parse_json
from adapters.zvh import csvbatch
from adapters.zvh.format import (
    ZvhConsent,
    ZvhEscalation,
    ZvhEscalationAnswer,
    ZvhReferral,
    ZvhWithdrawal,
    parse_document,
)
from adapters.zvh.service import content_key
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.audit import AuditKind, AuditRecord
from broker.audit.canonical import canonical
from broker.audit.event import ACTING_PERSON_SYSTEM, build_audit_event, event_bytes
from schemas.acting import (
    ActingPersonError,
    acting_person_of,
    author_reference,
    check_acting_person,
)
from schemas.errors import MessageError
from schemas.messaging import MessageMeta, build_message, parse_message, read_meta, validate_fhir
from schemas.vocab import EventCode, LegalBasis, PartyRole, PurposeOfUse

GOOD = ["uzi:900012345", "agb:01234567", "big:19012345601", "employee:mw-0042", "employee:J.de_V"]


def hostile() -> list[str]:
    bsn = synthetic_bsn(random.Random())
    return [
        "Jan de Vries",  # a name
        "uzi:Jan de Vries",  # a name behind a kind
        "uzi:" + "1" * 65,  # over-long
        "employee:" + "x" * 5000,
        "uzi:123\n456",  # a line break that would forge a log line
        "uzi:12\x00",
        "employee:\x1b[31mred",
        "uzi:12;=cmd()",  # a CSV formula fragment
        "bsn:" + bsn,  # not a kind of acting person
        f"employee:{bsn}",  # a BSN posing as an employee number (UAVG art. 46)
        "uzi:",
        ":123",
        "",
    ]


@pytest.mark.parametrize("value", GOOD)
def test_identifiers_of_the_known_kinds_pass_and_travel_as_fhir_identifiers(value: str) -> None:
    assert check_acting_person(value) == value
    ref = author_reference(value)
    assert ref["identifier"]["value"] == value.split(":", 1)[1]
    assert acting_person_of(ref) == value


@pytest.mark.parametrize("value", hostile())
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ActingPersonError) as err:
        check_acting_person(value)
    assert err.value.reason == "acting-person"


def referral_doc(**extra: Any) -> dict[str, Any]:
    person = {"bsn": synthetic_bsn(random.Random()), "family_name": "Testpersoon",
              "given_names": ["Kees"], "birth_date": "1985-04-03"}
    return {**demo.referral("MN-1", "midden-nederland", person, date.today()), **extra}


def test_a_zvh_document_passes_its_acting_person_through() -> None:
    doc = parse_document(referral_doc(acting_person="employee:mw-0042"))
    assert isinstance(doc, ZvhReferral) and doc.acting_person == "employee:mw-0042"
    again = parse_document({**referral_doc(), "person": doc.person.model_dump(mode="json")})
    assert content_key(again) == content_key(doc.model_copy(update={"acting_person": None})), (
        "the same document from another employee is a repeat, not a new message"
    )


@pytest.mark.parametrize("value", hostile())
def test_a_zvh_document_with_a_hostile_acting_person_is_refused(value: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_document(referral_doc(acting_person=value))
    [issue] = err.value.issues
    assert issue.path == "acting_person" and issue.reason in ("acting-person", "string_type")
    assert value.strip() == "" or value not in str(err.value.outcome()), "never echoed"


def test_the_zvh_csv_column_and_the_provider_decision_column() -> None:
    header = ("case_id;region;registered_on;bsn;family_name;birth_date;signaller_name;"
              "signaller_sector;signal;acting_person")
    bsn = synthetic_bsn(random.Random())
    row = (f"MN-1;midden-nederland;{date.today()};{bsn};Jansen;1990-01-02;Politie;police;"
           "Dreiging.;uzi:900012345")
    [(_, good)] = csvbatch.parse_csv(f"{header}\n{row}\n".encode())
    assert isinstance(good, ZvhReferral) and good.acting_person == "uzi:900012345"
    [(_, bad)] = csvbatch.parse_csv(f"{header}\n{row.replace('uzi:900012345', 'Dr X')}\n".encode())
    assert isinstance(bad, MessageError) and bad.issues[0].path == "line 2: acting_person"

    a_header = ("assessment_id;zvh;case_id;assessed_on;bsn;family_name;birth_date;decision;"
                "dangerous_behaviour;multi_problem;structure_need;legal_title;reasons;"
                "inclusion_date;episode_id;decided_by")
    a_row = (f"B-1;zvh-mn;C-1;2023-11-10;{bsn};Jansen;1990-01-02;included;met;met;met;met;"
             "Alle criteria vervuld.;2023-11-15;EP-1;agb:01234567")
    [(_, sub)] = parse_csv(f"{a_header}\n{a_row}\n".encode(), "fivoor")
    assert isinstance(sub, Submission) and sub.acting_person == "agb:01234567"
    hostile_row = a_row.replace("agb:01234567", "uzi:1\x1b")
    [(_, refused)] = parse_csv(f"{a_header}\n{hostile_row}\n".encode(), "fivoor")
    assert isinstance(refused, MessageError)
    assert refused.issues[0].path == "line 2: decided_by"
    assert refused.issues[0].reason == "acting-person"


def test_the_message_carries_it_as_message_header_author_and_reads_it_back() -> None:
    meta = MessageMeta.new(EventCode.REFERRAL, "zvh-mn", PurposeOfUse.COC, LegalBasis.CONSENT,
                           author="big:19012345601")
    bundle = build_message(meta, [])
    validate_fhir(bundle)  # a logical Reference by identifier is valid FHIR R4
    header = bundle["entry"][0]["resource"]
    assert header["author"] == {"identifier": {
        "system": "http://fhir.nl/fhir/NamingSystem/big", "value": "19012345601"}}
    assert read_meta(bundle).author == "big:19012345601"


@pytest.mark.parametrize("author", [
    {"display": "Jan de Vries"},  # a name instead of an identifier
    {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999990019"}},
    {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "value": "1 2"}},
    {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "value": 12}},
    "uzi:900012345",
])
def test_a_message_naming_its_author_otherwise_is_refused(author: Any) -> None:
    meta = MessageMeta.new(EventCode.REFERRAL, "zvh-mn", PurposeOfUse.COC, LegalBasis.CONSENT)
    bundle = build_message(meta, [])
    bundle["entry"][0]["resource"]["author"] = author
    with pytest.raises(MessageError) as err:
        read_meta(bundle)
    assert err.value.issues[0].path == "MessageHeader.author"
    assert err.value.issues[0].reason == "acting-person"
    with pytest.raises(MessageError):
        parse_message(json.dumps(bundle).encode(), full=False)


def record(**kw: Any) -> AuditRecord:
    return AuditRecord(kind=AuditKind.DECISION_PERMIT, recorded=datetime.now(UTC), source="router",
                       reason="consent", actor="zvh-mn", actor_role=PartyRole.ZVH,
                       recipient="fivoor", recipient_role=PartyRole.COORDINATING_PROVIDER,
                       message_id="3f1c2a9e-0b6d-4e58-9a57-1c0f3c4f8d21", **kw)


def test_the_audit_record_names_the_person_as_the_nen7513_user() -> None:
    r = record(acting_person="employee:mw-0042")
    event = build_audit_event(r)
    AuditEvent.model_validate(event)
    users = [a for a in event["agent"] if a["type"]["coding"][0]["code"] == "humanuser"]
    assert users == [{
        "type": users[0]["type"],
        "who": {"identifier": {"system": ACTING_PERSON_SYSTEM, "value": "employee:mw-0042"}},
        "requestor": True,
    }]
    assert event["agent"][0]["who"]["identifier"]["value"] == "zvh-mn", "the party stays first"
    assert event_bytes(r) == canonical(event), "the fast path writes the same bytes"
    plain = record()
    assert event_bytes(plain) == canonical(build_audit_event(plain))
    assert "humanuser" not in str(build_audit_event(plain))


@pytest.mark.parametrize("value", hostile())
def test_an_audit_record_refuses_a_hostile_acting_person(value: str) -> None:
    with pytest.raises(ValueError):
        record(acting_person=value)


def test_every_zvh_document_type_and_the_escalation_csv_take_it() -> None:
    for cls in (ZvhReferral, ZvhConsent, ZvhEscalation, ZvhEscalationAnswer, ZvhWithdrawal):
        assert "acting_person" in cls.model_fields, cls.__name__
    header = "escalation_id;case_id;reason;stuck_since;acting_person"
    [(_, esc)] = csvbatch.parse_csv(f"{header}\nE-1;MN-1;no-provider;{date.today()};agb:01234567\n"
                                    .encode())
    assert isinstance(esc, ZvhEscalation) and esc.acting_person == "agb:01234567"


def test_the_epd_message_bundle_names_its_author_for_the_provider_to_pass_on() -> None:
    from tests.unit.adapters.test_provider_inputs import ME, _assessment_bundle

    bundle = _assessment_bundle()
    header = bundle["entry"][0]["resource"]
    header["author"] = author_reference("uzi:900012345")
    [(_, sub)] = parse_json(json.dumps(bundle).encode(), ME)
    assert isinstance(sub, Submission) and sub.acting_person == "uzi:900012345"
    header["author"] = {"display": "Dr. Jan de Vries"}
    [(_, refused)] = parse_json(json.dumps(bundle).encode(), ME)
    assert isinstance(refused, MessageError) and refused.reason == "acting-person"
