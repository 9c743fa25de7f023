"""The goals table of ``ketenbus bench`` (issue 19 point 9): every goal gets a row, met or not
is judged in the goal's own direction, and a measure not taken says so instead of a figure."""

from __future__ import annotations

import pytest

from broker.apps.bench import stages
from broker.apps.bench.goals import HOW_TO_MEASURE, NO_LEVER, NO_REASON, Goal, goals_table
from broker.apps.bench.kafka_runs import (
    LATENCY_BATCHED,
    LATENCY_SERVICE,
    ROUTED,
    ROUTED_FULL,
    SERVICE,
    SHAPE,
    Latency,
    Throughput,
    Variant,
)
from broker.apps.bench.national import NationalRun, simulated_days
from broker.apps.bench.national import table as national_table
from broker.apps.bench.run import Results, issue_goals
from broker.apps.bench.scale import ScaleResult
from broker.apps.bench.snapshot import SnapshotRun
from broker.apps.bench.stages import StageProfile


def test_a_ceiling_and_a_floor_are_judged_each_in_its_direction() -> None:
    assert Goal("ratio", 0.81, 0.8).met is True
    assert Goal("ratio", 0.79, 0.8).met is False
    assert Goal("pause", 4.9, 5.0, unit="s", at_most=True).met is True
    assert Goal("pause", 19.0, 5.0, unit="s", at_most=True).met is False
    assert Goal("pause", None, 5.0, unit="s", at_most=True).met is None


def test_the_table_shows_each_goal_with_its_verdict() -> None:
    table = goals_table(
        [
            Goal("end to end / router", 0.5, 0.8, detail="50 / 100 msgs/s"),
            Goal("p99", 30.0, 50.0, unit="ms", at_most=True),
            Goal("failover", None, 5.0, unit="s", at_most=True, note="run the scale section"),
        ]
    )
    rows = {r[0]: r for r in table.rows}
    assert rows["end to end / router"][1:4] == ["0.50", ">= 0.80", "NO"]
    assert rows["end to end / router"][4] == "50 / 100 msgs/s"
    assert rows["p99"][1:4] == ["30 ms", "<= 50 ms", "yes"]
    assert rows["failover"][1:] == ["not measured", "<= 5.0 s", "-", "run the scale section"]


def test_a_run_that_measured_nothing_still_lists_every_goal_of_issue_19() -> None:
    goals = issue_goals(Results())
    assert [g.measure for g in goals] == [
        "two router instances / one (router side)",
        "end to end / router rate (provider's adapter)",
        "RouterService / batched loop (same pipeline)",
        "RouterService p99 at 500 msgs/s",
        "failover pause (SIGKILL one of two)",
        "restart pause (killed router restarted at once)",
        "routed / Kafka alone with the router's output shape",
        "routed default / validate-everything",
        "routing CPU, ingress-validated",
        "consent view ready from its snapshot, 1M consents",
        "national year (ketenbus up --scenario national)",
    ]
    assert all(g.value is None and g.met is None for g in goals)


# --- issue 19 "Done when": for a goal not met, the figure, the reason and what would move it ---


def test_a_goal_not_met_prints_its_reason_and_lever_and_a_met_one_does_not() -> None:
    table = goals_table(
        [
            Goal("p99", 159.0, 50.0, unit="ms", at_most=True, why="half busy", lever="less CPU"),
            Goal("ratio", 0.9, 0.8, why="should not show", lever="should not show either"),
            Goal("pause", None, 5.0, unit="s", at_most=True),
        ]
    )
    assert table.notes == ["NO p99: 159 ms, goal <= 50 ms. Why: half busy. Lever: less CPU."]
    for out in (table.text(), table.markdown()):
        assert "Why: half busy" in out and "Lever: less CPU" in out
        assert "should not show" not in out
    # a measure not taken says how to take it, in its own row
    assert {r[0]: r[4] for r in table.rows}["pause"] == HOW_TO_MEASURE


def test_a_goal_not_met_without_a_known_reason_says_so_instead_of_nothing() -> None:
    (line,) = goals_table([Goal("something new", 2.0, 1.0, at_most=True)]).notes
    assert NO_REASON in line and NO_LEVER in line


def test_long_reasons_wrap_to_a_120_column_terminal() -> None:
    why = " ".join(["a reason of many words"] * 30)
    text = goals_table([Goal("x", 0.1, 0.8, why=why, lever="a lever")]).text()
    notes = text.split("\n")[4:]
    assert len(notes) > 3 and all(len(line) <= 120 for line in notes)
    assert notes[0].startswith("  * NO x") and all(n.startswith("    ") for n in notes[1:])


def _throughput(variant: Variant, msgs_per_s: float, cpu: float = 0.0) -> Throughput:
    return Throughput(variant, msgs_per_s, 100, 100, 100 / msgs_per_s, process_cpu=cpu)


