"""Referral (aanmelding): a signal about a person reaches the ZVH aanmeldtafel, which registers it
and asks the region's coordinating provider to assess it against the Levensloopaanpak criteria.

FHIR: Patient (identity; address = contact), Organization of the signaller and ServiceRequest
(referral-signal; the focus), RiskAssessment (risk-assessment), one Basic per legal title
(legal-title) and a Task for the aanmeldtafel workflow (process).
"""

from __future__ import annotations

from datetime import date
from enum import nonmember
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.flows.common import (
    Person,
    code_from_concept,
    concept,
    ext_value,
    find_one,
    patient_resource,
    person_from_patient,
)
from schemas.messaging import (
    EXT,
    MessageMeta,
    ParsedMessage,
    build_message,
    full_url,
    new_id,
    party_reference,
)
from schemas.vocab import DataCategory
from schemas.vocab.base import KETENBUS_CS, Coded

CASE_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/zvh-case"
EXT_REGION = EXT + "levensloop-region"
EXT_CARE_AVOIDER = EXT + "care-avoider"
EXT_TITLE_PERIOD = EXT + "legal-title-period"
REGION_SYSTEM = KETENBUS_CS + "levensloop-region"


class SignalSource(Coded):
    """Who brought the signal to the aanmeldtafel (the aanbrenger's sector)."""

    SYSTEM = nonmember(KETENBUS_CS + "signal-source")

    MUNICIPALITY = ("municipality", "Gemeente", "Municipality, often via the social domain.")
    POLICE = ("police", "Politie", "Police.")
    JUSTICE = ("justice", "Justitie", "OM, probation or DJI.")
    CARE = ("care", "Zorg", "A care provider (GGZ, VG, addiction care).")
    HOUSING = ("housing", "Woningcorporatie", "Housing corporation.")
    OTHER = ("other", "Anders", "Another convenant partner.")


class RiskLevel(Coded):
    """Outcome of the risk assessment (risicotaxatie) at registration."""

    SYSTEM = nonmember(KETENBUS_CS + "risk-level")

    LOW = ("low", "Laag", "Low risk of dangerous behaviour.")
    MODERATE = ("moderate", "Matig", "Moderate risk.")
    HIGH = ("high", "Hoog", "High risk of dangerous behaviour towards others.")
    UNKNOWN = ("unknown", "Onbekend", "Not yet assessed.")


class LegalTitleKind(Coded):
    """The legal title that is or was in place because of dangerous behaviour."""

    SYSTEM = nonmember(KETENBUS_CS + "legal-title")

    WVGGZ = ("wvggz-zorgmachtiging", "Zorgmachtiging Wvggz", "Care authorisation (Wvggz).")
    WZD = ("wzd-rechterlijke-machtiging", "Rechterlijke machtiging Wzd", "Court auth. (Wzd).")
    CRIMINAL = ("strafrechtelijk", "Strafrechtelijke titel", "A criminal-law title.")


class LegalTitle(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: LegalTitleKind
    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _period(self) -> LegalTitle:
        if self.end is not None and self.end < self.start:
            raise ValueError("legal title end is before its start")
        return self


class Referral(BaseModel):
    """The business content of an aanmelding."""

    model_config = ConfigDict(frozen=True)

    referral_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\._]+$")
    zvh: str = Field(min_length=1, description="Party id of the registering ZVH.")
    region: str = Field(min_length=1, description="Levensloop region code.")
    registered_on: date
    person: Person
    signaller_name: str = Field(min_length=1)
    signaller_source: SignalSource
    signal: str = Field(min_length=1, max_length=4000, description="Why the person is referred.")
    risk_level: RiskLevel = RiskLevel.UNKNOWN
    risk_summary: str | None = Field(default=None, max_length=4000)
    legal_titles: tuple[LegalTitle, ...] = ()
    care_avoider: bool = False


