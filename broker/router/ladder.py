"""The escalation ladder and the watchdogs as a pure fold over what the router routes: no
database, only the messages of the topics (``in.referral``, ``in.assessment-outcome``,
``in.care-transition``, ``in.escalation``) in the order the router sees them, with the router's
clock passed in.

Two uses share the fold. The pipeline asks it whether an escalation or an answer may pass (an
escalation for a case the router never routed a referral of, an answer from a party that was not
asked or to an escalation already resolved, are refused with a stable reason). The router
service asks it, on a tick, what is due (:meth:`Ladder.due`): an escalation the regional step let
age past ``regional_after`` moves to national; a watchdog raises an escalation once per case and
cause, and resolves it when the cause goes away. The web app folds the same state from the
national coordination point's deliveries (:func:`fold_states`).

The promises watched are the approach's own (the ministers' letter, seeds/004: a national
coordination point for cases that get stuck; the VNG letter, seeds/000: "een heldere
escalatieladder"): a referral without a decision, an inclusion without a start of care, care that
ends before two years of follow-up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.flows.escalation import Escalation, escalation_message
from schemas.flows.escalation_answer import EscalationAnswer, answer_message
from schemas.messaging import BasisDetail, MessageMeta
from schemas.vocab import (
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    EventCode,
    LegalBasis,
    PurposeOfUse,
    SecurityLevel,
)

CaseKey = tuple[str, str]  # (zvh party, referral id)
EscKey = tuple[str, str]  # (escalating party, escalation id)
FOLLOW_UP = timedelta(days=730)  # two years of follow-up (Levensloopaanpak)


class EscalationStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    INFO_REQUESTED = "info-requested"
    RESOLVED = "resolved"


_AFTER = {
    EscalationAction.ACKNOWLEDGE: EscalationStatus.ACKNOWLEDGED,
    EscalationAction.ASSIGN: EscalationStatus.ASSIGNED,
    EscalationAction.REQUEST_INFO: EscalationStatus.INFO_REQUESTED,
    EscalationAction.RESOLVE: EscalationStatus.RESOLVED,
}


class WatchCause(StrEnum):
    """What a watchdog watches; its escalation id is ``WD-<cause>-<case>``."""

    UNDECIDED = "undecided"
    NO_CARE_START = "no-care-start"
    NO_PLACEMENT = "no-placement"
    EARLY_END = "early-end"


WATCH_REASON = {
    WatchCause.UNDECIDED: EscalationReason.NO_DECISION,
    WatchCause.NO_CARE_START: EscalationReason.NO_CARE_START,
    WatchCause.NO_PLACEMENT: EscalationReason.NO_BED,
    WatchCause.EARLY_END: EscalationReason.EARLY_END,
}


@dataclass(frozen=True)
class LadderTimes:
    """Thresholds (``broker.config.Settings``: ``escalation_*`` and ``watchdog_*``)."""

    regional_after: timedelta
    undecided_after: timedelta
    no_care_start_after: timedelta
    no_placement_after: timedelta = timedelta(days=7)


@dataclass
class EscalationState:
    """One escalation as the topics tell it."""

    key: EscKey
    escalation: Escalation
    raised_seen: datetime  # when the router first routed it
    level: EscalationLevel
    status: EscalationStatus = EscalationStatus.OPEN
    regional_step: tuple[str, ...] = ()  # who was asked regionally
    national_since: datetime | None = None
    assignee: str | None = None
    history: list[tuple[datetime, str, str]] = field(default_factory=list)  # at, what, by

    @property
    def open(self) -> bool:
        return self.status is not EscalationStatus.RESOLVED

    def age(self, now: datetime) -> timedelta:
        return now - self.raised_seen


@dataclass
class CaseWatch:
    """What the watchdogs know of one case."""

    key: CaseKey
    referred_seen: datetime
    decided_seen: datetime | None = None
    included: bool = False
    episode_id: str | None = None
    inclusion_date: date | None = None
    care_started: bool = False
    ended_on: date | None = None
    bed_requested: tuple[datetime, SecurityLevel] | None = None  # scale-up without a location


@dataclass(frozen=True)
class MoveNational:
    state: EscalationState


@dataclass(frozen=True)
class Raise:
    case: CaseWatch
    cause: WatchCause
    escalation_id: str


@dataclass(frozen=True)
class Close:
    state: EscalationState
    why: str


Due = MoveNational | Raise | Close


def watchdog_id(cause: WatchCause, referral_id: str) -> str:
    """The one escalation id per case and cause (an IdValue: at most 64 characters)."""
    return f"WD-{cause.value}-{referral_id}"[:64]


class Refused(Exception):
    """An escalation or answer the ladder refuses; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