def _latency(variant: Variant, p99: float) -> Latency:
    return Latency(variant, 500.0, 100, 100, 500.0, [0.05] * 98 + [p99] * 2, 5.0)


def _national(months: int, wall: float, run: float) -> NationalRun:
    return NationalRun(
        months=months, seconds_per_month=5.0, wall_seconds=wall, cpu_seconds=80.0,
        start_seconds=17.0, run_seconds=run, days=simulated_days(months), referrals=94,
        answered=94, claims=300, clock_waits=12, gave_up=0,
    )  # fmt: skip


def _results(good: bool) -> Results:
    """A run's figures: the previous round's (none met) or ones that meet every goal."""
    profile = StageProfile(100, {stages.GLUE: 0.026, stages.MINIMISE: 0.014, stages.SEAL: 0.01})
    if good:
        profile = StageProfile(100, {stages.GLUE: 0.004, stages.MINIMISE: 0.004})
    return Results(
        profiles={False: profile},
        throughput=[
            _throughput(SERVICE, 1000 if good else 914, 1.004e-3),
            _throughput(ROUTED, 1050 if good else 1091, 1.045e-3),
            _throughput(SHAPE, 2000 if good else 4369),
            _throughput(ROUTED_FULL, 100 if good else 331),
        ],
        latency=[
            _latency(LATENCY_SERVICE, 0.04 if good else 0.159),
            _latency(LATENCY_BATCHED, 0.227),
        ],
        scale=ScaleResult(
            messages=500,
            routers={1: 758.0, 2: 1600.0 if good else 1081.0},
            router_rate=773.0,
            end_to_end=700.0 if good else 498.0,
            failover=3.0 if good else 16.5,
            restart=4.0 if good else 19.6,
            session_timeout_ms=10_000,
        ),
        snapshot=SnapshotRun(
            100_000, 50_000, 1.5, 0.2, 14_700_000, 29, 1.8 if good else 4.0, 100_000, 2_000, 1.2
        ),
        national=_national(12, 55.0 if good else 109.0, 35.0 if good else 88.0),
    )


def test_every_goal_of_issue_19_not_met_gets_a_reason_from_the_runs_own_figures() -> None:
    goals = issue_goals(_results(good=False))
    assert all(g.met is False for g in goals), [g.measure for g in goals if g.met is not False]
    lines = goals_table(goals).notes
    assert len(lines) == len(goals)
    assert not [line for line in lines if NO_REASON in line or NO_LEVER in line]
    why = {g.measure: g.why for g in goals}
    # the service's own CPU per referral, and how busy it makes a router at 500 msgs/s
    assert "1,004 µs of CPU per referral" in why["RouterService p99 at 500 msgs/s"]
    assert "50% busy" in why["RouterService p99 at 500 msgs/s"]
    assert "p99 227 ms" in why["RouterService p99 at 500 msgs/s"]  # the loop's, beside it
    assert "session timeout (10 s" in why["failover pause (SIGKILL one of two)"]
    assert "6.5 s" in why["failover pause (SIGKILL one of two)"]  # the part after the timeout
    assert "logical CPU(s)" in why["two router instances / one (router side)"]
    assert "2,008 µs of wall time per delivery" in why[
        "end to end / router rate (provider's adapter)"
    ]
    assert "pipeline glue" in why["routing CPU, ingress-validated"]
    assert "same CPU per referral" in why["RouterService / batched loop (same pipeline)"]
    assert "302 µs" in why["routed default / validate-everything"]  # 1 / 331 msgs/s / 10
    assert "start 17 s" in why["national year (ketenbus up --scenario national)"]
    assert "waited for the components on 12 day(s)" in why[
        "national year (ketenbus up --scenario national)"
    ]


def test_a_run_that_meets_every_goal_prints_no_reason() -> None:
    goals = issue_goals(_results(good=True))
    assert [g.measure for g in goals if g.met is not True] == []
    assert goals_table(goals).notes == []


def test_the_national_year_is_measured_or_honestly_scaled_to_twelve_months() -> None:
    year = _national(12, 109.0, 88.0)
    assert not year.scaled and year.year_seconds == 109.0
    assert year.figures() == "12 month(s) in 109 s; 94 referrals, 300 claims"
    three = _national(3, 50.0, 30.0)  # 125 days of 400: the start and stop once
    assert three.scaled
    assert three.year_seconds == pytest.approx(20.0 + 30.0 * 400 / 125)
    assert "3 month(s) in 50 s, scaled to 12: 116 s" in three.figures()
    table = national_table(three)
    assert "the year (scaled to 12 months)" in table.row_labels()
    assert any("scaled" in n for n in table.notes)
    assert simulated_days(12) == 365 + 35 and simulated_days(1) == 31 + 35
