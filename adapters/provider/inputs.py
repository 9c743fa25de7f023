"""What a provider's EPD drops in the adapter's inbox, parsed into submissions: FHIR JSON
(message Bundles, or plain resources the adapter wraps into a message) and CSV (one file kind
per flow, one message per row). Every item is judged on its own; an error names the line or the
item and the field. The formats are specified in docs/adapters/provider.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.common.csvfile import (
    DEFAULT_LIMITS,
    IsoDate,
    decode_text,
    each,
    parse_row,
    read_rows,
    split_list,
    to_bool,
)
from adapters.common.limits import InputLimits, read_json, too_many
from adapters.financing.desk import Coverage
from schemas.acting import ActingPerson
from schemas.errors import Issue, MessageError, issues_at
from schemas.flows.assessment import AssessmentOutcome, CriterionAssessment
from schemas.flows.capacity import CapacityReport, LevelCapacity
from schemas.flows.claim import Claim
from schemas.flows.common import Gender, Person
from schemas.flows.escalation import Escalation
from schemas.flows.escalation_answer import EscalationAnswer
from schemas.flows.registry import BY_EVENT, FlowSpec
from schemas.flows.transition import CareTransition
from schemas.flows.withdrawal import Withdrawal
from schemas.messaging import (
    BasisDetail,
    MessageMeta,
    build_message,
    parse_message,
    read_meta,
    validate_fhir,
)
from schemas.vocab import (
    AdvisedAlternative,
    AssessmentDecision,
    ClaimService,
    CriterionResult,
    DataCategory,
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    EventCode,
    InclusionCriterion,
    LegalBasis,
    PurposeOfUse,
    SecurityLevel,
    ServiceCode,
    TransitionKind,
)

MAX_JSON_BYTES = 5_000_000

# Defaults per flow when the input does not say (CSV columns purpose/basis override them).
DEFAULT_PURPOSE = {
    EventCode.ASSESSMENT_OUTCOME: (PurposeOfUse.COC, LegalBasis.CONSENT),
    EventCode.CARE_TRANSITION: (PurposeOfUse.COC, LegalBasis.CONSENT),
    EventCode.CAPACITY_REPORT: (PurposeOfUse.HOPERAT, LegalBasis.PUBLIC_TASK),
    EventCode.ESCALATION: (PurposeOfUse.ESCALATION, LegalBasis.PUBLIC_TASK),
    EventCode.ESCALATION_ANSWER: (PurposeOfUse.ESCALATION, LegalBasis.PUBLIC_TASK),
    # AVG art. 17/19: the sender's own duty to tell the recipients (docs/flows/correction.md)
    EventCode.WITHDRAWAL: (PurposeOfUse.COC, LegalBasis.LEGAL_OBLIGATION),
}
TASK_EVENTS = {
    ServiceCode.NATIONAL_ESCALATION.value: EventCode.ESCALATION,
    ServiceCode.ESCALATION_ANSWER.value: EventCode.ESCALATION_ANSWER,
}
ESCALATION_CITATION = "task-lcp-levensloopaanpak"
"""Escalations and answers travel on the approach's public task, with the case status only."""
# Plain resources: the data category each resource type travels in, per flow.
CATEGORIES = {
    EventCode.ASSESSMENT_OUTCOME: {
        "Task": DataCategory.CARE_EPISODE,
        "Patient": DataCategory.IDENTITY,
        "ClinicalImpression": DataCategory.RISK_ASSESSMENT,
        "EpisodeOfCare": DataCategory.CARE_EPISODE,
    },
    EventCode.CARE_TRANSITION: {
        "Encounter": DataCategory.CARE_EPISODE,
        "Patient": DataCategory.IDENTITY,
        "EpisodeOfCare": DataCategory.CARE_EPISODE,
        "Location": DataCategory.CARE_EPISODE,
    },
    EventCode.CAPACITY_REPORT: {"MeasureReport": DataCategory.AGGREGATE},
    EventCode.ESCALATION: {"Task": DataCategory.PROCESS},
    EventCode.ESCALATION_ANSWER: {"Task": DataCategory.PROCESS},
    EventCode.CLAIM: {
        "Claim": DataCategory.FINANCIAL,
        "Patient": DataCategory.IDENTITY,
        "Coverage": DataCategory.FINANCIAL,
        "Organization": DataCategory.FINANCIAL,
    },
    EventCode.WITHDRAWAL: {"Provenance": DataCategory.PROCESS},
}
FOCUS = {
    "ClinicalImpression": EventCode.ASSESSMENT_OUTCOME,
    "Encounter": EventCode.CARE_TRANSITION,
    "MeasureReport": EventCode.CAPACITY_REPORT,
    "Claim": EventCode.CLAIM,
    "Provenance": EventCode.WITHDRAWAL,
}