def referral_entries(ref: Referral) -> list[tuple[dict[str, Any], DataCategory]]:
    patient = patient_resource(ref.person)
    patient["id"] = new_id()
    p_ref = {"reference": full_url(patient["id"])}
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": new_id(),
        "type": [concept(ref.signaller_source)],
        "name": ref.signaller_name,
    }
    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": new_id(),
        "extension": [
            {"url": EXT_REGION, "valueCoding": {"system": REGION_SYSTEM, "code": ref.region}},
            {"url": EXT_CARE_AVOIDER, "valueBoolean": ref.care_avoider},
        ],
        "identifier": [{"system": f"{CASE_SYSTEM}/{ref.zvh}", "value": ref.referral_id}],
        "status": "active",
        "intent": "proposal",
        "code": {
            "coding": [
                {
                    "system": KETENBUS_CS + "service",
                    "code": "levensloop-assessment",
                    "display": "Beoordeling Levensloopaanpak",
                }
            ]
        },
        "subject": p_ref,
        "authoredOn": ref.registered_on.isoformat(),
        "requester": {"reference": full_url(org["id"])},
        "reasonCode": [{"text": ref.signal}],
    }
    risk: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": new_id(),
        "status": "final",
        "subject": p_ref,
        "basis": [{"reference": full_url(sr["id"])}],
        "prediction": [
            {
                "qualitativeRisk": concept(ref.risk_level),
                **({"rationale": ref.risk_summary} if ref.risk_summary else {}),
            }
        ],
    }
    titles = []
    for t in ref.legal_titles:
        period = {"start": t.start.isoformat(), **({"end": t.end.isoformat()} if t.end else {})}
        titles.append(
            {
                "resourceType": "Basic",
                "id": new_id(),
                "extension": [{"url": EXT_TITLE_PERIOD, "valuePeriod": period}],
                "code": concept(t.kind),
                "subject": p_ref,
            }
        )
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": new_id(),
        "status": "requested",
        "businessStatus": {"text": "aanmeldtafel"},
        "intent": "order",
        "focus": {"reference": full_url(sr["id"])},
        "for": p_ref,
        "authoredOn": ref.registered_on.isoformat(),
        "owner": party_reference(ref.zvh),
    }
    return [
        (sr, DataCategory.REFERRAL_SIGNAL),
        (patient, DataCategory.IDENTITY),
        (org, DataCategory.REFERRAL_SIGNAL),
        (risk, DataCategory.RISK_ASSESSMENT),
        *((t, DataCategory.LEGAL_TITLE) for t in titles),
        (task, DataCategory.PROCESS),
    ]


def referral_message(ref: Referral, meta: MessageMeta) -> dict[str, Any]:
    """The referral as a FHIR message Bundle; the focus is the ServiceRequest."""
    return build_message(meta, referral_entries(ref), focus=[0])


def referral_from_message(msg: ParsedMessage) -> Referral:
    """Read the referral back from a (full or minimised-but-complete) message."""
    res = msg.resources()
    sr = find_one(res, "ServiceRequest")
    patient = find_one(res, "Patient")
    task = find_one(res, "Task")
    urls = msg.by_url()
    org = urls.get((sr.get("requester") or {}).get("reference", ""), {})
    risk = next((r for r in res if r.get("resourceType") == "RiskAssessment"), None)
    prediction = (risk or {}).get("prediction", [{}])[0]
    titles = []
    for b in (r for r in res if r.get("resourceType") == "Basic"):
        period = ext_value(b, EXT_TITLE_PERIOD, "valuePeriod") or {}
        titles.append(
            LegalTitle(
                kind=code_from_concept(b.get("code"), LegalTitleKind, "Basic.code"),
                start=period.get("start"),
                end=period.get("end"),
            )
        )
    region = (ext_value(sr, EXT_REGION, "valueCoding") or {}).get("code", "")
    ident = (sr.get("identifier") or [{}])[0]
    return Referral(
        referral_id=ident.get("value", ""),
        zvh=(task.get("owner") or {}).get("identifier", {}).get("value", ""),
        region=region,
        registered_on=sr.get("authoredOn"),
        person=person_from_patient(patient),
        signaller_name=org.get("name", ""),
        signaller_source=code_from_concept(
            (org.get("type") or [{}])[0], SignalSource, "Organization.type"
        ),
        signal=(sr.get("reasonCode") or [{}])[0].get("text", ""),
        risk_level=code_from_concept(
            prediction.get("qualitativeRisk"), RiskLevel, "RiskAssessment.prediction"
        )
        if risk
        else RiskLevel.UNKNOWN,
        risk_summary=prediction.get("rationale"),
        legal_titles=tuple(titles),
        care_avoider=bool(ext_value(sr, EXT_CARE_AVOIDER, "valueBoolean")),
    )
