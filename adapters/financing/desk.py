"""The claims desk of one claimant (a provider): what it must claim, from whom, and what must be
escalated -- all derived from the messages it has seen, with time passed in by the caller.

It folds the case events (referrals delivered to the provider, its own assessment outcomes and
care transitions, coverage facts from its EPD) and the claim events (claims sent, the router's
responses, payers' answers, escalations raised). :meth:`ClaimsDesk.due` then returns what is
due on a date:

- a registration-phase claim for every assessed referral (included or not), judged on the
  assessment date, for the period from registration to decision;
- coordination days from the inclusion date, per calendar month once the month is over (or the
  episode ended), split where the rule or the payer changes;
- an escalation for every financing gap (no rule, no payer, a payer without a party, a
  rejection because nobody pays), once per gap;
- an escalation for every claim unpaid for more than the watchdog's days, once per claim;
- a *held* claim where a claim cannot go yet: the rule fixes no price (the 2022-2023
  registration phase the ministries cover), or a precondition of the payer's standard is not
  met (a Wmo claim without its WMO301 allocation); a claim held for an allocation longer than
  the rules file's ``holds`` days is escalated, once;
- a payer's refusal because another regime applies, while the VWS emergency rule runs (service
  and refusal date): a claim to VWS and an escalation to the coordination point (the
  bestuurlijk adviseur addresses the payer), instead of "nobody pays".

All dates are Dutch calendar dates (:func:`~adapters.financing.rules.dutch_date`).

Ids are deterministic (claim ``REG-<case>`` / ``CO-<episode>-<from>-<to>``, escalation
``GAP-…`` / ``LATE-…``), so a replay after a restart derives the same work and nothing is
claimed or raised twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from adapters.financing.accrual import Episode, Segment, coordination_segments, gap_periods, runs
from adapters.financing.book import ClaimBook
from adapters.financing.payers import NoPayerParty, PayerDirectory
from adapters.financing.rules import Facts, Gap, RuleSet, Ruling, TitlePeriod, dutch_date
from schemas.errors import MessageError
from schemas.flows.assessment import AssessmentOutcome, assessment_from_message
from schemas.flows.claim import (
    Claim,
    ClaimExplanation,
    ClaimResponse,
    ExplanationInput,
    claim_from_message,
    claim_response_from_message,
)
from schemas.flows.common import CASE_SYSTEM, Person, Src, one, person_from_patient
from schemas.flows.escalation import Escalation, escalation_from_message
from schemas.flows.referral import EXT_TITLE_PERIOD
from schemas.flows.response import response_from_message
from schemas.flows.transition import CareTransition, transition_from_message
from schemas.messaging import BasisDetail, MessageMeta, ParsedMessage, ResponseCode
from schemas.vocab import (
    AssessmentDecision,
    ClaimService,
    EscalationLevel,
    EscalationReason,
    EventCode,
    FinancingRegime,
    LegalBasis,
    LegalTitleKind,
    PurposeOfUse,
    SpecialException,
    TransitionKind,
)

ESCALATION_TASK = "Landelijk coördinatiepunt Levensloopaanpak"
_NS = uuid.UUID("6f0c5b8e-3f0e-5a8e-9a57-6b6574656e62")  # ketenbus claims (uuid5 namespace)

CaseKey = tuple[str, str]  # (zvh party, referral id)


def short_id(*parts: str) -> str:
    """An IdValue from readable parts; hashed when it would exceed 64 characters."""
    text = "-".join(parts)
    if len(text) <= 64:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return f"{parts[0]}-{digest}"


def message_id_for(claimant: str, kind: str, business_id: str) -> str:
    """The message id of a desk-made message: the same on every replay, so receivers and the
    router de-duplicate a re-send."""
    return str(uuid.uuid5(_NS, f"{claimant}/{kind}/{business_id}"))


@dataclass(frozen=True)
class Coverage:
    """Financing facts the provider's EPD knows about a person (not part of any FHIR flow)."""

    health_insurer: str | None = None  # UZOVI
    care_office: str | None = None  # zorgkantoor code when the person has a Wlz indication
    municipal_placement: str | None = None  # municipality that placed the person (code)
    # the ToewijzingNummer of the WMO301 the provider received from the person's municipality
    # of residence, as its EPD records it (one allocation for the case, open-ended)
    wmo_allocation: str | None = None
    # iWlz: the care office's allocation (AW33, its number) and the start of care the provider
    # reported (AW35, Melding aanvang zorg): a care office pays only after both
    wlz_allocation: str | None = None
    wlz_care_start: date | None = None


class ClaimHeld(ValueError):
    """The claim is made but held: a precondition of the payer's standard is not met yet (the
    desk sends it when it is, or escalates it when it stays unmet)."""


