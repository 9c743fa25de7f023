"""The goals table of ``ketenbus bench`` (issue 19 point 9): every goal gets a row, met or not
is judged in the goal's own direction, and a measure not taken says so instead of a figure."""

from __future__ import annotations

from broker.apps.bench.goals import Goal, goals_table
from broker.apps.bench.run import Results, issue_goals


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
