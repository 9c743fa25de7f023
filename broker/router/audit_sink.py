"""Writes the router's facts to the audit topic as hash-chained, signed FHIR AuditEvents.

One chain per router (``chain_id``: the chain the registry declares for the router, with the
keys that may sign it), resumed at start from its last record on the topic, so a restart
continues the chain instead of starting a new one that could hide a gap. After a key rotation
the chain is handed over by a ``key-rotation`` record signed with the older key. The chain's
signed head goes to ``audit-checkpoint`` every ``audit_checkpoint_seconds`` and at a clean stop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit import (
    PSEUDONYM_SYSTEM_PREFIX,
    AuditChain,
    AuditKind,
    AuditRecord,
    last_record_of,
    looks_like_bsn,
    new_event_id,
)
from broker.audit.chain import resume_chain
from broker.audit.checkpoint import Cadence, publish
from broker.config import Settings
from broker.kafka import make_consumer
from broker.router.facts import Fact, FactKind
from broker.trust import PartyKeys
from schemas import topics
from schemas.memo import Memo
from schemas.vocab import EventCode, LegalBasis, PartyRole, PurposeOfUse
from schemas.vocab.categories import DataCategory

log = logging.getLogger(__name__)

AUDIT_PSEUDONYM_SYSTEM = PSEUDONYM_SYSTEM_PREFIX + "/audit"
_KIND = {
    FactKind.PERMIT: AuditKind.DECISION_PERMIT,
    FactKind.DENY: AuditKind.DECISION_DENY,
    FactKind.DELIVERY: AuditKind.DELIVERY,
    FactKind.CONSENT_CHANGE: AuditKind.CONSENT_CHANGE,
    FactKind.REFUSAL: AuditKind.REFUSAL,
    FactKind.DUPLICATE: AuditKind.REFUSAL,
}


T = TypeVar("T")


def _enum(enum: Any, value: str | None) -> Any:
    """The enum member for ``value``, or None when absent or unknown (a dict lookup: calling
    the enum costs five times more, and this runs ~7 times per fact)."""
    if value is None:
        return None
    return enum._value2member_map_.get(value)


def to_record(fact: Fact, source: str) -> AuditRecord:
    """The NEN 7513 audit record of one fact.

    Why not simply :func:`validated_record`: pydantic's validation of the whole record cost a
    fifth of the audit step. Facts that share their coded fields (kind, flow, roles, purpose,
    legal basis, categories) share a validated *prototype*; a fact gets a copy with its own
    text. That copy is not validated by pydantic, so this function checks everything pydantic
    would check of the text (plain ``str`` or None, valid Unicode, not a BSN-like person, an
    aware time) and leaves anything else to :func:`validated_record`, which raises as before."""
    texts = (fact.reason, fact.detail, fact.sender, fact.recipient, fact.consent_id,
             fact.person, fact.message_id)  # fmt: skip
    if not _plain(fact, texts):
        return validated_record(fact, source)
    key = (fact.kind, fact.event, fact.sender_role, fact.recipient_role, fact.purpose,
           fact.legal_basis, fact.categories, source)  # fmt: skip
    proto = _PROTOTYPES.get_or_make(key, validated_record, fact, source)
    return proto.model_copy(
        update={
            "event_id": new_event_id(),
            "recorded": fact.at,
            "reason": fact.reason or "unknown",
            "detail": fact.detail,
            "actor": fact.sender or "unknown",
            "recipient": fact.recipient,
            "consent_id": fact.consent_id,
            "pseudonym": fact.person,
            "message_id": fact.message_id,
        }
    )


_PROTOTYPES: Memo[tuple[Any, ...], AuditRecord] = Memo(4096)
_TEXT = frozenset({str, type(None)})


def _plain(fact: Fact, texts: tuple[str | None, ...]) -> bool:
    """True when pydantic would accept the fact's text and time as they are."""
    if not set(map(type, texts)) <= _TEXT or type(fact.detail) is not str:
        return False
    joined = "".join(t for t in texts if t)
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: pydantic refuses it
            return False
    at = fact.at
    return (
        isinstance(at, datetime) and at.utcoffset() is not None and not looks_like_bsn(fact.person)
    )


