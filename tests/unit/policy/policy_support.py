"""Builders for policy tests: realistic FHIR R4 message Bundles and consent records."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from schemas.flows.consent import ConsentRecord, ConsentStatus
from schemas.identifiers import BSN_SYSTEM
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

ON = date(2024, 6, 1)
BSN = "111222333"
PSEUDONYM = "psn-router-7f3a9c"
CATEGORY_SYSTEM = DataCategory.default_system()


def tag(category: DataCategory) -> dict[str, Any]:
    return {"security": [category.coding()]}


def patient(*, contact: bool = True) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": tag(DataCategory.IDENTITY),
        "identifier": [{"system": BSN_SYSTEM, "value": BSN}],
        "name": [{"family": "Jansen", "given": ["Jan"]}],
        "birthDate": "1980-02-03",
        "gender": "male",
        "maritalStatus": {"text": "gescheiden"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jan</div>"},
    }
    if contact:
        res["address"] = [{"line": ["Dorpsstraat 1"], "city": "Utrecht"}]
        res["telecom"] = [{"system": "phone", "value": "0612345678"}]
        res["contact"] = [{"name": {"family": "Jansen", "given": ["Piet"]}}]
    return res


SUBJECT = {"reference": "urn:uuid:00000000-0000-0000-0000-0000000000a1"}
PATIENT_URL = "urn:uuid:00000000-0000-0000-0000-0000000000a1"


def _resource(category: DataCategory) -> dict[str, Any]:
    """One realistic R4 resource per data category, referring to the patient where FHIR does."""
    t = tag(category)
    match category:
        case DataCategory.REFERRAL_SIGNAL:
            return {
                "resourceType": "ServiceRequest", "id": "sr1", "meta": t,
                "status": "active", "intent": "proposal",
                "code": {"text": "Levensloopaanpak aanmelding"},
                "subject": dict(SUBJECT),
                "reasonCode": [{"text": "zorgen over veiligheid omgeving"}],
            }
        case DataCategory.RISK_ASSESSMENT:
            return {
                "resourceType": "RiskAssessment", "id": "ra1", "meta": t, "status": "final",
                "subject": dict(SUBJECT),
                "prediction": [{"outcome": {"text": "gevaar voor anderen"}}],
            }
        case DataCategory.LEGAL_TITLE:
            return {
                "resourceType": "Basic", "id": "lt1", "meta": t,
                "code": {"text": "zorgmachtiging Wvggz"}, "subject": dict(SUBJECT),
            }
        case DataCategory.JUSTICE:
            return {
                "resourceType": "Basic", "id": "ju1", "meta": t,
                "code": {"text": "strafrechtelijke titel"}, "subject": dict(SUBJECT),
            }
        case DataCategory.POLICE_DATA:
            return {
                "resourceType": "Observation", "id": "po1", "meta": t, "status": "final",
                "code": {"text": "politiegegevens"}, "subject": dict(SUBJECT),
                "valueString": "drie registraties bedreiging",
            }
        case DataCategory.CLINICAL:
            return {
                "resourceType": "Condition", "id": "c1", "meta": t,
                "code": {"text": "psychotische stoornis"}, "subject": dict(SUBJECT),
            }
        case DataCategory.CARE_EPISODE:
            return {
                "resourceType": "EpisodeOfCare", "id": "eoc1", "meta": t, "status": "active",
                "patient": dict(SUBJECT),
                "diagnosis": [{"condition": {"reference": "Condition/c1"}}],
                "period": {"start": "2024-05-01"},
            }
        case DataCategory.FINANCIAL:
            return {
                "resourceType": "Claim", "id": "cl1", "meta": t, "status": "active",
                "type": {"text": "institutional"}, "use": "claim",
                "patient": dict(SUBJECT), "created": "2024-06-01",
                "provider": {"display": "Transfore"},
                "priority": {"text": "normal"},
                "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Zvw"}}],
            }
        case DataCategory.PROCESS:
            return {
                "resourceType": "Task", "id": "t1", "meta": t, "status": "in-progress",
                "intent": "order", "businessStatus": {"text": "inclusietafel"},
                "for": dict(SUBJECT),
            }
        case DataCategory.AGGREGATE:
            return {
                "resourceType": "MeasureReport", "id": "mr1", "meta": t, "status": "complete",
                "type": "summary", "measure": "https://ketenbus.nl/fhir/Measure/secure-beds",
                "period": {"start": "2024-06-01", "end": "2024-06-01"},
                "group": [{"population": [{"count": 3}]}],
            }
        case DataCategory.CONTACT | DataCategory.IDENTITY:
            raise ValueError("carried by the Patient")
    raise AssertionError(category)


def bundle(
    categories: set[DataCategory] | frozenset[DataCategory],
    event: EventCode = EventCode.REFERRAL,
    *,
    untagged: bool = False,
) -> dict[str, Any]:
    """A message Bundle that carries exactly ``categories`` (contact via the Patient)."""
    entries: list[dict[str, Any]] = []
    if DataCategory.IDENTITY in categories:
        with_contact = DataCategory.CONTACT in categories
        entries.append({"fullUrl": PATIENT_URL, "resource": patient(contact=with_contact)})
    for c in DataCategory:
        if c in categories and c not in (DataCategory.IDENTITY, DataCategory.CONTACT):
            res = _resource(c)
            entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, c.value)}",
                            "resource": res})
    if untagged:
        entries.append({
            "fullUrl": "urn:uuid:00000000-0000-0000-0000-00000000dead",
            "resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                         "code": {"text": "untagged note"}, "subject": dict(SUBJECT)},
        })
    header = {
        "resourceType": "MessageHeader", "id": "mh1",
        "eventCoding": event.coding(),
        "source": {"endpoint": "https://ketenbus.nl/party/zvh-utrecht"},
        "destination": [{"endpoint": "https://ketenbus.nl/party/transfore"}],
        "focus": [{"reference": e["fullUrl"]} for e in entries],
    }
    return {
        "resourceType": "Bundle", "id": "b1", "type": "message",
        "timestamp": "2024-06-01T10:00:00+02:00",
        "identifier": {"system": "urn:ietf:rfc:3986",
                       "value": "urn:uuid:6d1f0e6c-3c8b-4f7e-9a55-1d3c2b1a0f99"},
        "meta": {"security": [PurposeOfUse.COC.coding(), LegalBasis.CONSENT.coding()]},
        "signature": {"type": [{"system": "urn:iso-astm:E1762-95:2013",
                                "code": "1.2.840.10065.1.12.1.1"}],
                      "when": "2024-06-01T10:00:00+02:00", "who": {"display": "zvh"},
                      "data": "c2ln"},
        "entry": [{"fullUrl": "urn:uuid:00000000-0000-0000-0000-0000000000b1",
                   "resource": header}, *entries],
    }


# The senders of the policy tests' requests: the consents cover data these hold (issue 16 §3).
TEST_SENDERS = ("sender-1", "provider-1", "zvh-1")


def consent(
    consent_id: str = "c-1",
    *,
    recipients: tuple[str, ...] = (),
    roles: tuple[PartyRole, ...] = (),
    purposes: tuple[PurposeOfUse, ...] = (PurposeOfUse.COC,),
    categories: tuple[DataCategory, ...] | frozenset[DataCategory] = tuple(DataCategory),
    start: date = date(2024, 1, 1),
    end: date | None = None,
    recorded_at: datetime = datetime(2024, 1, 1, 9, 0, tzinfo=UTC),
    status: ConsentStatus = ConsentStatus.ACTIVE,
    bsn: str = BSN,
    holders: tuple[str, ...] = TEST_SENDERS,
    case_id: str | None = None,
) -> ConsentRecord:
    return ConsentRecord(
        consent_id=consent_id,
        person_bsn=bsn,
        status=status,
        recipients=recipients,
        recipient_roles=roles,
        purposes=purposes,
        categories=tuple(sorted(categories, key=lambda c: c.value)),
        period_start=start,
        period_end=end,
        recorded_at=recorded_at,
        recorded_by="zvh-utrecht",
        holders=holders,
        case_id=case_id,
    )
