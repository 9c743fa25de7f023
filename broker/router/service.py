"""The router on Kafka: one consumer group over the routed topics, at-least-once.

A record's offset is committed only after everything the pipeline produced for it (deliveries,
responses, rejections, audit events) is acknowledged by Kafka, so a crash re-routes the record
and receiving adapters de-duplicate on the message id. Publishing retries are bounded (tenacity);
a ``BrokerWatch`` notices a broker that lost its state and restores topics, the consent log and
the subscription without an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from broker.component import metrics
from broker.component.health import HealthStatus
from broker.component.lifecycle import KafkaComponent, raw_records
from broker.component.retry import bounded
from broker.config import Settings
from broker.kafka import ensure_topics, establish_epoch, new_epoch, repair_topics
from broker.kafka.partitioner import KeyPartitioner
from broker.router import consent_snapshot, heap, ladder_log
from broker.router.audit_sink import AuditSink, compliance_reader
from broker.router.consent_log import ConsentLog
from broker.router.deliveries import INDEX_EVENT
from broker.router.delivery_log import DeliveryLog
from broker.router.facts import Fact
from broker.router.ladder import LadderTimes, messages_for
from broker.router.pipeline import AUDIT_DOMAIN, Pipeline, RouteResult, RouterState
from broker.router.records import Incoming, Outgoing
from broker.router.replay_log import rebuild_replay
from broker.router.spans import traced
from broker.trust import PartyRegistry
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.messaging import MessageMeta, dumps
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

log = logging.getLogger(__name__)
ROUTER_GROUP = "ketenbus-router"
ROUTE_SLICE = 50
"""Records routed between two turns of the event loop. The group's heartbeats run on that loop:
a fetched batch of 500 routed in one go held it for 2-4 s on a loaded 2-core machine, and the
coordinator evicted the router (session timeout 2 s on the embedded broker, issue 19)."""


class _CatchUpOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before routing partitions it was just given, the router waits until it has started
    (audit chain, consent view) and catches up with the consent log (another instance may
    have applied and acknowledged consents for them)."""

    def __init__(self, service: RouterService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.service.assigned.difference_update(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.service.assigned.update(assigned)
        if assigned:
            await self.service._ready.wait()
            await self.service.consent_log.catch_up()


class RouterService(KafkaComponent):
    def __init__(
        self,
        settings: Settings,
        state: RouterState,
        *,
        on_fact: Callable[[Fact], None] | None = None,
        group_id: str = ROUTER_GROUP,
        session_timeout_ms: int | None = None,
        watch_interval: float = 1.0,
        max_batch: int = 500,
    ) -> None:
        super().__init__(settings, "router", session_timeout_ms=session_timeout_ms)
        self.trace_scope = "router"
        self.state = state
        self.pipeline = Pipeline(state)
        self.on_fact = on_fact
        self.group_id = group_id
        self.watch_interval = watch_interval
        self.max_batch = max_batch
        self.consent_log = ConsentLog(settings, state)
        self.delivery_log = DeliveryLog(settings, state)
        declared = state.registry.audit_chain_for_key(state.keys.party_id, state.keys.key_id)
        reader = compliance_reader(state.registry, datetime.now(UTC))
        if reader is not None and state.datakeys is not None:
            # the sealed detail under the person's data key, so erasure reaches it
            reader = replace(reader, datakey=state.datakeys.for_person)
        self.audit = AuditSink(
            settings,
            state.keys,
            declared.chain if declared else None,
            older_keys=state.keyring.signing_keys(),
            reader=reader,
        )
        self.routed = 0
        self.internal_errors = 0
        self._follow: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # audit, consent view and epoch in place: route
        # the escalation ladder and the watchdogs (broker/router/ladder.py)
        state.ladder.router = state.keys.party_id
        if not state.regional_steps:
            state.regional_steps = dict(settings.escalation_regional_steps)
        self.ladder_times = LadderTimes(
            regional_after=timedelta(seconds=settings.escalation_regional_seconds),
            undecided_after=timedelta(seconds=settings.watchdog_undecided_seconds),
            no_care_start_after=timedelta(seconds=settings.watchdog_no_care_start_seconds),
            no_placement_after=timedelta(seconds=settings.watchdog_no_placement_seconds),
        )
        self.ladder_sent = 0
        self._ladder_task: asyncio.Task[None] | None = None
        self._ladder_done: set[str] = set()
        self._follow_deliveries: asyncio.Task[None] | None = None
        self._keys_follow: asyncio.Task[None] | None = None
        # the consent view snapshot (broker/router/consent_snapshot.py)
        self.assigned: set[TopicPartition] = set()  # this instance's routed partitions
        self.snapshot_loaded: consent_snapshot.Head | None = None
        self.snapshot_erased = 0  # persons in the loaded snapshot whose data key was erased
        self.snapshot_written: consent_snapshot.Snapshot | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._channels_follow: asyncio.Task[None] | None = None
        self._joining: asyncio.Task[None] | None = None

    def producer_options(self) -> dict[str, Any]:
        """No linger: a batch's records are sent together and then awaited at once, so they are
        batched already; a linger would only hold back the acknowledgements the offsets wait
        for (``Settings.router_linger_ms``). Keys partitioned as by the default partitioner,
        without its pure-Python hash per record (``broker/kafka/partitioner.py``)."""
        return {"linger_ms": self.settings.router_linger_ms, "partitioner": KeyPartitioner()}

    def use_registry(self, registry: PartyRegistry) -> None:
        """A newer signed registry (``broker.component.registry_watch``): the next record is
        verified against it, so a revoked key is refused from then on (issue 21). A party that
        joined gets its outbound topic before anything is routed to it."""
        joined = [p.id for p in registry if p.id not in self.state.registry]
        self.state.registry = registry
        if joined and self._producer is not None:
            self._joining = asyncio.create_task(self._prepare_topics(joined), name="joined")

    async def _prepare_topics(self, party_ids: list[str]) -> None:
        """Create the new parties' topics and learn where they live before the first record
        goes there (a produce request that has to look a topic up mid-batch stalled the
        embedded broker's other partitions in the same request)."""
        try:
            specs = [topics.outbound(p) for p in party_ids]
            await ensure_topics(self.settings, specs)
            for spec in specs:
                await self.producer.partitions_for(spec.name)
        except Exception as err:  # the broker may be away: the first delivery creates it
            log.warning("topics of new parties not prepared: %s", type(err).__name__)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the parts side by side (a restart is measured in seconds, issue 19): the audit
        chain, the consent view, the epoch and the group join overlap; partitions assigned
        before the consent view is whole wait for it in the rebalance listener, so nothing is
        routed on a partial view."""
        producer = await self.open_producer()
        self._ready.clear()

        async def consents() -> None:
            if self.state.datakeys is not None:  # before the consent log, which it opens
                self.state.datakeys.on_erased = self._forget_erased
                read = await self.state.datakeys.load()
                log.info("key store rebuilt from %d records", read)
                self._keys_follow = asyncio.create_task(self.state.datakeys.follow(), name="keys")
            await self._start_consent_log()

        async def channels() -> None:
            if self.state.channels is not None:  # in.* and out.* data layers
                read = await self.state.channels.load()
                log.info("channel key stores rebuilt from %d records", read)
                self._channels_follow = asyncio.create_task(
                    self.state.channels.follow(), name="channel-keys"
                )

        async def parts() -> str:
            # One router creates the epoch; the others that start with it adopt it (issue 19).
            _, _, _, (epoch, _), _, _ = await asyncio.gather(
                self.audit.start(producer),
                consents(),
                channels(),
                establish_epoch(self.settings),
                self._rebuild_replay(),  # a replay of an old genuine record stays a replay
                self._rebuild_ladder(),
            )
            heap.settle()  # the state just built stays out of every collection
            self._ready.set()
            return epoch

        epoch, _ = await asyncio.gather(parts(), self.start_subscriber())
        self.watch_broker(
            epoch,
            self._recover,
            owner=True,
            on_lost=self._pause,
            follow=self._follow_restore,
            interval=self.watch_interval,
        )
        self.health.set(HealthStatus.OK, f"epoch {epoch}")
        self._ladder_task = asyncio.create_task(self._ladder_loop(), name="router-ladder")
        if self.settings.consent_snapshot_seconds > 0:
            self._snapshot_task = asyncio.create_task(self._snapshot_loop(), name="snapshot")

    # --- the consent view snapshot -----------------------------------------------------------

    def writes_snapshots(self) -> bool:
        """One writer at a time: the instance the group gave partition 0 of ``in.consent``
        (during a rebalance two may briefly write; a loader takes the newest valid one)."""
        return TopicPartition(topics.IN_CONSENT.name, 0) in self.assigned

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.consent_snapshot_seconds)
            if not self.writes_snapshots():
                continue
            written = self.snapshot_written
            if written is not None and written.positions == self.consent_log.positions:
                continue  # the consent log did not move
            try:
                await self.write_snapshot()
            except Exception as err:  # the broker may be away: the next period tries again
                log.warning("consent snapshot not written: %s", type(err).__name__)

    async def write_snapshot(self) -> consent_snapshot.Snapshot:
        """Seal the consent view as of the consent log position it has applied and publish
        it: data keys made for it first, then its chunks, then its head."""
        snap = await consent_snapshot.build(self.state, dict(self.consent_log.positions))
        await self.publish(self._new_keys())
        await consent_snapshot.write(self.producer, self.state, snap)
        self.snapshot_written = snap
        log.info(
            "consent snapshot written: %d persons, %d consents, %d bytes in %d chunks",
            snap.persons, snap.consents, snap.size, len(snap.chunks),
        )  # fmt: skip
        return snap

    async def _load_snapshot(self) -> dict[int, int] | None:
        """At first start (an empty view), the newest valid snapshot becomes the view and the
        consent log is read only from its position; None: read it all. Never a reason not to
        start: anything wrong with a snapshot means a full replay."""
        if len(self.state.consents):
            return None  # after a broker restore: the view in memory is whole
        try:
            loaded = await consent_snapshot.load_latest(self.settings, self.state)
        except Exception as err:
            log.warning("no consent snapshot loaded: %s", type(err).__name__)
            return None
        if loaded is None:
            return None
        keys = self.state.datakeys
        if keys is not None:  # erased while it loaded: gone before it counts (AVG art. 17)
            for pseudo, dkid in loaded.dkids:
                if keys.store.erased(dkid):
                    loaded.view.forget(pseudo)
        self.state.consents = loaded.view
        self.snapshot_loaded = loaded.head
        self.snapshot_erased = loaded.erased
        log.info(
            "consent view loaded from snapshot %s: %d consents (%d persons erased since)",
            loaded.head.snapshot_id, len(loaded.view), loaded.erased,
        )  # fmt: skip
        return loaded.head.positions

    async def _ladder_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.escalation_tick_seconds)
            try:
                await self.ladder_tick()
            except Exception as err:  # the broker may be away: the next tick tries again
                log.warning("escalation ladder tick failed: %s", type(err).__name__)

    async def ladder_tick(self, now: datetime | None = None) -> int:
        """Send what the ladder and the watchdogs find due, as the router party, to
        ``in.escalation``: the router then routes it like anyone's (checks, policy, audit).
        Message ids are fixed per step, so a repeat is dropped as a duplicate."""
        now = now or datetime.now(UTC)
        keys = self.state.keys
        client = PartyClient(
            party_id=keys.party_id,
            keys=keys,
            keyring=self.state.keyring,
            registry=self.state.registry,
            pseudonyms=self.state.pseudonyms,
            router_id=keys.party_id,
        )
        bundles = []
        for due in self.state.ladder.due(now, self.ladder_times):
            for bundle in messages_for(due, keys.party_id, now, self.ladder_times):
                if bundle["id"] not in self._ladder_done:
                    bundles.append(bundle)
        if not bundles:
            return 0
        sealed = client.seal_messages([(b, None) for b in bundles], now)
        records = [
            Outgoing(topics.IN_ESCALATION.name, key, value, headers)
            for key, value, headers in sealed
        ]
        await self.publish(records)
        self._ladder_done.update(b["id"] for b in bundles)
        self.ladder_sent += len(bundles)
        return len(bundles)

    async def _rebuild_replay(self) -> None:
        """What the group already routed is known again before consuming (a replay of an old
        genuine record after a restart stays a duplicate). A rebuild that fails leaves the
        guard to what it sees from now on: logged, never a reason not to start."""
        try:
            n = await rebuild_replay(self.settings, self.state, self.group_id)
        except Exception as err:
            log.warning("replay guard not rebuilt from the topics: %s", type(err).__name__)
            return
        log.info("replay guard rebuilt: %d routed messages within the window", n)

    async def _rebuild_ladder(self) -> None:
        """Once, at start: after a broker restore the fold in memory is already whole."""
        events = await ladder_log.rebuild(self.settings, self.state)
        self.state.ladder.drain()  # what was replayed is in the log already
        log.info("escalation ladder rebuilt from %d ladder-log events", events)

    async def _start_consent_log(self) -> None:
        self.consent_log = ConsentLog(self.settings, self.state)
        positions = await self._load_snapshot()
        applied = await self.consent_log.start(positions=positions)
        log.info("consent view rebuilt from %d consent records", applied)
        self._follow = asyncio.create_task(self.consent_log.follow(), name="consent-log")
        # who received what: corrections and withdrawals go to exactly those (AVG art. 19)
        self.delivery_log = DeliveryLog(self.settings, self.state)
        indexed = await self.delivery_log.start()
        log.info("delivery index rebuilt from %d records", indexed)
        self._follow_deliveries = asyncio.create_task(
            self.delivery_log.follow(), name="delivery-log"
        )
        heap.settle()  # the rebuilt consent view and index, like the state built at start

    async def _stop_consent_log(self) -> None:
        for task in (self._follow, self._follow_deliveries):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._follow = self._follow_deliveries = None

        async def stop(view: ConsentLog) -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await view.stop()

        # side by side: with the broker gone each may wait out its timeout
        await asyncio.gather(stop(self.consent_log), stop(self.delivery_log))

    def subscribe(self, broker: KafkaBroker) -> None:
        """One batch subscriber over every routed topic, in the router's consumer group.

        Range assignment gives each instance the same partition numbers of every routed topic,
        and a party keys its consent and its messages about one person by the same pseudonym,
        so both land on one instance: the consent it applied before acknowledging it is in its
        own view when the referral arrives (issue 19, "consent before referral"). Whoever
        takes partitions over first catches up with the consent log."""
        options = {
            **self.subscriber_options(self.group_id),
            "fetch_max_wait_ms": self.settings.router_fetch_max_wait_ms,
        }
        subscriber = broker.subscriber(
            *(t.name for t in topics.ROUTED),
            **options,
            batch=True,
            decoder=raw_records,
            max_records=self.max_batch,
            batch_timeout_ms=self.settings.router_fetch_max_wait_ms,
            partition_assignment_strategy=(RangePartitionAssignor,),
            listener=_CatchUpOnAssign(self),
        )
        subscriber(self._handle_batch)

    async def _pause(self) -> None:
        """The broker lost its state: stop consuming at once (and stop naming topics, which
        would make the embedded broker auto-create them with the wrong partition count)."""
        await self.stop_subscriber()
        await self._stop_consent_log()

    async def _recover(self) -> str:
        await self._pause()
        party_ids = [p.id for p in self.state.registry.parties]
        await repair_topics(self.settings, topics.catalogue(party_ids))
        await self._reseed_consent_log()
        self.audit.reset()
        await self._start_consent_log()
        epoch = await new_epoch(self.settings)
        await self.start_subscriber()
        log.warning(
            "broker state restored: topics, %d consents, new epoch %s",
            len(self.state.consents),
            epoch,
        )
        return epoch

    async def _follow_restore(self) -> str | None:
        """Another router restored the broker (or moved the epoch): rebuild the consent view
        from the restored consent log and subscribe again; create nothing."""
        await self._pause()
        self.audit.reset()
        await self._start_consent_log()
        await self.start_subscriber()
        log.warning("following another router's restore: %d consents", len(self.state.consents))
        return None

    async def _reseed_consent_log(self) -> None:
        """Write the consent view back to the (empty) consent log so other instances and a
        restart of this one rebuild the same view."""
        records = []
        keys = self.state.datakeys
        if keys is not None:  # keys under a destroyed KEK: erased ones leave the view first
            keys.settle()
        for pseudo, record in list(self.state.consents):
            if keys is not None and keys.store.erased_owner(self._owner_of(record.person_bsn)):
                # never a new data key for an erased person (docs/erasure.md): the consent
                # would be readable again; it leaves the view instead
                self.state.consents.forget(pseudo)
                continue
            meta = MessageMeta.new(
                EventCode.CONSENT, record.recorded_by, PurposeOfUse.COC, LegalBasis.CONSENT
            )
            payload = self.pipeline.consent_payload(
                dumps(consent_message(record, meta)), record.person_bsn
            )
            sealed = self.pipeline._seal_for(
                payload,
                self.pipeline.router_id,
                EventCode.CONSENT.value,
                meta.message_id,
                f"{pseudo}.{record.consent_id}",
                meta.timestamp,
            )
            records.append(Outgoing(topics.CONSENT.name, sealed.key, sealed.value, sealed.headers))
        for entry in self.state.deliveries:  # and the delivery index, the same way
            sealed = self.pipeline._seal_for(
                entry.to_json(),
                self.pipeline.router_id,
                INDEX_EVENT,
                entry.message_id,
                entry.key,
                datetime.now(UTC),
            )
            records.append(
                Outgoing(topics.DELIVERIES.name, sealed.key, sealed.value, sealed.headers)
            )
        if keys is not None:
            keys.pending[:0] = keys.store.snapshot()
        if self.state.channels is not None:  # and every party's channel keys
            self.state.channels.pending[:0] = self.state.channels.snapshot()
        await self.publish([*self._new_keys(), *records])

    def _owner_of(self, bsn: str) -> str:
        """The key-store owner of a person, as :meth:`Pipeline.consent_payload` names it."""
        assert self.state.datakeys is not None
        person = self.state.pseudonyms.pseudonym(AUDIT_DOMAIN, bsn)
        return self.state.datakeys.store.owner(person)

    def _forget_erased(self, owner: str) -> None:
        """A tombstone on the key store (``ketenbus erase``, seen by every instance within a
        poll): the person's consents leave the in-memory view at once, as their records on the
        consent log became unreadable (AVG art. 17). Otherwise a view that still held them would
        judge referrals on them and, after a broker restart, write them back under a new key."""
        persons = list(self.state.consents.person_bsns())
        gone = sum(
            self.state.consents.forget(pseudo)
            for pseudo, bsn in persons
            if self._owner_of(bsn) == owner
        )
        if gone:
            log.info("an erased person's %d consent(s) left the consent view", gone)

    def _new_keys(self) -> list[Outgoing]:
        """The key-store records of data keys made since the last call: published with (and
        acknowledged before the offsets of) the batch whose records they open."""
        out = []
        if self.state.datakeys is not None:
            out = [Outgoing(topics.KEY_STORE.name, k, v) for k, v in self.state.datakeys.drain()]
        if self.state.channels is not None:  # the parties' channel keys (docs/erasure.md)
            out += [Outgoing(t, k, v) for t, k, v in self.state.channels.drain()]
        return out

    async def stop(self) -> None:
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            await asyncio.gather(self._snapshot_task, return_exceptions=True)
            self._snapshot_task = None
        if self._ladder_task is not None:
            self._ladder_task.cancel()
            await asyncio.gather(self._ladder_task, return_exceptions=True)
            self._ladder_task = None
        await self.stop_watch()
        for follower in (self._keys_follow, self._channels_follow):
            if follower is not None:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)
        await self._pause()
        await self.audit.stop()
        await self.close()

    # --- the message path ----------------------------------------------------------------------

    async def _handle_batch(self, msg: KafkaMessage) -> None:
        """Route a batch, then publish everything it produced and wait for Kafka to acknowledge
        all of it before the batch's offsets are committed (at-least-once). Waiting once per
        batch instead of once per record is what makes the router keep up."""
        if not self._ready.is_set():
            # fetched before start() finished (the rebalance listener's wait does not hold the
            # fetcher): a batch routed now would find no audit chain resumed and a partial
            # consent view; it waits instead of failing and being fetched again
            await self._ready.wait()
        raws: Any = msg.raw_message
        batch = raws if isinstance(raws, (list, tuple)) else (raws,)
        recs = [
            Incoming(r.topic, r.key, r.value or b"", list(r.headers or ()), r.partition, r.offset)
            for r in batch
        ]
        started, started_ns = time.perf_counter(), time.time_ns()
        results = await self._route_sliced(recs)
        each = (time.perf_counter() - started) / max(1, len(recs))
        produced = traced(self.state.keys.party_id, recs, results, started_ns, time.time_ns())
        records: list[Outgoing] = []
        facts: list[Fact] = []
        for result, out in zip(results, produced, strict=True):
            records.extend(out)
            facts.extend(result.facts)
        metrics.observe_batch(
            ((rec.topic, result.facts) for rec, result in zip(recs, results, strict=True)), each
        )
        if self.on_fact:  # the decisions are made; show them before their effects arrive
            for f in facts:
                self.on_fact(f)
        audit = self.audit.outgoing(facts)
        records = [*self._new_keys(), *records, *audit]
        # one round of acknowledgements for the batch: its records and its audit records
        await bounded("publishing", self.health, lambda: self.publish(records))
        await self.audit.sent(len(audit))
        self.recovered_from_degraded("publishing works again")
        self.routed += len(batch)

    async def _route_sliced(self, recs: list[Incoming]) -> list[RouteResult]:
        """Route the batch ``ROUTE_SLICE`` records at a time, letting the event loop turn
        between slices (heartbeats, the broker watch); the batch is still published and
        committed as one."""
        results: list[RouteResult] = []
        for start in range(0, len(recs), ROUTE_SLICE):
            if start:
                await asyncio.sleep(0)
            part = recs[start : start + ROUTE_SLICE]
            results += self.pipeline.route_batch(part, on_error=self._internal_error)
        return results

    def _internal_error(self, rec: Incoming, err: BaseException) -> None:
        """A bug met a record: log where and the code path, never the exception's message (it
        may quote the input); the record is parked with its reason."""
        log.error(
            "pipeline failed on %s[%d]@%d: %s\n%s",
            rec.topic,
            rec.partition,
            rec.offset,
            type(err).__name__,
            "".join(traceback.format_tb(err.__traceback__)),
        )
        self.internal_errors += 1

    async def publish(self, records: list[Outgoing]) -> None:
        producer = self.producer
        futures = [
            await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers)
            for r in records
        ]
        for f in futures:
            await f
