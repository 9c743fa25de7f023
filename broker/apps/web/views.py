"""What the pages show, computed from a snapshot: plain data for the templates and the JSON API.
Pure functions, so the filters are tested without a browser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.apps.monitoring.model import Snapshot, age_text
from broker.apps.monitoring.state import UNKNOWN_REGION
from schemas.vocab import EventCode

HOUR_CHOICES = (1, 6, 24, 168)
LEVELS = ("2", "3", "4")
FLOWS = tuple(e.value for e in EventCode if e is not EventCode.RESPONSE)
CHART_W, CHART_H = 720, 150


def parse_hours(value: str | None) -> int:
    try:
        hours = int(value or 24)
    except ValueError:
        return 24
    return hours if hours in HOUR_CHOICES else 24


def parse_flow(value: str | None) -> str:
    return value if value in FLOWS else ""


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    at: datetime  # the hour (the page writes it in Dutch time)
    count: int


def flows_view(snap: Snapshot, hours: int, flow: str) -> dict[str, Any]:
    """Messages per hour and flow in the last ``hours`` hours (one flow, or all)."""
    now = snap.taken_at
    first = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    slots = [first + timedelta(hours=i) for i in range(hours)]
    counts: dict[datetime, dict[str, int]] = {h: {} for h in slots}
    seen: set[str] = set()
    for hour, name, n in snap.flows_per_hour:
        if hour < first or (flow and name != flow):
            continue
        counts.setdefault(hour, {})[name] = counts.get(hour, {}).get(name, 0) + n
        seen.add(name)
    columns = [f for f in FLOWS if f in seen] + sorted(seen - set(FLOWS))
    rows = [
        {"hour": h,
         "counts": [c.get(f, 0) for f in columns], "total": sum(c.values())}
        for h, c in sorted(counts.items(), reverse=True)
        if sum(c.values()) or hours <= 24
    ]
    totals = [sum(counts[h].values()) for h in sorted(counts)]
    peak = max(totals, default=0) or 1
    width = CHART_W / max(1, len(totals))
    bars = [
        Bar(round(i * width + 1, 1), round(CHART_H - n / peak * (CHART_H - 10), 1),
            round(max(1.0, width - 2), 1), round(n / peak * (CHART_H - 10), 1), h, n)
        for i, (h, n) in enumerate(zip(sorted(counts), totals, strict=True))
    ]
    return {"columns": columns, "rows": rows, "bars": bars, "peak": max(totals, default=0),
            "total": sum(totals), "chart_w": CHART_W, "chart_h": CHART_H}


def stuck_view(snap: Snapshot) -> list[dict[str, Any]]:
    """What is stuck and since when: escalations, waiting referrals, unanswered claims and
    consumer groups that are behind. No case numbers, no persons. ``what`` is a catalogue key
    (:mod:`broker.apps.web.i18n`) with its ``args``; codes stay codes for the page to explain."""
    now = snap.taken_at
    rows: list[dict[str, Any]] = []
    for e in snap.escalations:
        rows.append({"what": "stuck.escalation", "codes": {"reason": e.reason, "state": e.state,
                                                           "level": e.level},
                     "args": {}, "where": e.zvh, "by": e.raised_by, "since": e.stuck_since,
                     "age": age_text(e.stuck_since, now)})
    r = snap.referrals
    if r.count:
        rows.append({"what": "stuck.waiting", "codes": {}, "args": {"n": r.count},
                     "where": ", ".join(p for p, _ in r.by_provider), "by": "-",
                     "since": r.oldest_since, "age": age_text(r.oldest_since, now)})
    for c in snap.claims:
        if c.state == "awaiting-answer" and c.count:
            rows.append({"what": "stuck.claims_old" if c.over_four_weeks else "stuck.claims",
                         "codes": {}, "args": {"n": c.count, "old": c.over_four_weeks},
                         "where": "stuck.payers", "by": "-", "since": c.oldest_since,
                         "age": age_text(c.oldest_since, now)})
    for g in snap.groups:
        if g.lag:
            rows.append({"what": "stuck.lag", "codes": {}, "args": {"n": g.lag},
                         "where": g.group, "by": "-", "since": g.lagging_since,
                         "age": age_text(g.lagging_since, now)})
    return rows


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _stale(c: Any, now: datetime, cadence: timedelta | None) -> bool:
    oldest = c.oldest_at or c.updated_at
    return cadence is not None and oldest is not None and now - oldest > cadence


def capacity_view(snap: Snapshot, cadence: timedelta | None = None) -> dict[str, Any]:
    """The dashboard's data: per region and level the beds, and the history of availability.
    A cell in which a location's report is older than ``cadence`` (``Settings.
    capacity_cadence_seconds``: the reports stopped coming) is marked stale with the date and
    time of that report, instead of being summed in silently."""
    regions = sorted({c.region for c in snap.capacity}, key=lambda r: (r == UNKNOWN_REGION, r))
    now = snap.taken_at
    cells = {f"{c.region}|{c.level}": {"in_service": c.in_service, "occupied": c.occupied,
                                       "available": c.available, "locations": c.locations,
                                       "stale": _stale(c, now, cadence),
                                       "oldest_at": _iso(c.oldest_at or c.updated_at)}
             for c in snap.capacity}
    latest = max((c.updated_at for c in snap.capacity if c.updated_at), default=None)
    return {
        "taken_at": snap.taken_at.astimezone(UTC).isoformat(),
        "updated_at": latest.astimezone(UTC).isoformat() if latest else None,
        "stale": sorted(k for k, c in cells.items() if c["stale"]),
        "levels": list(LEVELS),
        "regions": regions,
        "cells": cells,
        "history": [{"at": p.at.astimezone(UTC).isoformat(), "available": p.available}
                    for p in snap.capacity_history],
        "source": next((s for s in snap.sources if s.startswith("capacity")), ""),
    }


def capacity_rows(view: dict[str, Any], region: str = "") -> list[dict[str, Any]]:
    """Table rows of the capacity view (one region, or all), for the server-rendered table."""
    rows = []
    for r in view["regions"]:
        if region and r != region:
            continue
        cells = [view["cells"].get(f"{r}|{lv}") for lv in LEVELS]
        rows.append({"region": r, "cells": cells,
                     "available": sum(c["available"] for c in cells if c)})
    return rows
