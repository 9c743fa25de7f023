"""The compliance officer's side of the web app: search the audit trail, verify its chains, and
log every search as a ``compliance-search`` AuditEvent in the web app's own chain.

Every search verifies the trail it answers from (:func:`broker.audit.answer`): the page says
plainly when the trail is tampered and marks each row whose record did not verify. The same
service, on its own chain, audits ``ketenbus audit query --bsn``.

A BSN typed by the officer is turned into the person's pseudonyms (domains ``audit`` and
``router``) here and then forgotten: it is not logged, not put in the audit record (the query
names the pseudonyms) and not sent back to the browser. The web app holds only the derived
keys of those two domains, never the router's pseudonym secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer

from broker.audit import (
    Answer,
    AuditKind,
    AuditQuery,
    AuditRecord,
    ChainWriter,
    TrailTrust,
    VerifyReport,
    answer,
    open_sealed,
    read_audit_topic,
    verify_trail,
)
from broker.audit.checkpoint import FINAL_CHECKPOINT_SECONDS
from broker.audit.event import AuditOutcome
from broker.audit.signers import signers_from_registry
from broker.component import metrics
from broker.config import Settings
from broker.kafka import make_producer
from broker.router.audit_sink import AUDIT_PSEUDONYM_SYSTEM
from broker.router.pipeline import AUDIT_DOMAIN, ROUTER_DOMAIN
from broker.trust import PartyKeys, PartyRegistry, Pseudonymiser, load_or_create_secret
from schemas import topics

if TYPE_CHECKING:
    from broker.apps.deployment import Deployment
    from broker.audit.keystore import TopicKeyStore

log = logging.getLogger(__name__)
PERSON_DOMAINS = (AUDIT_DOMAIN, ROUTER_DOMAIN)
SearchResult = Answer  # the page's name for a verified answer


class SearchNotAudited(RuntimeError):
    """The search could not be written to the audit trail, so its results are not shown."""


read_audit = read_audit_topic  # the web app's reader of the audit and checkpoint topics


AuditReader = Callable[[Settings, str], Awaitable[list[bytes]]]  # settings, topic


def person_pseudonymiser(deployment: Deployment) -> Pseudonymiser | None:
    """The derived keys of the audit domains, from the router's secret when it is on this
    machine (``None`` otherwise: a new secret would match no pseudonym, so none is made)."""
    secret = deployment.secrets_dir / f"{deployment.router_id}.secret"
    if not secret.exists():
        return None
    return Pseudonymiser(load_or_create_secret(secret)).restricted(PERSON_DOMAINS)


class ComplianceService:
    """Searches and verifies the audit trail; writes one audit record per search."""

    def __init__(
        self,
        settings: Settings,
        registry: PartyRegistry,
        keys: PartyKeys,
        pseudonyms: Pseudonymiser | None,
        *,
        chain_id: str | None = None,
        read: AuditReader = read_audit,
        trust: TrailTrust | None = None,
        datakeys: TopicKeyStore | None = None,
    ) -> None:
        self.settings = settings
        self._read = read  # what verify reads: Kafka; a test hands it hostile records directly
        self.registry = registry
        self.keys = keys
        declared = registry.audit_chain_of(keys.party_id)
        self.chain_id = chain_id or (declared.chain if declared else keys.party_id)
        self.pseudonyms = pseudonyms
        self._trust = trust
        self._producer: AIOKafkaProducer | None = None
        self.writer = ChainWriter(settings, keys, self.chain_id)
        # the key store (read-only), for detail sealed under a person's data key (erasure)
        self.datakeys = datakeys

    @property
    def can_search_person(self) -> bool:
        return self.pseudonyms is not None

    async def start(self) -> None:
        self._producer = make_producer(self.settings)
        await self._producer.start()
        await self._resume()

    async def _resume(self) -> None:
        await self.writer.resume(self._send)
        log.info("compliance-search chain %s at %s", self.chain_id, self.writer.last)

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        if self._producer is None:
            raise SearchNotAudited("the web app is not connected to the audit topic")
        await self._producer.send_and_wait(topic, value=value, key=key)

    @property
    def written(self) -> int:
        return self.writer.written

    async def stop(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):  # the cadence covered the rest
                async with asyncio.timeout(FINAL_CHECKPOINT_SECONDS):
                    await self.writer.checkpoint(self._send)
            await self._producer.stop()
            self._producer = None

    def person_pseudonyms(self, bsn: str) -> dict[str, str]:
        """{domain: pseudonym} of a BSN; ``ValueError`` (which does not repeat the BSN) when it
        is not one."""
        if self.pseudonyms is None:
            raise ValueError("this web app has no pseudonym keys, so it cannot search by person")
        return self.pseudonyms.translate(bsn, PERSON_DOMAINS)

    async def _write(self, record: AuditRecord) -> None:
        """Audit the search before its results are shown (NEN 7513); if the record cannot be
        written, the search is refused."""
        try:
            await self.writer.write([record], self._send)
        except SearchNotAudited:
            raise
        except Exception as exc:
            raise SearchNotAudited(f"the search could not be audited: {exc}") from exc

    def trust(self) -> TrailTrust:
        """What the trail is verified against: as given, else the chains the registry declares
        (their signers; no checkpoints: :meth:`verify` adds the checkpoint topic's)."""
        return self._trust or TrailTrust(signers_from_registry(self.registry))

    async def search(
        self,
        query: AuditQuery,
        *,
        officer: str,
        person: str | None = None,
        export: bool = False,
        fmt: str | None = None,
        records: Sequence[bytes] | None = None,
    ) -> SearchResult:
        """Verify the whole trail and run ``query`` over it; the search is audited before
        results are shown (NEN 7513: a search of the log is itself logged). ``person`` is the
        searched person's pseudonym in the audit domain, so the person's own trail shows who
        searched for them. ``records``: answer from these (an export) instead of the topic.
        The compliance role opens the sealed detail of what it finds."""
        if records is None:
            records = await read_audit(self.settings)
        result = answer(records, query, self.trust())
        store = None
        if self.datakeys is not None:  # keys made or erased since the last search count
            await self.datakeys.load()
            store = self.datakeys.store
        opened = open_sealed(result.rows, {self.keys.key_id: self.keys.encryption}, store)
        result = dataclasses.replace(result, rows=opened)
        fmt = fmt or ("csv" if export else "table")
        asked = {**query.as_dict(), "format": fmt}
        party = self.registry.get(self.keys.party_id)
        tampered = (
            f"; the trail did not verify ({len(result.report.findings)} finding(s))"
            if result.tampered
            else ""
        )
        await self._write(
            AuditRecord(
                kind=AuditKind.COMPLIANCE_SEARCH,
                recorded=datetime.now(UTC),
                source=self.chain_id,
                reason="exported" if export else "searched",
                detail=f"compliance officer {officer}: {len(result.rows)} record(s) found"
                + (f", exported as {fmt.upper()}" if export else "")
                + tampered,
                actor=party.id,
                actor_role=party.role,
                professional=officer,
                pseudonym=person,
                pseudonym_system=AUDIT_PSEUDONYM_SYSTEM,
                query=json.dumps(asked, sort_keys=True, default=str),
            )
        )
        return result

    async def audit_trace(self, message_id: str, *, user: str, role: str) -> None:
        """Audit a trace of one message (a search of the trail by message id) with the person
        who asked, before the trace is shown (NEN 7513)."""
        party = self.registry.get(self.keys.party_id)
        await self._write(
            AuditRecord(
                kind=AuditKind.COMPLIANCE_SEARCH,
                recorded=datetime.now(UTC),
                source=self.chain_id,
                reason="traced",
                detail=f"{role} {user}: traced message {message_id}",
                actor=party.id,
                actor_role=party.role,
                professional=user,
                message_id=message_id,
                query=json.dumps({"message_ids": [message_id]}, sort_keys=True),
            )
        )

    async def audit_sign_in(
        self, user: str | None, *, provider: str, refused: str | None = None,
        role: str | None = None, organisation: str | None = None,
    ) -> None:
        """Audit a sign-in through an identity provider, or its refusal, with the person
        (NEN 7513: access to the system is logged with the user; ``user`` is ``None`` when no
        verified token named anyone). The claims themselves are not kept."""
        party = self.registry.get(self.keys.party_id)
        who = user or "unknown person"
        detail = (f"sign-in of {who} through {provider} refused: {refused}" if refused else
                  f"{who} signed in through {provider} as {role}"
                  + (f" of {organisation}" if organisation else ""))
        await self._write(
            AuditRecord(
                kind=AuditKind.SIGN_IN,
                recorded=datetime.now(UTC),
                source=self.chain_id,
                reason=f"sign-in-refused:{refused}" if refused else "signed-in",
                detail=detail,
                actor=party.id,
                actor_role=party.role,
                professional=user,
                outcome=AuditOutcome.MINOR_FAILURE if refused else None,
            )
        )

    async def verify(self) -> VerifyReport:
        """Verify every chain on the audit topic against the chains the registry declares
        (signer binding) and the checkpoints on the checkpoint topic (a cut-off tail)."""
        records = await self._read(self.settings, topics.AUDIT.name)
        checkpoints = await self._read(self.settings, topics.AUDIT_CHECKPOINT.name)
        report = verify_trail(records, dataclasses.replace(self.trust(), checkpoints=checkpoints))
        metrics.observe_verification(len(report.findings), datetime.now(UTC).timestamp())
        return report
