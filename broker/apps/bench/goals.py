"""The goals of issue 19 side by side: one row per measure, with its goal and whether this run
met it. A section that measures something adds a :class:`Goal`; a measure this run did not take
says so instead of a figure, so the table always shows every goal.

Issue 19's "Done when" asks, for every goal not met, "the measured figure, the reason, and what
would move it": a goal carries its ``why`` (derived from this run's own figures where they say
it, :mod:`broker.apps.bench.reasons`) and its ``lever``, printed under the table for every row
that is not met, and only for those."""

from __future__ import annotations

from dataclasses import dataclass

from broker.apps.bench.report import Table

NO_REASON = "no reason derived for this measure (add one in broker/apps/bench/reasons.py)"
NO_LEVER = "not known yet: profile it"
HOW_TO_MEASURE = "measure it with the full `ketenbus bench`"


@dataclass(frozen=True)
class Goal:
    """One measure and its goal. ``value`` None: not measured in this run (``note`` says why
    or how); ``at_most`` for goals that are ceilings (a pause, a latency, a cost). ``why`` and
    ``lever``: the reason it is not met and what would move it (shown only when not met)."""

    measure: str
    value: float | None
    goal: float
    unit: str = "x"
    at_most: bool = False
    detail: str = ""  # the figures behind a ratio
    note: str = ""  # not measured: why, and how to measure it
    why: str = ""
    lever: str = ""

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

    @property
    def target(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.shown(self.goal)}"

    def explanation(self) -> str | None:
        """The line under the table for a goal not met (None when met or not measured)."""
        if self.met is not False or self.value is None:
            return None
        return (
            f"NO {self.measure}: {self.shown(self.value)}, goal {self.target}. "
            f"Why: {self.why or NO_REASON}. Lever: {self.lever or NO_LEVER}."
        )


def goals_table(goals: list[Goal]) -> Table:
    table = Table(
        "goals",
        "Issue 19 goals, measured side by side in this run",
        ["measure", "measured", "goal", "met", "figures"],
    )
    for g in goals:
        met = g.met
        table.add(
            g.measure,
            "not measured" if g.value is None else g.shown(g.value),
            g.target,
            "-" if met is None else "yes" if met else "NO",
            (g.note or HOW_TO_MEASURE) if g.value is None else g.detail,
        )
    for g in goals:
        line = g.explanation()
        if line is not None:
            table.notes.append(line)
    return table


__all__ = ["Goal", "goals_table"]