@dataclass(frozen=True)
class Allocation:
    """A payer's allocation the provider received: iWmo WMO301 (``ToewijzingNummer``) from a
    municipality, iWlz AW33 (allocation) / AW35 (start of care) for a care office, or DJI's FZ821
    placement decision. A claim to that payer waits for one covering its period, or (FZ821)
    cites it (docs/adapters/payers.md)."""

    kind: Literal["wmo301", "aw33", "aw35", "fz821"]
    number: str
    payer: str  # municipality code or care office UZOVI
    start: date
    end: date | None = None

    def covers(self, start: date, end: date) -> bool:
        return self.start <= start and (self.end is None or end <= self.end)


@dataclass(frozen=True)
class Precondition:
    """One allocation a payer's own message grants (iWmo WMO301; iWlz AW33, AW35), for one
    client, addressed to one provider: what the provider's inbox reads from such a file."""

    source: str  # the message: WMO301, AW33, AW35
    bsn: str
    receiver: str  # the provider's AGB code the message is addressed to
    allocation: Allocation


PreconditionReader = Callable[[bytes], list[Precondition]]
CareNoticeWriter = Callable[[CareTransition, Allocation, str, str], bytes | None]
"""Writes the provider's notice to a payer of a care transition (DJI: FZ823 start, FZ825 end)
under the placement it cites, the provider's AGB code and a message reference; None when the
transition needs none. Given by the application, like :data:`PreconditionReader`."""
"""Reads one payer message (``MessageError`` when it is not one); given to the provider adapter
by the application (the payer formats live in ``adapters.payer``, which it does not import)."""

HoldReason = Literal["no-price", "allocation", "wlz-allocation"]


@dataclass(frozen=True)
class HeldClaim:
    """A claim that cannot go yet: its rule fixes no price, or a precondition is unmet."""

    claim_id: str
    zvh: str
    referral_id: str
    reason: HoldReason
    since: date
    ruling: Ruling
    period_start: date
    period_end: date
    text: str
    pending: ClaimToSend | None = None  # a claim entered by the claimant, sent when released


@dataclass
class CaseFile:
    zvh: str
    referral_id: str
    registered_on: date | None = None
    titles: tuple[TitlePeriod, ...] = ()
    assessment: AssessmentOutcome | None = None
    coverage: Coverage = Coverage()
    end: date | None = None  # end of this claimant's coordination (end of care, transfer out)
    allocations: tuple[Allocation, ...] = ()
    detentions: list[tuple[date, date | None]] = field(default_factory=list)  # not claimed
    known: Person | None = field(default=None, repr=False)
    patient: dict[str, Any] | None = field(default=None, repr=False)  # the referral's, unread

    @property
    def person(self) -> Person | None:
        """The case's person: the provider's own record (its assessment), or the referral's
        Patient, read only when first needed. Most referrals the desk only has to remember
        until their assessment replaces the person, and reading the Patient at every delivery
        was about a sixth of the provider adapter's CPU per referral (issue 19). A Patient
        that cannot be read leaves the case without a person: nothing is claimed for it, as
        when the referral was ignored whole."""
        if self.patient is not None:
            patient, self.patient = self.patient, None
            with contextlib.suppress(MessageError):
                self.known = person_from_patient(patient)
        return self.known

    @person.setter
    def person(self, person: Person | None) -> None:
        self.known, self.patient = person, None

    @property
    def has_person(self) -> bool:
        """A person is known or waits to be read (without reading it)."""
        return self.known is not None or self.patient is not None


@dataclass(frozen=True)
class ClaimToSend:
    claim: Claim
    meta: MessageMeta


@dataclass(frozen=True)
class EscalationToRaise:
    escalation: Escalation
    meta: MessageMeta


@dataclass(frozen=True)
class NoticeToSend:
    """The inclusion notice for the payer that must act (issue 15 point 7): the inclusion
    decision with its reasons and criterion notes left out at the source; the router passes
    only identity and the care episode (date, decision) to a payer."""

    outcome: AssessmentOutcome
    meta: MessageMeta
    payer: str


NOTICE_REASONS = "Inclusion in the Levensloopaanpak: notice to the payer of coordination."
"""The reasons a payer's notice carries instead of the assessment's own (no clinical content)."""


@dataclass
class Work:
    claims: list[ClaimToSend] = field(default_factory=list)
    escalations: list[EscalationToRaise] = field(default_factory=list)
    notices: list[NoticeToSend] = field(default_factory=list)


@dataclass
class ReferralFacts:
    zvh: str
    referral_id: str
    registered_on: date
    person: Person | None  # None: read from ``patient`` when first needed (CaseFile.person)
    titles: tuple[TitlePeriod, ...]
    patient: dict[str, Any] | None = None


