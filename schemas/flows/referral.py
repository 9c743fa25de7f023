"""Referral (aanmelding): a signal about a person reaches the ZVH aanmeldtafel, which registers it
and asks the region's coordinating provider to assess it against the Levensloopaanpak criteria.

FHIR: ServiceRequest (referral-signal; the focus) with the signaller's Organization
(referral-signal), Patient (identity; its address is contact), RiskAssessment (risk-assessment),
an Observation (police-data) with the police facts (Wpg) when there are any, one Basic per legal
title (legal-title) and a Task for the aanmeldtafel workflow (process).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.errors import build_model
from schemas.flows.common import (
    CASE_SYSTEM,
    Code,
    FieldMap,
    IdValue,
    PartyId,
    Person,
    Src,
    Text,
    code_in,
    concept,
    one,
    opt_one,
    party_of,
    patient_resource,
    person_from_patient,
)
from schemas.identifiers import PARTY_SYSTEM
from schemas.messaging import (
    EXT,
    MessageMeta,
    ParsedMessage,
    build_message,
    full_url,
    new_id,
    party_reference,
)
from schemas.vocab import DataCategory, LegalTitleKind, RiskLevel, ServiceCode, SignalSource
from schemas.vocab.base import KETENBUS_CS

EXT_REGION = EXT + "levensloop-region"
EXT_CARE_AVOIDER = EXT + "care-avoider"
EXT_TITLE_PERIOD = EXT + "legal-title-period"
REGION_SYSTEM = KETENBUS_CS + "levensloop-region"
POLICE_FACTS_SYSTEM = KETENBUS_CS + "referral-part"
BUSINESS_STATUS = "aanmeldtafel"


class LegalTitle(BaseModel):
    """A legal title that is or was in place because of the dangerous behaviour."""

    model_config = ConfigDict(frozen=True)

    kind: LegalTitleKind = Field(
        description="Wvggz care authorisation, Wzd court authorisation or criminal-law title."
    )
    start: date = Field(description="First day the title applies.")
    end: date | None = Field(default=None, description="Last day, if it ended or ends.")

    @model_validator(mode="after")
    def _period(self) -> LegalTitle:
        if self.end is not None and self.end < self.start:
            raise ValueError("legal title end is before its start")
        return self


class Referral(BaseModel):
    """The business content of an aanmelding."""

    model_config = ConfigDict(frozen=True)

    referral_id: IdValue = Field(description="The ZVH's case number for this registration.")
    zvh: PartyId = Field(description="Party id of the registering ZVH (procesregie).")
    region: Code = Field(description="Levensloop region code (from the region registry).")
    registered_on: date = Field(description="Date of registration at the aanmeldtafel.")
    person: Person = Field(description="About whom: the referred person.")
    signaller_name: Text = Field(description="Who signalled: the aanbrenger organisation's name.")
    signaller_source: SignalSource = Field(description="The aanbrenger's sector.")
    signaller_party: PartyId | None = Field(
        default=None, description="The aanbrenger's party id, when it is a ketenbus party."
    )
    signal: Text = Field(
        description="Why the person is referred: the signal, without clinical detail."
    )
    police_facts: Text | None = Field(
        default=None,
        description="Police facts (Wpg) the police partner brings, apart from the signal: they "
        "are criminal data (AVG art. 10) and reach only roles the policy gives police-data "
        "(Wpg art. 16/20, the ZVH covenant).",
    )
    risk_level: RiskLevel = Field(
        default=RiskLevel.UNKNOWN, description="Risk indication from the risicotaxatie."
    )
    risk_summary: Text | None = Field(default=None, description="Grounds of the risk indication.")
    legal_titles: tuple[LegalTitle, ...] = Field(
        default=(), description="Legal titles that are or were in place, if any."
    )
    care_avoider: bool = Field(
        default=False, description="A 'worrying care avoider' (not in care, often homeless)."
    )
    assessor: PartyId | None = Field(
        default=None,
        description="Party id of the region's coordinating provider asked to assess.",
    )


MAPPING = (
    FieldMap(
        "referral_id",
        "ServiceRequest.identifier (system …/zvh-case/<zvh>).value",
        "referral-signal",
    ),
    FieldMap("zvh", "Task.owner.identifier (party)", "process"),
    FieldMap(
        "region", "ServiceRequest.extension[levensloop-region].valueCoding", "referral-signal"
    ),
    FieldMap("registered_on", "ServiceRequest.authoredOn (and Task.authoredOn)", "referral-signal"),
    FieldMap(
        "person", "Patient (BSN identifier, name, birthDate, gender; address)", "identity / contact"
    ),
    FieldMap("signaller_name", "Organization.name (ServiceRequest.requester)", "referral-signal"),
    FieldMap("signaller_source", "Organization.type", "referral-signal"),
    FieldMap("signaller_party", "Organization.identifier (party)", "referral-signal"),
    FieldMap("signal", "ServiceRequest.reasonCode[0].text", "referral-signal"),
    FieldMap(
        "police_facts",
        "Observation (code police-facts).valueString, ServiceRequest.supportingInfo → it",
        "police-data",
    ),
    FieldMap("risk_level", "RiskAssessment.prediction[0].qualitativeRisk", "risk-assessment"),
    FieldMap("risk_summary", "RiskAssessment.prediction[0].rationale", "risk-assessment"),
    FieldMap(
        "legal_titles",
        "Basic (code, extension[legal-title-period].valuePeriod), one per title",
        "legal-title",
    ),
    FieldMap(
        "care_avoider", "ServiceRequest.extension[care-avoider].valueBoolean", "referral-signal"
    ),
    FieldMap("assessor", "ServiceRequest.performer[0].identifier (party)", "referral-signal"),
)


def referral_entries(ref: Referral) -> list[tuple[dict[str, Any], DataCategory]]:
    patient = patient_resource(ref.person)
    patient["id"] = new_id()
    p_ref = {"reference": full_url(patient["id"])}
    org: dict[str, Any] = {"resourceType": "Organization", "id": new_id()}
    if ref.signaller_party:
        org["identifier"] = [{"system": PARTY_SYSTEM, "value": ref.signaller_party}]
    org["type"] = [concept(ref.signaller_source)]
    org["name"] = ref.signaller_name
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
        "code": concept(ServiceCode.ASSESSMENT),
        "subject": p_ref,
        "authoredOn": ref.registered_on.isoformat(),
        "requester": {"reference": full_url(org["id"])},
    }
    if ref.assessor:
        sr["performer"] = [party_reference(ref.assessor)]
    sr["reasonCode"] = [{"text": ref.signal}]
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
    police: list[dict[str, Any]] = []
    if ref.police_facts is not None:
        police.append(
            {
                "resourceType": "Observation",
                "id": new_id(),
                "status": "final",
                "code": {
                    "coding": [{"system": POLICE_FACTS_SYSTEM, "code": "police-facts"}],
                    "text": "Politiegegevens (Wpg)",
                },
                "subject": p_ref,
                "valueString": ref.police_facts,
            }
        )
        sr["supportingInfo"] = [{"reference": full_url(police[0]["id"])}]
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
        "businessStatus": {"text": BUSINESS_STATUS},
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
        *((o, DataCategory.POLICE_DATA) for o in police),
        *((t, DataCategory.LEGAL_TITLE) for t in titles),
        (task, DataCategory.PROCESS),
    ]


def referral_message(ref: Referral, meta: MessageMeta) -> dict[str, Any]:
    """The referral as a FHIR message Bundle; the focus is the ServiceRequest."""
    return build_message(meta, referral_entries(ref), focus=[0])


def _legal_title(b: Src) -> LegalTitle:
    ext = b.extension(EXT_TITLE_PERIOD)
    if ext is None:
        raise b.error("extension", "required", f"{EXT_TITLE_PERIOD} is required", "required")
    p = ext.obj("valuePeriod")
    return build_model(
        LegalTitle,
        {
            "kind": b.code("code", LegalTitleKind),
            "start": p.date("start"),
            "end": p.opt_date("end"),
        },
        {"start": p.at("start"), "end": p.at("end")},
        b.path,
    )


def _performer(sr: Src) -> str | None:
    performers = sr.items("performer")
    if len(performers) > 1:
        raise sr.error("performer", "invalid", "names more than one assessor", "cardinality")
    return party_of(performers[0]) if performers else None


def referral_from_message(msg: ParsedMessage) -> Referral:
    """Read the referral back from a (full or minimised-but-complete) message: the ServiceRequest,
    Patient, Organization and Task are needed; without the RiskAssessment the risk is unknown,
    without Basic resources there are no legal titles."""
    sr = one(msg, "ServiceRequest")
    patient = one(msg, "Patient")
    task = one(msg, "Task")
    org = sr.resolve("requester", msg, "Organization")
    risk = opt_one(msg, "RiskAssessment")
    police = opt_one(msg, "Observation")
    prediction = risk.first("prediction") if risk else None
    titles = [_legal_title(Src(b, "Basic")) for b in msg.resources("Basic")]
    region = sr.req_extension(EXT_REGION)
    avoider = sr.extension(EXT_CARE_AVOIDER)
    case_ident = sr.first("identifier")
    reason = sr.first("reasonCode")
    return build_model(
        Referral,
        {
            "referral_id": case_ident.string("value"),
            "zvh": task.party("owner"),
            "region": region.coding_code("valueCoding", REGION_SYSTEM),
            "registered_on": sr.date("authoredOn"),
            "person": person_from_patient(patient.data),
            "signaller_name": org.string("name"),
            "signaller_source": code_in(org.first("type"), SignalSource),
            "signaller_party": org.opt_identifier(PARTY_SYSTEM),
            "signal": reason.string("text"),
            "police_facts": police.string("valueString") if police else None,
            "risk_level": prediction.code("qualitativeRisk", RiskLevel)
            if prediction
            else RiskLevel.UNKNOWN,
            "risk_summary": prediction.opt_string("rationale") if prediction else None,
            "legal_titles": tuple(titles),
            "care_avoider": avoider.boolean("valueBoolean") if avoider else False,
            "assessor": _performer(sr),
        },
        {
            "referral_id": case_ident.at("value"),
            "zvh": task.at("owner.identifier.value"),
            "region": region.at("valueCoding.code"),
            "signaller_name": org.at("name"),
            "signaller_party": org.at("identifier"),
            "signal": reason.at("text"),
            "police_facts": police.at("valueString") if police else "Observation",
            "risk_summary": prediction.at("rationale") if prediction else "RiskAssessment",
            "assessor": sr.at("performer[0].identifier.value"),
        },
        "ServiceRequest",
    )
