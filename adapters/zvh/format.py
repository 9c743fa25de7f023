"""The ZVH JSON format: what a ZVH case system sends, translated to FHIR flows.

Field names are English; the Dutch term is in each field's description (see
``docs/adapters/zvh.md``). Dates are ISO 8601 (``YYYY-MM-DD``). Unknown fields are refused so a
typo never silently drops data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from adapters.common.limits import InputLimits, read_json, too_many
from schemas.acting import ActingPerson
from schemas.errors import Issue, MessageError, issues_at, issues_from_validation
from schemas.flows.common import Bsn, Gender, MunicipalityCode, Person
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.flows.escalation import Escalation
from schemas.flows.escalation_answer import EscalationAnswer
from schemas.flows.referral import LegalTitle, Referral
from schemas.flows.withdrawal import MESSAGE_ID
from schemas.messaging import BasisDetail
from schemas.vocab import (
    DataCategory,
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    LegalBasis,
    LegalTitleKind,
    PartyRole,
    PurposeOfUse,
    RiskLevel,
    SecurityLevel,
    SignalSource,
)

DEFAULT_LIMITS = InputLimits()
MAX_FILE_BYTES = DEFAULT_LIMITS.max_bytes
OLDEST_BIRTH_YEARS = 125
"""No one is older than this many years (the oldest Dutch person on record reached 115)."""
REGISTERED_FUTURE = timedelta(days=31)
REGISTERED_PAST = timedelta(days=3653)
"""A registration date more than a month ahead or ten years back is a typo in the year."""


def _plausible_birth(value: date) -> date:
    """A birth date in the future or more than 125 years ago is a typo, not a person. Whether
    someone is an adult is the inclusion decision's question, on its own date, not intake's."""
    today = date.today()
    if value > today:
        raise PlausibilityError("a birth date cannot be in the future")
    if value.year < today.year - OLDEST_BIRTH_YEARS:
        raise PlausibilityError(f"a birth date more than {OLDEST_BIRTH_YEARS} years ago")
    return value


def _plausible_registration(value: date) -> date:
    today = date.today()
    if value > today + REGISTERED_FUTURE or value < today - REGISTERED_PAST:
        raise PlausibilityError("the registration date is far from today (typo in the year?)")
    return value


class PlausibilityError(ValueError):
    """A well-formed value that cannot be true (reason ``implausible-date``)."""

    reason = "implausible-date"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Acted(_Strict):
    """A document some person at the ZVH acted on: who, by identifier (``schemas.acting``)."""

    acting_person: ActingPerson | None = Field(
        default=None,
        description="Medewerker die handelde: uzi:|agb:|big:|employee:<id>, never a name; "
        "travels as MessageHeader.author and is the NEN 7513 user in the audit trail.",
    )


class ZvhAddress(_Strict):
    line: str | None = Field(default=None, description="Straat en huisnummer.")
    postal_code: str | None = Field(default=None, description="Postcode.")
    city: str | None = Field(default=None, description="Woonplaats.")


class ZvhPerson(_Strict):
    bsn: Bsn = Field(description="Burgerservicenummer; must pass the 11-check.")
    family_name: str = Field(min_length=1, description="Achternaam.")
    given_names: list[str] = Field(default_factory=list, description="Voornamen.")
    birth_date: Annotated[date, AfterValidator(_plausible_birth)] = Field(
        description="Geboortedatum; not in the future, at most 125 years ago."
    )
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


class ZvhReferral(_Acted):
    """Aanmelding."""

    type: Literal["referral"]
    case_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\._]+$", description="Zaaknummer."
    )
    region: str = Field(min_length=1, description="Levensloopregio, e.g. midden-nederland.")
    registered_on: Annotated[date, AfterValidator(_plausible_registration)] = Field(
        description="Datum aanmelding; within a year of today."
    )
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
    corrects: str | None = Field(
        default=None,
        pattern=MESSAGE_ID,
        description="Correctie: the message id of the referral this one corrects (the id the "
        "receipt or the HTTP answer gave it); it then goes to the original's recipients only.",
    )
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


class ZvhConsent(_Acted):
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


class ZvhEscalation(_Acted):
    """Escalatie: a case of this ZVH is stuck (docs/adapters/zvh.md). It goes to the region's
    escalation step first; ``level: national`` asks the national coordination point at once."""

    type: Literal["escalation"]
    escalation_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\._]+$", description="Kenmerk."
    )
    case_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\._]+$", description="Zaaknummer."
    )
    reason: EscalationReason = Field(
        description="no-bed|no-provider|no-decision|no-care-start|early-end|no-payer|"
        "payment-overdue|stuck|other."
    )
    security_level: SecurityLevel | None = Field(
        default=None, description="Beveiligingsniveau of the missing bed: 2, 3 or 4 (no-bed)."
    )
    stuck_since: date = Field(description="Vast sinds.")
    explanation: str | None = Field(
        default=None, max_length=4000, description="Toelichting (required for other)."
    )
    level: EscalationLevel = Field(
        default=EscalationLevel.REGIONAL, description="regional (default) or national."
    )
    episode_id: str | None = Field(default=None, description="Zorgtraject, if any.")
    raised_at: datetime | None = Field(default=None, description="When raised; default: now.")

    def to_escalation(self, zvh_party: str, now: datetime | None = None) -> Escalation:
        raised = self.raised_at or now or datetime.now(UTC)
        if raised.tzinfo is None:
            raised = raised.replace(tzinfo=UTC)
        return Escalation(
            escalation_id=self.escalation_id,
            raised_by=zvh_party,
            raised_at=raised,
            zvh=zvh_party,
            referral_id=self.case_id,
            reason=self.reason,
            stuck_since=self.stuck_since,
            security_level=self.security_level,
            explanation=self.explanation,
            level=self.level,
            episode_id=self.episode_id,
        )


class ZvhEscalationAnswer(_Acted):
    """Antwoord op een escalatie, when this ZVH is its region's escalation step."""

    type: Literal["escalation-answer"]
    answer_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\._]+$")
    escalation_id: str = Field(min_length=1, max_length=64)
    raised_by: str = Field(min_length=2, description="The escalating party's id.")
    case_id: str = Field(min_length=1, max_length=64)
    action: EscalationAction = Field(description="acknowledge|assign|request-info|resolve.")
    assignee: str | None = Field(default=None, description="Party id (assign).")
    note: str | None = Field(default=None, max_length=4000, description="Toelichting.")

    def to_answer(self, zvh_party: str, now: datetime | None = None) -> EscalationAnswer:
        return EscalationAnswer(
            answer_id=self.answer_id,
            escalation_id=self.escalation_id,
            raised_by=self.raised_by,
            answered_by=zvh_party,
            answered_at=now or datetime.now(UTC),
            zvh=zvh_party,
            referral_id=self.case_id,
            action=self.action,
            level=EscalationLevel.REGIONAL,
            assignee=self.assignee,
            note=self.note,
        )


