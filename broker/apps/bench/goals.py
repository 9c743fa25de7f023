"""The goals of issue 19 side by side: one row per measure, with its goal and whether this run
met it. A section that measures something adds a :class:`Goal`; a measure this run did not take
says so instead of a figure, so the table always shows every goal."""

from __future__ import annotations

from dataclasses import dataclass

from broker.apps.bench.report import Table


@dataclass(frozen=True)
class Goal:
    """One measure and its goal. ``value`` None: not measured in this run (``note`` says why
    or how); ``at_most`` for goals that are ceilings (a pause, a latency, a cost)."""

    measure: str
    value: float | None
    goal: float
    unit: str = "x"
    at_most: bool = False
    detail: str = ""  # the figures behind a ratio, or what moves it
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.goal if self.at_most else self.value >= self.goal

    def shown(self, value: float) -> str:
        if self.unit == "x":
            return f"{value:.2f}"
        if self.unit == "s":
            return f"{value:,.1f} s"
        return f"{value:,.0f} {self.unit}"


def goals_table(goals: list[Goal]) -> Table:
    table = Table(
        "goals",
        "Issue 19 goals, measured side by side in this run",
        ["measure", "measured", "goal", "met", "figures"],
    )
    for g in goals:
        sign = "<=" if g.at_most else ">="
        met = g.met
        table.add(
            g.measure,
            "not measured" if g.value is None else g.shown(g.value),
            f"{sign} {g.shown(g.goal)}",
            "-" if met is None else "yes" if met else "NO",
            g.note if g.value is None else g.detail,
        )
    return table


__all__ = ["Goal", "goals_table"]
