"""The running part every adapter shares: a producer for inbound topics and the dead-letter
topic, and a consumer group on the party's own outbound topic that verifies, decrypts and
de-duplicates each delivery before the adapter translates it for its system."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from adapters.common.inbox import Inbox
from adapters.common.outbox import Outbox
from broker.audit import AuditKind, AuditRecord, ChainWriter
from broker.audit.checkpoint import FINAL_CHECKPOINT_SECONDS
from broker.component import metrics
from broker.component.health import NOT_TAKING_INPUT, HealthStatus
from broker.component.lifecycle import BrokerNotReady, KafkaComponent, raw_body
from broker.config import Settings
from broker.kafka.epoch import current_epoch
from broker.trust import Opened, TrustError
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import MessageError
from schemas.messaging import ParsedMessage, parse_message
from schemas.vocab import EventCode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterEvent:
    """Something the console may show: no personal data, only ids, parties and reasons."""

    party: str
    kind: str  # sent, delivered, refused, invalid, response
    message_id: str | None
    text: str


Delivery = Callable[[Opened, ParsedMessage], Awaitable[None]]


__all__ = ["AdapterEvent", "AdapterRuntime", "BrokerNotReady", "Delivery", "error_document"]


class AdapterRuntime(KafkaComponent):
    def __init__(
        self,
        settings: Settings,
        client: PartyClient,
        outbox: Outbox,
        on_delivery: Delivery,
        *,
        on_event: Callable[[AdapterEvent], None] | None = None,
        session_timeout_ms: int = 6000,
    ) -> None:
        super().__init__(settings, client.party_id, session_timeout_ms=session_timeout_ms)
        self.client = client
        self.outbox = outbox
        self.on_delivery = on_delivery
        self.on_event = on_event
        self.delivered = 0
        self.duplicates = 0
        # Its own audit chain, for the refusals made here (docs/design/audit-record-v2.md §4):
        # chain id = the party id, signed with the party's key, resumed from the topic at the
        # first refusal (most adapters never refuse, and reading the trail costs).
        declared = client.registry.audit_chain_of(client.party_id)
        self.audit = ChainWriter(settings, client.keys, declared.chain if declared else None)

    def event(self, kind: str, message_id: str | None, text: str) -> None:
        ev = AdapterEvent(self.client.party_id, kind, message_id, text)
        log.info("%s %s %s %s", ev.party, ev.kind, ev.message_id or "-", ev.text)
        metrics.observe_adapter(ev.party, ev.kind)
        if self.on_event:
            self.on_event(ev)

    async def start(self, *, watch_interval: float = 1.0) -> None:
        await self.open_producer()
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

    async def _resubscribe(self) -> None:
        """The router restored the broker (new epoch): consume our topic again from its start."""
        await self.stop_subscriber()
        await self.start_subscriber()

    def subscribe(self, broker: KafkaBroker) -> None:
        """The party's own outbound topic, in the adapter's consumer group, raw bytes."""
        party = self.client.registry.get(self.client.party_id)
        sub = broker.subscriber(
            party.outbound_topic,
            **self.subscriber_options(f"ketenbus-adapter-{self.client.party_id}"),
            decoder=raw_body,
        )
        sub(self._handle)

    async def _handle(self, body: bytes, msg: KafkaMessage) -> None:
        raw: Any = msg.raw_message  # one ConsumerRecord (not a batch subscriber)
        headers = list(raw.headers or ())
        try:
            opened = self.client.open(raw.key, raw.value or b"", headers)
            parsed = parse_message(opened.payload, full=False)
        except (TrustError, MessageError) as err:
            # Never hand unverified content to the party's system; park it for operations.
            reason = getattr(err, "reason", "invalid")
            await self.dead_letter(raw.value or b"", headers, str(reason), str(err), sealed=True)
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
        self.delivered += 1

    async def poll(self, inbox: Inbox, process: Callable[[Path], Awaitable[object]]) -> int:
        """Process the files waiting in ``inbox``, one at a time; returns how many.

        Files wait while the broker is away or being restored (a record sent to a topic the
        broker lost would vanish). A file that fails unexpectedly stays in ``processing/`` and
        is taken up again at the next start; the log names only the file and the error type,
        never a traceback, which could quote the input."""
        if self.health.status in NOT_TAKING_INPUT:
            return 0
        n = 0
        for path in inbox.claim():
            try:
                await process(path)
            except Exception as err:
                log.error("inbox file %s could not be processed: %s", path.name, type(err).__name__)
                continue
            n += 1
        return n

    async def poll_forever(
        self, inbox: Inbox, process: Callable[[Path], Awaitable[object]], interval: float
    ) -> None:
        while True:
            await self.poll(inbox, process)
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
    ) -> None:
        """Park refused input with its reason, and audit the refusal. Raw input may hold a BSN,
        so unless it is already sealed it is sealed for the router first: never in clear on a
        topic."""
        if sealed:
            key, value, hdrs = self.client.party_id.encode(), payload, list(headers or [])
        else:
            _, value, hdrs = self.client.seal_for_router(
                payload, "invalid-input", str(uuid.uuid4())
            )
            key = self.client.party_id.encode()
        hdrs += [
            ("kb-reason", reason.encode()),
            ("kb-detail", detail.encode()[:1000]),
            ("kb-source", (source or self.client.party_id).encode()),
        ]
        await self.send(topics.DEAD_LETTER.name, key, value, hdrs)
        metrics.observe_dead_letter(self.client.party_id, reason)
        channel = "delivery" if sealed else "http" if source == "http" else "inbox"
        await self.audit_refusal(reason, payload, channel)

    async def audit_refusal(self, reason: str, payload: bytes, channel: str) -> None:
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
            input_digest=hashlib.sha256(payload).hexdigest(),
        )

        await self.audit.write([record], self._send_plain)

    async def _send_plain(self, topic: str, key: bytes, value: bytes) -> None:
        await self.send(topic, key, value, [])

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # the broker may be gone; the cadence covered it
            async with asyncio.timeout(FINAL_CHECKPOINT_SECONDS):
                await self.audit.checkpoint(self._send_plain)
        await self.close()


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
