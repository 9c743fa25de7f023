"""The capacity watchdog on the dashboard: a location whose last report is older than the
reporting cadence (``Settings.capacity_cadence_seconds``) marks its cell stale with the date
and time of that report, instead of being summed in silently; the last-report time has a date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker.apps.monitoring.model import Snapshot
from broker.apps.monitoring.state import CapacityBoard
from broker.apps.web.views import capacity_view
from schemas.flows.capacity import CapacityReport, LevelCapacity
from schemas.vocab import SecurityLevel

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def report(location: str, at: datetime) -> CapacityReport:
    return CapacityReport(
        report_id=f"R-{location}", provider="fivoor", location_id=location, region="limburg",
        measured_at=at,
        levels=(LevelCapacity(security_level=SecurityLevel.LEVEL_3, in_service=4, occupied=1,
                              available=3),),
    )  # fmt: skip


def test_a_report_older_than_the_cadence_marks_its_cell_stale_with_date_and_time() -> None:
    board = CapacityBoard()
    board.apply(report("fresh", NOW - timedelta(minutes=5)))
    board.apply(report("silent", NOW - timedelta(days=2)))
    snap = Snapshot(taken_at=NOW, capacity=board.cells())
    view = capacity_view(snap, timedelta(hours=1))
    cell = view["cells"]["limburg|3"]
    assert cell["available"] == 6 and cell["stale"] is True
    assert cell["oldest_at"] == (NOW - timedelta(days=2)).isoformat()  # the page: Dutch time
    assert view["stale"] == ["limburg|3"]
    fresh = CapacityBoard()
    fresh.apply(report("fresh", NOW - timedelta(minutes=5)))
    view = capacity_view(Snapshot(taken_at=NOW, capacity=fresh.cells()), timedelta(hours=1))
    assert view["stale"] == [] and view["updated_at"].startswith("2026-11-23T11:55")
