"""Read every ketenbus topic from the beginning and keep the figures current; no database.

One consumer without a group is ``assign()``-ed every partition of every ketenbus topic. It keeps
only routing headers and timestamps of sealed records, decodes the audit trail (plain JSON), and
opens exactly two kinds of sealed message, each with the keys of the party they are for:
capacity reports delivered to the capacity dashboard, and escalations delivered to the national
coordination point. Capacity reports are counts only; of an escalation only the reason, the
raising party, the ZVH and the dates are kept.

Consumer-group lag is the fetch high watermark (``consumer.highwater``) minus the committed
offset. ``end_offsets()`` is not used: on the embedded Tansu broker it is wrong when the last
record batch holds more than one record (platform-facts 1.6). Committed offsets are asked for
with explicit partitions, which Tansu needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition

from broker.apps.monitoring.model import Snapshot
from broker.apps.monitoring.state import (
    AuditTracker,
    CapacityBoard,
    EscalationBoard,
    LagTracker,
    RecordMeta,
    RefusalTracker,
    TopicTracker,
)
from broker.audit import AuditRow, ChainRecord, MalformedRecord
from broker.config import Settings
from broker.kafka import make_admin, make_consumer
from broker.trust import TrustError
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import MessageError
from schemas.flows.capacity import capacity_from_message
from schemas.flows.escalation import escalation_from_message
from schemas.flows.escalation_answer import answer_from_message
from schemas.flows.response import response_from_message
from schemas.messaging import parse_message
from schemas.vocab import EventCode

log = logging.getLogger(__name__)

CATALOGUE = frozenset(t.name for t in topics.catalogue())


def watched(topic: str) -> bool:
    """Whether a topic is one of ours (the catalogue and every party's ``out.`` topic)."""
    return topic in CATALOGUE or topic.startswith(topics.OUTBOUND_PREFIX)


def utc_now() -> datetime:
    return datetime.now(UTC)


LADDER_EVENTS = {
    EventCode.ESCALATION.value,
    EventCode.ESCALATION_ANSWER.value,
    EventCode.RESPONSE.value,
}
"""What the coordination point's ``out`` topic tells the escalation board."""


class Collector:
    """Builds :class:`Snapshot` s from the topics: :meth:`catch_up` once, or :meth:`start` to
    follow. ``capacity`` and ``escalations`` are the clients of the parties whose deliveries may
    be opened; without them those figures stay empty (and the snapshot says why)."""

    def __init__(
        self,
        settings: Settings,
        *,
        capacity: PartyClient | None = None,
        escalations: PartyClient | None = None,
        lag_interval: float = 3.0,
        topic_check_interval: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.capacity_client = capacity
        self.escalation_client = escalations
        self.lag_interval = lag_interval
        self.topic_check_interval = topic_check_interval
        self.clock = clock
        self.version = 0
        self._snapshot = Snapshot(taken_at=clock())
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None
        self._admin: Any = None
        self._tps: list[TopicPartition] = []
        self._reset()

    # --- state -------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.topic_tracker = TopicTracker()
        self.refusals = RefusalTracker()
        self.audit = AuditTracker()
        self.capacity = CapacityBoard()
        self.escalation_board = EscalationBoard()
        self.lags = LagTracker()
        self.problems: dict[str, int] = {}
        self._dirty = True

    def _problem(self, what: str) -> None:
        self.problems[what] = self.problems.get(what, 0) + 1

    def apply(self, topic: str, partition: int, offset: int, timestamp_ms: int | None,
              key: bytes | None, value: bytes | None,
              headers: list[tuple[str, bytes | None]]) -> None:
        """Fold one record into the figures (also used by tests without Kafka)."""
        meta = RecordMeta.of(topic, partition, offset, timestamp_ms, headers)
        self.topic_tracker.add(meta)
        self.refusals.add(meta)
        if topic == topics.AUDIT.name and value:
            self._audit(value)
        elif self.capacity_client and topic == self._out(self.capacity_client):
            if meta.headers.get("kb-event") == EventCode.CAPACITY_REPORT.value:
                self._capacity(key, value or b"", headers)
        elif (
            self.escalation_client
            and topic == self._out(self.escalation_client)
            and meta.headers.get("kb-event") in LADDER_EVENTS
        ):
            self._escalation(key, value or b"", headers)
        self._dirty = True

    @staticmethod
    def _out(client: PartyClient) -> str:
        return client.registry.get(client.party_id).outbound_topic

    def _audit(self, value: bytes) -> None:
        try:
            rec = ChainRecord.decode(value)
        except MalformedRecord:
            self._problem("malformed audit record(s): run 'ketenbus audit verify'")
            return
        self.audit.add(AuditRow.from_event(rec.event, position=-1, chain=rec.chain, seq=rec.seq))

    def _open(self, client: PartyClient, key: bytes | None, value: bytes,
              headers: list[tuple[str, bytes | None]]) -> Any:
        clean = [(k, v or b"") for k, v in headers]
        try:
            return parse_message(client.open(key, value, clean).payload, full=False)
        except (TrustError, MessageError) as err:
            reason = getattr(err, "reason", "")
            self._problem(f"{client.party_id}: delivery not readable ({reason})")
            return None

    def _capacity(self, key: bytes | None, value: bytes,
                  headers: list[tuple[str, bytes | None]]) -> None:
        assert self.capacity_client is not None
        msg = self._open(self.capacity_client, key, value, headers)
        if msg is None:
            return
        try:
            self.capacity.apply(capacity_from_message(msg))
        except MessageError as err:
            self._problem(f"capacity report not readable ({err.reason})")

    def _escalation(self, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes | None]]) -> None:
        assert self.escalation_client is not None
        msg = self._open(self.escalation_client, key, value, headers)
        if msg is None:
            return
        try:
            event = msg.meta.event
            if event is EventCode.ESCALATION:
                self.escalation_board.apply(escalation_from_message(msg))
            elif event is EventCode.ESCALATION_ANSWER:
                self.escalation_board.answer(answer_from_message(msg))
            else:  # the router's verdict on an answer this point sent
                r = response_from_message(msg)
                reason = ", ".join(i.reason or i.code for i in r.issues)
                self.escalation_board.response(r.request_id, r.code.value == "ok", reason)
        except MessageError as err:
            self._problem(f"escalation not readable ({err.reason})")

    def build(self, highwater: dict[tuple[str, int], int] | None = None) -> Snapshot:
        """A snapshot of the figures now."""
        now = self.clock()
        hw = highwater if highwater is not None else self._highwater()
        partitions: dict[str, int] = {}
        totals: dict[str, int] = {}
        for (t, _), h in hw.items():
            partitions[t] = partitions.get(t, 0) + 1
            totals[t] = totals.get(t, 0) + h
        self.topic_tracker.prune(now)
        sources = []
        if self.capacity_client:
            sources.append(f"capacity: deliveries to {self.capacity_client.party_id}")
        else:
            sources.append("capacity: no capacity-dashboard keys here, so no bed counts")
        if self.escalation_client:
            sources.append(f"escalations: deliveries to {self.escalation_client.party_id}")
        snap = Snapshot(
            taken_at=now,
            topics=self.topic_tracker.figures(now, partitions, totals),
            groups=self.lags.groups,
            refusals=self.refusals.figures(),
            dead_letters=self.refusals.recent(),
            referrals=self.audit.referrals(),
            claims=self.audit.claims(now),
            capacity=self.capacity.cells(),
            capacity_history=self.capacity.history(),
            escalations=self.escalation_board.figures(),
            escalation_summary=self.audit.escalations(),
            flows_per_hour=self.topic_tracker.flows_per_hour(),
            problems=tuple(f"{what} ×{n}" for what, n in sorted(self.problems.items())),
            sources=tuple(sources),
        )
        self._snapshot = snap
        self._dirty = False
        return snap

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    # --- Kafka ---------------------------------------------------------------------------------

    def _highwater(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for tp in self._tps:
            hw = self._consumer.highwater(tp) if self._consumer is not None else None
            out[(tp.topic, tp.partition)] = hw or 0
        return out

    async def _topic_partitions(self) -> list[TopicPartition]:
        names = await self._consumer.topics()  # Metadata for all topics: creates nothing
        tps = []
        for name in sorted(n for n in names if watched(n)):
            for p in sorted(self._consumer.partitions_for_topic(name) or ()):
                tps.append(TopicPartition(name, p))
        return tps

    async def _connect(self) -> None:
        self._consumer = make_consumer(
            self.settings,
            group_id=None,
            client_id=f"{self.settings.client_id_prefix}-monitor",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self._consumer.start()
        self._admin = make_admin(self.settings)
        await self._admin.start()
        await self._assign()

    async def _assign(self) -> None:
        self._reset()
        self._tps = await self._topic_partitions()
        if self._tps:
            self._consumer.assign(self._tps)
            await self._consumer.seek_to_beginning(*self._tps)

    async def _disconnect(self) -> None:
        for client, stop in ((self._consumer, "stop"), (self._admin, "close")):
            if client is not None:
                with contextlib.suppress(Exception):
                    await getattr(client, stop)()
        self._consumer = self._admin = None

    async def _poll(self, timeout_ms: int = 300) -> int:
        if not self._tps:
            await asyncio.sleep(timeout_ms / 1000)
            return 0
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        n = 0
        for records in batch.values():
            for r in records:
                self.apply(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                           list(r.headers or ()))
                n += 1
        return n

    async def _caught_up(self) -> bool:
        for tp in self._tps:
            hw = self._consumer.highwater(tp)
            if hw is None or await self._consumer.position(tp) < hw:
                return False
        return True

    async def _refresh_lags(self) -> None:
        if not self._tps:
            return
        committed: dict[str, dict[tuple[str, int], int]] = {}
        try:
            groups = await self._admin.list_consumer_groups()
            for entry in groups:
                group = entry[0]
                offsets = await self._admin.list_consumer_group_offsets(
                    group, partitions=self._tps
                )
                committed[group] = {
                    (tp.topic, tp.partition): (om.offset if om is not None else -1)
                    for tp, om in offsets.items()
                }
        except Exception as exc:  # the admin API may be refused; keep the other figures
            log.warning("consumer-group offsets not available: %s", type(exc).__name__)
            self._problem("consumer-group offsets not available")
            return
        self.lags.update(committed, self._highwater(), self.clock())
        self._dirty = True

    async def catch_up(self, timeout: float = 30.0) -> Snapshot:
        """Connect, read every topic up to its high watermark, ask the lags, build a snapshot
        and disconnect (``ketenbus monitor --once``)."""
        await self._connect()
        try:
            deadline = time.monotonic() + timeout
            while True:
                await self._poll(200)
                if await self._caught_up():
                    break
                if time.monotonic() > deadline:
                    self._problem("did not reach the end of every topic in time")
                    break
            await self._refresh_lags()
            return self.build()
        finally:
            await self._disconnect()

    async def start(self) -> None:
        """Connect and follow the topics in the background; :attr:`snapshot` stays current."""
        await self._connect()
        self._task = asyncio.create_task(self._run(), name="ketenbus-monitor-collector")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_lag = next_topics = next_build = loop.time()
        while True:
            try:
                n = await self._poll(300)
                now = loop.time()
                if now >= next_topics:
                    next_topics = now + self.topic_check_interval
                    if await self._topic_partitions() != self._tps:
                        log.info("the set of topics changed; reading them again from the start")
                        await self._assign()
                if now >= next_lag:
                    next_lag = now + self.lag_interval
                    await self._refresh_lags()
                if (self._dirty and (n == 0 or now >= next_build)) or now >= next_build + 5:
                    next_build = now + 1.0
                    self.build()
                    await self._notify()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep following; the snapshot says what failed
                log.exception("monitor collector error")
                self._problem("collector error (see the log)")
                await asyncio.sleep(1.0)

    async def _notify(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def wait_for_change(self, version: int, timeout: float) -> int:
        """Wait until the snapshot version passes ``version`` (or ``timeout``); the version."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version > version), timeout
                )
            return self.version

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._disconnect()
