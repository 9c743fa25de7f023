"""The terminal view of ``ketenbus monitor``: one Rich renderable per snapshot. It shows what a
:class:`Snapshot` holds, which has no personal data to show."""

from __future__ import annotations

from datetime import UTC

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from broker.apps.monitoring.model import Snapshot, age_text
from broker.apps.monitoring.state import UNKNOWN_REGION

LEVELS = ("2", "3", "4")


def _time(snap: Snapshot) -> str:
    return snap.taken_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def topics_table(snap: Snapshot) -> Table:
    t = Table(title="Messages per topic", title_justify="left", expand=False)
    for col, justify in (("topic", "left"), ("partitions", "right"), ("messages", "right"),
                         ("last minute", "right"), ("per min (15 min)", "right"),
                         ("last message", "right")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for f in snap.topics:
        style = "bold" if f.last_minute else ""
        t.add_row(f.name, str(f.partitions), str(f.messages), str(f.last_minute),
                  f"{f.per_minute_15:g}", age_text(f.last_at, snap.taken_at) + " ago"
                  if f.last_at else "-", style=style)
    return t


def lag_table(snap: Snapshot) -> Table:
    t = Table(title="Consumer lag per group", title_justify="left")
    t.add_column("group")
    t.add_column("topics")
    t.add_column("lag", justify="right")
    t.add_column("behind since", justify="right")
    for g in snap.groups:
        t.add_row(g.group, ", ".join(g.topics) or "-", str(g.lag),
                  age_text(g.lagging_since, snap.taken_at) if g.lagging_since else "-",
                  style="bold red" if g.lag else "")
    if not snap.groups:
        t.add_row("(no consumer groups)", "", "", "")
    return t


def refusals_table(snap: Snapshot) -> Table:
    t = Table(title="Refusals and dead letters by reason", title_justify="left")
    t.add_column("topic")
    t.add_column("reason")
    t.add_column("count", justify="right")
    t.add_column("last", justify="right")
    for r in snap.refusals:
        t.add_row(r.topic, r.reason, str(r.count), age_text(r.last_at, snap.taken_at) + " ago")
    if not snap.refusals:
        t.add_row("-", "(none)", "0", "-")
    return t


def waiting_table(snap: Snapshot) -> Table:
    r = snap.referrals
    t = Table(title="Referrals waiting for an inclusion decision", title_justify="left")
    t.add_column("waiting", justify="right")
    t.add_column("oldest waits", justify="right")
    t.add_column("per provider")
    t.add_column("decided", justify="right")
    per = ", ".join(f"{p} {n}" for p, n in r.by_provider) or "-"
    t.add_row(str(r.count), age_text(r.oldest_since, snap.taken_at), per, str(r.decided))
    return t


def claims_table(snap: Snapshot) -> Table:
    t = Table(title="Claims by state and age", title_justify="left")
    t.add_column("state")
    t.add_column("claims", justify="right")
    t.add_column("oldest", justify="right")
    t.add_column("over 4 weeks", justify="right")
    for c in snap.claims:
        t.add_row(c.state, str(c.count), age_text(c.oldest_since, snap.taken_at),
                  str(c.over_four_weeks) if c.state == "awaiting-answer" else "-",
                  style="bold red" if c.over_four_weeks else "")
    return t


def capacity_table(snap: Snapshot) -> Table:
    t = Table(title="Available secure beds by region and security level (available / in service)",
              title_justify="left")
    t.add_column("region")
    for level in LEVELS:
        t.add_column(f"level {level}", justify="right")
    t.add_column("total available", justify="right")
    regions = sorted({c.region for c in snap.capacity}, key=lambda r: (r == UNKNOWN_REGION, r))
    cells = {(c.region, c.level): c for c in snap.capacity}
    for region in regions:
        row, free = [], 0
        for level in LEVELS:
            c = cells.get((region, level))
            row.append(f"{c.available} / {c.in_service}" if c else "-")
            free += c.available if c else 0
        t.add_row(region, *row, str(free), style="bold red" if free == 0 else "")
    if not regions:
        t.add_row("(no capacity reports)", *("" for _ in LEVELS), "")
    return t


def view(snap: Snapshot) -> RenderableType:
    """The whole screen for one snapshot."""
    parts: list[RenderableType] = [
        Text(f"ketenbus monitor — {_time(snap)} — no personal data on this screen", style="bold"),
        topics_table(snap),
        lag_table(snap),
        refusals_table(snap),
        waiting_table(snap),
        claims_table(snap),
        capacity_table(snap),
    ]
    notes = [*snap.sources, *snap.problems]
    if notes:
        parts.append(Text("\n".join(notes), style="dim"))
    return Group(*parts)
