"""Hypothesis strategies for every business model of ``schemas.flows``, plus JSON mutations.

Hypothesis profiles (select with ``KETENBUS_HYPOTHESIS_PROFILE``): ``schemas-ci`` (default,
50 examples), ``schemas-dev`` (10, for a quick loop) and ``schemas-thorough`` (500).
"""

from __future__ import annotations

import os
import re
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from schemas.errors import Issue
from schemas.flows.assessment import AssessmentOutcome, CriterionAssessment, adult_on
from schemas.flows.capacity import CapacityReport, LevelCapacity
from schemas.flows.claim import PAYER_IDENTIFIERS, Claim, ClaimResponse, Payer
from schemas.flows.common import Gender, Person
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.flows.escalation import Escalation
from schemas.flows.escalation_answer import EscalationAnswer
from schemas.flows.referral import LegalTitle, Referral
from schemas.flows.response import MessageResponse
from schemas.flows.transition import CareTransition
from schemas.flows.withdrawal import Withdrawal
from schemas.messaging import BasisDetail, MessageMeta, ResponseCode
from schemas.vocab import (
    AdvisedAlternative,
    AssessmentDecision,
    ClaimOutcome,
    ClaimRejectionReason,
    ClaimService,
    CriterionResult,
    DataCategory,
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    EventCode,
    FinancingRegime,
    InclusionCriterion,
    LegalBasis,
    LegalTitleKind,
    PartyRole,
    PurposeOfUse,
    RiskLevel,
    SecurityLevel,
    SignalSource,
    TransitionKind,
)
from schemas.vocab.transition import ON_LEAVE

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("schemas-ci", max_examples=50, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("schemas-dev", max_examples=10, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("schemas-thorough", max_examples=500, **_COMMON)  # type: ignore[arg-type]
PROFILE = settings.get_profile(os.environ.get("KETENBUS_HYPOTHESIS_PROFILE", "schemas-ci"))

# --- primitives -----------------------------------------------------------------------------------

_chars = st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\n\t ")
text = st.text(_chars, min_size=1, max_size=30).filter(lambda s: bool(s.strip()))
short_text = text
_word = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8).filter(
    lambda s: not any(c.isspace() for c in s)
)
code = st.lists(_word, min_size=1, max_size=3).map(" ".join).filter(lambda s: len(s) <= 64)
party_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}", fullmatch=True)
id_value = st.from_regex(r"[A-Za-z0-9\-\._]{1,20}", fullmatch=True)
fhir_id = st.from_regex(r"[A-Za-z0-9\-\.]{1,20}", fullmatch=True)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
TIMEZONES = [
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5, minutes=-30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=1, seconds=30)),  # not expressible in FHIR: written in UTC
]
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from(TIMEZONES),
)
cents = st.integers(min_value=0, max_value=10**13)


def _weighted(head: list[int]) -> int:
    return sum(d * w for d, w in zip(head, range(9, 1, -1), strict=True))


@st.composite
def bsns(draw: st.DrawFn) -> str:
    """A valid BSN: 8 random digits and the check digit that satisfies the 11-check."""
    head = draw(
        st.lists(st.integers(0, 9), min_size=8, max_size=8).filter(
            lambda h: any(h) and _weighted(h) % 11 != 10
        )
    )
    return "".join(map(str, head)) + str(_weighted(head) % 11)


digits = lambda n: st.text(string.digits, min_size=n, max_size=n)  # noqa: E731


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


# --- models ---------------------------------------------------------------------------------

persons = st.builds(
    Person,
    bsn=bsns(),
    family_name=short_text,
    given_names=st.lists(short_text, max_size=3).map(tuple),
    birth_date=dates,
    gender=st.sampled_from(Gender),
    residence_municipality=opt(digits(4)),
    homeless=st.booleans(),
    address_line=opt(short_text),
    postal_code=opt(short_text),
    city=opt(short_text),
)


@st.composite
def legal_titles(draw: st.DrawFn) -> LegalTitle:
    start = draw(dates)
    end = draw(opt(st.dates(min_value=start, max_value=date(2100, 12, 31))))
    return LegalTitle(kind=draw(st.sampled_from(LegalTitleKind)), start=start, end=end)


