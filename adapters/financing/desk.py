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
- an escalation for every claim unpaid for more than the watchdog's days, once per claim.

Ids are deterministic (claim ``REG-<case>`` / ``CO-<episode>-<from>-<to>``, escalation
``GAP-…`` / ``LATE-…``), so a replay after a restart derives the same work and nothing is
claimed or raised twice.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from adapters.financing.accrual import Episode, Segment, coordination_segments, gap_periods, runs
from adapters.financing.book import ClaimBook
from adapters.financing.payers import NoPayerParty, PayerDirectory
from adapters.financing.rules import Facts, Gap, RuleSet, Ruling, TitlePeriod
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


@dataclass
class CaseFile:
    zvh: str
    referral_id: str
    registered_on: date | None = None
    person: Person | None = None
    titles: tuple[TitlePeriod, ...] = ()
    assessment: AssessmentOutcome | None = None
    coverage: Coverage = Coverage()
    end: date | None = None  # end of this claimant's coordination (end of care, transfer out)


@dataclass(frozen=True)
class ClaimToSend:
    claim: Claim
    meta: MessageMeta


@dataclass(frozen=True)
class EscalationToRaise:
    escalation: Escalation
    meta: MessageMeta


@dataclass
class Work:
    claims: list[ClaimToSend] = field(default_factory=list)
    escalations: list[EscalationToRaise] = field(default_factory=list)


@dataclass
class ReferralFacts:
    zvh: str
    referral_id: str
    registered_on: date
    person: Person
    titles: tuple[TitlePeriod, ...]


def referral_facts(msg: ParsedMessage) -> ReferralFacts:
    """What the desk needs from a referral as delivered to a provider (minimised: no Task, so
    the ZVH comes from the case identifier's system). ``MessageError`` when unreadable."""
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
        person=person_from_patient(one(msg, "Patient").data),
        titles=tuple(titles),
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
        self.findings: list[str] = []
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
        if case.person is None:
            case.person = facts.person

    def assessment(self, outcome: AssessmentOutcome) -> None:
        case = self._case(outcome.zvh, outcome.referral_id)
        case.assessment = outcome
        case.person = outcome.person  # the provider's own, complete record of the person

    def coverage(self, zvh: str, referral_id: str, coverage: Coverage) -> None:
        self._case(zvh, referral_id).coverage = coverage

    def transition(self, t: CareTransition) -> None:
        case = self.case_of_episode(t.episode_id)
        if case is None:
            return
        if t.kind is TransitionKind.END:
            case.end = t.effective_on
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
                self.assessment(assessment_from_message(msg))
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
        )

    # --- what is due ----------------------------------------------------------------------

    def due(self, now: datetime) -> Work:
        """Claims and escalations due at ``now`` that were not made before."""
        today = now.astimezone(UTC).date()
        work = Work()
        for case in self.cases.values():
            a = case.assessment
            if a is None or a.provider != self.claimant or case.person is None:
                continue
            self._registration(case, a, now, work)
            if a.decision is AssessmentDecision.INCLUDED and a.inclusion_date and a.episode_id:
                episode = Episode(a.episode_id, a.inclusion_date, case.end)
                segments = coordination_segments(self.rules, episode, self.facts(case), today)
                self._coordination(case, episode, segments, now, work)
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
            return  # agreed prices come from the claimant's own claim input (claim_for)
        assert case.person is not None
        quantity = segment.days if d.service is ClaimService.COORDINATION_DAY else 1
        claim = Claim(
            claim_id=claim_id,
            provider=self.claimant,
            provider_agb=self.claimant_agb,
            created=now.astimezone(UTC).date(),
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
        )
        work.claims.append(ClaimToSend(claim, self.claim_meta(claim, d, now)))

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
        try:
            payer = self.directory.payer(d.payer_role, d.payer_identifier)
        except NoPayerParty as err:
            raise ValueError(str(err)) from None
        claim = Claim(
            claim_id=claim_id,
            provider=self.claimant,
            provider_agb=self.claimant_agb,
            created=now.astimezone(UTC).date(),
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
        )
        return ClaimToSend(claim, self.claim_meta(claim, d, now))

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
            stuck_since=min(since, now.astimezone(UTC).date()),
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
        today = now.astimezone(UTC).date()
        days = self.rules.overdue_after_days
        for entry in self.book.overdue(today, days):
            c = entry.claim
            case = self._case_of(c)
            text = (
                f"Claim {c.claim_id} ({c.service}, {c.amount_cents} cents to {c.payer.party_id}) "
                f"sent on {entry.sent_on.isoformat()} is unpaid after more than {days} days "
                f"(status {entry.status})."
            )
            if c.regime is FinancingRegime.VWS_EMERGENCY:
                em = self.rules.emergency
                text += f" Under {em.ref} VWS advances it."
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
            self._escalate(
                short_id("GAP", "REJ", c.claim_id),
                case,
                EscalationReason.NO_PAYER,
                c.period_start,
                f"Claim {c.claim_id} ({c.service}) was rejected by {c.payer.party_id}: "
                f"{last.rejection_reason.display}"
                + (f" ({last.rejection_note})" if last.rejection_note else "")
                + ". Nobody pays this service: a financing gap.",
                now,
                work,
                episode_id=c.episode_id,
                claim_id=c.claim_id,
            )


def explain(d: Ruling) -> ClaimExplanation:
    """The explanation a claim carries: rule, version, inputs and the judgement in words."""
    return ClaimExplanation(
        rule=d.rule,
        version=d.version,
        inputs=tuple(ExplanationInput(name=k, value=v[:200]) for k, v in d.inputs),
        text=d.text[:4000],
    )
