"""The router on Kafka: one consumer group over the inbound topics, at-least-once.

A record's offset is committed only after everything the pipeline produced for it (deliveries,
responses, rejections, audit events) is acknowledged by Kafka, so a crash re-routes the record
and receiving adapters de-duplicate on the message id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from broker.config import Settings
from broker.kafka.clients import faststream_broker, make_producer
from broker.monitoring import metrics
from broker.router.audit_sink import AuditSink
from broker.router.consent_log import ConsentLog
from broker.router.facts import Fact
from broker.router.pipeline import Pipeline, RouterState
from broker.router.records import Incoming, Outgoing
from schemas import topics

log = logging.getLogger(__name__)
ROUTER_GROUP = "ketenbus-router"


async def raw_body(msg: StreamMessage[Any]) -> bytes:
    """Hand the handler the raw bytes: a body FastStream cannot decode must still reach us."""
    return bytes(msg.body or b"")


class RouterService:
    def __init__(
        self,
        settings: Settings,
        state: RouterState,
        *,
        on_fact: Callable[[Fact], None] | None = None,
        group_id: str = ROUTER_GROUP,
        session_timeout_ms: int = 6000,
    ) -> None:
        self.settings = settings
        self.state = state
        self.pipeline = Pipeline(state)
        self.on_fact = on_fact
        self.group_id = group_id
        self.session_timeout_ms = session_timeout_ms
        self.consent_log = ConsentLog(settings, state)
        self.audit = AuditSink(settings, state.keys)
        self.routed = 0
        self._producer: AIOKafkaProducer | None = None
        self._broker: KafkaBroker | None = None
        self._follow: asyncio.Task[None] | None = None
        self.metrics = metrics.EnvMetrics()

    async def start(self) -> None:
        await self.metrics.start(self.settings, figures=True)  # if KETENBUS_METRICS_PORT is set
        self._producer = make_producer(self.settings)
        await self._producer.start()
        await self.audit.start(self._producer)
        applied = await self.consent_log.start()
        log.info("consent view rebuilt from %d consent records", applied)
        self._follow = asyncio.create_task(self.consent_log.follow(), name="consent-log")
        broker = faststream_broker(self.settings, logger=log)
        subscriber = broker.subscriber(
            *(t.name for t in topics.ROUTED),
            group_id=self.group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.session_timeout_ms // 4),
            decoder=raw_body,
        )
        subscriber(self._handle)
        self._broker = broker
        await broker.start()

    async def _handle(self, body: bytes, msg: KafkaMessage) -> None:
        raw: Any = msg.raw_message  # one ConsumerRecord (not a batch subscriber)
        rec = Incoming(
            raw.topic, raw.key, raw.value or b"", list(raw.headers or ()), raw.partition, raw.offset
        )
        started = time.perf_counter()
        result = self.pipeline.route(rec)
        if self.on_fact:  # the decision is made; show it before its effects arrive elsewhere
            for f in result.facts:
                self.on_fact(f)
        await self.publish(result.records)
        await self.audit.write(result.facts)
        self.routed += 1
        metrics.observe_route(rec.topic, result.facts, time.perf_counter() - started)

    async def publish(self, records: list[Outgoing]) -> None:
        assert self._producer is not None
        futures = [
            await self._producer.send(r.topic, value=r.value, key=r.key, headers=r.headers)
            for r in records
        ]
        for f in futures:
            await f

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.stop()
        if self._follow is not None:
            self._follow.cancel()
            await asyncio.gather(self._follow, return_exceptions=True)
        await self.consent_log.stop()
        await self.audit.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self.metrics.stop()
