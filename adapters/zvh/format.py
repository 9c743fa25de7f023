"""The ZVH JSON format: what a ZVH case system sends, translated to FHIR flows.

Field names are English; the Dutch term is in each field's description (see
``docs/adapters/zvh.md``). Dates are ISO 8601 (``YYYY-MM-DD``). Unknown fields are refused so a
typo never silently drops data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from schemas import jsontext
from schemas.errors import Issue, MessageError, issues_at, issues_from_validation
from schemas.flows.common import Bsn, Gender, MunicipalityCode, Person
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.flows.referral import LegalTitle, Referral
from schemas.messaging import BasisDetail
from schemas.vocab import (
    DataCategory,
    LegalBasis,
    LegalTitleKind,
    PartyRole,
    PurposeOfUse,
    RiskLevel,
    SignalSource,
)

MAX_FILE_BYTES = 5_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ZvhAddress(_Strict):
    line: str | None = Field(default=None, description="Straat en huisnummer.")
    postal_code: str | None = Field(default=None, description="Postcode.")
    city: str | None = Field(default=None, description="Woonplaats.")


class ZvhPerson(_Strict):
    bsn: Bsn = Field(description="Burgerservicenummer; must pass the 11-check.")
    family_name: str = Field(min_length=1, description="Achternaam.")
    given_names: list[str] = Field(default_factory=list, description="Voornamen.")
    birth_date: date = Field(description="Geboortedatum.")
    gender: Gender = Field(default=Gender.UNKNOWN, description="male|female|other|unknown.")
    municipality: MunicipalityCode | None = Field(
        default=None, description="Gemeente van inschrijving (4-digit CBS code)."
    )
    homeless: bool = Field(
        default=False, description="Dakloos / zonder vaste woon- of verblijfplaats."
    )
    address: ZvhAddress | None = None


class ZvhSignaller(_Strict):
    name: str = Field(min_length=1, description="Melder: the organisation that signals.")
    sector: SignalSource = Field(description="municipality|police|justice|care|housing|other.")


class ZvhRisk(_Strict):
    level: RiskLevel = Field(description="Risicotaxatie: low|moderate|high|unknown.")
    summary: str | None = Field(default=None, max_length=4000, description="Toelichting.")


class ZvhLegalTitle(_Strict):
    kind: LegalTitleKind = Field(
        description="wvggz-zorgmachtiging|wzd-rechterlijke-machtiging|strafrechtelijk."
    )
    start: date
    end: date | None = None


class ZvhBasis(_Strict):
    kind: LegalBasis = Field(
        default=LegalBasis.CONSENT,
        description="Grondslag: consent|conflict-of-duties|legal-obligation|public-task.",
    )
    citation: str | None = Field(default=None, description="Wetsartikel (legal-obligation).")
    justification: str | None = Field(
        default=None, description="Motivering (required for conflict-of-duties)."
    )
    decided_by: str | None = Field(
        default=None, description="Professional who decided (required for conflict-of-duties)."
    )
    valid_until: date | None = Field(
        default=None,
        description="Last day the conflict-of-duties decision covers (default: this day only).",
    )

    def detail(self) -> BasisDetail | None:
        if not (self.citation or self.justification or self.decided_by or self.valid_until):
            return None
        return BasisDetail(self.citation, self.justification, self.decided_by, self.valid_until)


class ZvhReferral(_Strict):
    """Aanmelding."""

    type: Literal["referral"]
    case_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\._]+$", description="Zaaknummer."
    )
    region: str = Field(min_length=1, description="Levensloopregio, e.g. midden-nederland.")
    registered_on: date = Field(description="Datum aanmelding.")
    person: ZvhPerson
    signaller: ZvhSignaller
    signal: str = Field(
        min_length=1,
        max_length=4000,
        description="Signaal: why this referral, without clinical detail or police facts.",
    )
    police_facts: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="Politiegegevens (Wpg), apart from the signal: criminal data (AVG art. 10).",
    )
    risk: ZvhRisk = ZvhRisk(level=RiskLevel.UNKNOWN)
    legal_titles: list[ZvhLegalTitle] = Field(default_factory=list)
    care_avoider: bool = Field(default=False, description="Zorgmijder.")
    basis: ZvhBasis = ZvhBasis()
    controller: str | None = Field(
        default=None,
        min_length=2,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Verwerkingsverantwoordelijke: party id of the covenant partner that brought "
        "the case, for whom the ZVH processes (default: the first partner the registry lists "
        "for this ZVH under processes_for).",
    )

    def to_referral(self, zvh_party: str) -> Referral:
        p = self.person
        a = p.address or ZvhAddress()
        return Referral(
            referral_id=self.case_id,
            zvh=zvh_party,
            region=self.region,
            registered_on=self.registered_on,
            person=Person(
                bsn=p.bsn,
                family_name=p.family_name,
                given_names=tuple(p.given_names),
                birth_date=p.birth_date,
                gender=p.gender,
                residence_municipality=p.municipality,
                homeless=p.homeless,
                address_line=a.line,
                postal_code=a.postal_code,
                city=a.city,
            ),
            signaller_name=self.signaller.name,
            signaller_source=self.signaller.sector,
            signal=self.signal,
            police_facts=self.police_facts,
            risk_level=self.risk.level,
            risk_summary=self.risk.summary,
            legal_titles=tuple(
                LegalTitle(kind=t.kind, start=t.start, end=t.end) for t in self.legal_titles
            ),
            care_avoider=self.care_avoider,
        )


class ZvhConsent(_Strict):
    """Toestemming (or its revocation: the same consent_id with status revoked)."""

    type: Literal["consent"]
    consent_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\.]+$")
    bsn: Bsn
    status: Literal["active", "revoked"] = "active"
    grantor: Grantor = Grantor.PERSON
    representative_name: str | None = None
    recipients: list[str] = Field(default_factory=list, description="Party ids.")
    recipient_roles: list[PartyRole] = Field(default_factory=list)
    purposes: list[PurposeOfUse] = Field(min_length=1)
    categories: list[DataCategory] = Field(min_length=1)
    valid_from: date
    valid_until: date | None = None
    recorded_at: datetime | None = Field(
        default=None, description="When the consent was given; default: now."
    )
    holders: list[str] = Field(
        default_factory=list,
        description="Party ids of the organisations whose data the consent lets through (Mitz: "
        "the data holder); default: this ZVH. A provider's messages rely on a consent only when "
        "it names that provider.",
    )
    case_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9\-\._]+$",
        description="Zaaknummer: limit the consent to this case.",
    )

    def to_record(self, zvh_party: str, now: datetime | None = None) -> ConsentRecord:
        recorded = self.recorded_at or now or datetime.now(UTC)
        if recorded.tzinfo is None:
            recorded = recorded.replace(tzinfo=UTC)
        return ConsentRecord(
            consent_id=self.consent_id,
            person_bsn=self.bsn,
            status=ConsentStatus.ACTIVE if self.status == "active" else ConsentStatus.INACTIVE,
            grantor=self.grantor,
            representative_name=self.representative_name,
            recipients=tuple(self.recipients),
            recipient_roles=tuple(self.recipient_roles),
            purposes=tuple(self.purposes),
            categories=tuple(self.categories),
            period_start=self.valid_from,
            period_end=self.valid_until,
            recorded_at=recorded,
            recorded_by=zvh_party,
            holders=tuple(self.holders),
            case_id=self.case_id,
        )


ZvhDocument = Annotated[ZvhReferral | ZvhConsent, Field(discriminator="type")]
_document = TypeAdapter(ZvhDocument)

# where a business-model field comes from in the ZVH document (for the paths of its issues)
_REFERRAL_PATHS = {
    "referral_id": "case_id",
    "signaller_name": "signaller.name",
    "signaller_source": "signaller.sector",
    "risk_level": "risk.level",
    "risk_summary": "risk.summary",
}
_CONSENT_PATHS = {"person_bsn": "bsn", "period_start": "valid_from", "period_end": "valid_until"}


def _check_translates(doc: ZvhReferral | ZvhConsent, path: str) -> None:
    """The document's business rules (a consent names a recipient, periods are in order, ...)
    are the business model's: build it once, so that an accepted document never fails later
    while the adapter turns it into a message."""
    try:
        if isinstance(doc, ZvhReferral):
            doc.to_referral("zvh")
        else:
            doc.to_record("zvh")
    except ValidationError as err:
        paths = _REFERRAL_PATHS if isinstance(doc, ZvhReferral) else _CONSENT_PATHS
        prefixed = {k: f"{path}.{v}" if path else v for k, v in paths.items()}
        raise MessageError(issues_at(err, prefixed, path)) from None


def parse_document(data: Any, path: str = "") -> ZvhReferral | ZvhConsent:
    """Validate one ZVH document (already JSON-decoded); raises ``MessageError`` per field."""
    if not isinstance(data, dict):
        raise MessageError(
            [Issue(path, "structure", "a document must be a JSON object", "not-object")]
        )
    if data.get("type") not in ("referral", "consent"):
        raise MessageError(
            [
                Issue(
                    f"{path}.type" if path else "type",
                    "required",
                    "type must be 'referral' or 'consent'",
                    "type",
                )
            ]
        )
    try:
        doc = _document.validate_python(data)
    except ValidationError as err:
        issues = issues_from_validation(err, path)
        # drop the discriminator's tag from paths: "referral.person.bsn" -> "person.bsn"
        cleaned = [
            Issue(
                i.path.replace("referral.", "", 1).replace("consent.", "", 1),
                i.code,
                i.message,
                i.reason,
            )
            for i in issues
        ]
        raise MessageError(cleaned) from None
    if (
        isinstance(doc, ZvhReferral)
        and doc.basis.kind is LegalBasis.CONFLICT_OF_DUTIES
        and not (doc.basis.justification and doc.basis.decided_by)
    ):
        raise MessageError(
            [
                Issue(
                    f"{path}.basis" if path else "basis",
                    "required",
                    "conflict-of-duties needs a justification and decided_by",
                    "justification",
                )
            ]
        )
    _check_translates(doc, path)
    return doc


def parse_bytes(raw: bytes) -> list[tuple[int | None, ZvhReferral | ZvhConsent | MessageError]]:
    """Parse a file: one document or a JSON array (a batch). Each item is parsed on its own, so
    one bad item never loses the rest; a file that is not JSON at all is one error."""
    if len(raw) > MAX_FILE_BYTES:
        raise MessageError([Issue("", "too-long", "file exceeds 5 MB", "too-large")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MessageError([Issue("", "structure", "file is not UTF-8 text", "encoding")]) from None
    try:
        data = jsontext.loads(text)
    except ValueError as err:
        line = getattr(err, "lineno", None)
        where = f" (line {line})" if line else ""
        raise MessageError([Issue("", "structure", f"not valid JSON{where}", "not-json")]) from None
    if isinstance(data, list):
        out: list[tuple[int | None, ZvhReferral | ZvhConsent | MessageError]] = []
        for i, item in enumerate(data):
            try:
                out.append((i, parse_document(item, f"[{i}]")))
            except MessageError as e:
                out.append((i, e))
        return out
    return [(None, parse_document(data))]