referrals = st.builds(
    Referral,
    referral_id=id_value,
    zvh=party_id,
    region=code,
    registered_on=dates,
    person=persons,
    signaller_name=text,
    signaller_source=st.sampled_from(SignalSource),
    signaller_party=opt(party_id),
    signal=text,
    risk_level=st.sampled_from(RiskLevel),
    risk_summary=opt(text),
    legal_titles=st.lists(legal_titles(), max_size=3).map(tuple),
    care_avoider=st.booleans(),
    assessor=opt(party_id),
)


@st.composite
def assessments(draw: st.DrawFn) -> AssessmentOutcome:
    decision = draw(st.sampled_from(AssessmentDecision))
    included = decision is AssessmentDecision.INCLUDED
    order = draw(st.permutations(list(InclusionCriterion)))
    criteria = tuple(
        CriterionAssessment(
            criterion=c,
            result=CriterionResult.MET if included else draw(st.sampled_from(CriterionResult)),
            note=draw(opt(text)),
        )
        for c in order
    )
    assessed_on = draw(dates)
    person = draw(persons)
    if included and not adult_on(person.birth_date, assessed_on):  # only adults are included
        assessed_on = max(assessed_on, date(1920, 1, 1))
        person = person.model_copy(update={"birth_date": date(1900, 1, 1)})
    return AssessmentOutcome(
        assessment_id=draw(id_value),
        zvh=draw(party_id),
        referral_id=draw(id_value),
        provider=draw(party_id),
        assessed_on=assessed_on,
        person=person,
        decision=decision,
        criteria=criteria,
        reasons=draw(text),
        alternative=None if included else draw(st.sampled_from(AdvisedAlternative)),
        alternative_note=None if included else draw(opt(text)),
        inclusion_date=draw(dates) if included else None,
        episode_id=draw(id_value) if included else None,
    )


_LEVELS = [
    SecurityLevel.AMBULANT,
    SecurityLevel.LEVEL_2,
    SecurityLevel.LEVEL_3,
    SecurityLevel.LEVEL_4,
]


@st.composite
def transitions(draw: st.DrawFn) -> CareTransition:
    kind = draw(st.sampled_from(TransitionKind))
    if kind in (TransitionKind.SCALE_UP, TransitionKind.SCALE_DOWN):
        low, high = sorted(draw(st.lists(st.integers(0, 3), min_size=2, max_size=2, unique=True)))
        before, level = (_LEVELS[low], _LEVELS[high])
        if kind is TransitionKind.SCALE_DOWN:
            before, level = level, before
    else:
        level = draw(st.sampled_from(_LEVELS))
        before = draw(opt(st.sampled_from(_LEVELS)))
    provider = draw(party_id)
    previous = draw(opt(party_id.filter(lambda p: p != provider)))
    if kind is TransitionKind.TRANSFER and previous is None:
        previous = provider + "-before"
    location = draw(id_value) if level is not SecurityLevel.AMBULANT else draw(opt(id_value))
    if kind in ON_LEAVE:  # away from care: no bed
        level, location = SecurityLevel.AMBULANT, None
    return CareTransition(
        transition_id=draw(id_value),
        episode_id=draw(id_value),
        kind=kind,
        effective_on=draw(dates),
        person=draw(persons),
        provider=provider,
        previous_provider=previous,
        security_level=level,
        previous_level=before,
        location_id=location,
        location_name=draw(opt(short_text)) if location else None,
        reason=draw(opt(text)),
    )


def _no_runs(s: str) -> bool:
    """No 8 or more digits in a row (capacity ids must not look like a BSN)."""
    return not re.search(r"[0-9]{8}", s)


@st.composite
def level_capacities(draw: st.DrawFn, level: SecurityLevel) -> LevelCapacity:
    in_service = draw(st.integers(0, 500))
    occupied = draw(st.integers(0, in_service))
    available = draw(st.integers(0, in_service - occupied))
    return LevelCapacity(
        security_level=level, in_service=in_service, occupied=occupied, available=available
    )


@st.composite
def capacity_reports(draw: st.DrawFn) -> CapacityReport:
    levels = draw(st.lists(st.sampled_from(_LEVELS[1:]), min_size=1, max_size=3, unique=True))
    return CapacityReport(
        report_id=draw(id_value.filter(_no_runs)),
        provider=draw(party_id.filter(_no_runs)),
        location_id=draw(id_value.filter(_no_runs)),
        region=draw(opt(code.filter(_no_runs))),
        measured_at=draw(aware),
        levels=tuple(draw(level_capacities(lv)) for lv in levels),
    )


