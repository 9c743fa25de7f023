"""Re-process: send refused or dead-lettered records through the router again, as new, audited
attempts that refer to the original (issue 17; OpenHIM's and Mirth's "re-run").

Selection is by message id, reason, sender and time window; one record per message (its latest
refusal). Before anything is sent, the plan says what would happen *now*: each record is routed
by a scratch copy of the router (its keys, the policy and the consent view rebuilt from the
``consent`` topic) that publishes nothing. Sending a record:

1. the console writes a ``reprocess`` AuditEvent on its chain naming the operator (NEN 7513:
   the user is the person who acted; the record is written before anything is sent, and nothing
   is sent when it cannot be written);
2. the record goes back to the topic it came from with a request signed by the console
   (``broker.router.reprocess``): the router lets it through the replay guard as a new attempt,
   while a plain replay of the same record is still answered as a duplicate;
3. recipients the audit trail shows as delivered are named in the request, and the router skips
   them (and any it delivered itself meanwhile): nothing is delivered twice.

Bounded (``limit``) and stoppable (``stop``, checked before each record).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.apps.deployment import Deployment
from broker.apps.operations.parked import PARKING_TOPICS, ParkedRecord, read_parked
from broker.audit import AuditKind, AuditRecord, ChainWriter, decode_rows, read_audit_topic
from broker.config import Settings
from broker.kafka import make_producer
from broker.policy import Policy
from broker.router.consent_log import ConsentLog
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from broker.router.reprocess import (
    CONSOLE_ROLE,
    ReprocessRequest,
    new_request,
    request_headers,
)
from broker.trust import PartyKeys, TrustError
from broker.trust.datakeys import ErasedKey, layer_dkid, open_layer
from schemas import topics

DEFAULT_LIMIT = 100
ROUTED = frozenset(t.name for t in topics.ROUTED)


class ReprocessRefused(RuntimeError):
    """The request cannot be carried out as asked; nothing was changed."""


@dataclass(frozen=True)
class Selection:
    ids: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    senders: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    parking: tuple[str, ...] = PARKING_TOPICS

    @property
    def empty(self) -> bool:
        return not (self.ids or self.reasons or self.senders or self.since or self.until)

    def matches(self, r: ParkedRecord) -> bool:
        at = r.refused_at
        return (
            (not self.ids or r.message_id in self.ids)
            and (not self.reasons or r.reason in self.reasons)
            and (not self.senders or r.sender in self.senders)
            and (self.since is None or (at is not None and at >= self.since))
            and (self.until is None or (at is not None and at < self.until))
        )


@dataclass
class Item:
    """One record to re-process, with what the plan found."""

    record: ParkedRecord
    delivered: frozenset[str] = frozenset()  # per the audit trail
    outlook: list[str] = field(default_factory=list)  # what would happen now, in words
    would_deliver: frozenset[str] = frozenset()
    problem: str | None = None  # why it cannot be re-processed at all
    attempt: str | None = None  # once sent
    audit_event: str | None = None


def select(records: Sequence[ParkedRecord], selection: Selection) -> list[ParkedRecord]:
    """The matching records, one per (sender, message id): its latest refusal."""
    latest: dict[tuple[str | None, str | None], ParkedRecord] = {}
    for r in records:
        if r.topic in selection.parking and selection.matches(r):
            latest[(r.sender, r.message_id)] = r  # records come in offset order per topic
    return sorted(latest.values(), key=lambda r: (r.refused_at or datetime.min.replace(tzinfo=UTC),
                                                  r.place))


def choose(records: Sequence[ParkedRecord], selection: Selection, limit: int) -> list[ParkedRecord]:
    """:func:`select`, refused (``ReprocessRefused``, nothing done) when an id asked for is not
    parked or more than ``limit`` records match."""
    chosen = select(records, selection)
    missing = selection.ids - {r.message_id for r in chosen if r.message_id}
    if missing:
        raise ReprocessRefused(
            f"not on {' or '.join(selection.parking)}: {', '.join(sorted(missing))} (never "
            "refused, or no longer on the broker); nothing was re-processed")
    if len(chosen) > limit:
        raise ReprocessRefused(f"{len(chosen)} records match, more than --limit {limit}: "
                               "narrow the selection or raise the limit")
    return chosen


def delivered_per_audit(audit: Sequence[bytes]) -> dict[tuple[str, str], frozenset[str]]:
    """(sender, message id) -> recipients the audit trail shows a delivery to."""
    rows, _ = decode_rows(audit)
    out: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if row.kind == AuditKind.DELIVERY.value and row.message_id and row.recipient:
            out.setdefault((row.sender or "", row.message_id), set()).add(row.recipient)
    return {k: frozenset(v) for k, v in out.items()}


class Reprocessor:
    """Plans and sends re-processes on behalf of one operator."""

    def __init__(
        self,
        settings: Settings,
        deployment: Deployment,
        policy: Policy,
        operator: str,
        *,
        chain_id: str | None = None,
        writer: ChainWriter | None = None,
    ) -> None:
        """``writer``: the console's chain writer when this process already has one (the web
        app's): one writer per chain, or two would fork it."""
        self.settings = settings
        self.deployment = deployment
        self.policy = policy
        self.operator = operator
        consoles = deployment.registry.by_role(CONSOLE_ROLE)
        if not consoles:
            raise ReprocessRefused("the registry has no console party to sign a re-process")
        self.console = consoles[0]
        try:
            self.keys: PartyKeys = deployment.keyring(self.console.id).current
        except Exception as exc:
            raise ReprocessRefused(
                f"no private key of the console {self.console.id} on this machine "
                f"({type(exc).__name__})") from exc
        if chain_id is None:
            declared = [d.chain for d in deployment.registry.audit_chains_of(self.console.id)]
            chain_id = next((c for c in declared if c.endswith("-cli")), f"{self.console.id}-cli")
        self.writer = writer or ChainWriter(settings, self.keys, chain_id)

    async def plan(self, selection: Selection, limit: int = DEFAULT_LIMIT) -> list[Item]:
        """The selected records with what would happen to each now; ``ReprocessRefused`` when
        the selection names ids that are not parked (any more)."""
        if selection.empty:
            raise ReprocessRefused("select something: --id, --reason, --sender, --since or "
                                   "--until (re-processing everything at once is not offered)")
        parked = await self._opened(await read_parked(self.settings, selection.parking))
        chosen = choose(parked, selection, limit)
        delivered = delivered_per_audit(await read_audit_topic(self.settings))
        items = [Item(r, delivered.get((r.sender or "", r.message_id or ""), frozenset()))
                 for r in chosen]
        await self._outlook(items)
        return items

    async def _opened(self, records: list[ParkedRecord]) -> list[ParkedRecord]:
        """The parked records as the router received them: the router puts a refused record
        under the person's data key when it knows who it is about (docs/erasure.md), so its
        original envelope, signature and digest come back with that key. A record of an erased
        person cannot be opened any more, and is not offered (AVG art. 17)."""
        if not any(layer_dkid(r.value) for r in records):
            return records
        store = self.deployment.reader_key_store(self.settings)
        if store is not None:
            await store.load()
        out = []
        for r in records:
            try:
                value = open_layer(store.store if store else None, r.value, r.topic)
            except ErasedKey:
                continue
            except TrustError as err:
                raise ReprocessRefused(
                    f"a parked record is under a person's data key and does not open here "
                    f"({err.reason}): re-process where the router's key store (its KEK files) "
                    "is"
                ) from None
            out.append(dataclasses.replace(r, value=value))
        return out

    def _request(self, item: Item, audit_event: str) -> tuple[ReprocessRequest, Incoming]:
        r = item.record
        request = new_request(r.value, r.place, audit_event, self.keys, item.delivered)
        headers = request_headers(r.headers, request, self.keys)
        return request, Incoming(r.source_topic or "", r.original_key, r.value, headers)

    async def _outlook(self, items: list[Item]) -> None:
        """Route each record with a scratch router (nothing is published) to say what now."""
        # with the router's data keys where they are (its KEK files on this machine): the
        # consent log and the parked records are under the persons' keys (docs/erasure.md);
        # the scratch router publishes nothing, so a key it makes is never written
        here = self.deployment.reader_key_store(self.settings) is not None
        state = self.deployment.router_state(self.policy, settings=self.settings if here else None)
        if state.datakeys is not None:
            await state.datakeys.load()
        log = ConsentLog(self.settings, state)
        await log.start()
        await log.stop()
        scratch = Pipeline(state)
        now = datetime.now(UTC)
        for item in items:
            r = item.record
            if not r.message_id or r.source_topic not in ROUTED or r.original_key is None:
                item.problem = ("the router never read it as a message (no id, source topic "
                                "or key)")
                item.outlook = [f"cannot re-process: {item.problem}"]
                continue
            _, rec = self._request(item, "dry-run")
            result = scratch.route(rec, now)
            words, deliver = [], set()
            for f in result.facts:
                if f.kind is FactKind.PERMIT and f.recipient:
                    deliver.add(f.recipient)
                    words.append(f"would deliver to {f.recipient} ({f.reason})")
                elif f.kind is FactKind.DENY:
                    words.append(f"still refused for {f.recipient}: {f.reason} ({f.detail})")
                elif f.kind is FactKind.REFUSAL:
                    words.append(f"still refused: {f.reason} ({f.detail})")
                elif f.kind is FactKind.DUPLICATE:
                    words.append(f"{f.recipient or 'all'}: {f.detail}")
                elif f.kind is FactKind.CONSENT_CHANGE:
                    words.append(f"would record the consent ({f.detail})")
            item.outlook = words or ["nothing would be delivered"]
            item.would_deliver = frozenset(deliver)

    async def send(self, items: list[Item], stop: Callable[[], bool] = lambda: False,
                   on_sent: Callable[[Item], None] | None = None) -> int:
        """Audit, then send each item that can be re-processed; returns how many were sent."""
        producer = make_producer(self.settings)
        await producer.start()

        async def put(topic: str, key: bytes, value: bytes) -> None:
            await producer.send_and_wait(topic, value=value, key=key)

        sent = 0
        try:
            for item in items:
                if stop():
                    break
                if item.problem:
                    continue
                r = item.record
                record = AuditRecord(
                    kind=AuditKind.REPROCESS,
                    recorded=datetime.now(UTC),
                    source=self.writer.chain_id,
                    reason="reprocess-requested",
                    detail=f"operator {self.operator}: re-process of {r.place} (refused: "
                    f"{r.reason})"
                    + (f"; already delivered to {', '.join(sorted(item.delivered))}"
                       if item.delivered else ""),
                    actor=self.console.id,
                    actor_role=self.console.role,
                    professional=self.operator,
                    message_id=r.message_id,
                    topic=r.source_topic,
                )
                await self.writer.write([record], put)  # audited before it is sent
                request, rec = self._request(item, record.event_id)
                await producer.send_and_wait(rec.topic, value=rec.value, key=rec.key,
                                             headers=rec.headers)
                item.attempt, item.audit_event = request.attempt, record.event_id
                sent += 1
                if on_sent:
                    on_sent(item)
                await asyncio.sleep(0)
            with contextlib.suppress(Exception):  # the cadence covers it
                async with asyncio.timeout(5):
                    await self.writer.checkpoint(put)
        finally:
            await producer.stop()
        return sent