@dataclass(frozen=True)
class ClaimInput:
    """A claim the provider enters itself; the claims desk judges payer and regime."""

    claim_id: str
    zvh: str
    case_id: str
    service: ClaimService
    period_start: date
    period_end: date
    quantity: int
    unit_price_cents: int
    payer: str | None = None  # the payer party the EPD expected (FHIR input); checked
    allocation: str | None = None  # iWmo WMO301 ToewijzingNummer the claim is for


@dataclass
class Submission:
    """One thing to send: the business model and how it travels."""

    event: EventCode
    model: Any  # AssessmentOutcome | CareTransition | CapacityReport | ClaimInput
    purpose: PurposeOfUse | None = None
    basis: LegalBasis | None = None
    detail: BasisDetail | None = None
    destinations: tuple[str, ...] = ()
    coverage: Coverage | None = None
    message_id: str | None = None  # kept from a message Bundle the EPD built
    refers_to: str | None = None  # a correction: the original's message id (follow-up-of)
    acting_person: str | None = None  # who decided at the provider (schemas.acting): NEN 7513
    where: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def flow(self) -> FlowSpec:
        return BY_EVENT[self.event]


Items = list[tuple[str, Submission | MessageError]]


# --- CSV ----------------------------------------------------------------------------------------


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Basis(_Row):
    purpose: PurposeOfUse | None = None
    basis: LegalBasis | None = None
    basis_citation: str | None = None
    basis_justification: str | None = None
    basis_decided_by: str | None = None
    basis_valid_until: date | None = None  # conflict of duties: last day covered
    # the professional who took the decision the row reports, by identifier (schemas.acting):
    # MessageHeader.author, the NEN 7513 user of the router's audit records
    decided_by: ActingPerson | None = None

    def detail(self) -> BasisDetail | None:
        if not (self.basis_citation or self.basis_justification or self.basis_decided_by
                or self.basis_valid_until):  # fmt: skip
            return None
        return BasisDetail(self.basis_citation, self.basis_justification, self.basis_decided_by,
                           self.basis_valid_until)  # fmt: skip


class _PersonCols(_Row):
    bsn: str
    family_name: str
    given_names: str | None = None
    birth_date: IsoDate
    gender: Gender = Gender.UNKNOWN
    municipality: str | None = None
    homeless: str | None = None


class AssessmentRow(_Basis, _PersonCols):
    assessment_id: str
    zvh: str
    case_id: str
    assessed_on: IsoDate
    decision: AssessmentDecision
    dangerous_behaviour: CriterionResult
    multi_problem: CriterionResult
    structure_need: CriterionResult
    legal_title: CriterionResult
    reasons: str
    alternative: AdvisedAlternative | None = None
    alternative_note: str | None = None
    inclusion_date: IsoDate | None = None
    episode_id: str | None = None
    insurer_uzovi: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    wlz_care_office: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    # financing facts: the municipality that placed the person; the WMO301 ToewijzingNummer
    municipal_placement: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    wmo_allocation: str | None = Field(default=None, pattern=r"^[0-9]{1,9}$")
    # iWlz: the care office's allocation (AW33) and the start of care reported (AW35)
    wlz_allocation: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{1,20}$")
    wlz_care_start: IsoDate | None = None
    # the ToewijzingNummer of the WMO301 allocation the provider received (Wmo claims)
    allocation: str | None = Field(default=None, pattern=r"^[0-9]{1,9}$")