@st.composite
def payers(draw: st.DrawFn) -> Payer:
    role = draw(st.sampled_from(sorted(PAYER_IDENTIFIERS)))
    size = {
        PartyRole.MUNICIPALITY: 4,
        PartyRole.HEALTH_INSURER: 4,
        PartyRole.CARE_OFFICE: 4,
        PartyRole.DJI: 20,
        PartyRole.VWS: 20,
    }[role]
    return Payer(party_id=draw(party_id), role=role, identifier=draw(digits(size)))


@st.composite
def claims(draw: st.DrawFn) -> Claim:
    service = draw(st.sampled_from(ClaimService))
    start = draw(dates.filter(lambda d: d < date(2100, 6, 1)))
    end = start + timedelta(days=draw(st.integers(0, 120)))
    if service is ClaimService.COORDINATION_DAY:
        quantity = (end - start).days + 1
    elif service is ClaimService.REGISTRATION:
        quantity = 1
    else:
        quantity = draw(st.integers(1, 100_000))
    unit = draw(st.integers(0, 10**13 // quantity))
    with_case = service is ClaimService.REGISTRATION or draw(st.booleans())
    return Claim(
        claim_id=draw(id_value),
        provider=draw(party_id),
        provider_agb=draw(opt(digits(8))),
        created=draw(dates),
        person=draw(persons),
        service=service,
        period_start=start,
        period_end=end,
        quantity=quantity,
        unit_price_cents=unit,
        amount_cents=unit * quantity,
        regime=draw(st.sampled_from(FinancingRegime)),
        payer=draw(payers()),
        zvh=draw(party_id) if with_case else None,
        referral_id=draw(id_value) if with_case else None,
        episode_id=draw(id_value)
        if service is ClaimService.COORDINATION_DAY
        else draw(opt(id_value)),
    )


@st.composite
def claim_responses(draw: st.DrawFn) -> ClaimResponse:
    outcome = draw(st.sampled_from(ClaimOutcome))
    rejected = outcome is ClaimOutcome.REJECTED
    paid = outcome in (ClaimOutcome.PAID, ClaimOutcome.ADVANCED)
    reason = draw(st.sampled_from(ClaimRejectionReason)) if rejected else None
    return ClaimResponse(
        response_id=draw(id_value),
        claim_id=draw(id_value),
        provider=draw(party_id),
        payer=draw(payers()),
        person_bsn=draw(bsns()),
        decided_on=draw(dates),
        outcome=outcome,
        approved_cents=None if rejected else draw(cents),
        paid_cents=draw(cents) if paid else None,
        paid_on=draw(dates) if paid else None,
        rejection_reason=reason,
        rejection_note=draw(opt(text)) if rejected else None,
    )


@st.composite
def consents(draw: st.DrawFn) -> ConsentRecord:
    grantor = draw(st.sampled_from(Grantor))
    recipients = tuple(draw(st.lists(party_id, max_size=3)))
    roles = tuple(draw(st.lists(st.sampled_from(PartyRole), max_size=3)))
    if not recipients and not roles:
        recipients = (draw(party_id),)
    start = draw(dates)
    return ConsentRecord(
        consent_id=draw(fhir_id),
        person_bsn=draw(bsns()),
        status=draw(st.sampled_from(ConsentStatus)),
        grantor=grantor,
        representative_name=draw(short_text) if grantor is Grantor.REPRESENTATIVE else None,
        recipients=recipients,
        recipient_roles=roles,
        purposes=tuple(draw(st.lists(st.sampled_from(PurposeOfUse), min_size=1, max_size=3))),
        categories=tuple(draw(st.lists(st.sampled_from(DataCategory), min_size=1, max_size=4))),
        period_start=start,
        period_end=draw(opt(st.dates(min_value=start, max_value=date(2100, 12, 31)))),
        recorded_at=draw(aware),
        recorded_by=draw(party_id),
        legal_basis=draw(st.sampled_from(LegalBasis)),
    )


@st.composite
def escalations(draw: st.DrawFn) -> Escalation:
    reason = draw(st.sampled_from(EscalationReason))
    raised = draw(aware)
    return Escalation(
        escalation_id=draw(id_value),
        raised_by=draw(party_id),
        raised_at=raised,
        zvh=draw(party_id),
        referral_id=draw(id_value),
        reason=reason,
        stuck_since=draw(st.dates(max_value=raised.astimezone(UTC).date())),
        explanation=draw(text) if reason is EscalationReason.OTHER else draw(opt(text)),
        episode_id=draw(opt(id_value)),
        claim_id=draw(opt(id_value)),
        person=draw(opt(persons)),
        security_level=draw(st.sampled_from(BED_LEVELS))
        if reason is EscalationReason.NO_BED
        else draw(opt(st.sampled_from(SecurityLevel))),
        level=draw(st.sampled_from(EscalationLevel)),
    )


BED_LEVELS = (SecurityLevel.LEVEL_2, SecurityLevel.LEVEL_3, SecurityLevel.LEVEL_4)


@st.composite
def escalation_answers(draw: st.DrawFn) -> EscalationAnswer:
    action = draw(st.sampled_from(EscalationAction))
    return EscalationAnswer(
        answer_id=draw(id_value),
        escalation_id=draw(id_value),
        raised_by=draw(party_id),
        answered_by=draw(party_id),
        answered_at=draw(aware),
        zvh=draw(party_id),
        referral_id=draw(id_value),
        action=action,
        level=draw(st.sampled_from(EscalationLevel)),
        assignee=draw(party_id) if action is EscalationAction.ASSIGN else draw(opt(party_id)),
        note=draw(text) if action is EscalationAction.REQUEST_INFO else draw(opt(text)),
    )


ISSUE_TYPES = (
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational",
)  # fmt: skip

issues = st.builds(
    Issue,
    path=st.just("") | text,
    code=st.sampled_from(ISSUE_TYPES),
    message=st.just("") | text,
    reason=opt(code.filter(lambda c: c != "no-details")),
)
responses = st.builds(
    MessageResponse,
    request_id=st.uuids().map(str),
    code=st.sampled_from(ResponseCode),
    issues=st.lists(issues, max_size=3).map(tuple),
)

withdrawals = st.builds(
    Withdrawal, original_id=st.uuids().map(str), withdrawn_by=party_id, withdrawn_at=aware
)

MODELS: dict[str, st.SearchStrategy[Any]] = {
    "referral": referrals,
    "assessment-outcome": assessments(),
    "care-transition": transitions(),
    "capacity-report": capacity_reports(),
    "claim": claims(),
    "claim-response": claim_responses(),
    "consent": consents(),
    "escalation": escalations(),
    "escalation-answer": escalation_answers(),
    "response": responses,
    "withdrawal": withdrawals,
}

basis_details = st.builds(
    BasisDetail, citation=opt(text), justification=opt(text), decided_by=opt(text)
).filter(lambda d: any((d.citation, d.justification, d.decided_by)))


def metas(event: EventCode) -> st.SearchStrategy[MessageMeta]:
    """Message metadata for a message of ``event`` (no response info)."""
    return st.builds(
        MessageMeta,
        message_id=st.uuids().map(str),
        event=st.just(event),
        sender=party_id,
        timestamp=aware,
        purpose=st.sampled_from(PurposeOfUse),
        legal_basis=st.sampled_from(LegalBasis),
        destinations=st.lists(party_id, max_size=3).map(tuple),
        basis_detail=opt(basis_details),
    )


# --- JSON mutations -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _slots(node: Any, out: list[tuple[Any, Any]]) -> None:
    """Every (container, key) pair in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((node, k))
            _slots(v, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            _slots(v, out)


def _strings(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            _strings(v, out)
    elif isinstance(node, list):
        for v in node:
            _strings(v, out)


@st.composite
def mutated(draw: st.DrawFn, bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with one to three random mutations: a value deleted, replaced by random JSON,
    by another string of the same message, a list element duplicated, or a key added."""
    import copy

    b = copy.deepcopy(bundle)
    for _ in range(draw(st.integers(1, 3))):
        slots: list[tuple[Any, Any]] = []
        _slots(b, slots)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        pool: list[str] = []
        _strings(b, pool)
        action = draw(st.sampled_from(["delete", "replace", "swap", "duplicate", "add", "empty"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(json_values)
        elif action == "swap" and pool:
            container[key] = draw(st.sampled_from(pool))
        elif action == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(container[key]))
        elif action == "add" and isinstance(container[key], dict):
            container[key][draw(st.text(max_size=8))] = draw(json_values)
        elif action == "empty":
            value = container[key]
            container[key] = type(value)() if isinstance(value, (str, list, dict)) else None
    return b
