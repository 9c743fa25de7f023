"""One Kafka component lifecycle, shared by the router and every adapter.

A component has a producer, a consumer group on its topics (a FastStream subscriber), a
:class:`BrokerWatch` that notices a broker restart, a :class:`Health` and, where configured, the
process's metrics endpoint. The router and the adapters differ in what they subscribe to and in
how they recover (the router owns the broker epoch and restores topics; an adapter follows and
re-subscribes), so those two are the hooks; starting and stopping the parts is written once here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from opentelemetry.trace import SpanKind

from broker.component import metrics, tracing
from broker.component.health import NOT_SENDING, BrokerWatch, Health, HealthStatus
from broker.component.retry import bounded
from broker.config import Settings
from broker.kafka import faststream_broker, make_producer
from broker.kafka.group import KAFKA_SESSION_TIMEOUT_MS, session_timeout

log = logging.getLogger(__name__)


class BrokerNotReady(RuntimeError):
    """The broker is being restored; try again shortly (HTTP 503, inbox files wait)."""


async def raw_body(msg: StreamMessage[Any]) -> bytes:
    """Hand the handler the raw bytes: a body FastStream cannot decode must still reach us."""
    return bytes(msg.body or b"")


async def raw_records(msg: StreamMessage[Any]) -> Any:
    """A batch subscriber's decoder that decodes nothing: the handler reads the records
    themselves (``msg.raw_message``), so FastStream's own decoder, which tries every value as
    JSON, is work for nothing (sealed values are not JSON)."""
    return msg.raw_message


class KafkaComponent:
    """The parts every long-running component owns, started and stopped in one way.

    Subclasses attach their handler in :meth:`subscribe` and call :meth:`open_producer`,
    :meth:`start_subscriber` and :meth:`watch_broker` from their own ``start`` in the order they
    need; :meth:`close` stops everything this class started."""

    def __init__(
        self, settings: Settings, name: str, *, session_timeout_ms: int | None = None
    ) -> None:
        self.settings = settings
        self.health = Health(name)
        # None: the settings' timeout, else the broker kind's (resolved in start_subscriber)
        self.session_timeout_ms = session_timeout_ms
        self.watch: BrokerWatch | None = None
        self._producer: AIOKafkaProducer | None = None
        self._broker: KafkaBroker | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self.trace_scope = "component"  # the spans' instrumentation scope: ketenbus.<scope>

    # --- the hook ----------------------------------------------------------------------------

    def subscribe(self, broker: KafkaBroker) -> None:
        """Attach this component's subscriber(s) and handler(s) to a fresh broker."""
        raise NotImplementedError

    def subscriber_options(self, group_id: str) -> dict[str, Any]:
        """The consumer settings every component uses: at-least-once (nack on error, commit
        after the handler), from the start of the topic for a new group, the configured waits."""
        # start_subscriber() resolves it by the broker's kind; before that, the safe side
        timeout = self.session_timeout_ms or self.settings.session_timeout_ms
        timeout = timeout or KAFKA_SESSION_TIMEOUT_MS
        return {
            "group_id": group_id,
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": timeout,
            "heartbeat_interval_ms": max(100, timeout // 4),
            "fetch_max_wait_ms": self.settings.fetch_max_wait_ms,
        }

    # --- the parts ---------------------------------------------------------------------------

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "open_producer() first"
        return self._producer

    def producer_options(self) -> dict[str, Any]:
        """What this component's producer sets apart from ``PRODUCER_DEFAULTS`` (none here)."""
        return {}

    async def open_producer(self) -> AIOKafkaProducer:
        """Serve the metrics endpoint and export spans (each if configured); start the
        producer."""
        metrics.serve_configured(self.settings)
        tracing.configure(self.settings)
        self._producer = make_producer(self.settings, **self.producer_options())
        await self._producer.start()
        return self._producer

    async def start_subscriber(self) -> None:
        if self.session_timeout_ms is None:
            self.session_timeout_ms = await session_timeout(self.settings)
        broker = faststream_broker(self.settings, logger=log)
        self.subscribe(broker)
        self._broker = broker
        await broker.start()

    async def stop_subscriber(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        try:
            async with asyncio.timeout(15):
                await broker.stop()
        except Exception as err:  # a consumer stuck on a dead broker must not block recovery
            log.warning("subscriber did not stop cleanly (%s); abandoned", type(err).__name__)

    def watch_broker(
        self,
        epoch: str | None,
        recover: Callable[[], Awaitable[str | None]],
        *,
        owner: bool,
        on_lost: Callable[[], Awaitable[None]],
        follow: Callable[[], Awaitable[str | None]] | None = None,
        interval: float = 1.0,
    ) -> BrokerWatch:
        """Start polling the broker's epoch; ``recover`` runs when it vanished (the owner that
        wins the epoch claim) or changed (follower), ``follow`` (default ``recover``) when an
        owner finds another owner's new epoch; both after ``on_lost`` stopped consuming."""
        self.watch = BrokerWatch(
            self.settings, self.health, epoch, recover, owner=owner, on_lost=on_lost,
            follow=follow, interval=interval,
        )
        self._watch_task = asyncio.create_task(
            self.watch.run(), name=f"watch-{self.health.component}"
        )
        return self.watch

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send one record and wait for Kafka's acknowledgement, with bounded retries. Refused
        while the broker is being restored: a record sent to a topic the broker lost would
        vanish without an error."""
        if self.health.status in NOT_SENDING:
            raise BrokerNotReady(f"not sending: {self.health.status} ({self.health.detail})")
        producer = self.producer
        with tracing.span(
            self.trace_scope,
            f"send {topic}",
            component=self.health.component,
            kind=SpanKind.PRODUCER,
            attributes={**tracing.header_attributes(headers), tracing.TOPIC: topic},
        ) as span:
            headers = tracing.inject(headers, span) if span is not None else headers
            await bounded(
                "sending",
                self.health,
                lambda: producer.send_and_wait(topic, value=value, key=key, headers=headers),
            )
        # health is the component's, not one record's: a send that gave up once (a record the
        # broker refused) must not leave the component degraded for good (issue 20)
        self.recovered_from_degraded("sending works again")

    def recovered_from_degraded(self, detail: str) -> None:
        """A call that had given up works again: the component is healthy once more."""
        if self.health.status is HealthStatus.DEGRADED:
            self.health.set(HealthStatus.OK, detail)

    async def stop_watch(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
            self._watch_task = None

    async def close(self) -> None:
        """Stop the watch, the subscriber and the producer (each bounded in time)."""
        await self.stop_watch()
        await self.stop_subscriber()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(15):
                    await self._producer.stop()
            self._producer = None
