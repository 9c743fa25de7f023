"""Consent: who consents (the person or a representative), to which recipients or recipient
roles, for which purposes and data categories, for which period; and its revocation (a newer
version of the same consent, same ``consent_id``, with status ``inactive``).

FHIR: Consent (process; the focus; scope ``patient-privacy``, category LOINC 59284-0, policyRule =
the legal basis, one ``permit`` provision) and a Patient with only the BSN (identity).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.errors import build_model
from schemas.flows.common import (
    CASE_SYSTEM,
    Bsn,
    FhirId,
    FieldMap,
    IdValue,
    PartyId,
    ShortText,
    Src,
    bsn_patient,
    code_in,
    coding_of,
    one,
    party_of,
)
from schemas.messaging import (
    EXT,
    MessageMeta,
    ParsedMessage,
    build_message,
    fhir_datetime,
    full_url,
    new_id,
    party_reference,
)
from schemas.vocab import DataCategory, LegalBasis, PartyRole, PurposeOfUse


class ConsentStatus(StrEnum):
    """Consent.status values we use."""

    ACTIVE = "active"
    INACTIVE = "inactive"  # revoked


class Grantor(StrEnum):
    """Who gave the consent."""

    PERSON = "person"
    REPRESENTATIVE = "representative"


class ConsentRecord(BaseModel):
    """One version of a consent. ``consent_id`` is stable across versions; the version with the
    latest ``recorded_at`` wins, so a revocation is the same id with status ``inactive``."""

    model_config = ConfigDict(frozen=True)

    consent_id: FhirId = Field(description="Stable id of the consent across its versions.")
    person_bsn: Bsn = Field(description="BSN of the person the consent is about.")
    status: ConsentStatus = Field(
        default=ConsentStatus.ACTIVE, description="active, or inactive when revoked."
    )
    grantor: Grantor = Field(
        default=Grantor.PERSON, description="Who consents: the person or a representative."
    )
    representative_name: ShortText | None = Field(
        default=None, description="Name of the representative (only for a representative)."
    )
    recipients: tuple[PartyId, ...] = Field(
        default=(), description="Party ids that may receive the data."
    )
    recipient_roles: tuple[PartyRole, ...] = Field(
        default=(), description="Roles whose parties may receive the data."
    )
    purposes: tuple[PurposeOfUse, ...] = Field(
        min_length=1, description="Purposes of use the consent covers (all listed)."
    )
    categories: tuple[DataCategory, ...] = Field(
        min_length=1, description="Data categories the consent covers."
    )
    period_start: date = Field(description="First day the consent applies.")
    period_end: date | None = Field(default=None, description="Last day, if limited.")
    recorded_at: datetime = Field(description="When this version was recorded (with zone).")
    recorded_by: PartyId = Field(description="Party id that recorded the consent.")
    legal_basis: LegalBasis = Field(
        default=LegalBasis.CONSENT, description="Legal basis of the register entry."
    )
    holders: tuple[PartyId, ...] = Field(
        default=(),
        description="The organisations holding the data the consent is about (Mitz: the "
        "dossierhoudende organisatie); a message is covered only when its sender is one. "
        "Empty: the party that recorded the consent.",
    )
    case_id: IdValue | None = Field(
        default=None,
        description="The ZVH case the consent is limited to; a consent that names one covers "
        "only messages about that case.",
    )

    @property
    def data_holders(self) -> tuple[str, ...]:
        """Whose disclosures the consent covers: the named holders, else the recorder."""
        return self.holders or (self.recorded_by,)

    @model_validator(mode="after")
    def _check(self) -> ConsentRecord:
        if not self.recipients and not self.recipient_roles:
            raise ValueError("a consent names at least one recipient or recipient role")
        if self.period_end is not None and self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if self.grantor is Grantor.REPRESENTATIVE and not self.representative_name:
            raise ValueError("a representative's consent names the representative")
        if self.grantor is Grantor.PERSON and self.representative_name is not None:
            raise ValueError("representative_name is only for a representative's consent")
        if self.recorded_at.tzinfo is None or self.recorded_at.utcoffset() is None:
            raise ValueError("recorded_at must carry a time zone")
        return self

    def in_force(self, on: date) -> bool:
        """Active and within its period on that date (expired consent does not count)."""
        if self.status is not ConsentStatus.ACTIVE:
            return False
        return self.period_start <= on and (self.period_end is None or on <= self.period_end)

    def covers(
        self,
        recipient: str,
        role: PartyRole,
        purpose: PurposeOfUse,
        categories: frozenset[DataCategory] | set[DataCategory],
        holder: str | None = None,
        case: str | None = None,
    ) -> bool:
        """Whether this consent covers that recipient (by id or role), purpose and categories,
        disclosed by ``holder`` (when given) about ``case`` (when the consent names one)."""
        if recipient not in self.recipients and role not in self.recipient_roles:
            return False
        if holder is not None and holder not in self.data_holders:
            return False
        if self.case_id is not None and case != self.case_id:
            return False
        if purpose not in self.purposes:
            return False
        return set(categories) <= set(self.categories)


def revoke(
    c: ConsentRecord, recorded_at: datetime, recorded_by: str | None = None
) -> ConsentRecord:
    """The revocation of a consent: the same consent, status ``inactive``, recorded later."""
    data = c.model_dump()
    data.update(
        status=ConsentStatus.INACTIVE,
        recorded_at=recorded_at,
        recorded_by=recorded_by or c.recorded_by,
    )
    return ConsentRecord.model_validate(data)


# --- FHIR mapping --------------------------------------------------------------------------------

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
CONSENT_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/consent"
EXT_RECIPIENT_ROLE = EXT + "consent-recipient-role"
EXT_REPRESENTATIVE = EXT + "consent-representative"
IRCP = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "code": "IRCP",
    "display": "information recipient",
}
# The data holder (Mitz: the organisation whose record the consent opens), as custodian.
CST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "code": "CST",
    "display": "custodian",
}

MAPPING = (
    FieldMap("consent_id", "Consent.identifier (…/NamingSystem/consent)", "process"),
    FieldMap("person_bsn", "Patient.identifier (BSN); Consent.patient", "identity"),
    FieldMap("status", "Consent.status", "process"),
    FieldMap(
        "grantor",
        "Consent.extension[consent-representative]; Consent.performer → Patient for the person",
        "process",
    ),
    FieldMap("representative_name", "Consent.performer[0].display", "process"),
    FieldMap("recipients", "Consent.provision.actor (role IRCP, reference by party id)", "process"),
    FieldMap("holders", "Consent.provision.actor (role CST, reference by party id)", "process"),
    FieldMap(
        "case_id",
        "Consent.provision.data (meaning related, reference to the case by …/zvh-case)",
        "process",
    ),
    FieldMap(
        "recipient_roles",
        "Consent.provision.extension[consent-recipient-role].valueCoding",
        "process",
    ),
    FieldMap("purposes", "Consent.provision.purpose", "process"),
    FieldMap("categories", "Consent.provision.securityLabel", "process"),
    FieldMap("period_start, period_end", "Consent.provision.period", "process"),
    FieldMap("recorded_at", "Consent.dateTime", "process"),
    FieldMap("recorded_by", "Consent.organization[0] (party id)", "process"),
    FieldMap("legal_basis", "Consent.policyRule", "process"),
)


def consent_entries(c: ConsentRecord) -> list[tuple[dict[str, Any], DataCategory]]:
    """Patient (identity) and Consent (process) resources for one consent version."""
    # The consent message needs only the BSN to key the consent; no other identity data.
    patient = bsn_patient(c.person_bsn)
    patient["id"] = new_id()
    provision: dict[str, Any] = {
        "type": "permit",
        "period": {
            "start": c.period_start.isoformat(),
            **({"end": c.period_end.isoformat()} if c.period_end else {}),
        },
        "purpose": [p.coding() for p in c.purposes],
        "securityLabel": [k.coding() for k in c.categories],
    }
    actors = [{"role": {"coding": [IRCP]}, "reference": party_reference(r)} for r in c.recipients]
    actors += [{"role": {"coding": [CST]}, "reference": party_reference(h)} for h in c.holders]
    if actors:
        provision["actor"] = actors
    if c.case_id is not None:
        provision["data"] = [
            {
                "meaning": "related",
                "reference": {
                    "type": "ServiceRequest",
                    "identifier": {"system": CASE_SYSTEM, "value": c.case_id},
                },
            }
        ]
    if c.recipient_roles:
        provision["extension"] = [
            {"url": EXT_RECIPIENT_ROLE, "valueCoding": r.coding()} for r in c.recipient_roles
        ]
    performer: dict[str, Any] = (
        {"reference": full_url(patient["id"])}
        if c.grantor is Grantor.PERSON
        else {"display": c.representative_name}
    )
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "id": new_id(),
        "identifier": [{"system": CONSENT_SYSTEM, "value": c.consent_id}],
        "status": c.status.value,
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": full_url(patient["id"])},
        "dateTime": fhir_datetime(c.recorded_at),
        "performer": [performer],
        "organization": [party_reference(c.recorded_by)],
        "policyRule": {"coding": [c.legal_basis.coding()]},
        "provision": provision,
    }
    if c.grantor is Grantor.REPRESENTATIVE:
        consent["extension"] = [{"url": EXT_REPRESENTATIVE, "valueBoolean": True}]
    return [(consent, DataCategory.PROCESS), (patient, DataCategory.IDENTITY)]


def consent_message(c: ConsentRecord, meta: MessageMeta) -> dict[str, Any]:
    """The consent version as a FHIR message Bundle; the focus is the Consent."""
    return build_message(meta, consent_entries(c), focus=[0])


def consent_from_message(msg: ParsedMessage) -> ConsentRecord:
    """Read the consent version back; needs the Consent and the Patient (BSN)."""
    consent = one(msg, "Consent")
    bsn, bsn_path = one(msg, "Patient").bsn()
    prov = consent.obj("provision")
    if prov.string("type") != "permit":
        raise prov.error("type", "not-supported", "only a permit provision is supported", "deny")
    period = prov.obj("period")
    rep = consent.extension(EXT_REPRESENTATIVE)
    is_rep = bool(rep.boolean("valueBoolean")) if rep else False
    performer = consent.first("performer")
    status = consent.string("status")
    if status not in {s.value for s in ConsentStatus}:
        raise consent.error("status", "value", "must be active or inactive", "consent-status")
    # Consent.identifier carries the consent id; messages of the first version put it in
    # Consent.id, which is still read when there is no identifier.
    if consent.opt_identifier(CONSENT_SYSTEM) is not None:
        consent_id, id_path = consent.identifier(CONSENT_SYSTEM)
    else:
        consent_id, id_path = consent.string("id"), consent.at("id")
    roles = tuple(
        coding_of(x.obj("valueCoding"), PartyRole)
        for x in prov.items("extension")
        if x.data.get("url") == EXT_RECIPIENT_ROLE
    )
    return build_model(
        ConsentRecord,
        {
            "consent_id": consent_id,
            "person_bsn": bsn,
            "status": ConsentStatus(status),
            "grantor": Grantor.REPRESENTATIVE if is_rep else Grantor.PERSON,
            "representative_name": performer.string("display") if is_rep else None,
            "recipients": tuple(
                party_of(a.obj("reference")) for a in prov.items("actor") if _role(a) != "CST"
            ),
            "holders": tuple(
                party_of(a.obj("reference")) for a in prov.items("actor") if _role(a) == "CST"
            ),
            "case_id": _case(prov),
            "recipient_roles": roles,
            "purposes": tuple(coding_of(p, PurposeOfUse) for p in prov.items("purpose")),
            "categories": tuple(coding_of(k, DataCategory) for k in prov.items("securityLabel")),
            "period_start": period.date("start"),
            "period_end": period.opt_date("end"),
            "recorded_at": consent.instant("dateTime"),
            "recorded_by": party_of(consent.first("organization")),
            "legal_basis": code_in(consent.obj("policyRule"), LegalBasis),
        },
        {
            "consent_id": id_path,
            "person_bsn": bsn_path,
            "representative_name": performer.at("display"),
            "recipients": prov.at("actor"),
            "recipient_roles": prov.at("extension"),
            "purposes": prov.at("purpose"),
            "categories": prov.at("securityLabel"),
            "period_start": period.at("start"),
            "period_end": period.at("end"),
            "recorded_at": consent.at("dateTime"),
            "recorded_by": consent.at("organization[0]"),
        },
        "Consent",
    )


def _role(actor: Src) -> str | None:
    """The ParticipationType code of a provision actor (IRCP recipient, CST data holder)."""
    codings = actor.obj("role").data.get("coding") or []
    codes = [c.get("code") for c in codings if isinstance(c, dict)]
    return "CST" if "CST" in codes else (codes[0] if codes else None)


def _case(prov: Src) -> str | None:
    """The case of ``provision.data`` (one related ServiceRequest by case identifier)."""
    items = prov.items("data")
    if not items:
        return None
    if len(items) > 1:
        raise prov.error("data", "invalid", "a consent names at most one case", "cardinality")
    ident = items[0].obj("reference").obj("identifier")
    if ident.string("system") != CASE_SYSTEM:
        raise ident.error("system", "value", f"must be {CASE_SYSTEM}", "case")
    return ident.string("value")
