"""Pure trackers that fold records into figures; the collector feeds them, tests feed them by hand.

They read routing headers, audit rows and decrypted counts-only messages. The audit rows carry
pseudonyms; :class:`AuditTracker` uses them only as join keys (a referral and the assessment
that answers it are about the same pseudonym) and never puts them into a figure.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from broker.apps.monitoring.model import (
    FOUR_WEEKS,
    CapacityCell,
    CapacityPoint,
    ClaimFigure,
    DeadLetter,
    EscalationFigure,
    EscalationSummary,
    GroupLag,
    ReasonCount,
    TopicFigure,
    WaitingReferrals,
)
from broker.audit import AuditRow
from schemas import topics
from schemas.flows.capacity import CapacityReport
from schemas.flows.escalation import Escalation
from schemas.flows.escalation_answer import EscalationAnswer

RATE_BUCKET = 10  # seconds per rate bucket
RATE_KEEP = timedelta(minutes=15)
FLOW_KEEP = timedelta(days=7)
HISTORY_KEEP = 1000
DEAD_LETTERS_KEPT = 50
UNKNOWN_REGION = "onbekend"
_DIGIT_RUN = re.compile(r"[0-9]{8,}")
KEPT_HEADERS = frozenset(
    {"kb-event", "kb-sender", "kb-recipient", "kb-reason", "kb-detail", "kb-source",
     "kb-source-topic"}
)
REFUSAL_TOPICS = (topics.REJECTED.name, topics.DEAD_LETTER.name)
FLOW_TOPICS = frozenset(t.name for t in topics.ROUTED)


def scrub(text: str, limit: int = 200) -> str:
    """Refusal text for operations: long digit runs (a BSN would be one) removed, shortened."""
    clean = _DIGIT_RUN.sub("[…]", text.replace("\n", " "))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


@dataclass(frozen=True)
class RecordMeta:
    """What the collector keeps of a Kafka record: where, when and the routing headers. Never
    the key (a pseudonym) nor the value (sealed content)."""

    topic: str
    partition: int
    offset: int
    at: datetime
    headers: Mapping[str, str]

    @classmethod
    def of(
        cls, topic: str, partition: int, offset: int, timestamp_ms: int | None,
        headers: Iterable[tuple[str, bytes | None]],
    ) -> RecordMeta:
        at = datetime.fromtimestamp((timestamp_ms or 0) / 1000, UTC)
        kept = {
            k: (v or b"").decode("utf-8", "replace") for k, v in headers if k in KEPT_HEADERS
        }
        return cls(topic, partition, offset, at, kept)


class TopicTracker:
    """Record counts per topic in 10-second buckets (rates) and per hour and flow (inbound)."""

    def __init__(self) -> None:
        self._buckets: dict[str, Counter[int]] = defaultdict(Counter)
        self._last: dict[str, datetime] = {}
        self._flows: Counter[tuple[int, str]] = Counter()

    def add(self, rec: RecordMeta) -> None:
        epoch = rec.at.timestamp()
        self._buckets[rec.topic][int(epoch // RATE_BUCKET)] += 1
        if rec.at > self._last.get(rec.topic, datetime.min.replace(tzinfo=UTC)):
            self._last[rec.topic] = rec.at
        if rec.topic in FLOW_TOPICS:
            flow = rec.headers.get("kb-event") or "unknown"
            self._flows[(int(epoch // 3600), flow)] += 1

    def prune(self, now: datetime) -> None:
        oldest = int((now - RATE_KEEP).timestamp() // RATE_BUCKET) - 1
        for buckets in self._buckets.values():
            for b in [b for b in buckets if b < oldest]:
                del buckets[b]
        oldest_hour = int((now - FLOW_KEEP).timestamp() // 3600)
        for key in [k for k in self._flows if k[0] < oldest_hour]:
            del self._flows[key]

    def figures(
        self, now: datetime, partitions: Mapping[str, int], totals: Mapping[str, int]
    ) -> tuple[TopicFigure, ...]:
        """One figure per topic in ``partitions``; ``totals`` are the high-watermark sums."""
        current = int(now.timestamp() // RATE_BUCKET)
        out = []
        for name in sorted(partitions):
            buckets = self._buckets.get(name, Counter())
            minute = sum(n for b, n in buckets.items() if current - 6 < b <= current)
            quarter = sum(n for b, n in buckets.items() if current - 90 < b <= current)
            out.append(
                TopicFigure(
                    name, partitions[name], totals.get(name, 0), minute, round(quarter / 15, 2),
                    self._last.get(name),
                )
            )
        return tuple(out)

    def flows_per_hour(self) -> tuple[tuple[datetime, str, int], ...]:
        return tuple(
            (datetime.fromtimestamp(hour * 3600, UTC), flow, n)
            for (hour, flow), n in sorted(self._flows.items())
        )


class RefusalTracker:
    """Refusals and dead letters by reason, from the ``kb-reason`` header, and the latest
    parked records."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._last: dict[tuple[str, str], datetime] = {}
        self._recent: deque[DeadLetter] = deque(maxlen=DEAD_LETTERS_KEPT)

    def add(self, rec: RecordMeta) -> None:
        if rec.topic not in REFUSAL_TOPICS:
            return
        h = rec.headers
        reason = h.get("kb-reason") or "unknown"
        key = (rec.topic, reason)
        self._counts[key] += 1
        if rec.at >= self._last.get(key, rec.at):
            self._last[key] = rec.at
        self._recent.append(
            DeadLetter(
                topic=rec.topic,
                at=rec.at,
                reason=reason,
                sender=h.get("kb-sender", ""),
                source=h.get("kb-source") or h.get("kb-source-topic") or "",
                event=h.get("kb-event", ""),
                detail=scrub(h.get("kb-detail", "")),
            )
        )

    def figures(self) -> tuple[ReasonCount, ...]:
        return tuple(
            ReasonCount(t, r, n, self._last.get((t, r)))
            for (t, r), n in sorted(self._counts.items(), key=lambda kv: (kv[0][0], -kv[1],
                                                                          kv[0][1]))
        )

    def recent(self) -> tuple[DeadLetter, ...]:
        return tuple(sorted(self._recent, key=lambda d: d.at, reverse=True))


