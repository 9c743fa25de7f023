"""The figures one snapshot holds. Counts, codes, party ids and moments only: no BSN, no
pseudonym, no message id, no free text from a message, so whatever renders a snapshot (the
terminal, Prometheus, the operations web page) cannot show person-level data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

FOUR_WEEKS = timedelta(weeks=4)  # the emergency rule: VWS advances a claim unpaid this long


@dataclass(frozen=True)
class TopicFigure:
    """Messages on one topic: the total (sum of the partitions' high watermarks) and rates
    from the record timestamps."""

    name: str
    partitions: int
    messages: int
    last_minute: int
    per_minute_15: float
    last_at: datetime | None = None


@dataclass(frozen=True)
class GroupLag:
    """A consumer group's lag: records on its topics it has not committed yet."""

    group: str
    topics: tuple[str, ...]
    lag: int
    lagging_since: datetime | None = None  # first seen with lag > 0, while it stays > 0


@dataclass(frozen=True)
class ReasonCount:
    """Refused records on ``rejected`` or ``dead-letter`` with one reason code."""

    topic: str
    reason: str
    count: int
    last_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    """One parked record, described by its routing headers only."""

    topic: str
    at: datetime
    reason: str
    sender: str
    source: str
    event: str
    detail: str  # the refusal text, with long digit runs removed


@dataclass(frozen=True)
class WaitingReferrals:
    """Referrals delivered to a coordinating provider that have no assessment outcome yet."""

    count: int = 0
    oldest_since: datetime | None = None
    by_provider: tuple[tuple[str, int], ...] = ()
    decided: int = 0


@dataclass(frozen=True)
class ClaimFigure:
    """Claims in one state (awaiting-answer, answered, refused) and their ages."""

    state: str
    count: int
    oldest_since: datetime | None = None
    over_four_weeks: int = 0


@dataclass(frozen=True)
class CapacityCell:
    """Secure beds of one security level in one region (summed over locations)."""

    region: str
    level: str
    in_service: int
    occupied: int
    available: int
    locations: int
    updated_at: datetime | None = None
    oldest_at: datetime | None = None  # the oldest location report summed into this cell


@dataclass(frozen=True)
class CapacityPoint:
    """Available beds per (region, level) at one moment, for the history chart."""

    at: datetime
    available: dict[str, int]  # key "region|level"


@dataclass(frozen=True)
class EscalationFigure:
    """One escalation as the national coordination point received it, without the person, the
    case number or the explanation text: what is stuck, where, and since when."""

    reason: str
    raised_by: str
    zvh: str
    stuck_since: date
    raised_at: datetime
    level: str = "national"  # the ladder step it stands on (what reaches this point: national)
    state: str = "open"  # open, acknowledged, assigned, info-requested, resolved
    assignee: str | None = None
    answered_at: datetime | None = None  # the last accepted answer


@dataclass(frozen=True)
class EscalationSummary:
    delivered: int = 0
    refused: int = 0
    last_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything the monitor, the metrics endpoint and the operations pages show."""

    taken_at: datetime
    topics: tuple[TopicFigure, ...] = ()
    groups: tuple[GroupLag, ...] = ()
    refusals: tuple[ReasonCount, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    referrals: WaitingReferrals = field(default_factory=WaitingReferrals)
    claims: tuple[ClaimFigure, ...] = ()
    capacity: tuple[CapacityCell, ...] = ()
    capacity_history: tuple[CapacityPoint, ...] = ()
    escalations: tuple[EscalationFigure, ...] = ()
    escalation_summary: EscalationSummary = field(default_factory=EscalationSummary)
    flows_per_hour: tuple[tuple[datetime, str, int], ...] = ()  # (hour start, flow, messages)
    problems: tuple[str, ...] = ()  # what could not be read, for operations
    sources: tuple[str, ...] = ()  # what the figures come from ("capacity: party X", ...)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (moments as ISO 8601 text)."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def age_text(since: datetime | date | None, now: datetime) -> str:
    """``3 d 4 h``, ``12 min``, ``45 s``; ``-`` when there is nothing."""
    if since is None:
        return "-"
    if not isinstance(since, datetime):
        since = datetime(since.year, since.month, since.day, tzinfo=UTC)
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
