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
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from broker.component import metrics
from broker.component.health import HealthStatus
from broker.component.lifecycle import KafkaComponent
from broker.component.retry import bounded
from broker.config import Settings
from broker.kafka import current_epoch, new_epoch, repair_topics
from broker.router.audit_sink import AuditSink, compliance_reader
from broker.router.consent_log import ConsentLog
from broker.router.facts import Fact
from broker.router.pipeline import Pipeline, RouterState
from broker.router.records import Incoming, Outgoing
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.messaging import MessageMeta, dumps
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

log = logging.getLogger(__name__)
ROUTER_GROUP = "ketenbus-router"


class RouterService(KafkaComponent):
    def __init__(
        self,
        settings: Settings,
        state: RouterState,
        *,
        on_fact: Callable[[Fact], None] | None = None,
        group_id: str = ROUTER_GROUP,
        session_timeout_ms: int = 6000,
        watch_interval: float = 1.0,
        max_batch: int = 500,
    ) -> None:
        super().__init__(settings, "router", session_timeout_ms=session_timeout_ms)
        self.state = state
        self.pipeline = Pipeline(state)
        self.on_fact = on_fact
        self.group_id = group_id
        self.watch_interval = watch_interval
        self.max_batch = max_batch
        self.consent_log = ConsentLog(settings, state)
        declared = state.registry.audit_chain_of(state.keys.party_id)
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
        self._keys_follow: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.audit.start(await self.open_producer())
        if self.state.datakeys is not None:  # before the consent log, which it opens
            read = await self.state.datakeys.load()
            log.info("key store rebuilt from %d records", read)
            self._keys_follow = asyncio.create_task(self.state.datakeys.follow(), name="keys")
        await self._start_consent_log()
        epoch = await current_epoch(self.settings) or await new_epoch(self.settings)
        await self.start_subscriber()
        self.watch_broker(
            epoch, self._recover, owner=True, on_lost=self._pause, interval=self.watch_interval
        )
        self.health.set(HealthStatus.OK, f"epoch {epoch}")

    async def _start_consent_log(self) -> None:
        self.consent_log = ConsentLog(self.settings, self.state)
        applied = await self.consent_log.start()
        log.info("consent view rebuilt from %d consent records", applied)
        self._follow = asyncio.create_task(self.consent_log.follow(), name="consent-log")

    async def _stop_consent_log(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            await asyncio.gather(self._follow, return_exceptions=True)
            self._follow = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self.consent_log.stop()

    def subscribe(self, broker: KafkaBroker) -> None:
        """One batch subscriber over every routed topic, in the router's consumer group."""
        subscriber = broker.subscriber(
            *(t.name for t in topics.ROUTED),
            **self.subscriber_options(self.group_id),
            batch=True,
            max_records=self.max_batch,
            batch_timeout_ms=50,
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

    async def _reseed_consent_log(self) -> None:
        """Write the consent view back to the (empty) consent log so other instances and a
        restart of this one rebuild the same view."""
        records = []
        for pseudo, record in self.state.consents:
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
        keys = self.state.datakeys
        if keys is not None:
            keys.pending[:0] = keys.store.snapshot()
        await self.publish([*self._new_keys(), *records])

    def _new_keys(self) -> list[Outgoing]:
        """The key-store records of data keys made since the last call: published with (and
        acknowledged before the offsets of) the batch whose records they open."""
        if self.state.datakeys is None:
            return []
        return [Outgoing(topics.KEY_STORE.name, k, v) for k, v in self.state.datakeys.drain()]

    async def stop(self) -> None:
        await self.stop_watch()
        if self._keys_follow is not None:
            self._keys_follow.cancel()
            await asyncio.gather(self._keys_follow, return_exceptions=True)
        await self._pause()
        await self.audit.stop()
        await self.close()

    # --- the message path ----------------------------------------------------------------------

    async def _handle_batch(self, msg: KafkaMessage) -> None:
        """Route a batch, then publish everything it produced and wait for Kafka to acknowledge
        all of it before the batch's offsets are committed (at-least-once). Waiting once per
        batch instead of once per record is what makes the router keep up."""
        raws: Any = msg.raw_message
        batch = raws if isinstance(raws, (list, tuple)) else (raws,)
        recs = [
            Incoming(r.topic, r.key, r.value or b"", list(r.headers or ()), r.partition, r.offset)
            for r in batch
        ]
        started = time.perf_counter()
        results = self.pipeline.route_batch(recs, on_error=self._internal_error)
        each = (time.perf_counter() - started) / max(1, len(recs))
        records: list[Outgoing] = []
        facts: list[Fact] = []
        for rec, result in zip(recs, results, strict=True):
            metrics.observe_route(rec.topic, result.facts, each)
            records.extend(result.records)
            facts.extend(result.facts)
        if self.on_fact:  # the decisions are made; show them before their effects arrive
            for f in facts:
                self.on_fact(f)
        audit_values = self.audit.prepare(facts)
        records = [*self._new_keys(), *records]
        await bounded("publishing", self.health, lambda: self.publish(records))
        await bounded("auditing", self.health, lambda: self.audit.send(audit_values))
        self.recovered_from_degraded("publishing works again")
        self.routed += len(batch)

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
