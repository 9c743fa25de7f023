"""The running part every adapter shares: a producer for inbound topics and the dead-letter
topic, and a consumer group on the party's own outbound topic that verifies, decrypts and
de-duplicates each delivery before the adapter translates it for its system.

Deliveries are consumed in fetched batches (up to ``max_batch``) and settled once per batch
(``adapters.common.batch``): the outbox files made durable together, the records sent for them
awaited together, then the offsets committed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import SpanKind

from adapters.common.batch import DeliveryBatch, current_batch
from adapters.common.inbox import Inbox
from adapters.common.outbox import Outbox
from broker.audit import AuditKind, AuditRecord, ChainWriter
from broker.audit.checkpoint import FINAL_CHECKPOINT_SECONDS
from broker.audit.keystore import TopicKeyStore
from broker.component import metrics, tracing
from broker.component.health import NOT_SENDING, NOT_TAKING_INPUT, HealthStatus
from broker.component.lifecycle import BrokerNotReady, KafkaComponent, raw_records
from broker.config import Settings
from broker.kafka.epoch import current_epoch
from broker.trust import Opened, TrustError
from broker.trust.party import PartyClient
from schemas import topics
from schemas.erasure_notice import ERASURE_NOTICE_EVENT, ErasureNotice
from schemas.errors import MessageError
from schemas.messaging import ParsedMessage, parse_message
from schemas.vocab import EventCode

log = logging.getLogger(__name__)

REF_PREFIX = "ref-"
CHANNELS = frozenset({"http", "inbox", "delivery"})
"""What ``kb-source`` may say besides the party id: a channel, never a file name."""


def new_reference() -> str:
    """An opaque reference for one refused input: in its ``.error.json``, its dead letter
    (``kb-ref``) and its parked copy, so operations can match them without a file name."""
    return f"{REF_PREFIX}{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class AdapterEvent:
    """Something the console may show: no personal data, only ids, parties and reasons."""

    party: str
    kind: str  # sent, delivered, refused, invalid, response
    message_id: str | None
    text: str


Delivery = Callable[[Opened, ParsedMessage], Awaitable[None]]
AfterBatch = Callable[[], Awaitable[None]]

MAX_BATCH = 500
"""At most this many deliveries are handled and settled as one batch."""


__all__ = [
    "AdapterEvent",
    "AdapterRuntime",
    "BrokerNotReady",
    "Delivery",
    "error_document",
    "new_reference",
]


class AdapterRuntime(KafkaComponent):
    def __init__(
        self,
        settings: Settings,
        client: PartyClient,
        outbox: Outbox,
        on_delivery: Delivery,
        *,
        on_event: Callable[[AdapterEvent], None] | None = None,
        session_timeout_ms: int | None = None,
        after_batch: AfterBatch | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(settings, client.party_id, session_timeout_ms=session_timeout_ms)
        self.client = client
        self.outbox = outbox
        self.on_delivery = on_delivery
        self.on_event = on_event
        self.after_batch = after_batch
        self.max_batch = max_batch
        self.batches = 0
        self.delivered = 0
        self.duplicates = 0
        # Its own audit chain, for the refusals made here (docs/design/audit-record-v2.md §4):
        # chain id = the party id, signed with the party's key, resumed from the topic at the
        # first refusal (most adapters never refuse, and reading the trail costs).
        declared = client.registry.audit_chain_of(client.party_id)
        self.audit = ChainWriter(settings, client.keys, declared.chain if declared else None)
        self.trace_scope = f"adapter.{client.registry.get(client.party_id).role.value}"
        # the party's channel store on its topic (docs/erasure.md): rebuilt at start and
        # followed, so an erasure's tombstones reach this process without a restart
        self.channel = (
            TopicKeyStore(settings, client.channel, topics.party_key_store(client.party_id).name)
            if client.channel is not None
            else None
        )
        self._channel_follow: asyncio.Task[None] | None = None
        if self.channel is not None:  # keys re-wrapped after an erasure (DataKeyStore.settle)
            self.channel.publish = self._publish_keys
        # what the adapter itself writes back after a broker loss (a provider: its journal)
        self.on_new_epoch: Callable[[], Awaitable[object]] | None = None

    def event(self, kind: str, message_id: str | None, text: str) -> None:
        ev = AdapterEvent(self.client.party_id, kind, message_id, text)
        log.info("%s %s %s %s", ev.party, ev.kind, ev.message_id or "-", ev.text)
        metrics.observe_adapter(ev.party, ev.kind)
        if self.on_event:
            self.on_event(ev)

    async def start(self, *, watch_interval: float = 1.0) -> None:
        await self.open_producer()
        if self.channel is not None and self._channel_follow is None:
            await self.channel.load()
            self._channel_follow = asyncio.create_task(
                self.channel.follow(), name=f"channel-keys-{self.client.party_id}"
            )
        epoch = await current_epoch(self.settings)
        await self.start_subscriber()
        self.watch_broker(
            epoch,
            self._resubscribe,
            owner=False,
            on_lost=self.stop_subscriber,
            interval=watch_interval,
        )
        if epoch:
            self.health.set(HealthStatus.OK, f"epoch {epoch}")
        else:
            self.health.set(HealthStatus.STARTING, "no router yet")

    async def _publish_keys(self, records: list[tuple[bytes, bytes]]) -> None:
        topic = topics.party_key_store(self.client.party_id).name
        for key, value in records:
            await self.restore_send(topic, key, value, [])

    async def _resubscribe(self) -> None:
        """The router restored the broker (new epoch): write our channel keys back (the broker
        may have lost them: an erasure must still find them) and consume our topic again from
        its start."""
        await self.stop_subscriber()
        await self._write_back_channel()
        if self.on_new_epoch is not None:
            try:
                await self.on_new_epoch()
            except Exception as err:  # logged; the subscription must come back regardless
                log.warning("write-back after the new epoch failed: %s", type(err).__name__)
        await self.start_subscriber()

    async def _write_back_channel(self) -> None:
        if self.channel is None:
            return
        topic = topics.party_key_store(self.client.party_id).name
        try:
            for r in self.channel.store.snapshot():
                await self.restore_send(topic, r.dkid.encode("ascii"), r.value(), [])
        except Exception as err:  # the keys also travel with each message; logged, not fatal
            log.warning("channel keys not written back: %s", type(err).__name__)

    def subscribe(self, broker: KafkaBroker) -> None:
        """The party's own outbound topic, in the adapter's consumer group, fetched batches."""
        party = self.client.registry.get(self.client.party_id)
        sub = broker.subscriber(
            party.outbound_topic,
            **self.subscriber_options(f"ketenbus-adapter-{self.client.party_id}"),
            batch=True,
            decoder=raw_records,
            max_records=self.max_batch,
            batch_timeout_ms=50,
        )
        sub(self._handle_batch)

    async def _handle_batch(self, msg: KafkaMessage) -> None:
        """Handle a fetched batch, then settle it (:meth:`settle`); FastStream commits its
        offsets only when this returns. A delivery that fails leaves the ones before it
        settled (they stay delivered) and the batch is redelivered from its start: those are
        then duplicates, the failed one is handled again."""
        raws: Any = msg.raw_message
        records = raws if isinstance(raws, (list, tuple)) else (raws,)
        batch = DeliveryBatch()
        self.outbox.hold()
        try:
            with batch:
                try:
                    for raw in records:
                        await self._handle(raw)
                finally:  # what was handled is journalled, also when a later one failed
                    await batch.finish()
        except BaseException:
            with contextlib.suppress(Exception):  # the failure below is the one to report
                await self.settle(batch)
            raise
        await self.settle(batch)
        self.batches += 1
        if batch.follow_up and self.after_batch is not None:
            await self.after_batch()

    async def settle(self, batch: DeliveryBatch) -> None:
        """Everything sent for the batch acknowledged, then its outbox files durable (one sync
        step, in a thread: the loop keeps heartbeating). A send that failed discards the
        batch's files, which were never visible, so the redelivery writes them again."""
        try:
            await batch.acknowledged()
        except BaseException:
            self.outbox.discard()
            raise
        await asyncio.to_thread(self.outbox.make_durable)
        self.delivered += batch.delivered
        batch.delivered = 0
        batch.made_durable()

    async def send_in_batch(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send a record on behalf of a delivery: within a delivery batch it is acknowledged
        with the batch (:meth:`settle`, before the offsets are committed); elsewhere it is
        :meth:`send`, awaited at once."""
        batch = current_batch()
        if batch is None:
            await self.send(topic, key, value, headers)
            return
        if self.health.status in NOT_SENDING:
            raise BrokerNotReady(f"not sending: {self.health.status} ({self.health.detail})")
        batch.add(await self.producer.send(topic, value=value, key=key, headers=headers))

    async def _handle(self, raw: Any) -> None:
        """One delivery (a ConsumerRecord): verify, de-duplicate, hand it to the adapter."""
        headers = list(raw.headers or ())
        if not tracing.enabled():
            await self._deliver(raw, headers)
            return
        # the child of the router's span that wrote this delivery (W3C traceparent header)
        with tracing.span(
            self.trace_scope,
            f"deliver {raw.topic}",
            component=self.client.party_id,
            parent=tracing.extract(headers),
            kind=SpanKind.CONSUMER,
            attributes={**tracing.header_attributes(headers), tracing.TOPIC: raw.topic},
        ):
            await self._deliver(raw, headers)

    async def _deliver(self, raw: Any, headers: list[tuple[str, bytes]]) -> None:
        """Verify, decrypt and de-duplicate one delivery, then hand it to the adapter."""
        try:
            opened = self.client.open(raw.key, raw.value or b"", headers)
            if opened.meta.event == ERASURE_NOTICE_EVENT:
                self._erasure_notice(opened)
                return
            parsed = parse_message(opened.payload, full=False)
        except (TrustError, MessageError, ValueError) as err:
            # Never hand unverified content to the party's system; park it for operations.
            reason = getattr(err, "reason", "invalid")
            await self.dead_letter(
                raw.value or b"",
                headers,
                str(reason),
                f"{reason} at delivery",
                sealed=True,
                source="delivery",
            )
            self.event("refused", None, f"delivery refused: {reason}")
            return
        if self.outbox.seen(opened.meta.message_id):
            self.duplicates += 1
            return
        original = parsed.meta.refers_to
        if original is not None:  # the original marked first: a crash after it repeats both
            withdrawal = parsed.meta.event is EventCode.WITHDRAWAL
            self.outbox.follow_up(original, parsed.meta.message_id, withdrawal=withdrawal)
            kind = "withdrawal" if withdrawal else "correction"
            self.event("delivered", parsed.meta.message_id, f"{kind} of {original}")
        await self.on_delivery(opened, parsed)
        batch = current_batch()
        if batch is None:
            self.delivered += 1
        else:  # counted once durable (settle): ``delivered`` never counts a file not yet there
            batch.delivered += 1

    def _erasure_notice(self, opened: Opened) -> None:
        """The router erased a person whose messages this party exchanged (AVG art. 17(2),
        19): the notice goes to the outbox as ``<id>.erasure-notice.json`` for the party's
        system to act on its own record; ``ValueError`` for anything that is not a notice."""
        notice = ErasureNotice.parse(opened.payload)
        if notice.id != opened.meta.message_id or notice.pseudonym != opened.meta.pseudonym:
            raise ValueError("erasure notice: id or pseudonym differ from its envelope")
        if self.outbox.write(notice.id, notice.to_json(), ".erasure-notice.json") is None:
            self.duplicates += 1
            return
        self.event("delivered", notice.id, "erasure notice (AVG art. 19)")
        self.delivered += 1

    async def poll(
        self,
        inbox: Inbox,
        process: Callable[[Path], Awaitable[object]],
        quarantine: Callable[[Inbox, Path, BaseException, int], Awaitable[object]] | None = None,
    ) -> int:
        """Process the files waiting in ``inbox``, one at a time; returns how many.

        Files wait while the broker is away or being restored (a record sent to a topic the
        broker lost would vanish). A file that fails unexpectedly stays in ``processing/`` and
        is taken up again at the next poll, and the files after it go on; the log names only
        the file's digest and the error type, never a traceback or the file name, which could
        quote the input. A failure of the file's own (not the broker's: see
        :func:`broker_trouble`) is counted, and at ``inbox_max_attempts`` the file is handed
        to ``quarantine`` instead of being tried again."""
        if self.health.status in NOT_TAKING_INPUT:
            return 0
        n = 0
        for path in inbox.claim():
            try:
                await process(path)
            except Exception as err:
                tag = hashlib.sha256(path.name.encode()).hexdigest()[:12]
                log.error("inbox file #%s could not be processed: %s", tag, type(err).__name__)
                if broker_trouble(err) or quarantine is None:
                    continue
                attempts = inbox.failed_attempt(path)
                if attempts >= self.settings.inbox_max_attempts:
                    try:
                        await quarantine(inbox, path, err, attempts)
                    except Exception as again:
                        log.error("quarantine of #%s failed: %s", tag, type(again).__name__)
                continue
            n += 1
        return n

    async def poll_forever(
        self,
        inbox: Inbox,
        process: Callable[[Path], Awaitable[object]],
        interval: float,
        quarantine: Callable[[Inbox, Path, BaseException, int], Awaitable[object]] | None = None,
    ) -> None:
        while True:
            await self.poll(inbox, process, quarantine)
            await asyncio.sleep(interval)

    async def dead_letter(
        self,
        payload: bytes,
        headers: list[tuple[str, bytes]] | None,
        reason: str,
        detail: str,
        *,
        sealed: bool = False,
        source: str = "",
        digest: str | None = None,
    ) -> str:
        """Park refused input with its reason, and audit the refusal; returns the reference the
        dead letter carries (``kb-ref``). Raw input may hold a BSN, so unless it is already
        sealed it is sealed for the router first: never in clear on a topic.

        ``detail`` must name rules and paths only (:func:`adapters.common.limits.safe_detail`);
        ``source`` is a channel or an opaque reference, never a file name (a file name has
        held a BSN and a name). Input bigger than ``max_dead_letter_bytes`` would not fit a
        Kafka record, and a refused record that cannot be sent would loop: it is kept sealed
        in the adapter's own ``parked/`` folder and the dead letter carries its reference and
        SHA-256 (``kb-parked``, ``kb-digest``). ``digest`` names input that was never read
        (too large): only its digest travels."""
        ref = source if source.startswith(REF_PREFIX) else new_reference()
        digest = digest or hashlib.sha256(payload).hexdigest()
        extra: list[tuple[str, bytes]] = [("kb-digest", digest.encode())]
        if sealed and len(payload) <= self.settings.max_dead_letter_bytes:
            key, value, hdrs = self.client.party_id.encode(), payload, list(headers or [])
        else:
            body = payload
            if len(payload) > self.settings.max_dead_letter_bytes:
                extra.append(("kb-parked", self._park(ref, payload, headers, sealed).encode()))
                body = orjson.dumps({"parked": ref, "sha256": digest, "bytes": len(payload)})
            elif not payload and digest:
                body = orjson.dumps({"sha256": digest, "kept": "not read: over the input limit"})
            _, value, hdrs = self.client.seal_for_router(body, "invalid-input", str(uuid.uuid4()))
            key = self.client.party_id.encode()
        hdrs += [
            ("kb-reason", reason.encode()),
            ("kb-detail", detail.encode()[:1000]),
            ("kb-source", (source if source in CHANNELS else self.client.party_id).encode()),
            ("kb-ref", ref.encode()),
            *extra,
        ]
        await self.send(topics.DEAD_LETTER.name, key, value, hdrs)
        metrics.observe_dead_letter(self.client.party_id, reason)
        channel = "delivery" if sealed else "http" if source == "http" else "inbox"
        await self.audit_refusal(reason, payload, channel, digest=digest)
        return ref

    def _park(
        self, ref: str, payload: bytes, headers: list[tuple[str, bytes]] | None, sealed: bool
    ) -> str:
        """Keep input too big for a Kafka record in ``<state_dir>/parked/<party>/<ref>.json``,
        sealed for the router like a dead letter's value; its path relative to the state dir."""
        if sealed:
            value, hdrs = payload, list(headers or [])
        else:
            _, value, hdrs = self.client.seal_for_router(payload, "invalid-input", ref)
        folder = self.settings.state_dir / "parked" / self.client.party_id
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "value": base64.b64encode(value).decode(),
            "headers": [[k, base64.b64encode(v).decode()] for k, v in hdrs],
        }
        tmp = folder / f".{ref}.tmp"
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, folder / f"{ref}.json")
        return f"parked/{self.client.party_id}/{ref}.json"

    async def audit_refusal(
        self, reason: str, payload: bytes, channel: str, *, digest: str | None = None
    ) -> None:
        """A ``refusal`` AuditEvent on this adapter's chain (``docs/reliability.md``: every
        refusal is audited). The input is named only by its SHA-256: never a file name or any
        of its text, which may hold personal data (AVG art. 5(1)(c))."""
        party = self.client.registry.get(self.client.party_id)
        record = AuditRecord(
            kind=AuditKind.REFUSAL,
            recorded=datetime.now(UTC),
            source=self.audit.chain_id,
            reason=reason or "invalid",
            detail=f"refused at the adapter's {channel}",
            actor=party.id,
            actor_role=party.role,
            input_digest=digest or hashlib.sha256(payload).hexdigest(),
        )

        await self.audit.write([record], self._send_plain)

    async def _send_plain(self, topic: str, key: bytes, value: bytes) -> None:
        await self.send(topic, key, value, [])

    async def restore_send(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send a record while the component is still re-subscribing after the router restored
        the broker (``send`` refuses then): only for writing back what the broker lost."""
        await self.producer.send_and_wait(topic, value=value, key=key, headers=headers)

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send one record, after the records of channel keys made while sealing it: a key
        reaches its topic before anything it sealed (``docs/erasure.md``)."""
        for k, v in self.client.drain_keys():
            await super().send(topics.party_key_store(self.client.party_id).name, k, v, [])
        await super().send(topic, key, value, headers)

    async def stop(self) -> None:
        if self._channel_follow is not None:
            self._channel_follow.cancel()
            await asyncio.gather(self._channel_follow, return_exceptions=True)
            self._channel_follow = None
        with contextlib.suppress(Exception):  # the broker may be gone; the cadence covered it
            async with asyncio.timeout(FINAL_CHECKPOINT_SECONDS):
                await self.audit.checkpoint(self._send_plain)
        await self.close()
        self.outbox.close()


def broker_trouble(err: BaseException) -> bool:
    """A failure that is the broker's, not the input's: the file waits and is not counted
    towards its quarantine."""
    return isinstance(err, (BrokerNotReady, KafkaError, ConnectionError, TimeoutError))


def error_document(err: MessageError, source: str) -> dict[str, Any]:
    """The error reported back to a counterpart: reason, per-field issues and the FHIR outcome."""
    return {
        "status": "refused",
        "source": source,
        "reason": err.reason,
        "issues": [
            {"path": i.path, "problem": i.message, "code": i.reason or i.code} for i in err.issues
        ],
        "operationOutcome": err.outcome(),
    }