class ZvhWithdrawal(_Acted):
    """Intrekking: withdraw a message this ZVH sent, entered in error (a wrong person, a wrong
    case). Names the message by its id only; no reason in words (docs/adapters/zvh.md)."""

    type: Literal["withdrawal"]
    message_id: str = Field(pattern=MESSAGE_ID, description="The id of the message withdrawn.")


ZvhInput = ZvhReferral | ZvhConsent | ZvhEscalation | ZvhEscalationAnswer | ZvhWithdrawal
ZvhDocument = Annotated[ZvhInput, Field(discriminator="type")]
DOCUMENT_TYPES = ("referral", "consent", "escalation", "escalation-answer", "withdrawal")
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
_ESCALATION_PATHS = {
    "referral_id": "case_id",
    "security_level": "security_level",
    "explanation": "explanation",
    "stuck_since": "stuck_since",
    "assignee": "assignee",
    "note": "note",
}


def _check_translates(doc: ZvhInput, path: str) -> None:
    """The document's business rules (a consent names a recipient, periods are in order, ...)
    are the business model's: build it once, so that an accepted document never fails later
    while the adapter turns it into a message."""
    try:
        if isinstance(doc, ZvhReferral):
            doc.to_referral("zvh")
        elif isinstance(doc, ZvhConsent):
            doc.to_record("zvh")
        elif isinstance(doc, ZvhEscalation):
            doc.to_escalation("zvh")
        elif isinstance(doc, ZvhEscalationAnswer):
            doc.to_answer("zvh")
    except ValidationError as err:
        paths = (
            _REFERRAL_PATHS
            if isinstance(doc, ZvhReferral)
            else _CONSENT_PATHS
            if isinstance(doc, ZvhConsent)
            else _ESCALATION_PATHS
        )
        prefixed = {k: f"{path}.{v}" if path else v for k, v in paths.items()}
        raise MessageError(issues_at(err, prefixed, path)) from None


def parse_document(data: Any, path: str = "") -> ZvhInput:
    """Validate one ZVH document (already JSON-decoded); raises ``MessageError`` per field."""
    if not isinstance(data, dict):
        raise MessageError(
            [Issue(path, "structure", "a document must be a JSON object", "not-object")]
        )
    if data.get("type") not in DOCUMENT_TYPES:
        raise MessageError(
            [
                Issue(
                    f"{path}.type" if path else "type",
                    "required",
                    "type must be one of " + ", ".join(f"'{t}'" for t in DOCUMENT_TYPES),
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
                _untag(i.path),
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


def _untag(path: str) -> str:
    """Drop the discriminator's tag: "referral.person.bsn" -> "person.bsn"."""
    for t in DOCUMENT_TYPES:
        if path.startswith(t + ".") or f"].{t}." in path:
            return path.replace(t + ".", "", 1)
    return path


def parse_bytes(
    raw: bytes, limits: InputLimits = DEFAULT_LIMITS
) -> list[tuple[int | None, ZvhInput | MessageError]]:
    """Parse a file: one document or a JSON array (a batch). Each item is parsed on its own, so
    one bad item never loses the rest; a file that is not JSON at all, too large, too deep or
    with too many items is one error (the limits of docs/adapters/limits.md)."""
    data = read_json(raw, limits)
    if isinstance(data, list):
        if len(data) > limits.batch_items:
            raise too_many(len(data), limits.batch_items)
        out: list[tuple[int | None, ZvhInput | MessageError]] = []
        for i, item in enumerate(data):
            try:
                out.append((i, parse_document(item, f"[{i}]")))
            except MessageError as e:
                out.append((i, e))
        return out
    return [(None, parse_document(data))]