@dataclass
class Ladder:
    """The fold. ``router`` is the router's party id (its watchdogs raise under it)."""

    router: str = "router"
    cases: dict[CaseKey, CaseWatch] = field(default_factory=dict)
    escalations: dict[EscKey, EscalationState] = field(default_factory=dict)
    _episodes: dict[str, CaseKey] = field(default_factory=dict)
    # What changed, as plain JSON events for the router's ladder log (the ``escalation`` topic),
    # from which a restarted router folds the same state again (:meth:`replay`).
    journal: list[dict[str, Any]] = field(default_factory=list)
    _replaying: bool = False

    def _log(self, event: dict[str, Any]) -> None:
        if not self._replaying:
            self.journal.append(event)

    def drain(self) -> list[dict[str, Any]]:
        out, self.journal = self.journal, []
        return out

    def replay(self, event: dict[str, Any]) -> None:
        """Apply one ladder-log event (``KeyError``/``ValueError`` on a malformed one)."""
        self._replaying = True
        try:
            kind, at = event["k"], datetime.fromisoformat(event["at"])
            if kind == "referral":
                self.referral(event["zvh"], event["case"], at)
            elif kind == "assessment":
                inc = event["inclusion"]
                self.assessment(
                    event["zvh"],
                    event["case"],
                    event["included"],
                    event["episode"],
                    date.fromisoformat(inc) if inc else None,
                    at,
                )
            elif kind == "transition":
                end = event["end"]
                bed = event.get("bed")
                self.transition(
                    event["episode"],
                    event["start"],
                    date.fromisoformat(end) if end else None,
                    bed=SecurityLevel(bed) if bed else None,
                    placed=bool(event.get("placed")),
                    at=at,
                )
            elif kind == "escalated":
                e = Escalation.model_validate(event["e"])
                self.escalated((event["key"][0], event["key"][1]), e, at, event["asked"])
            elif kind == "answered":
                a = EscalationAnswer.model_validate(event["a"])
                state = self.escalations.get((a.raised_by, a.escalation_id))
                if state is not None:
                    self.answered(state, a, at)
        finally:
            self._replaying = False

    # --- the case events the watchdogs fold ------------------------------------------------

    def referral(self, zvh: str, referral_id: str, at: datetime) -> None:
        if (zvh, referral_id) not in self.cases:
            self.cases[(zvh, referral_id)] = CaseWatch((zvh, referral_id), at)
            self._log({"k": "referral", "zvh": zvh, "case": referral_id, "at": at.isoformat()})

    def assessment(
        self,
        zvh: str,
        referral_id: str,
        included: bool,
        episode_id: str | None,
        inclusion_date: date | None,
        at: datetime,
    ) -> None:
        case = self.cases.setdefault((zvh, referral_id), CaseWatch((zvh, referral_id), at))
        self._log(
            {
                "k": "assessment",
                "zvh": zvh,
                "case": referral_id,
                "included": included,
                "episode": episode_id,
                "at": at.isoformat(),
                "inclusion": inclusion_date.isoformat() if inclusion_date else None,
            }
        )
        case.decided_seen = case.decided_seen or at
        case.included = included
        case.episode_id = episode_id
        case.inclusion_date = inclusion_date
        if episode_id:
            self._episodes[episode_id] = case.key

    def transition(
        self,
        episode_id: str,
        start: bool,
        end_on: date | None,
        *,
        bed: SecurityLevel | None = None,
        placed: bool = False,
        at: datetime | None = None,
    ) -> None:
        """A care transition: a start, an end, a secure bed requested (``bed``: a scale-up
        without a location yet) or a placement (``placed``: a transition naming its location)."""
        key = self._episodes.get(episode_id)
        if key is None:
            return
        at = at or datetime.now(UTC)
        self._log(
            {
                "k": "transition",
                "episode": episode_id,
                "start": start,
                "end": end_on.isoformat() if end_on else None,
                "bed": bed.value if bed else None,
                "placed": placed,
                "at": at.isoformat(),
            }
        )
        case = self.cases[key]
        if placed:
            case.bed_requested = None
        elif bed is not None and case.bed_requested is None:
            case.bed_requested = (at, bed)
        if start:
            case.care_started = True
            case.ended_on = None
        if end_on is not None:
            case.ended_on = end_on

    def known_case(self, zvh: str, referral_id: str) -> bool:
        return (zvh, referral_id) in self.cases

    # --- escalations and answers -----------------------------------------------------------

    def check_escalation(self, e: Escalation, sender: str) -> EscKey:
        """The key the escalation is filed under; ``Refused`` when it may not pass."""
        if not self.known_case(e.zvh, e.referral_id):
            raise Refused("unknown-case", f"no referral {e.referral_id} of {e.zvh} was routed here")
        own = self.escalations.get((e.raised_by, e.escalation_id))
        # the router forwards to national someone else's escalation, or a watchdog's own one
        # that stands open at the regional step (without this a watchdog's never moved on)
        forwarded = sender == self.router and (
            e.raised_by != self.router
            or (
                e.level is EscalationLevel.NATIONAL
                and own is not None
                and own.open
                and own.level is EscalationLevel.REGIONAL
            )
        )
        if not forwarded and e.raised_by != sender:
            raise Refused("raised-by-mismatch", "an escalation is raised in its sender's own name")
        key = (e.raised_by if forwarded else sender, e.escalation_id)
        known = self.escalations.get(key)
        if forwarded:
            if known is None or not known.open or e.level is not EscalationLevel.NATIONAL:
                raise Refused("not-asked", "the router forwards only open escalations to national")
        elif known is not None and known.open:
            raise Refused("escalation-open", f"escalation {e.escalation_id} is already open")
        return key

    def escalated(
        self, key: EscKey, e: Escalation, at: datetime, asked: Iterable[str]
    ) -> EscalationState:
        asked = list(asked)
        self._log(
            {
                "k": "escalated",
                "key": list(key),
                "asked": asked,
                "at": at.isoformat(),
                "e": e.model_dump(mode="json", exclude={"person"}),
            }
        )
        known = self.escalations.get(key)
        if known is not None and known.open and e.level is EscalationLevel.NATIONAL:
            known.level = EscalationLevel.NATIONAL
            known.national_since = at
            known.status = EscalationStatus.OPEN
            known.history.append((at, "national", e.raised_by))
            return known
        state = EscalationState(key, e, at, e.level)
        if e.level is EscalationLevel.NATIONAL:
            state.national_since = at
        else:
            state.regional_step = tuple(asked)
        state.history.append((at, f"raised:{e.level.value}", key[0]))
        self.escalations[key] = state
        return state

    def check_answer(
        self, a: EscalationAnswer, sender: str, national: Iterable[str]
    ) -> EscalationState:
        """The escalation answered; ``Refused`` when the answer may not pass."""
        state = self.escalations.get((a.raised_by, a.escalation_id))
        if state is None:
            raise Refused(
                "unknown-escalation", f"no escalation {a.escalation_id} of {a.raised_by} is known"
            )
        e = state.escalation
        if (a.zvh, a.referral_id) != (e.zvh, e.referral_id):
            raise Refused("answer-mismatch", "the answer names another case than the escalation")
        if not state.open:
            raise Refused(
                "escalation-resolved", f"escalation {a.escalation_id} is already resolved"
            )
        if a.answered_by != sender:
            raise Refused("answer-mismatch", "an answer is given in its sender's own name")
        if a.action is EscalationAction.MOVE_NATIONAL:
            if sender != self.router:
                raise Refused("not-asked", "only the ladder moves an escalation to national")
            return state
        own = sender == state.key[0] and a.action is EscalationAction.RESOLVE
        asked = (
            set(national) if state.level is EscalationLevel.NATIONAL else set(state.regional_step)
        )
        if not own and sender not in asked:
            raise Refused(
                "not-asked",
                f"{sender} was not asked: the escalation stands at the {state.level.value} step",
            )
        return state

    def answered(self, state: EscalationState, a: EscalationAnswer, at: datetime) -> None:
        self._log({"k": "answered", "a": a.model_dump(mode="json"), "at": at.isoformat()})
        if a.action in _AFTER:
            state.status = _AFTER[a.action]
        if a.action is EscalationAction.ASSIGN:
            state.assignee = a.assignee
        state.history.append((at, a.action.value, a.answered_by))

    # --- what is due -----------------------------------------------------------------------

    def due(self, now: datetime, times: LadderTimes) -> list[Due]:
        """Moves to national, watchdog escalations to raise and to close, at ``now``."""
        out: list[Due] = []
        for s in self.escalations.values():
            if (
                s.open
                and s.level is EscalationLevel.REGIONAL
                and s.status is not EscalationStatus.INFO_REQUESTED
                and now - s.raised_seen >= times.regional_after
            ):
                out.append(MoveNational(s))
        for case in self.cases.values():
            for cause, active in self._causes(case, now, times):
                esc_id = watchdog_id(cause, case.key[1])
                raised = self.escalations.get((self.router, esc_id))
                if active and raised is None:
                    out.append(Raise(case, cause, esc_id))
                elif not active and raised is not None and raised.open:
                    out.append(Close(raised, f"{cause.value}: the cause went away"))
        return out

    @staticmethod
    def _causes(
        case: CaseWatch, now: datetime, times: LadderTimes
    ) -> list[tuple[WatchCause, bool]]:
        undecided = case.decided_seen is None and now - case.referred_seen >= times.undecided_after
        decided_at = case.decided_seen
        no_start = (
            case.included
            and not case.care_started
            and decided_at is not None
            and now - decided_at >= times.no_care_start_after
        )
        early = (
            case.ended_on is not None
            and case.inclusion_date is not None
            and case.ended_on - case.inclusion_date < FOLLOW_UP
        )
        return [
            (WatchCause.UNDECIDED, undecided),
            (WatchCause.NO_CARE_START, no_start),
            (
                WatchCause.NO_PLACEMENT,
                case.bed_requested is not None
                and now - case.bed_requested[0] >= times.no_placement_after,
            ),
            (WatchCause.EARLY_END, early),
        ]