PERMIT = "decision-permit"
DENIED = frozenset({"decision-deny", "refusal"})


class AuditTracker:
    """Waiting referrals, claims by state and escalation counts, from the audit trail.

    * a referral permitted to a coordinating provider waits until an assessment outcome about
      the same person (pseudonym) from that provider is decided on;
    * a claim permitted to a payer awaits an answer until a claim response about the same
      person from that payer to that claimant is permitted (first in, first out); a denied or
      refused claim is ``refused``;
    * escalations are counted as delivered to the national coordination point, or refused.

    A record routed twice (at-least-once after a crash) counts once.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str, str]] = set()
        self._referrals: dict[tuple[str, str], datetime] = {}
        self._decided = 0
        self._claims: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
        self._answered = 0
        self._claims_refused = 0
        self._last_refused: datetime | None = None
        self._esc_delivered = 0
        self._esc_refused = 0
        self._esc_last: datetime | None = None

    def add(self, row: AuditRow) -> None:
        key = (row.kind, row.message_id or row.event_id, row.recipient or "", row.chain)
        if key in self._seen:
            return
        self._seen.add(key)
        at = row.recorded or datetime.now(UTC)
        person = row.pseudonym or ""
        if row.flow == "referral" and row.kind == PERMIT:
            if row.recipient_role == "coordinating-provider" and person:
                self._referrals.setdefault((person, row.recipient or ""), at)
        elif row.flow == "assessment-outcome" and (row.kind == PERMIT or row.kind in DENIED):
            if person and self._referrals.pop((person, row.sender or ""), None) is not None:
                self._decided += 1
        elif row.flow == "claim":
            if row.kind == PERMIT:
                self._claims[(person, row.sender or "", row.recipient or "")].append(at)
            elif row.kind in DENIED:
                self._claims_refused += 1
                self._last_refused = at
        elif row.flow == "claim-response" and row.kind == PERMIT:
            waiting = self._claims.get((person, row.recipient or "", row.sender or ""))
            if waiting:
                waiting.pop(0)
                self._answered += 1
        elif row.flow == "escalation":
            if row.kind == PERMIT and row.recipient_role == "national-coordination":
                self._esc_delivered += 1
                self._esc_last = max(self._esc_last or at, at)
            elif row.kind in DENIED:
                self._esc_refused += 1

    def referrals(self) -> WaitingReferrals:
        per: Counter[str] = Counter(provider for _, provider in self._referrals)
        return WaitingReferrals(
            count=len(self._referrals),
            oldest_since=min(self._referrals.values(), default=None),
            by_provider=tuple(sorted(per.items())),
            decided=self._decided,
        )

    def claims(self, now: datetime) -> tuple[ClaimFigure, ...]:
        open_since = [t for ts in self._claims.values() for t in ts]
        return (
            ClaimFigure(
                "awaiting-answer",
                len(open_since),
                min(open_since, default=None),
                sum(1 for t in open_since if now - t > FOUR_WEEKS),
            ),
            ClaimFigure("answered", self._answered),
            ClaimFigure("refused", self._claims_refused),
        )

    def escalations(self) -> EscalationSummary:
        return EscalationSummary(self._esc_delivered, self._esc_refused, self._esc_last)


class CapacityBoard:
    """Secure beds per region and level: the latest report of each location, summed.

    A report is the whole state of its location, so a level it no longer lists is gone there.
    A report older than the one already held for its location is ignored (reports can arrive
    out of order across partitions). The history records the board as of the latest moment
    it has seen, so it runs forward even when reports arrive out of order.
    """

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], CapacityReport] = {}
        self._history: deque[CapacityPoint] = deque(maxlen=HISTORY_KEEP)
        self._as_of: datetime | None = None
        self.reports = 0

    def apply(self, report: CapacityReport) -> bool:
        """Take a report; True when it changed the board."""
        key = (report.provider, report.location_id)
        held = self._latest.get(key)
        if held is not None and held.measured_at > report.measured_at:
            return False
        self._latest[key] = report
        self.reports += 1
        moment = report.measured_at.astimezone(UTC)
        self._as_of = moment if self._as_of is None else max(self._as_of, moment)
        point = CapacityPoint(
            self._as_of, {f"{c.region}|{c.level}": c.available for c in self.cells()}
        )
        if self._history and self._history[-1].at == point.at:
            self._history[-1] = point  # the same moment: keep the fuller state
        else:
            self._history.append(point)
        return True

    def cells(self) -> tuple[CapacityCell, ...]:
        sums: dict[tuple[str, str], list[int]] = {}
        updated: dict[tuple[str, str], datetime] = {}
        oldest: dict[tuple[str, str], datetime] = {}
        for report in self._latest.values():
            region = report.region or UNKNOWN_REGION
            for lv in report.levels:
                key = (region, lv.security_level.value)
                acc = sums.setdefault(key, [0, 0, 0, 0])
                acc[0] += lv.in_service
                acc[1] += lv.occupied
                acc[2] += lv.available
                acc[3] += 1
                at = report.measured_at.astimezone(UTC)
                updated[key] = max(updated.get(key, at), at)
                oldest[key] = min(oldest.get(key, at), at)
        return tuple(
            CapacityCell(region, level, s[0], s[1], s[2], s[3], updated[(region, level)],
                         oldest[(region, level)])
            for (region, level), s in sorted(sums.items())
        )

    def history(self) -> tuple[CapacityPoint, ...]:
        return tuple(self._history)


class EscalationBoard:
    """Escalations received by the national coordination point and the answers to them that the
    router accepted, folded from its ``out`` topic. :meth:`figures` keeps no person, case number,
    escalation id or text (operations' view and the metrics); :meth:`items` adds the case and
    the ids, for the coordination point's own escalation page, which answers them."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], EscalationFigure] = {}
        self._cases: dict[tuple[str, str], str] = {}  # key -> case number
        self._pending: dict[str, EscalationAnswer] = {}  # answers sent here, awaiting the router
        self.refused: dict[str, str] = {}  # message id of a sent answer -> the router's reason

    def apply(self, e: Escalation) -> None:
        key = (e.raised_by, e.escalation_id)
        known = self._items.get(key)
        fig = EscalationFigure(
            reason=e.reason.value,
            raised_by=e.raised_by,
            zvh=e.zvh,
            stuck_since=e.stuck_since,
            raised_at=e.raised_at.astimezone(UTC),
            level=e.level.value,
        )
        if known is not None:  # a repeat or the move to national keeps what was answered
            fig = replace(fig, state=known.state, assignee=known.assignee,
                          answered_at=known.answered_at)
        self._items[key] = fig
        self._cases[key] = e.referral_id

    def sent(self, message_id: str, answer: EscalationAnswer) -> None:
        """An answer this point sent; it counts once the router accepts it (:meth:`response`)."""
        self._pending[message_id] = answer

    def response(self, request_id: str, ok: bool, reason: str) -> None:
        answer = self._pending.pop(request_id, None)
        if answer is None:
            return
        if ok:
            self.answer(answer)
        else:
            self.refused[request_id] = reason

    def answer(self, a: EscalationAnswer) -> None:
        key = (a.raised_by, a.escalation_id)
        known = self._items.get(key)
        if known is None:
            return
        state = ANSWER_STATE.get(a.action.value, known.state)
        self._items[key] = replace(
            known,
            state=state,
            level=a.level.value if a.action.value == "move-national" else known.level,
            assignee=a.assignee if a.assignee else known.assignee,
            answered_at=a.answered_at.astimezone(UTC),
        )

    def figures(self) -> tuple[EscalationFigure, ...]:
        return tuple(sorted(self._items.values(), key=lambda f: (f.stuck_since, f.raised_at)))

    def items(self) -> list[tuple[str, str, EscalationFigure]]:
        """(escalation id, case number, figure), oldest first: the coordination page's rows."""
        rows = [(k[1], self._cases[k], f) for k, f in self._items.items()]
        return sorted(rows, key=lambda r: (r[2].stuck_since, r[2].raised_at))


ANSWER_STATE = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "request-info": "info-requested",
    "resolve": "resolved",
}


