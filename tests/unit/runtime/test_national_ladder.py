"""The national scenario's ladder (broker/apps/scenarios/national_ladder.py, issue 15 point 8):
thresholds in simulated days scaled to the clock's pace, and the simulated regional step that
reads deliveries and answers through its EPD's CSV inbox. What the summary counts is what the
steps saw: a resolution counts only once a ``resolve`` answer was delivered, at its level.
No Kafka: deliveries are real FHIR messages handed to the actor as its reader would."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.scenarios.national import EscalationOutcome, escalation_counts
from broker.apps.scenarios.national_ladder import (
    REGIONAL_AFTER_DAYS,
    LadderActor,
    Pace,
    ladder_times,
    scaled_settings,
)
from broker.apps.scenarios.national_parties import NATIONAL
from broker.config import Settings
from schemas.flows.escalation import Escalation, escalation_message
from schemas.flows.escalation_answer import EscalationAnswer, answer_message
from schemas.messaging import BasisDetail, MessageMeta, ParsedMessage, dumps, parse_message
from schemas.vocab import (
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    EventCode,
    LegalBasis,
    PartyRole,
    PurposeOfUse,
)

ZVH, STEP, TOWN, REGION = "zvh-ijsselland", "transfore", "gemeente-zwolle", "oost-nederland"
D0 = date(2023, 2, 1)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(tmp_path_factory.mktemp("national-ladder"), [
        LocalParty(ZVH, ZVH, PartyRole.ZVH, REGION),
        LocalParty(STEP, STEP, PartyRole.COORDINATING_PROVIDER, REGION),
        LocalParty(TOWN, TOWN, PartyRole.MUNICIPALITY),
        LocalParty(NATIONAL, NATIONAL, PartyRole.NATIONAL_COORDINATION),
    ])  # fmt: skip


def _meta(event: EventCode, sender: str) -> MessageMeta:
    return MessageMeta.new(
        event, sender, PurposeOfUse.ESCALATION, LegalBasis.PUBLIC_TASK,
        basis_detail=BasisDetail(citation="task-lcp-levensloopaanpak"),
    )  # fmt: skip


def escalation(esc_id: str, raised_by: str = TOWN) -> ParsedMessage:
    e = Escalation(
        escalation_id=esc_id, raised_by=raised_by, raised_at=datetime.now(UTC), zvh=ZVH,
        referral_id="C-1", reason=EscalationReason.NO_PROVIDER, stuck_since=D0,
    )  # fmt: skip
    return parse_message(dumps(escalation_message(e, _meta(EventCode.ESCALATION, raised_by))))


def answer(esc_id: str, action: EscalationAction, level: EscalationLevel) -> ParsedMessage:
    a = EscalationAnswer(
        answer_id=f"A-{action.value}", escalation_id=esc_id, raised_by=TOWN, answered_by=STEP,
        answered_at=datetime.now(UTC), zvh=ZVH, referral_id="C-1", action=action, level=level,
    )  # fmt: skip
    return parse_message(dumps(answer_message(a, _meta(EventCode.ESCALATION_ANSWER, STEP))))


def actor(dep: Deployment, dropped: list[tuple[str, list[dict[str, Any]]]]) -> LadderActor:
    return LadderActor(
        Settings(),
        dep.party_client(NATIONAL),
        {STEP: dep.party_client(STEP)},
        lambda party, rows: dropped.append((party, rows)),
        seed=2023,
    )


def test_thresholds_follow_the_pace_never_below_nominal() -> None:
    settings = scaled_settings(Settings(), seconds_per_month=3.0)
    assert settings.escalation_regional_seconds == pytest.approx(REGIONAL_AFTER_DAYS * 0.1)
    assert settings.escalation_tick_seconds >= 0.05
    pace = Pace(0.1)
    assert pace.tick(10.0) == 0.1
    assert pace.tick(10.05) == 0.1, "a fast day does not shorten the thresholds below nominal"
    for t in (11.05, 12.05, 13.05, 14.05, 15.05, 16.05, 17.05, 18.05):
        slow = pace.tick(t)
    assert 0.5 < slow <= 1.0, "a clock that waits a second a day stretches them"
    regional = ladder_times(slow).regional_after.total_seconds()
    assert regional == pytest.approx(REGIONAL_AFTER_DAYS * slow)


def test_a_days_own_work_counts_toward_the_pace() -> None:
    """The pace is a floor, not a sleep added after the day's work (issue 19: a year in a
    minute; 400 days of work plus a sleep each were the year's largest wait)."""
    pace = Pace(0.1)
    assert pace.rest(10.0, 10.0) == pytest.approx(0.1)
    assert pace.rest(10.0, 10.04) == pytest.approx(0.06)
    assert pace.rest(10.0, 10.1) == 0.0
    assert pace.rest(10.0, 12.0) == 0.0, "a slow day waits no more"


async def test_the_regional_step_answers_through_its_inbox_and_only_a_seen_resolve_counts(
    deployment: Deployment,
) -> None:
    dropped: list[tuple[str, list[dict[str, Any]]]] = []
    a = actor(deployment, dropped)
    a._pending += [
        (STEP, escalation("ESC-GEM-1")),
        (STEP, escalation("WD-undecided-C-1", "router")),
    ]
    await a.day(D0)
    assert dropped == [], "nothing the same day"
    await a.day(D0 + timedelta(days=1))
    [(party, rows)] = dropped
    assert party == STEP
    assert {r["escalation_id"] for r in rows} == {"ESC-GEM-1"}, "a watchdog's is the router's"
    assert rows[0]["action"] == "acknowledge" and rows[0]["raised_by"] == TOWN
    assert all(r["answer_id"] and r["case_id"] == "C-1" for r in rows)
    for d in range(2, 4):
        await a.day(D0 + timedelta(days=d))
    sent = {r["action"] for _, rs in dropped for r in rs}
    assert "acknowledge" in sent
    seen = a.seen[(TOWN, "ESC-GEM-1")]
    assert seen.resolved_on is None, "meant is not done: only a delivered resolve counts"
    # the router moves it on, then the national point's resolution is delivered to the step
    a._pending += [
        (STEP, answer("ESC-GEM-1", EscalationAction.MOVE_NATIONAL, EscalationLevel.NATIONAL)),
        (STEP, answer("ESC-GEM-1", EscalationAction.RESOLVE, EscalationLevel.NATIONAL)),
    ]
    a.observe(D0 + timedelta(days=9))
    assert seen.national_on == D0 + timedelta(days=9) and seen.level == "national"
    assert seen.resolved_on == D0 + timedelta(days=9)
    open_one = a.seen[("router", "WD-undecided-C-1")]
    assert open_one.level == "regional" and open_one.resolved_on is None
    rows_out = escalation_counts(
        [EscalationOutcome(s.reason, s.level, s.raised_on, s.resolved_on) for s in a.seen.values()]
    )
    assert ("no-provider", "national", 1, 1, 9.0) in rows_out
    assert ("no-provider", "regional", 1, 0, None) in rows_out