def fold_states(
    items: Iterable[tuple[datetime, Escalation | EscalationAnswer, str]],
) -> list[EscalationState]:
    """Escalation states from deliveries as one step sees them (the web app: the national
    coordination point's ``out`` topic), each with the time seen and its sender; answers to
    an escalation the step never saw are left out."""
    states: dict[EscKey, EscalationState] = {}
    for at, item, sender in items:
        if isinstance(item, Escalation):
            key = (item.raised_by, item.escalation_id)
            known = states.get(key)
            if known is None:
                states[key] = EscalationState(key, item, at, item.level, national_since=at)
                states[key].history.append((at, f"raised:{item.level.value}", sender))
            else:
                known.level = item.level
                known.national_since = known.national_since or at
        else:
            s = states.get((item.raised_by, item.escalation_id))
            if s is None:
                continue
            if item.action in _AFTER:
                s.status = _AFTER[item.action]
            if item.action is EscalationAction.ASSIGN:
                s.assignee = item.assignee
            s.history.append((at, item.action.value, item.answered_by))
    return list(states.values())


# --- what the router sends for what is due ----------------------------------------------------

LADDER_CITATION = "task-lcp-levensloopaanpak"
_NS = uuid.UUID("0b6c2f4e-8f55-5d1c-9d3e-6b6574656c64")  # ketenbus ladder (uuid5 namespace)