class TransitionRow(_Basis, _PersonCols):
    transition_id: str
    episode_id: str
    kind: TransitionKind
    effective_on: IsoDate
    provider: str | None = None
    previous_provider: str | None = None
    security_level: SecurityLevel
    previous_level: SecurityLevel | None = None
    location_id: str | None = None
    location_name: str | None = None
    reason: str | None = None
    notify: str | None = None


class CapacityRow(_Row):
    report_id: str
    location_id: str
    region: str | None = None
    measured_at: datetime
    level_2_in_service: int | None = None
    level_2_occupied: int | None = None
    level_2_available: int | None = None
    level_3_in_service: int | None = None
    level_3_occupied: int | None = None
    level_3_available: int | None = None
    level_4_in_service: int | None = None
    level_4_occupied: int | None = None
    level_4_available: int | None = None


class ClaimRow(_Row):
    claim_id: str = Field(pattern=r"^[A-Za-z0-9\-\._]{1,64}$")
    zvh: str
    case_id: str
    service: ClaimService
    period_start: IsoDate
    period_end: IsoDate
    quantity: int = Field(ge=1, le=100_000)
    unit_price_cents: int = Field(ge=0, le=10**13)
    insurer_uzovi: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    wlz_care_office: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    # financing facts: the municipality that placed the person; the WMO301 ToewijzingNummer
    municipal_placement: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    wmo_allocation: str | None = Field(default=None, pattern=r"^[0-9]{1,9}$")
    # iWlz: the care office's allocation (AW33) and the start of care reported (AW35)
    wlz_allocation: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{1,20}$")
    wlz_care_start: IsoDate | None = None
    # the ToewijzingNummer of the WMO301 allocation the provider received (Wmo claims)
    allocation: str | None = Field(default=None, pattern=r"^[0-9]{1,9}$")


def _coverage(r: AssessmentRow | ClaimRow) -> Coverage | None:
    """The financing facts of a row (not sent in any message), if it gives any."""
    if not (
        r.insurer_uzovi
        or r.wlz_care_office
        or r.municipal_placement
        or r.wmo_allocation
        or r.wlz_allocation
        or r.wlz_care_start
    ):
        return None
    return Coverage(
        health_insurer=r.insurer_uzovi,
        care_office=r.wlz_care_office,
        municipal_placement=r.municipal_placement,
        wmo_allocation=r.wmo_allocation,
        wlz_allocation=r.wlz_allocation,
        wlz_care_start=r.wlz_care_start,
    )


