"""Writes the router's facts to the audit topic as hash-chained, signed FHIR AuditEvents.

One chain per router (``chain_id``: the chain the registry declares for the router, with the
keys that may sign it), resumed at start from its last record on the topic, so a restart
continues the chain instead of starting a new one that could hide a gap. After a key rotation
the chain is handed over by a ``key-rotation`` record signed with the older key. The chain's
signed head goes to ``audit-checkpoint`` every ``audit_checkpoint_seconds`` and at a clean stop.

A fact is typed (``broker.router.facts``): its codes are enums and its basis detail is the
message's ``BasisDetail``. The citation, the justification and the deciding professional are
sealed for the compliance role (``broker.audit.sealed``), never written in clear.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit import (
    PSEUDONYM_SYSTEM_PREFIX,
    AuditChain,
    AuditKind,
    AuditRecord,
    SealReader,
    last_record_of,
    looks_like_bsn,
    new_event_id,
    read_audit_topic,
    sealed_fields,
)
from broker.audit.chain import resume_chain
from broker.audit.checkpoint import FINAL_CHECKPOINT_SECONDS, Cadence, publish
from broker.audit.event import grounds_fields
from broker.config import Settings
from broker.policy.grounds import grounds_of
from broker.router.facts import Fact, FactKind
from broker.router.records import Outgoing
from broker.trust import PartyKeys, PartyRegistry, TrustError
from schemas import topics
from schemas.memo import Memo
from schemas.vocab import PartyRole

log = logging.getLogger(__name__)

AUDIT_PSEUDONYM_SYSTEM = PSEUDONYM_SYSTEM_PREFIX + "/audit"
COMPLIANCE_READER_ROLE = PartyRole.CAPACITY_DASHBOARD
"""The party whose X25519 key the sealed detail is for: the web app, which hosts the compliance
role (``broker/apps/web/backend.py`` runs its compliance search with that party's keys)."""
_KIND = {
    FactKind.PERMIT: AuditKind.DECISION_PERMIT,
    FactKind.DENY: AuditKind.DECISION_DENY,
    FactKind.DELIVERY: AuditKind.DELIVERY,
    FactKind.CONSENT_CHANGE: AuditKind.CONSENT_CHANGE,
    FactKind.REFUSAL: AuditKind.REFUSAL,
    FactKind.DUPLICATE: AuditKind.REFUSAL,
    FactKind.REPROCESS: AuditKind.REPROCESS,
    FactKind.CORRECTION: AuditKind.CORRECTION,
    FactKind.WITHDRAWAL: AuditKind.WITHDRAWAL,
}


def compliance_reader(registry: PartyRegistry, at: datetime) -> SealReader | None:
    """The compliance role's encryption key valid at ``at``, or None when the registry has no
    such party (then the sensitive detail is left out of the records, never written in clear)."""
    parties = registry.by_role(COMPLIANCE_READER_ROLE)
    if len(parties) != 1:
        return None
    try:
        key_id, public = registry.encryption_key(parties[0].id, at)
    except (KeyError, TrustError):
        log.warning("the compliance reader has no encryption key valid now: detail left out")
        return None
    return SealReader(key_id, public)


def to_record(fact: Fact, source: str, reader: SealReader | None = None) -> AuditRecord:
    """The NEN 7513 audit record of one fact; ``source`` is the chain, ``reader`` whom the
    sealed detail is for.

    Why not simply :func:`validated_record`: pydantic's validation of the whole record cost a
    fifth of the audit step. Facts that share their coded fields (kind, flow, roles, purpose,
    legal basis, categories, controls) share a validated *prototype*; a fact gets a copy with
    its own text. That copy is not validated by pydantic, so this function checks everything
    pydantic would check of the text (plain ``str`` or None, valid Unicode, not a BSN-like
    person, an aware time) and leaves anything else to :func:`validated_record`, which raises
    as before."""
    texts = (fact.reason, fact.detail, fact.sender, fact.recipient, fact.consent_id,
             fact.person, fact.message_id, fact.topic, fact.refers_to, fact.controller,
             fact.processor, fact.acting_person)  # fmt: skip
    if not _plain(fact, texts):
        return validated_record(fact, source, reader)
    event_id = new_event_id()
    sealed = sealed_fields(
        fact.basis_detail, chain=source, event_id=event_id, reader=reader, person=fact.person
    )
    key = (fact.kind, fact.event, fact.sender_role, fact.recipient_role, fact.purpose,
           fact.legal_basis, fact.categories, fact.withheld, fact.controls,
           sealed.get("decided_by_professional", False), source,
           fact.legal_basis and grounds_of(fact.legal_basis, fact.basis_detail))  # fmt: skip
    proto = _PROTOTYPES.get_or_make(key, validated_record, fact, source, None)
    return proto.model_copy(
        update={
            "event_id": event_id,
            "recorded": fact.at,
            "reason": fact.reason or "unknown",
            "detail": fact.detail,
            "actor": fact.sender or "unknown",
            "recipient": fact.recipient,
            "consent_id": fact.consent_id,
            "pseudonym": fact.person,
            "message_id": fact.message_id,
            "topic": fact.topic,
            "refers_to": fact.refers_to,
            "controller": fact.controller,
            "processor": fact.processor,
            "acting_person": fact.acting_person,
            "sealed": sealed.get("sealed"),
            "decided_by_professional": sealed.get("decided_by_professional", False),
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


def validated_record(fact: Fact, source: str, reader: SealReader | None = None) -> AuditRecord:
    """:func:`to_record` with every field validated by pydantic (the definition)."""
    event_id = new_event_id()
    return AuditRecord(
        kind=_KIND[fact.kind],
        event_id=event_id,
        recorded=fact.at,
        source=source,
        reason=fact.reason or "unknown",
        detail=fact.detail,
        flow=fact.event,
        actor=fact.sender or "unknown",
        actor_role=fact.sender_role or PartyRole.ROUTER,
        recipient=fact.recipient,
        recipient_role=fact.recipient_role,
        purpose=fact.purpose,
        legal_basis=fact.legal_basis,
        consent_id=fact.consent_id,
        pseudonym=fact.person,
        pseudonym_system=AUDIT_PSEUDONYM_SYSTEM,
        message_id=fact.message_id,
        categories=fact.categories,
        withheld=fact.withheld,
        controls=fact.controls,
        topic=fact.topic,
        refers_to=fact.refers_to,
        controller=fact.controller,
        processor=fact.processor,
        acting_person=fact.acting_person,
        **grounds_fields(fact.legal_basis, fact.basis_detail),
        **sealed_fields(
            fact.basis_detail, chain=source, event_id=event_id, reader=reader, person=fact.person
        ),
    )


class AuditSink:
    def __init__(
        self,
        settings: Settings,
        keys: PartyKeys,
        chain_id: str | None = None,
        *,
        older_keys: Mapping[str, Ed25519PrivateKey] | None = None,
        reader: SealReader | None = None,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.chain_id = chain_id or keys.key_id  # a chain not declared: named after the key
        # every key generation the router holds: a chain last signed by one is handed over
        self.signing_keys = {**(older_keys or {}), keys.key_id: keys.signing}
        self.reader = reader  # the compliance role's key, for the sealed detail
        self.written = 0
        self._chain: AuditChain | None = None
        self._producer: AIOKafkaProducer | None = None
        self._cadence = Cadence(settings.audit_checkpoint_seconds)

    async def _read_all(self) -> list[bytes]:
        return await read_audit_topic(self.settings)

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
        return self._chain.append_records([to_record(f, self.chain_id, self.reader) for f in facts])

    def outgoing(self, facts: list[Fact]) -> list[Outgoing]:
        """:meth:`prepare` as records for the caller to publish with the rest of its batch (one
        round of acknowledgements instead of two); then :meth:`sent`."""
        key = self.chain_id.encode()
        return [Outgoing(topics.AUDIT.name, key, v) for v in self.prepare(facts)]

    async def sent(self, n: int) -> None:
        """``n`` prepared records are acknowledged: count them, checkpoint when it is due."""
        self.written += n
        if self._cadence.due():
            await self.checkpoint()

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
            async with asyncio.timeout(FINAL_CHECKPOINT_SECONDS):
                await self.checkpoint()
        except Exception as err:  # the broker may be gone; the cadence covered the rest
            log.warning("no final audit checkpoint: %s", type(err).__name__)
        self._producer = None