def _meta(event: EventCode, router: str, business_id: str, now: datetime) -> MessageMeta:
    """The same id on every tick for the same step: the router's replay guard drops a repeat."""
    return MessageMeta(
        message_id=str(uuid.uuid5(_NS, f"{router}/{event.value}/{business_id}")),
        event=event,
        sender=router,
        timestamp=now,
        purpose=PurposeOfUse.ESCALATION,
        legal_basis=LegalBasis.PUBLIC_TASK,
        basis_detail=BasisDetail(citation=LADDER_CITATION),
    )


def _answer(
    s: EscalationState,
    router: str,
    action: EscalationAction,
    level: EscalationLevel,
    note: str,
    now: datetime,
) -> EscalationAnswer:
    e = s.escalation
    return EscalationAnswer(
        answer_id=f"{action.value}-{e.escalation_id}"[:64],
        escalation_id=e.escalation_id,
        raised_by=s.key[0],
        answered_by=router,
        answered_at=now,
        zvh=e.zvh,
        referral_id=e.referral_id,
        action=action,
        level=level,
        note=note,
    )


def messages_for(due: Due, router: str, now: datetime, times: LadderTimes) -> list[dict[str, Any]]:
    """The FHIR messages the router sends (to itself, on ``in.escalation``) for one due step,
    so they pass the same checks, policy and audit as a person's."""
    if isinstance(due, MoveNational):
        s = due.state
        hours = times.regional_after.total_seconds() / 3600
        forward = s.escalation.model_copy(
            update={"level": EscalationLevel.NATIONAL, "person": None}
        )
        key = f"{s.key[0]}/{s.key[1]}"
        return [
            escalation_message(forward, _meta(EventCode.ESCALATION, router, f"move/{key}", now)),
            answer_message(
                _answer(
                    s,
                    router,
                    EscalationAction.MOVE_NATIONAL,
                    EscalationLevel.NATIONAL,
                    f"Not resolved at the regional step within {hours:g} h: moved to the "
                    "national coordination point.",
                    now,
                ),
                _meta(EventCode.ESCALATION_ANSWER, router, f"move/{key}", now),
            ),
        ]
    if isinstance(due, Raise):
        case = due.case
        seen = (
            case.referred_seen
            if due.cause is WatchCause.UNDECIDED
            else (case.decided_seen or case.referred_seen)
        )
        text = {
            WatchCause.UNDECIDED: "Watchdog: no inclusion decision since the referral was "
            f"routed on {case.referred_seen:%Y-%m-%d %H:%M} UTC.",
            WatchCause.NO_CARE_START: "Watchdog: included without a start of care.",
            WatchCause.NO_PLACEMENT: "Watchdog: a secure bed was requested (scale-up) and no "
            "placement followed.",
            WatchCause.EARLY_END: f"Watchdog: care ended on {case.ended_on} before two years "
            f"of follow-up from inclusion on {case.inclusion_date}.",
        }[due.cause]
        esc = Escalation(
            escalation_id=due.escalation_id,
            raised_by=router,
            raised_at=now,
            zvh=case.key[0],
            referral_id=case.key[1],
            reason=WATCH_REASON[due.cause],
            stuck_since=min(seen.astimezone(UTC).date(), now.astimezone(UTC).date()),
            explanation=text,
            episode_id=case.episode_id,
            security_level=case.bed_requested[1]
            if due.cause is WatchCause.NO_PLACEMENT and case.bed_requested
            else None,
        )
        return [
            escalation_message(esc, _meta(EventCode.ESCALATION, router, due.escalation_id, now))
        ]
    s = due.state
    answer = _answer(s, router, EscalationAction.RESOLVE, s.level, f"Watchdog: {due.why}.", now)
    return [
        answer_message(answer, _meta(EventCode.ESCALATION_ANSWER, router, f"close/{s.key[1]}", now))
    ]
