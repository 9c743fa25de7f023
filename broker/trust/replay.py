"""De-duplication and freshness: has this message id been processed, and is its time acceptable?

At-least-once delivery means a consumer sees some messages twice; an attacker with write access
to a topic can also replay old ones. ``ReplayGuard`` answers per message:

- ``FUTURE``    -- dated more than ``max_future`` after now (clock skew allowance);
- ``STALE``     -- dated more than ``window`` before now: too old to tell whether it is new;
- ``DUPLICATE`` -- its id was ``remember``\\ ed and is still within the window;
- ``NEW``       -- process it, then ``remember`` it (with the response to repeat on duplicates).

Boundaries are inclusive: a message dated exactly ``now - window`` or ``now + max_future`` is
accepted. Memory is bounded: ids older than the window are dropped first, and only when
``capacity`` is still reached is the oldest id dropped early (counted in ``evicted_early``, which
a component should export as a metric: early eviction weakens replay protection).

The guard never reads a clock: callers pass ``now``. Its notion of time never goes backwards: a
``now`` earlier than one already seen is treated as the latest seen. Use ids scoped to the
sender (``EnvelopeMeta.replay_id``) so that one party cannot pre-empt another's message id.
State is in memory; a restarted component rebuilds it from its topics.

**Same document, new attempt** (the one statement of the rule; adapters and the operator's
re-process follow it): the guard knows message ids, not documents. A message sent again with
the same id is a duplicate, and gets the original response. A document that was *refused* and
is sent again after its cause was fixed is a **new attempt** and must carry a **new message
id** (the ZVH adapter derives it from the document's content digest and the attempt number,
docs/adapters/zvh.md); re-sending the refused message id would only repeat the refusal.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from broker.trust._encoding import require_aware
from broker.trust.errors import Reason

DEFAULT_MAX_FUTURE = timedelta(minutes=2)
_RECENT_LIMIT = 65_536


class Verdict(StrEnum):
    """The answer of ``ReplayGuard.check``."""

    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"
    FUTURE = "future"

    @property
    def reason(self) -> Reason | None:
        """The ``TrustError`` reason for refusing, or ``None`` for ``NEW``."""
        return _REASONS.get(self)


_REASONS = {
    Verdict.DUPLICATE: Reason.DUPLICATE,
    Verdict.STALE: Reason.STALE,
    Verdict.FUTURE: Reason.FUTURE_TIMESTAMP,
}


@dataclass
class _Entry:
    timestamp: datetime
    response: bytes | None
    seq: int


class ReplayGuard:
    """Remembers processed message ids (and their responses) for ``window``."""

    def __init__(
        self,
        window: timedelta,
        max_future: timedelta = DEFAULT_MAX_FUTURE,
        capacity: int = 1_000_000,
    ) -> None:
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        if max_future < timedelta(0):
            raise ValueError("max_future must not be negative")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.window = window
        self.max_future = max_future
        self.capacity = capacity
        self.evicted_early = 0
        self._seen: dict[str, _Entry] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._seq = 0
        self._latest: datetime | None = None
        self._recent: OrderedDict[str, datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._seen

    @property
    def latest_now(self) -> datetime | None:
        """The latest ``now`` the guard has seen (its clock), or ``None``."""
        return self._latest

    def _advance(self, now: datetime) -> datetime:
        now = require_aware(now, "now")
        if self._latest is None or now > self._latest:
            self._latest = now
        self.expire()
        return self._latest

    def expire(self) -> int:
        """Drop ids dated before ``latest_now - window``; returns how many were dropped."""
        if self._latest is None:
            return 0
        cutoff = self._latest - self.window
        dropped = 0
        while self._heap and self._heap[0][0] < cutoff:
            _, seq, message_id = heapq.heappop(self._heap)
            entry = self._seen.get(message_id)
            if entry is not None and entry.seq == seq:
                del self._seen[message_id]
                dropped += 1
        return dropped

    def check(self, message_id: str, timestamp: datetime, now: datetime) -> Verdict:
        """The verdict on a message dated ``timestamp`` received at ``now`` (records nothing
        but the time; call ``remember`` once the message has been processed)."""
        timestamp = require_aware(timestamp, "timestamp")
        now = self._advance(now)
        if timestamp > now + self.max_future:
            return Verdict.FUTURE
        if timestamp < now - self.window:
            return Verdict.STALE
        if message_id in self._seen:
            return Verdict.DUPLICATE
        self._recent[message_id] = timestamp
        self._recent.move_to_end(message_id)
        while len(self._recent) > _RECENT_LIMIT:
            self._recent.popitem(last=False)
        return Verdict.NEW

    def remember(
        self,
        message_id: str,
        response: bytes | None = None,
        *,
        timestamp: datetime | None = None,
    ) -> None:
        """Record ``message_id`` as processed, with the ``response`` to repeat for duplicates.

        ``timestamp`` is the message's time; by default the one given to ``check`` for this id,
        else (conservatively) the guard's latest ``now`` plus ``max_future``. Remembering an id
        again replaces its response.
        """
        if timestamp is not None:
            timestamp = require_aware(timestamp, "timestamp")
        else:
            timestamp = self._recent.get(message_id)
            if timestamp is None:
                if self._latest is None:
                    raise ValueError("pass timestamp= (the guard has not seen any time yet)")
                timestamp = self._latest + self.max_future
        self._recent.pop(message_id, None)
        if self._latest is not None and timestamp < self._latest - self.window:
            return  # already stale: every later check says STALE, nothing to keep
        existing = self._seen.get(message_id)
        if existing is not None:
            timestamp = max(timestamp, existing.timestamp)
        else:
            # Expired ids are already gone: time only moves in ``check``, which expires them.
            while len(self._seen) >= self.capacity:
                self._evict_oldest()
        self._seq += 1
        self._seen[message_id] = _Entry(timestamp, response, self._seq)
        heapq.heappush(self._heap, (timestamp, self._seq, message_id))
        if len(self._heap) > 2 * len(self._seen) + 1024:
            self._heap = [(e.timestamp, e.seq, i) for i, e in self._seen.items()]
            heapq.heapify(self._heap)

    def _evict_oldest(self) -> None:
        while self._heap:
            _, seq, message_id = heapq.heappop(self._heap)
            entry = self._seen.get(message_id)
            if entry is not None and entry.seq == seq:
                del self._seen[message_id]
                self.evicted_early += 1
                return

    def response_for(self, message_id: str) -> bytes | None:
        """The response remembered with ``message_id`` (``None`` if none or unknown)."""
        entry = self._seen.get(message_id)
        return entry.response if entry is not None else None