def referral_facts(msg: ParsedMessage) -> ReferralFacts:
    """What the desk needs from a referral as delivered to a provider (minimised: no Task, so
    the ZVH comes from the case identifier's system). ``MessageError`` when unreadable. The
    Patient is kept unread: the case reads it when it first needs the person."""
    sr = one(msg, "ServiceRequest")
    ident = sr.first("identifier")
    system = ident.string("system")
    if not system.startswith(CASE_SYSTEM + "/"):
        raise ident.error("system", "value", f"must be {CASE_SYSTEM}/<zvh>", "case")
    titles = []
    for b in msg.resources("Basic"):
        src = Src(b, "Basic")
        ext = src.extension(EXT_TITLE_PERIOD)
        if ext is None:
            continue
        p = ext.obj("valuePeriod")
        titles.append(
            TitlePeriod(src.code("code", LegalTitleKind), p.date("start"), p.opt_date("end"))
        )
    return ReferralFacts(
        zvh=system.removeprefix(CASE_SYSTEM + "/"),
        referral_id=ident.string("value"),
        registered_on=sr.date("authoredOn"),
        person=None,
        titles=tuple(titles),
        patient=one(msg, "Patient").data,
    )


class ClaimsDesk:
    def __init__(
        self,
        claimant: str,
        rules: RuleSet,
        directory: PayerDirectory,
        *,
        claimant_agb: str | None = None,
    ) -> None:
        self.claimant = claimant
        self.claimant_agb = claimant_agb
        self.rules = rules
        self.directory = directory
        self.cases: dict[CaseKey, CaseFile] = {}
        self.book = ClaimBook()
        self.raised: set[str] = set()
        self.notified: set[str] = set()  # episodes whose payer received the inclusion notice
        self.findings: list[str] = []
        self.held: dict[str, HeldClaim] = {}
        # allocations received as the payer's own message (WMO301, AW33, AW35 in the inbox),
        # by the client's BSN: they hold for every case of that person, whenever it arrives
        self.received: dict[str, tuple[Allocation, ...]] = {}
        self._seen: set[str] = set()

    # --- folding events -------------------------------------------------------------------

    def _case(self, zvh: str, referral_id: str) -> CaseFile:
        key = (zvh, referral_id)
        if key not in self.cases:
            self.cases[key] = CaseFile(zvh, referral_id)
        return self.cases[key]

    def _case_of(self, c: Claim) -> CaseFile:
        """The case a claim is for (desk claims always name it; a bare file otherwise)."""
        key = (c.zvh or "unknown", c.referral_id or c.claim_id)
        return self.cases.get(key) or CaseFile(*key)

    def case_of_episode(self, episode_id: str) -> CaseFile | None:
        for c in self.cases.values():
            if c.assessment is not None and c.assessment.episode_id == episode_id:
                return c
        return None

    def referral(self, facts: ReferralFacts) -> None:
        case = self._case(facts.zvh, facts.referral_id)
        case.registered_on = facts.registered_on
        case.titles = facts.titles
        if not case.has_person:
            if facts.person is not None:
                case.person = facts.person
            else:
                case.patient = facts.patient

    def assessment(self, outcome: AssessmentOutcome) -> None:
        case = self._case(outcome.zvh, outcome.referral_id)
        case.assessment = outcome
        case.person = outcome.person  # the provider's own, complete record of the person

    def coverage(self, zvh: str, referral_id: str, coverage: Coverage) -> None:
        self._case(zvh, referral_id).coverage = coverage

    def allocation(self, zvh: str, referral_id: str, allocation: Allocation) -> None:
        """A payer's allocation for the case (WMO301, AW33, AW35); idempotent."""
        case = self._case(zvh, referral_id)
        if allocation not in case.allocations:
            case.allocations = (*case.allocations, allocation)

    def received_allocation(self, bsn: str, allocation: Allocation) -> bool:
        """A payer's allocation message the provider received for a person (iWmo WMO301,
        iWlz AW33/AW35); idempotent. True when it is new. Held claims of that person whose
        precondition it meets go at the next :meth:`due`."""
        known = self.received.get(bsn, ())
        if allocation in known:
            return False
        self.received[bsn] = (*known, allocation)
        return True

    def _allocations(self, case: CaseFile) -> tuple[Allocation, ...]:
        """The case's allocations: entered for the case, and received for its person."""
        if case.person is None:
            return case.allocations
        return case.allocations + self.received.get(case.person.bsn, ())

    def transition(self, t: CareTransition) -> None:
        case = self.case_of_episode(t.episode_id)
        if case is None:
            return
        if t.kind is TransitionKind.END:
            case.end = t.effective_on
        elif t.kind is TransitionKind.DETENTION:
            if not case.detentions or case.detentions[-1][1] is not None:
                case.detentions.append((t.effective_on, None))
        elif t.kind is TransitionKind.DETENTION_END:
            if case.detentions and case.detentions[-1][1] is None:
                start = case.detentions[-1][0]
                case.detentions[-1] = (start, max(start, t.effective_on - timedelta(days=1)))
        elif (
            t.kind is TransitionKind.TRANSFER
            and t.previous_provider == self.claimant
            and t.provider != self.claimant
        ):
            case.end = t.effective_on - timedelta(days=1)  # the new provider claims from here

    def claim_sent(self, claim: Claim, message_id: str, on: date) -> None:
        self.book.sent(claim, message_id, on)

    def router_response(self, request_id: str, code: ResponseCode) -> None:
        self.book.router_response(request_id, code)

    def claim_response(self, resp: ClaimResponse) -> list[str]:
        findings = self.book.answer(resp)
        self.findings.extend(findings)
        return findings

    def escalation_raised(self, escalation_id: str) -> None:
        self.raised.add(escalation_id)

    def apply(self, msg: ParsedMessage, *, outgoing: bool) -> None:
        """Fold one message the claimant sent (``outgoing``) or received; idempotent. Messages
        the desk cannot read are ignored here (the adapter reports them where they arrive)."""
        m = msg.meta
        if m.message_id in self._seen:
            return
        try:
            if m.event is EventCode.REFERRAL and not outgoing:
                self.referral(referral_facts(msg))
            elif m.event is EventCode.ASSESSMENT_OUTCOME and outgoing:
                a = assessment_from_message(msg)
                if m.purpose is PurposeOfUse.HPAYMT:  # the payer's notice, not the decision
                    self.notified.add(a.episode_id or a.assessment_id)
                else:
                    self.assessment(a)
            elif m.event is EventCode.CARE_TRANSITION:
                self.transition(transition_from_message(msg))
            elif m.event is EventCode.CLAIM and outgoing:
                claim = claim_from_message(msg)
                self.claim_sent(claim, m.message_id, claim.created)  # the desk's clock
            elif m.event is EventCode.CLAIM_RESPONSE and not outgoing:
                self.claim_response(claim_response_from_message(msg))
            elif m.event is EventCode.RESPONSE and not outgoing:
                r = response_from_message(msg)
                self.router_response(r.request_id, r.code)
            elif m.event is EventCode.ESCALATION and outgoing:
                self.escalation_raised(escalation_from_message(msg).escalation_id)
        except MessageError:
            return
        self._seen.add(m.message_id)

    # --- facts and payers ---------------------------------------------------------------

    def facts(self, case: CaseFile) -> Facts:
        p = case.person
        return Facts(
            municipality=p.residence_municipality if p else None,
            homeless=p.homeless if p else False,
            zvh=case.zvh,
            zvh_municipality=self.directory.zvh_municipality(case.zvh),
            titles=case.titles,
            health_insurer=case.coverage.health_insurer,
            care_office=case.coverage.care_office,
            municipal_placement=case.coverage.municipal_placement,
        )

    # --- what is due ----------------------------------------------------------------------

    def due(self, now: datetime) -> Work:
        """Claims and escalations due at ``now`` that were not made before."""
        today = dutch_date(now)
        work = Work()
        for case in self.cases.values():
            a = case.assessment
            if a is None or a.provider != self.claimant or case.person is None:
                continue
            self._registration(case, a, now, work)
            if a.decision is AssessmentDecision.INCLUDED and a.inclusion_date and a.episode_id:
                episode = Episode(a.episode_id, a.inclusion_date, case.end, tuple(case.detentions))
                segments = coordination_segments(self.rules, episode, self.facts(case), today)
                self._coordination(case, episode, segments, now, work)
                self._notice(case, a, now, work)
        self._holds(now, work)
        self._watchdog(now, work)
        return work

    def _registration(
        self, case: CaseFile, a: AssessmentOutcome, now: datetime, work: Work
    ) -> None:
        claim_id = short_id("REG", case.referral_id)
        if claim_id in self.book or self._pending(work, claim_id):
            return
        start = case.registered_on or a.assessed_on
        outcome = self.rules.decide(ClaimService.REGISTRATION, a.assessed_on, self.facts(case))
        segment = Segment(min(start, a.assessed_on), a.assessed_on, outcome)
        self._claim_or_gap(case, claim_id, segment, None, now, work)

    def _coordination(
        self,
        case: CaseFile,
        episode: Episode,
        segments: list[Segment],
        now: datetime,
        work: Work,
    ) -> None:
        for s in segments:
            if isinstance(s.outcome, Gap):
                continue
            claim_id = short_id("CO", episode.episode_id, f"{s.start:%Y%m%d}", f"{s.end:%Y%m%d}")
            if claim_id not in self.book and not self._pending(work, claim_id):
                self._claim_or_gap(case, claim_id, s, episode.episode_id, now, work)
        for g in gap_periods(segments):
            self._gap(case, f"CO-{episode.episode_id}", g, episode.episode_id, now, work)

    def _notice(self, case: CaseFile, a: AssessmentOutcome, now: datetime, work: Work) -> None:
        """Tell the payer of client-bound coordination on the inclusion date that the person is
        included, once: its claims start from that date (implementation plan 2022: "vanaf
        moment van includeren ... 20 euro per dag"). No rule or no payer party on that date: no
        one must act, and the gap is escalated by the coordination claims."""
        if a.episode_id is None or a.inclusion_date is None or a.episode_id in self.notified:
            return
        d = self.rules.decide(ClaimService.COORDINATION_DAY, a.inclusion_date, self.facts(case))
        if isinstance(d, Gap):
            return
        try:
            payer = self.directory.payer(d.payer_role, d.payer_identifier)
        except NoPayerParty:
            return
        notice = a.model_copy(
            update={
                "reasons": NOTICE_REASONS,
                "criteria": tuple(c.model_copy(update={"note": None}) for c in a.criteria),
            }
        )
        # Zvw and Wlz carry no art. 9 exception of their own: an insurer and a care office
        # process health data on UAVG art. 30(3) (AVG art. 9(2)(h)), stated in the message.
        stated = (
            (SpecialException.CARE,)
            if d.regime in (FinancingRegime.ZVW, FinancingRegime.WLZ)
            else ()
        )
        meta = MessageMeta(
            message_id=message_id_for(self.claimant, "inclusion-notice", a.episode_id),
            event=EventCode.ASSESSMENT_OUTCOME,
            sender=self.claimant,
            timestamp=now.astimezone(UTC),
            purpose=PurposeOfUse.HPAYMT,
            legal_basis=d.basis,
            destinations=(payer.party_id,),
            basis_detail=BasisDetail(citation=d.citation, exceptions=stated),
        )
        work.notices.append(NoticeToSend(notice, meta, payer.party_id))

    @staticmethod
    def _pending(work: Work, claim_id: str) -> bool:
        return any(c.claim.claim_id == claim_id for c in work.claims)

    def _claim_or_gap(
        self,
        case: CaseFile,
        claim_id: str,
        segment: Segment,
        episode_id: str | None,
        now: datetime,
        work: Work,
    ) -> None:
        d = segment.outcome
        if isinstance(d, Gap):
            self._gap(case, claim_id, segment, episode_id, now, work)
            return
        try:
            payer = self.directory.payer(d.payer_role, d.payer_identifier)
        except NoPayerParty as err:
            gap = Gap(d.service, "no-payer", f"{d.text}; but {err}", d.inputs)
            gap_segment = Segment(segment.start, segment.end, gap)
            self._gap(case, claim_id, gap_segment, episode_id, now, work)
            return
        if d.price_cents is None:
            # No fixed price: for the registration 2022-2023 the ministries cover it with no
            # per-case tariff; the cost is attributed to them and held, never silently dropped.
            self._hold(case, claim_id, "no-price", segment, d, now, f"held: {d.text}")
            return
        allocation = self._allocation_for(case, d, segment.start, segment.end)
        if allocation is False:
            self._hold(
                case,
                claim_id,
                "allocation",
                segment,
                d,
                now,
                f"held: a Wmo declaration (iWmo WMO323) cites the municipality's allocation "
                f"(WMO301 ToewijzingNummer) for {segment.start}..{segment.end}, and none was "
                f"received for municipality {d.payer_identifier}; {d.text}",
            )
            return
        self.held.pop(claim_id, None)
        assert case.person is not None
        quantity = segment.days if d.service is ClaimService.COORDINATION_DAY else 1
        claim = Claim(
            claim_id=claim_id,
            provider=self.claimant,
            provider_agb=self.claimant_agb,
            created=dutch_date(now),
            person=case.person,
            service=d.service,
            period_start=segment.start,
            period_end=segment.end,
            quantity=quantity,
            unit_price_cents=d.price_cents,
            amount_cents=quantity * d.price_cents,
            regime=d.regime,
            payer=payer,
            zvh=case.zvh,
            referral_id=case.referral_id,
            episode_id=episode_id,
            explanation=explain(d),
            allocation=allocation if isinstance(allocation, str) else None,
        )
        work.claims.append(ClaimToSend(claim, self.claim_meta(claim, d, now)))

    def _wlz_ready(self, case: CaseFile, d: Ruling, start: date) -> str | None:
        """None when a care office may be claimed for a period from ``start``; else what is
        missing: its allocation (AW33) or the start of care (AW35) on or before ``start``."""
        from schemas.vocab import PartyRole

        if d.payer_role is not PartyRole.CARE_OFFICE:
            return None
        c = case.coverage
        allocations = self._allocations(case)
        aw33 = c.wlz_allocation is not None or any(
            a.kind == "aw33" and a.payer == d.payer_identifier for a in allocations
        )
        starts = [a.start for a in allocations if a.kind == "aw35"]
        if c.wlz_care_start is not None:
            starts.append(c.wlz_care_start)
        aw35 = any(s <= start for s in starts)
        missing = [
            n for n, ok in (("allocation (AW33)", aw33), ("start of care (AW35)", aw35)) if not ok
        ]
        return " and ".join(missing) or None

    def _allocation_for(self, case: CaseFile, d: Ruling, start: date, end: date) -> str | bool:
        """The WMO301 allocation number a municipality's claim cites; ``False`` when the claim
        needs one and none covers the period; ``True`` when the payer needs none."""
        from schemas.vocab import PartyRole

        if d.payer_role is PartyRole.DJI:
            # DJI's placement decision (FZ821), cited where the format has room (GDS801); a
            # claim to DJI does not wait for it (the EI form has no place for it)
            for a in self._allocations(case):
                if a.kind == "fz821" and a.start <= start and (a.end is None or start <= a.end):
                    return a.number
            return True
        if d.payer_role is not PartyRole.MUNICIPALITY:
            return True
        for a in self._allocations(case):
            if a.kind == "wmo301" and a.payer == d.payer_identifier and a.covers(start, end):
                return a.number
        if case.coverage.wmo_allocation is not None:
            return case.coverage.wmo_allocation
        return False

    def _hold(
        self,
        case: CaseFile,
        claim_id: str,
        reason: HoldReason,
        segment: Segment,
        d: Ruling,
        now: datetime,
        text: str,
    ) -> None:
        if claim_id in self.held:
            return
        self.held[claim_id] = HeldClaim(
            claim_id,
            case.zvh,
            case.referral_id,
            reason,
            dutch_date(now),
            d,
            segment.start,
            segment.end,
            text[:4000],
        )

    def _holds(self, now: datetime, work: Work) -> None:
        """Release an entered claim whose precondition is now met; escalate a claim held for an
        allocation longer than the rules file allows, once."""
        today = dutch_date(now)
        for claim_id, h in list(self.held.items()):
            if h.pending is None:
                continue
            if claim_id in self.book:
                del self.held[claim_id]  # sent before (a replay)
                continue
            case = self.cases.get((h.zvh, h.referral_id))
            if case is not None and self._wlz_ready(case, h.ruling, h.period_start) is None:
                del self.held[claim_id]
                work.claims.append(h.pending)
        for h in self.held.values():
            days = (
                self.rules.holds.wlz_escalate_after_days
                if h.reason == "wlz-allocation"
                else self.rules.holds.allocation_escalate_after_days
            )
            if h.reason == "no-price" or (today - h.since).days <= days:
                continue
            case = self.cases.get((h.zvh, h.referral_id)) or CaseFile(h.zvh, h.referral_id)
            self._escalate(
                short_id("HOLD", h.claim_id),
                case,
                EscalationReason.NO_PAYER,
                h.since,
                f"Claim {h.claim_id} ({h.ruling.service}) has been held since "
                f"{h.since.isoformat()}, more than {days} days: {h.text} "
                f"[holds: {self.rules.holds.cite.label()}]",
                now,
                work,
                claim_id=h.claim_id,
            )

    def claim_meta(self, claim: Claim, d: Ruling, now: datetime) -> MessageMeta:
        """The claim's message: to the payer, for payment, on the rule's basis and citation."""
        return MessageMeta(
            message_id=message_id_for(self.claimant, "claim", claim.claim_id),
            event=EventCode.CLAIM,
            sender=self.claimant,
            timestamp=now.astimezone(UTC),
            purpose=PurposeOfUse.HPAYMT,
            legal_basis=d.basis,
            destinations=(claim.payer.party_id,),
            basis_detail=BasisDetail(citation=d.citation),
        )

    def claim_for(
        self,
        zvh: str,
        referral_id: str,
        claim_id: str,
        service: ClaimService,
        start: date,
        end: date,
        quantity: int,
        unit_price_cents: int,
        now: datetime,
        *,
        allocation: str | None = None,
    ) -> ClaimToSend:
        """A claim the claimant enters itself (treatment, support): the rules choose the payer
        and regime for every day of the period; ``ValueError`` says why it cannot be made."""
        case = self.cases.get((zvh, referral_id))
        if case is None or case.person is None:
            raise ValueError(f"case {zvh}/{referral_id} is not known to the claims desk")
        if claim_id in self.book:
            raise ValueError(f"claim {claim_id} was already sent")
        segments = runs(self.rules, service, start, end, self.facts(case))
        if len(segments) != 1:
            raise ValueError(
                "the rule or payer changes within the period: split it at "
                + ", ".join(s.start.isoformat() for s in segments[1:])
            )
        d = segments[0].outcome
        if isinstance(d, Gap):
            raise ValueError(d.text)
        if d.price_cents is not None and d.price_cents != unit_price_cents:
            raise ValueError(
                f"rule {d.rule}@{d.version} fixes the unit price at {d.price_cents} cents"
            )
        if d.price_cents is None and d.service in (
            ClaimService.REGISTRATION,
            ClaimService.COORDINATION_DAY,
        ):
            raise ValueError(f"{d.rule}@{d.version} fixes no price: the desk holds this service")
        try:
            payer = self.directory.payer(d.payer_role, d.payer_identifier)
        except NoPayerParty as err:
            raise ValueError(str(err)) from None
        if allocation is None:
            found = self._allocation_for(case, d, start, end)
            if found is False:
                raise ValueError(
                    "a Wmo claim cites the municipality's allocation (iWmo WMO301 "
                    "ToewijzingNummer) it is for: give it in the allocation column"
                )
            allocation = found if isinstance(found, str) else None
        claim = Claim(
            claim_id=claim_id,
            provider=self.claimant,
            provider_agb=self.claimant_agb,
            created=dutch_date(now),
            person=case.person,
            service=service,
            period_start=start,
            period_end=end,
            quantity=quantity,
            unit_price_cents=unit_price_cents,
            amount_cents=quantity * unit_price_cents,
            regime=d.regime,
            payer=payer,
            zvh=zvh,
            referral_id=referral_id,
            episode_id=case.assessment.episode_id if case.assessment else None,
            explanation=explain(d),
            allocation=allocation,
        )
        send = ClaimToSend(claim, self.claim_meta(claim, d, now))
        missing = self._wlz_ready(case, d, start)
        if missing is not None:
            text = (
                f"held: care office {d.payer_identifier} pays only after its allocation (iWlz "
                f"AW33) and the provider's start-of-care notice (AW35); missing: {missing}"
            )
            if claim_id not in self.held:
                self.held[claim_id] = HeldClaim(
                    claim_id, zvh, referral_id, "wlz-allocation", dutch_date(now), d, start, end,
                    text, send,
                )  # fmt: skip
            raise ClaimHeld(text)
        return send

    # --- escalations ----------------------------------------------------------------------

    def _escalate(
        self,
        escalation_id: str,
        case: CaseFile,
        reason: EscalationReason,
        since: date,
        text: str,
        now: datetime,
        work: Work,
        *,
        episode_id: str | None = None,
        claim_id: str | None = None,
    ) -> None:
        if escalation_id in self.raised or any(
            e.escalation.escalation_id == escalation_id for e in work.escalations
        ):
            return
        esc = Escalation(
            escalation_id=escalation_id,
            raised_by=self.claimant,
            raised_at=now.astimezone(UTC),
            zvh=case.zvh,
            referral_id=case.referral_id,
            reason=reason,
            stuck_since=min(since, dutch_date(now)),
            explanation=text[:4000],
            episode_id=episode_id,
            claim_id=claim_id,
            # financing is settled nationally (the emergency rule is VWS's): on request, national
            level=EscalationLevel.NATIONAL,
        )
        meta = MessageMeta(
            message_id=message_id_for(self.claimant, "escalation", escalation_id),
            event=EventCode.ESCALATION,
            sender=self.claimant,
            timestamp=now.astimezone(UTC),
            purpose=PurposeOfUse.ESCALATION,
            legal_basis=LegalBasis.PUBLIC_TASK,
            basis_detail=BasisDetail(citation=ESCALATION_TASK),
        )
        work.escalations.append(EscalationToRaise(esc, meta))

    def _gap(
        self,
        case: CaseFile,
        what: str,
        segment: Segment,
        episode_id: str | None,
        now: datetime,
        work: Work,
    ) -> None:
        gap = segment.outcome
        assert isinstance(gap, Gap)
        period = f"{segment.start.isoformat()}..{segment.end.isoformat()}"
        self._escalate(
            short_id("GAP", what, f"{segment.start:%Y%m%d}"),
            case,
            EscalationReason.NO_PAYER,
            segment.start,
            f"Financing gap ({gap.reason}) for {gap.service}, service dates from {period}: "
            f"{gap.text}",
            now,
            work,
            episode_id=episode_id,
        )

    def _watchdog(self, now: datetime, work: Work) -> None:
        today = dutch_date(now)
        days = self.rules.overdue_after_days
        for entry in self.book.overdue(today, days):
            c = entry.claim
            case = self._case_of(c)
            text = (
                f"Claim {c.claim_id} ({c.service}, {c.amount_cents} cents to {c.payer.party_id}) "
                f"sent on {entry.sent_on.isoformat()} is unpaid after more than {days} days "
                f"(status {entry.status})."
            )
            text += f" [watchdog: {self.rules.doc.watchdog.cite.label()}]"
            if c.regime is FinancingRegime.VWS_EMERGENCY:
                em = self.rules.emergency
                text += f" Under {em.ref} VWS advances it [source: {em.cite.label()}]."
            self._escalate(
                short_id("LATE", c.claim_id),
                case,
                EscalationReason.PAYMENT_OVERDUE,
                entry.sent_on,
                text,
                now,
                work,
                episode_id=c.episode_id,
                claim_id=c.claim_id,
            )
        for entry in self.book.gap_rejections():
            c = entry.claim
            last = entry.last
            assert last is not None and last.rejection_reason is not None
            case = self._case_of(c)
            refusal = (
                f"Claim {c.claim_id} ({c.service}) was rejected by {c.payer.party_id}: "
                f"{last.rejection_reason.display}"
                + (f" ({last.rejection_note})" if last.rejection_note else "")
            )
            em = self.rules.emergency
            if (
                c.regime is not FinancingRegime.VWS_EMERGENCY
                and last.rejection_reason in em.refusals
                and em.applies(c.service, c.period_start)
                and em.covers(last.decided_on)
            ):
                self._emergency_claim(case, c, last.decided_on, refusal, now, work)
                continue
            source = c.explanation.text if c.explanation and c.explanation.text else ""
            self._escalate(
                short_id("GAP", "REJ", c.claim_id),
                case,
                EscalationReason.NO_PAYER,
                c.period_start,
                refusal
                + ". Nobody pays this service: a financing gap"
                + (
                    f"; the emergency rule {em.ref} does not apply (service "
                    f"{c.period_start.isoformat()}, refusal {last.decided_on.isoformat()}; "
                    f"{em.label()}) [source: {em.cite.label()}]"
                )
                + (f". The claim's rule: {source}" if source else "."),
                now,
                work,
                episode_id=c.episode_id,
                claim_id=c.claim_id,
            )

    def _emergency_claim(
        self,
        case: CaseFile,
        refused: Claim,
        decided_on: date,
        refusal: str,
        now: datetime,
        work: Work,
    ) -> None:
        """Another regime, says the payer: the regime is unclear, so under the emergency rule
        the claim goes to VWS and the coordination point's bestuurlijk adviseur addresses the
        payer (Kamerbrief VWS/JenV 6 Nov 2020)."""
        em = self.rules.emergency
        claim_id = short_id("EM", refused.claim_id)
        escalation_id = short_id("GAP", "REJ", refused.claim_id)
        d = self.rules.emergency_ruling(
            refused.service,
            refused.unit_price_cents,
            (
                ("refused-claim", refused.claim_id),
                ("refused-by", refused.payer.party_id),
                ("refused-on", decided_on.isoformat()),
            ),
            f"{refused.payer.party_id} (it refused: another regime)",
        )
        if claim_id not in self.book and not self._pending(work, claim_id):
            try:
                payer = self.directory.payer(d.payer_role, None)
            except NoPayerParty as err:
                payer = None
                refusal += f"; but {err}"
            if payer is not None:
                claim = refused.model_copy(
                    update={
                        "claim_id": claim_id,
                        "created": dutch_date(now),
                        "regime": FinancingRegime.VWS_EMERGENCY,
                        "payer": payer,
                        "explanation": explain(d),
                        "allocation": None,
                    }
                )
                work.claims.append(ClaimToSend(claim, self.claim_meta(claim, d, now)))
        self._escalate(
            escalation_id,
            case,
            EscalationReason.NO_PAYER,
            refused.period_start,
            f"{refusal}. The regime is unclear: under {em.ref} the claim goes to VWS as "
            f"{claim_id}, and the bestuurlijk adviseur must address {refused.payer.party_id} "
            f"about its responsibility [source: {em.cite.label()}].",
            now,
            work,
            episode_id=refused.episode_id,
            claim_id=refused.claim_id,
        )


def explain(d: Ruling) -> ClaimExplanation:
    """The explanation a claim carries: rule, version, inputs and the judgement in words."""
    return ClaimExplanation(
        rule=d.rule,
        version=d.version,
        inputs=tuple(ExplanationInput(name=k, value=v[:200]) for k, v in d.inputs)
        + ((ExplanationInput(name="source", value=d.source[:200]),) if d.source else ()),
        text=d.text[:4000],
    )
