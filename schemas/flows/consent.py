"""Consent: who consents, to which recipients or roles, for which purposes and data categories,
for which period; and its revocation (a newer version of the same consent with status inactive).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.identifiers import validate_bsn
from schemas.vocab import DataCategory, LegalBasis, PartyRole, PurposeOfUse

if TYPE_CHECKING:
    from schemas.messaging import MessageMeta, ParsedMessage


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"  # revoked


class Grantor(StrEnum):
    PERSON = "person"
    REPRESENTATIVE = "representative"


Bsn = Annotated[str, AfterValidator(validate_bsn)]


class ConsentRecord(BaseModel):
    """One version of a consent. ``consent_id`` is stable across versions; the version with the
    latest ``recorded_at`` wins, so a revocation is the same id with status ``inactive``."""

    model_config = ConfigDict(frozen=True)

    consent_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\.]+$")
    person_bsn: Bsn
    status: ConsentStatus = ConsentStatus.ACTIVE
    grantor: Grantor = Grantor.PERSON
    representative_name: str | None = None
    recipients: tuple[str, ...] = ()
    recipient_roles: tuple[PartyRole, ...] = ()
    purposes: tuple[PurposeOfUse, ...] = Field(min_length=1)
    categories: tuple[DataCategory, ...] = Field(min_length=1)
    period_start: date
    period_end: date | None = None
    recorded_at: datetime
    recorded_by: str = Field(min_length=1, description="Party id that recorded the consent.")
    legal_basis: LegalBasis = LegalBasis.CONSENT

    @model_validator(mode="after")
    def _check(self) -> ConsentRecord:
        if not self.recipients and not self.recipient_roles:
            raise ValueError("a consent names at least one recipient or recipient role")
        if self.period_end is not None and self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if self.grantor is Grantor.REPRESENTATIVE and not self.representative_name:
            raise ValueError("a representative's consent names the representative")
        if self.recorded_at.tzinfo is None:
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
    ) -> bool:
        """Whether this consent covers that recipient (by id or role), purpose and categories."""
        if recipient not in self.recipients and role not in self.recipient_roles:
            return False
        if purpose not in self.purposes:
            return False
        return set(categories) <= set(self.categories)


# --- FHIR mapping --------------------------------------------------------------------------------

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
EXT_RECIPIENT_ROLE = "https://ketenbus.nl/fhir/StructureDefinition/consent-recipient-role"
EXT_REPRESENTATIVE = "https://ketenbus.nl/fhir/StructureDefinition/consent-representative"
IRCP = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "code": "IRCP",
    "display": "information recipient",
}


def consent_entries(c: ConsentRecord) -> list[tuple[dict[str, Any], DataCategory]]:
    """Patient (identity) and Consent (process) resources for one consent version."""
    from schemas.flows.common import Person, patient_resource
    from schemas.messaging import full_url, new_id, party_reference

    # The consent message needs only the BSN to key the consent; no other identity data.
    patient = patient_resource(
        Person(bsn=c.person_bsn, family_name="-", birth_date=date(1900, 1, 1))
    )
    patient = {"resourceType": "Patient", "id": new_id(), "identifier": patient["identifier"]}
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
    if actors:
        provision["actor"] = actors
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
        "id": c.consent_id,
        "status": c.status.value,
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": full_url(patient["id"])},
        "dateTime": c.recorded_at.isoformat(),
        "performer": [performer],
        "organization": [party_reference(c.recorded_by)],
        "policyRule": {"coding": [c.legal_basis.coding()]},
        "provision": provision,
    }
    if c.grantor is Grantor.REPRESENTATIVE:
        consent["extension"] = [{"url": EXT_REPRESENTATIVE, "valueBoolean": True}]
    return [(consent, DataCategory.PROCESS), (patient, DataCategory.IDENTITY)]


def consent_message(c: ConsentRecord, meta: MessageMeta) -> dict[str, Any]:
    from schemas.messaging import build_message

    return build_message(meta, consent_entries(c), focus=[0])


def consent_from_message(msg: ParsedMessage) -> ConsentRecord:
    from schemas.flows.common import find_one

    res = msg.resources()
    consent = find_one(res, "Consent")
    bsn = msg.subject_bsn()
    prov = consent.get("provision") or {}
    period = prov.get("period") or {}
    is_rep = any(
        x.get("url") == EXT_REPRESENTATIVE and x.get("valueBoolean")
        for x in consent.get("extension", [])
    )
    performer = (consent.get("performer") or [{}])[0]
    roles = tuple(
        PartyRole.from_coding(x["valueCoding"])
        for x in prov.get("extension", [])
        if x.get("url") == EXT_RECIPIENT_ROLE
    )
    try:
        return ConsentRecord(
            consent_id=consent.get("id", ""),
            person_bsn=bsn or "",
            status=ConsentStatus(str(consent.get("status"))),
            grantor=Grantor.REPRESENTATIVE if is_rep else Grantor.PERSON,
            representative_name=performer.get("display") if is_rep else None,
            recipients=tuple(a["reference"]["identifier"]["value"] for a in prov.get("actor", [])),
            recipient_roles=roles,
            purposes=tuple(PurposeOfUse.from_coding(p) for p in prov.get("purpose", [])),
            categories=tuple(DataCategory.from_coding(k) for k in prov.get("securityLabel", [])),
            period_start=period.get("start"),
            period_end=period.get("end"),
            recorded_at=consent.get("dateTime"),
            recorded_by=(consent.get("organization") or [{}])[0]
            .get("identifier", {})
            .get("value", ""),
            legal_basis=LegalBasis.from_coding(
                ((consent.get("policyRule") or {}).get("coding") or [{}])[0]
            ),
        )
    except (ValueError, KeyError) as err:
        from schemas.errors import Issue, MessageError, issues_from_validation

        if isinstance(err, ValidationError):
            raise MessageError(issues_from_validation(err, "Consent")) from None
        raise MessageError([Issue("Consent", "invalid", str(err), "consent")]) from None