class LagTracker:
    """Consumer-group lag from committed offsets and high watermarks, remembering since when a
    group has been behind."""

    def __init__(self) -> None:
        self._since: dict[str, datetime] = {}
        self._groups: tuple[GroupLag, ...] = ()

    def update(
        self,
        committed: Mapping[str, Mapping[tuple[str, int], int]],
        highwater: Mapping[tuple[str, int], int],
        now: datetime,
    ) -> tuple[GroupLag, ...]:
        """``committed``: group -> (topic, partition) -> offset (-1: none). A group's topics are
        those it committed on; a partition of such a topic without a commit lags by its whole
        content (groups start at the earliest offset)."""
        out = []
        for group in sorted(committed):
            offsets = committed[group]
            group_topics = sorted({t for (t, _), off in offsets.items() if off >= 0})
            lag = 0
            for (t, p), hw in highwater.items():
                if t in group_topics:
                    lag += max(0, hw - max(0, offsets.get((t, p), -1)))
            if lag > 0:
                self._since.setdefault(group, now)
            else:
                self._since.pop(group, None)
            out.append(GroupLag(group, tuple(group_topics), lag, self._since.get(group)))
        self._groups = tuple(out)
        return self._groups

    @property
    def groups(self) -> tuple[GroupLag, ...]:
        return self._groups