def validated_record(fact: Fact, source: str) -> AuditRecord:
    """:func:`to_record` with every field validated by pydantic (the definition)."""
    purpose = _enum(PurposeOfUse, (fact.purpose or "").split(",")[0] or None)
    return AuditRecord(
        kind=_KIND[fact.kind],
        recorded=fact.at,
        source=source,
        reason=fact.reason or "unknown",
        detail=fact.detail,
        flow=_enum(EventCode, fact.event),
        actor=fact.sender or "unknown",
        actor_role=_enum(PartyRole, fact.sender_role) or PartyRole.ROUTER,
        recipient=fact.recipient,
        recipient_role=_enum(PartyRole, fact.recipient_role),
        purpose=purpose,
        legal_basis=_enum(LegalBasis, fact.legal_basis),
        consent_id=fact.consent_id,
        pseudonym=fact.person,
        pseudonym_system=AUDIT_PSEUDONYM_SYSTEM,
        message_id=fact.message_id,
        categories=frozenset(c for c in (_enum(DataCategory, x) for x in fact.categories) if c),
    )


class AuditSink:
    def __init__(
        self,
        settings: Settings,
        keys: PartyKeys,
        chain_id: str | None = None,
        *,
        older_keys: Mapping[str, Ed25519PrivateKey] | None = None,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.chain_id = chain_id or keys.key_id  # a chain not declared: named after the key
        # every key generation the router holds: a chain last signed by one is handed over
        self.signing_keys = {**(older_keys or {}), keys.key_id: keys.signing}
        self.written = 0
        self._chain: AuditChain | None = None
        self._producer: AIOKafkaProducer | None = None
        self._cadence = Cadence(settings.audit_checkpoint_seconds)

    async def _read_all(self) -> list[bytes]:
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition(topics.AUDIT.name, 0)
            await consumer.topics()
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            out: list[bytes] = []
            while True:
                batch = await consumer.getmany(tp, timeout_ms=300, max_records=10000)
                out.extend(r.value for r in batch.get(tp, []) if r.value)
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    return out
        finally:
            await consumer.stop()

    async def start(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        last = last_record_of(await self._read_all(), self.chain_id)
        self._chain, handover = resume_chain(
            self.chain_id, self.signing_keys, self.keys.key_id, last
        )
        if handover:
            await self.send(handover)
        log.info("audit chain %s resumed at %s", self.chain_id, self._chain.last)

    def prepare(self, facts: list[Fact]) -> list[bytes]:
        """Append the facts to the chain under one batch signature (a routed Kafka batch's
        facts: one Ed25519 signature instead of one per fact); the records can then be sent
        (and re-sent) as they are."""
        assert self._chain is not None
        return self._chain.append_records([to_record(f, self.chain_id) for f in facts])

    async def send(self, values: list[bytes]) -> None:
        assert self._producer is not None
        futures = [
            await self._producer.send(topics.AUDIT.name, value=v, key=self.chain_id.encode())
            for v in values
        ]
        for fut in futures:
            await fut
        self.written += len(values)
        if self._cadence.due():
            await self.checkpoint()

    async def checkpoint(self) -> None:
        """Publish the chain's signed head now (the cadence, and a clean stop)."""
        if self._producer is not None and self._chain is not None:
            await publish(self._producer, self._chain.checkpoint())
            self._cadence.done()

    async def write(self, facts: list[Fact]) -> None:
        await self.send(self.prepare(facts))

    def reset(self) -> None:
        """Start the chain afresh: the broker lost the audit topic (memory storage)."""
        self._chain = AuditChain.resume(self.chain_id, self.keys.signing, self.keys.key_id, None)

    async def stop(self) -> None:
        try:
            await self.checkpoint()
        except Exception as err:  # the broker may be gone; the cadence covered the rest
            log.warning("no final audit checkpoint: %s", type(err).__name__)
        self._producer = None
