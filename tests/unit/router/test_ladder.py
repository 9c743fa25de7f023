"""The escalation ladder and the watchdogs as a pure fold (broker/router/ladder.py): what may
pass, what is due when, and that a watchdog raises at most once per case and cause and closes
its escalation when the cause goes away. Time is passed in; no Kafka."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from broker.router.ladder import (
    Close,
    EscalationStatus,
    Ladder,
    LadderTimes,
    MoveNational,
    Raise,
    Refused,
    WatchCause,
    fold_states,
    messages_for,
    watchdog_id,
)
from schemas.flows.escalation import Escalation, escalation_from_message
from schemas.flows.escalation_answer import EscalationAnswer, answer_from_message
from schemas.messaging import dumps, parse_message
from schemas.vocab import EscalationAction, EscalationLevel, EscalationReason, SecurityLevel

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TIMES = LadderTimes(timedelta(days=5), timedelta(days=28), timedelta(days=14))
ZVH, STEP, NATIONAL = "zvh-a", "provider-a", "national"


def esc(**kw: object) -> Escalation:
    base: dict[str, object] = dict(
        escalation_id="E-1", raised_by=ZVH, raised_at=T0, zvh=ZVH, referral_id="C-1",
        reason=EscalationReason.NO_BED, stuck_since=T0.date(),
        security_level=SecurityLevel.LEVEL_3,
    )  # fmt: skip
    return Escalation(**{**base, **kw})  # type: ignore[arg-type]


def ans(action: EscalationAction, by: str, **kw: object) -> EscalationAnswer:
    base: dict[str, object] = dict(
        answer_id=f"A-{action.value}", escalation_id="E-1", raised_by=ZVH, answered_by=by,
        answered_at=T0, zvh=ZVH, referral_id="C-1", action=action,
        level=EscalationLevel.NATIONAL,
    )  # fmt: skip
    return EscalationAnswer(**{**base, **kw})  # type: ignore[arg-type]


def raised(ladder: Ladder, at: datetime = T0) -> None:
    e = esc()
    ladder.escalated(ladder.check_escalation(e, ZVH), e, at, [STEP])


def test_an_escalation_for_a_case_never_referred_is_refused() -> None:
    with pytest.raises(Refused) as r:
        Ladder().check_escalation(esc(), ZVH)
    assert r.value.reason == "unknown-case"


def test_a_second_open_escalation_with_the_same_id_is_refused() -> None:
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    raised(ladder)
    with pytest.raises(Refused) as r:
        ladder.check_escalation(esc(), ZVH)
    assert r.value.reason == "escalation-open"
    with pytest.raises(Refused) as r:  # only the router forwards another party's escalation
        ladder.check_escalation(esc(level=EscalationLevel.NATIONAL), STEP)
    assert r.value.reason == "raised-by-mismatch"


def test_the_regional_step_answers_until_it_moves_then_only_national() -> None:
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    raised(ladder)
    ack = ans(EscalationAction.ACKNOWLEDGE, STEP, level=EscalationLevel.REGIONAL)
    ladder.answered(ladder.check_answer(ack, STEP, [NATIONAL]), ack, T0)
    with pytest.raises(Refused) as r:  # the national point was not asked yet
        ladder.check_answer(ans(EscalationAction.ASSIGN, NATIONAL, assignee=STEP), NATIONAL,
                            [NATIONAL])  # fmt: skip
    assert r.value.reason == "not-asked"
    later = T0 + TIMES.regional_after
    [due] = ladder.due(later, TIMES)
    assert isinstance(due, MoveNational)
    forward, move = (parse_message(dumps(b)) for b in messages_for(due, "router", later, TIMES))
    f = escalation_from_message(forward)
    ladder.escalated(ladder.check_escalation(f, "router"), f, later, [NATIONAL])
    m = answer_from_message(move)
    ladder.answered(ladder.check_answer(m, "router", [NATIONAL]), m, later)
    assert ladder.due(later + TIMES.regional_after, TIMES) == []
    with pytest.raises(Refused) as r:
        ladder.check_answer(ans(EscalationAction.RESOLVE, STEP), STEP, [NATIONAL])
    assert r.value.reason == "not-asked"
    done = ans(EscalationAction.RESOLVE, NATIONAL)
    ladder.answered(ladder.check_answer(done, NATIONAL, [NATIONAL]), done, later)
    state = ladder.escalations[(ZVH, "E-1")]
    assert state.status is EscalationStatus.RESOLVED and state.level is EscalationLevel.NATIONAL
    with pytest.raises(Refused) as r:
        ladder.check_answer(done, NATIONAL, [NATIONAL])
    assert r.value.reason == "escalation-resolved"


@pytest.mark.parametrize(
    ("answer", "sender", "reason"),
    [
        (ans(EscalationAction.ACKNOWLEDGE, STEP, escalation_id="E-9"), STEP, "unknown-escalation"),
        (ans(EscalationAction.ACKNOWLEDGE, STEP, referral_id="C-2"), STEP, "answer-mismatch"),
        (ans(EscalationAction.ACKNOWLEDGE, NATIONAL), STEP, "answer-mismatch"),  # another's name
        (ans(EscalationAction.MOVE_NATIONAL, STEP), STEP, "not-asked"),
    ],
)
def test_hostile_answers_get_their_own_reason(
    answer: EscalationAnswer, sender: str, reason: str
) -> None:
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    raised(ladder)
    with pytest.raises(Refused) as r:
        ladder.check_answer(answer, sender, [NATIONAL])
    assert r.value.reason == reason


def test_the_escalating_party_may_resolve_its_own_and_info_requested_does_not_move() -> None:
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    raised(ladder)
    ask = ans(EscalationAction.REQUEST_INFO, STEP, note="Welk niveau?")
    ladder.answered(ladder.check_answer(ask, STEP, [NATIONAL]), ask, T0)
    assert ladder.due(T0 + 2 * TIMES.regional_after, TIMES) == []
    own = ans(EscalationAction.RESOLVE, ZVH)
    ladder.answered(ladder.check_answer(own, ZVH, [NATIONAL]), own, T0)
    assert not ladder.escalations[(ZVH, "E-1")].open


def test_the_undecided_watchdog_raises_once_and_closes_on_the_decision() -> None:
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    assert ladder.due(T0 + TIMES.undecided_after - timedelta(seconds=1), TIMES) == []
    at = T0 + TIMES.undecided_after
    [due] = ladder.due(at, TIMES)
    assert isinstance(due, Raise) and due.cause is WatchCause.UNDECIDED
    [bundle] = messages_for(due, "router", at, TIMES)
    e = escalation_from_message(parse_message(dumps(bundle)))
    assert (e.escalation_id, e.reason) == (watchdog_id(WatchCause.UNDECIDED, "C-1"),
                                           EscalationReason.NO_DECISION)  # fmt: skip
    ladder.escalated(ladder.check_escalation(e, "router"), e, at, [STEP])
    assert ladder.due(at + timedelta(days=3), TIMES) == [], "at most once per case and cause"
    ladder.assessment(ZVH, "C-1", False, None, None, at + timedelta(days=4))
    [close] = ladder.due(at + timedelta(days=4), TIMES)
    assert isinstance(close, Close)
    [bundle] = messages_for(close, "router", at, TIMES)
    a = answer_from_message(parse_message(dumps(bundle)))
    assert a.action is EscalationAction.RESOLVE
    ladder.answered(ladder.check_answer(a, "router", [NATIONAL]), a, at)
    assert ladder.due(at + timedelta(days=40), TIMES) == []


def test_inclusion_without_care_start_and_early_end_are_watched() -> None:
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    ladder.assessment(ZVH, "C-1", True, "EP-1", date(2026, 3, 2), T0)
    [due] = ladder.due(T0 + TIMES.no_care_start_after, TIMES)
    assert isinstance(due, Raise) and due.cause is WatchCause.NO_CARE_START
    ladder.transition("EP-1", True, None)
    ladder.transition("EP-1", False, date(2027, 3, 1))  # before two years of follow-up
    causes = {d.cause for d in ladder.due(T0 + TIMES.no_care_start_after, TIMES)
              if isinstance(d, Raise)}  # fmt: skip
    assert causes == {WatchCause.EARLY_END}


def test_fold_states_from_the_national_point_s_deliveries() -> None:
    e = esc(level=EscalationLevel.NATIONAL)
    states = fold_states([
        (T0, e, ZVH),
        (T0 + timedelta(hours=1), ans(EscalationAction.ASSIGN, NATIONAL, assignee=STEP), NATIONAL),
        (T0, ans(EscalationAction.RESOLVE, NATIONAL, escalation_id="OTHER"), NATIONAL),
    ])  # fmt: skip
    [s] = states
    assert (s.status, s.assignee, s.level) == (EscalationStatus.ASSIGNED, STEP,
                                               EscalationLevel.NATIONAL)  # fmt: skip
    assert s.age(T0 + timedelta(days=2)) == timedelta(days=2)


def test_a_requested_bed_without_placement_raises_no_bed_and_closes_on_placing() -> None:
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    ladder.assessment(ZVH, "C-1", True, "EP-1", date(2026, 3, 2), T0)
    ladder.transition("EP-1", True, None, at=T0)
    ladder.transition("EP-1", False, None, bed=SecurityLevel.LEVEL_4, at=T0)
    assert ladder.due(T0 + TIMES.no_placement_after - timedelta(seconds=1), TIMES) == []
    at = T0 + TIMES.no_placement_after
    [due] = ladder.due(at, TIMES)
    assert isinstance(due, Raise) and due.cause is WatchCause.NO_PLACEMENT
    [bundle] = messages_for(due, "router", at, TIMES)
    e = escalation_from_message(parse_message(dumps(bundle)))
    assert (e.reason, e.security_level) == (EscalationReason.NO_BED, SecurityLevel.LEVEL_4)
    ladder.escalated(ladder.check_escalation(e, "router"), e, at, [STEP])
    ladder.transition("EP-1", False, None, placed=True, at=at)
    [close] = ladder.due(at, TIMES)
    assert isinstance(close, Close) and close.state.key[1] == e.escalation_id


def test_a_watchdog_escalation_left_at_the_regional_step_moves_to_national() -> None:
    """The router raises a watchdog's escalation in its own name; when the regional step lets it
    age, the router's forward to national must pass like anyone's (it was refused as
    ``escalation-open``, so a watchdog's escalation never reached the coordination point)."""
    ladder = Ladder()
    ladder.referral(ZVH, "C-1", T0)
    at = T0 + TIMES.undecided_after
    [due] = ladder.due(at, TIMES)
    [bundle] = messages_for(due, "router", at, TIMES)
    e = escalation_from_message(parse_message(dumps(bundle)))
    ladder.escalated(ladder.check_escalation(e, "router"), e, at, [STEP])
    later = at + TIMES.regional_after
    [move] = ladder.due(later, TIMES)
    assert isinstance(move, MoveNational)
    forward, moved = (parse_message(dumps(b)) for b in messages_for(move, "router", later, TIMES))
    f = escalation_from_message(forward)
    ladder.escalated(ladder.check_escalation(f, "router"), f, later, [NATIONAL])
    m = answer_from_message(moved)
    ladder.answered(ladder.check_answer(m, "router", [NATIONAL]), m, later)
    wid = watchdog_id(WatchCause.UNDECIDED, "C-1")
    assert ladder.escalations[("router", wid)].level is EscalationLevel.NATIONAL
    with pytest.raises(Refused) as r:  # the forward again: no longer at the regional step
        ladder.check_escalation(f, "router")
    assert r.value.reason == "escalation-open"
    ack = ans(EscalationAction.ACKNOWLEDGE, NATIONAL, escalation_id=wid, raised_by="router")
    ladder.answered(ladder.check_answer(ack, NATIONAL, [NATIONAL]), ack, later)
    assert ladder.escalations[("router", wid)].status is EscalationStatus.ACKNOWLEDGED