def _columns(model: type[BaseModel]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    fields = model.model_fields
    required = tuple(n for n, f in fields.items() if f.is_required())
    return required, tuple(fields)


def _model(line: int, cls: type[Any], data: dict[str, Any]) -> Any:
    """Build a flow model; a rule it breaks names the line and the column."""
    try:
        return cls(**data)
    except ValidationError as err:
        paths = {k: f"line {line}: {k}" for k in data}
        paths |= {"referral_id": f"line {line}: case_id", "person": f"line {line}: bsn"}
        raise MessageError(issues_at(err, paths, f"line {line}")) from None


def _person(line: int, r: _PersonCols) -> Person:
    try:
        homeless = to_bool(r.homeless)
    except ValueError as err:
        raise MessageError([Issue(f"line {line}: homeless", "value", str(err), "value")]) from None
    data = {
        "bsn": r.bsn,
        "family_name": r.family_name,
        "given_names": tuple(split_list(r.given_names)),
        "birth_date": r.birth_date,
        "gender": r.gender,
        "residence_municipality": r.municipality,
        "homeless": homeless,
    }
    try:
        return Person(**data)
    except ValidationError as err:
        paths = {k: f"line {line}: {k}" for k in data}
        paths["residence_municipality"] = f"line {line}: municipality"
        raise MessageError(issues_at(err, paths, f"line {line}")) from None


def _assessment(sender: str, line: int, row: dict[str, str]) -> Submission:
    r: AssessmentRow = parse_row(line, AssessmentRow, row)
    results = {
        InclusionCriterion.DANGEROUS_BEHAVIOUR: r.dangerous_behaviour,
        InclusionCriterion.MULTI_PROBLEM: r.multi_problem,
        InclusionCriterion.STRUCTURE_NEED: r.structure_need,
        InclusionCriterion.LEGAL_TITLE: r.legal_title,
    }
    outcome = _model(
        line,
        AssessmentOutcome,
        {
            "assessment_id": r.assessment_id,
            "zvh": r.zvh,
            "referral_id": r.case_id,
            "provider": sender,
            "assessed_on": r.assessed_on,
            "person": _person(line, r),
            "decision": r.decision,
            "criteria": tuple(
                CriterionAssessment(criterion=c, result=v) for c, v in results.items()
            ),
            "reasons": r.reasons,
            "alternative": r.alternative,
            "alternative_note": r.alternative_note,
            "inclusion_date": r.inclusion_date,
            "episode_id": r.episode_id,
        },
    )
    coverage = _coverage(r)
    return Submission(
        EventCode.ASSESSMENT_OUTCOME,
        outcome,
        r.purpose,
        r.basis,
        r.detail(),
        coverage=coverage,
        acting_person=r.decided_by,
        where=f"line {line}",
    )


def _transition(sender: str, line: int, row: dict[str, str]) -> Submission:
    r: TransitionRow = parse_row(line, TransitionRow, row)
    data = {
        "transition_id": r.transition_id,
        "episode_id": r.episode_id,
        "kind": r.kind,
        "effective_on": r.effective_on,
        "person": _person(line, r),
        "provider": r.provider or sender,
        "previous_provider": r.previous_provider,
        "security_level": r.security_level,
        "previous_level": r.previous_level,
        "location_id": r.location_id,
        "location_name": r.location_name,
        "reason": r.reason,
    }
    return Submission(
        EventCode.CARE_TRANSITION,
        _model(line, CareTransition, data),
        r.purpose,
        r.basis,
        r.detail(),
        destinations=tuple(split_list(r.notify)),
        acting_person=r.decided_by,
        where=f"line {line}",
    )


def _capacity(sender: str, line: int, row: dict[str, str]) -> Submission:
    r: CapacityRow = parse_row(line, CapacityRow, row)
    levels = []
    for n, level in (
        (2, SecurityLevel.LEVEL_2),
        (3, SecurityLevel.LEVEL_3),
        (4, SecurityLevel.LEVEL_4),
    ):
        counts = [getattr(r, f"level_{n}_{k}") for k in ("in_service", "occupied", "available")]
        if all(c is None for c in counts):
            continue
        if any(c is None for c in counts):
            raise MessageError(
                [Issue(f"line {line}: level_{n}", "required", "give all three counts", "required")]
            )
        try:
            levels.append(
                LevelCapacity(
                    security_level=level,
                    in_service=counts[0],
                    occupied=counts[1],
                    available=counts[2],
                )
            )
        except ValidationError as err:
            raise MessageError(issues_at(err, {}, f"line {line}: level_{n}_in_service")) from None
    data = {
        "report_id": r.report_id,
        "provider": sender,
        "location_id": r.location_id,
        "region": r.region,
        "measured_at": r.measured_at,
        "levels": tuple(levels),
    }
    return Submission(
        EventCode.CAPACITY_REPORT, _model(line, CapacityReport, data), where=f"line {line}"
    )


def _claim(sender: str, line: int, row: dict[str, str]) -> Submission:
    r: ClaimRow = parse_row(line, ClaimRow, row)
    if r.period_end < r.period_start:
        raise MessageError(
            [Issue(f"line {line}: period_end", "value", "is before period_start", "period")]
        )
    coverage = _coverage(r)
    return Submission(
        EventCode.CLAIM,
        ClaimInput(
            r.claim_id,
            r.zvh,
            r.case_id,
            r.service,
            r.period_start,
            r.period_end,
            r.quantity,
            r.unit_price_cents,
            allocation=r.allocation,
        ),
        coverage=coverage,
        where=f"line {line}",
    )


class EscalationRow(_Row):
    escalation_id: str
    zvh: str
    case_id: str
    reason: EscalationReason
    stuck_since: IsoDate
    security_level: SecurityLevel | None = None
    explanation: str | None = None
    level: EscalationLevel = EscalationLevel.REGIONAL
    episode_id: str | None = None


class AnswerRow(_Row):
    answer_id: str
    escalation_id: str
    raised_by: str
    zvh: str
    case_id: str
    action: EscalationAction
    assignee: str | None = None
    note: str | None = None


def _escalation(sender: str, line: int, row: dict[str, str]) -> Submission:
    """A stuck case the provider raises (docs/adapters/provider.md), in its own name."""
    r: EscalationRow = parse_row(line, EscalationRow, row)
    esc = _model(
        line,
        Escalation,
        {
            "escalation_id": r.escalation_id,
            "raised_by": sender,
            "raised_at": datetime.now(UTC),
            "zvh": r.zvh,
            "referral_id": r.case_id,
            "reason": r.reason,
            "stuck_since": r.stuck_since,
            "security_level": r.security_level,
            "explanation": r.explanation,
            "level": r.level,
            "episode_id": r.episode_id,
        },
    )
    detail = BasisDetail(citation=ESCALATION_CITATION)
    return Submission(EventCode.ESCALATION, esc, detail=detail, where=f"line {line}")


def _answer(sender: str, line: int, row: dict[str, str]) -> Submission:
    """The provider's answer as its region's escalation step."""
    r: AnswerRow = parse_row(line, AnswerRow, row)
    answer = _model(
        line,
        EscalationAnswer,
        {
            "answer_id": r.answer_id,
            "escalation_id": r.escalation_id,
            "raised_by": r.raised_by,
            "answered_by": sender,
            "answered_at": datetime.now(UTC),
            "zvh": r.zvh,
            "referral_id": r.case_id,
            "action": r.action,
            "level": EscalationLevel.REGIONAL,
            "assignee": r.assignee,
            "note": r.note,
        },
    )
    detail = BasisDetail(citation=ESCALATION_CITATION)
    return Submission(EventCode.ESCALATION_ANSWER, answer, detail=detail, where=f"line {line}")


CSV_KINDS: dict[str, tuple[type[BaseModel], Any]] = {
    "assessment_id": (AssessmentRow, _assessment),
    "transition_id": (TransitionRow, _transition),
    "report_id": (CapacityRow, _capacity),
    "claim_id": (ClaimRow, _claim),
    "escalation_id": (EscalationRow, _escalation),
    "answer_id": (AnswerRow, _answer),
}


def parse_csv(raw: bytes, sender: str, limits: InputLimits = DEFAULT_LIMITS) -> Items:
    """A CSV file of one flow, recognised by its id column. The text is judged first (size,
    UTF-8, empty, binary: the same refusals as every CSV inbox), then the header."""
    head = decode_text(raw, limits)[:4000].splitlines()[:1]
    columns = {c.strip() for c in (head[0].replace(",", ";").split(";") if head else [])}
    kinds = [k for k in CSV_KINDS if k in columns]
    if kinds == ["escalation_id", "answer_id"]:  # an answer names its escalation too
        kinds = ["answer_id"]
    if len(kinds) != 1:
        raise MessageError(
            [
                Issue(
                    "line 1",
                    "structure",
                    "the header names no flow: give exactly one of assessment_id, "
                    "transition_id, report_id, claim_id, escalation_id, answer_id",
                    "no-flow",
                )
            ]
        )
    model, build = CSV_KINDS[kinds[0]]
    required, allowed = _columns(model)
    rows = read_rows(raw, required, allowed, limits)
    return [
        (f"line {line}", item) for line, item in each(rows, lambda n, row: build(sender, n, row))
    ]


# --- FHIR JSON ----------------------------------------------------------------------------------


def _event_of(resources: list[dict[str, Any]], where: str) -> EventCode:
    types = {r.get("resourceType") for r in resources}
    events = {FOCUS[t] for t in types if t in FOCUS}
    if not events and types == {"Task"}:  # an escalation or an answer, told by Task.code
        codes = {
            c.get("code")
            for r in resources
            for c in (
                (r.get("code") or {}).get("coding") or [] if isinstance(r.get("code"), dict) else []
            )
            if isinstance(c, dict)
        }
        events = {TASK_EVENTS[c] for c in codes if c in TASK_EVENTS}
    if len(events) != 1:
        raise MessageError(
            [
                Issue(
                    where,
                    "structure",
                    "cannot tell the flow: give exactly one of ClinicalImpression (assessment "
                    "outcome), Encounter (care transition), MeasureReport (capacity), Claim, "
                    "a Task coded national-escalation or escalation-answer, "
                    "Provenance (withdrawal)",
                    "no-flow",
                )
            ]
        )
    return events.pop()


def _wrap(resources: list[dict[str, Any]], sender: str, where: str) -> Submission:
    """Plain resources → a provisional message → the flow's business model."""
    for i, r in enumerate(resources):
        if not isinstance(r.get("resourceType"), str):
            raise MessageError(
                [Issue(f"{where}[{i}]", "structure", "a resource names no resourceType", "fhir")]
            )
    event = _event_of(resources, where)
    cats = CATEGORIES[event]
    entries = []
    for i, r in enumerate(resources):
        rtype = r.get("resourceType")
        if rtype not in cats:
            raise MessageError(
                [Issue(f"{where}[{i}]", "structure", f"{rtype} is not part of {event}", "resource")]
            )
        rmeta = r.get("meta", {})
        security = rmeta.get("security", []) if isinstance(rmeta, dict) else None
        if not isinstance(security, list) or not all(isinstance(c, dict) for c in security):
            # the category tag is added to meta.security below: it must be FHIR's shape
            raise MessageError(
                [Issue(f"{where}[{i}].meta", "structure", "meta is not a FHIR Meta", "fhir")]
            )
        entries.append((dict(r), cats[rtype]))
    purpose, basis = DEFAULT_PURPOSE.get(event, (PurposeOfUse.HPAYMT, LegalBasis.LEGAL_OBLIGATION))
    detail = (
        BasisDetail(citation=ESCALATION_CITATION)
        if event in (EventCode.ESCALATION, EventCode.ESCALATION_ANSWER)
        else None
    )
    meta = MessageMeta.new(event, sender, purpose, basis, basis_detail=detail)
    bundle = build_message(meta, entries)
    validate_fhir(bundle)  # plain resources get the same full check as a message Bundle
    from schemas.messaging import ParsedMessage

    msg = ParsedMessage(bundle, read_meta(bundle))
    model = BY_EVENT[event].from_message(msg)
    if event in (EventCode.ESCALATION, EventCode.ESCALATION_ANSWER):
        return _submission(event, model, where, detail=BasisDetail(citation=ESCALATION_CITATION))
    _own_withdrawal(model, sender, where)
    return _submission(event, model, where)


def _own_withdrawal(model: Any, sender: str, where: str) -> None:
    """A provider withdraws only its own messages (the router checks that too)."""
    if isinstance(model, Withdrawal) and model.withdrawn_by != sender:
        raise MessageError(
            [
                Issue(
                    f"{where}: Provenance.agent",
                    "value",
                    f"a withdrawal is made by its sender, {sender}",
                    "sender",
                )
            ]
        )


def _submission(event: EventCode, model: Any, where: str, **kw: Any) -> Submission:
    if isinstance(model, Claim):
        claim = model
        if claim.zvh is None or claim.referral_id is None:
            raise MessageError(
                [Issue(f"{where}: Claim.referral", "required", "a claim names its case", "case")]
            )
        model = ClaimInput(
            claim.claim_id,
            claim.zvh,
            claim.referral_id,
            claim.service,
            claim.period_start,
            claim.period_end,
            claim.quantity,
            claim.unit_price_cents,
            payer=claim.payer.party_id,
            allocation=claim.allocation,
        )
    return Submission(event, model, where=where, **kw)


def _message(bundle: dict[str, Any], sender: str, where: str) -> Submission:
    raw = json.dumps(bundle).encode()
    msg = parse_message(raw, full=True)
    m = msg.meta
    if m.sender != sender:
        raise MessageError(
            [Issue(f"{where}: MessageHeader.source", "value", f"sender must be {sender}", "sender")]
        )
    if m.event not in CATEGORIES:
        raise MessageError(
            [
                Issue(
                    f"{where}: MessageHeader.eventCoding",
                    "value",
                    f"a provider does not send {m.event.value}",
                    "event",
                )
            ]
        )
    model = BY_EVENT[m.event].from_message(msg)
    _own_withdrawal(model, sender, where)
    return _submission(
        m.event,
        model,
        where,
        purpose=m.purpose,
        basis=m.legal_basis,
        detail=m.basis_detail,
        destinations=m.destinations,
        message_id=m.message_id,
        refers_to=m.refers_to,
        acting_person=m.author,  # the EPD's MessageHeader.author
    )


def _item(data: Any, sender: str, where: str) -> Submission:
    if not isinstance(data, dict):
        raise MessageError(
            [Issue(where, "structure", "an item must be a JSON object", "structure")]
        )
    if data.get("resourceType") == "Bundle" and data.get("type") == "message":
        return _message(data, sender, where)
    if data.get("resourceType") == "Bundle" and data.get("type") == "collection":
        entries = data.get("entry")
        resources = (
            [e.get("resource") for e in entries if isinstance(e, dict)]
            if isinstance(entries, list)
            else []
        )
        if not resources or not all(isinstance(r, dict) for r in resources):
            raise MessageError([Issue(f"{where}.entry", "required", "no resources", "empty")])
        return _wrap([r for r in resources if isinstance(r, dict)], sender, where)
    if isinstance(data.get("resourceType"), str):
        return _wrap([data], sender, where)
    raise MessageError([Issue(where, "structure", "not a FHIR resource or Bundle", "not-fhir")])


def parse_json(raw: bytes, sender: str, limits: InputLimits = DEFAULT_LIMITS) -> Items:
    """A JSON file: one item (a message Bundle, a collection Bundle of plain resources, or one
    resource) or an array of items; the limits of docs/adapters/limits.md first."""
    data = read_json(raw, limits)
    if isinstance(data, list) and len(data) > limits.batch_items:
        raise too_many(len(data), limits.batch_items)
    batch = data if isinstance(data, list) else [data]
    out: Items = []
    for i, item in enumerate(batch):
        where = f"[{i}]" if isinstance(data, list) else "item"
        try:
            out.append((where, _item(item, sender, where)))
        except MessageError as err:
            out.append((where, err))
    return out
