"""A signed, sealed snapshot of the consent view, so a starting router replays only the tail of
the consent log instead of all of it (issue 19 point 7; ``docs/consent-snapshot.md``).

On the ``consent-snapshot`` topic (compacted), one writer at a time (the router instance that
holds partition 0 of ``in.consent``) writes:

* on partition 1, **chunks** of at most :data:`CHUNK_BYTES`: the shared tables of the chunk
  (recipient lists, who recorded on which basis: party ids and codes) and per person the router
  pseudonym and that person's consents **encrypted under the person's data key**
  (``broker.trust.datakeys``, the consent log's own layer). An erasure destroys that key, so
  the person is gone from every snapshot ever written, whatever compaction has not removed yet
  (AVG art. 17, ``docs/erasure.md``). A person erased and not consenting since is left out of
  the next snapshot (no new key is ever made for them);
* on partition 0, then, the **head**: the consent log position the view reflects (per
  partition, the next offset to read), the offset and SHA-256 of every chunk, and counts.

Every record is sealed for the router party (all instances share its encryption key) and
signed by the writing instance's own key. A loader takes a head only from the router party
(an envelope from any other party, even with its own valid key, is refused), a chunk only when
its hash is the one the head lists, and falls back to the next head or to a full replay when
any part is missing or wrong. The view may hold a consent a few records past the position
(applied by the pipeline before the log's echo reached the reader); replaying from the position
applies it again, which changes nothing (``ConsentView`` is order-independent).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import TopicPartition

from broker.config import Settings
from broker.kafka.clients import REPLAY_FETCH_WAIT_MS, make_consumer
from broker.policy.consent_view import ConsentView, SnapshotTables
from broker.router.pipeline import AUDIT_DOMAIN, RouterState
from broker.trust import TrustError, open_sealed
from broker.trust.datakeys import ErasedKey, encrypt_layer, layer_context, layer_dkid, open_layer
from broker.trust.envelope import Sealed
from broker.trust.sealing import seal_for
from schemas import topics

log = logging.getLogger(__name__)

__all__ = [
    "CHUNK_BYTES",
    "HEAD_EVENT",
    "Head",
    "Loaded",
    "Snapshot",
    "build",
    "chunk_entries",
    "decode",
    "load_latest",
    "read_heads",
    "writer_of",
]

TOPIC = topics.CONSENT_SNAPSHOT.name
HEADS, CHUNKS = 0, 1  # partitions
HEAD_EVENT = "consent-snapshot-head"
CHUNK_EVENT = "consent-snapshot-chunk"
CHUNK_BYTES = 512 * 1024  # well under Kafka's default 1 MB record, envelope included
_MAGIC = b"ketenbus-consent-snapshot-v1\n"
_U32 = struct.Struct("<I")
_YIELD_EVERY = 2000  # persons between two yields to the event loop (build and decode)
_CONTEXT = layer_context(TOPIC)


class SnapshotRefused(ValueError):
    """A head or chunk that is not the router's, does not match its head, or does not parse."""


@dataclass(frozen=True)
class Head:
    """What a snapshot holds and where its chunks are; the signed part."""

    snapshot_id: str
    writer: str
    at: str
    positions: dict[int, int]  # consent-log partition -> next offset to read
    chunks: list[tuple[int, str]]  # (offset on partition 1, SHA-256 hex of the record value)
    persons: int
    consents: int

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.snapshot_id,
                "writer": self.writer,
                "at": self.at,
                "positions": {str(p): o for p, o in sorted(self.positions.items())},
                "chunks": [[o, h] for o, h in self.chunks],
                "persons": self.persons,
                "consents": self.consents,
            }
        )

    @classmethod
    def parse(cls, raw: bytes) -> Head:
        try:
            d = orjson.loads(raw)
            head = cls(
                str(d["id"]),
                str(d["writer"]),
                str(d["at"]),
                {int(p): int(o) for p, o in d["positions"].items()},
                [(int(o), str(h)) for o, h in d["chunks"]],
                int(d["persons"]),
                int(d["consents"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise SnapshotRefused("a snapshot head that does not parse") from None
        if any(o < 0 for o in head.positions.values()) or any(o < 0 for o, _ in head.chunks):
            raise SnapshotRefused("a snapshot head with a negative offset")
        return head

    @property
    def reach(self) -> int:
        """How far into the consent log it reaches (a newer snapshot reaches further)."""
        return sum(self.positions.values())


@dataclass
class Snapshot:
    """A built snapshot: its chunk records, then its head once their offsets are known."""

    snapshot_id: str
    writer: str
    positions: dict[int, int]
    chunks: list[Sealed]
    persons: int
    consents: int
    left_out: int  # persons erased since their consents were applied: not written
    size: int = 0  # bytes of the chunk values


def writer_of(state: RouterState) -> str:
    """The writer's name in record keys: its instance id, or the router id."""
    entry = state.registry.key_entry(state.keys.party_id, state.keys.key_id)
    return entry.instance or state.keys.party_id


def _seal(state: RouterState, payload: bytes, event: str, mid: str, key: str) -> Sealed:
    router = state.keys.party_id
    now = datetime.now(UTC)
    return seal_for(
        payload, state.keys, state.registry, router, event=event, message_id=mid,
        pseudonym=key, timestamp=now,
    )  # fmt: skip


async def build(state: RouterState, positions: Mapping[int, int]) -> Snapshot:
    """Seal the view as it is now into chunks. ``positions`` must be the consent log position
    the view has applied (taken before the first person is read). Yields to the event loop
    every few thousand persons, so a router keeps routing while it builds."""
    view, keys = state.consents, state.datakeys
    writer, sid = writer_of(state), str(uuid.uuid4())
    chunks: list[Sealed] = []
    tables = SnapshotTables()
    entries: list[bytes] = []
    size = persons = consents = left_out = 0

    def close() -> None:
        nonlocal tables, entries, size
        body = _MAGIC + _frame(orjson.dumps(tables.to_json())) + b"".join(entries)
        n = len(chunks)
        chunks.append(_seal(state, body, CHUNK_EVENT, f"{sid}/{n}", f"{writer}/{n}"))
        tables, entries, size = SnapshotTables(), [], 0

    for i, pseudo in enumerate(view.pseudonyms()):
        if i and i % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        bsn = view.person_bsn(pseudo)
        if bsn is None:
            continue  # forgotten (an erasure) while this ran
        exported = view.export_person(pseudo, tables)
        if keys is not None:
            audit = state.pseudonyms.pseudonym(AUDIT_DOMAIN, bsn)
            if keys.store.erased_owner(keys.store.owner(audit)):
                left_out += 1  # never a new data key for an erased person (docs/erasure.md)
                continue
            dkid, dk = keys.for_person(audit)
            exported = encrypt_layer(dkid, dk, exported, context=_CONTEXT)
        entry = _frame(pseudo.encode()) + _frame(exported)
        entries.append(entry)
        size += len(entry)
        persons += 1
        consents += view.count_of(pseudo)
        if size >= CHUNK_BYTES:
            close()
    if entries or not chunks:
        close()
    snap = Snapshot(sid, writer, dict(positions), chunks, persons, consents, left_out)
    snap.size = sum(len(c.value) for c in chunks)
    return snap


def head_record(state: RouterState, snap: Snapshot, offsets: list[int]) -> Sealed:
    """The head of ``snap`` once its chunks are on partition 1 at ``offsets``."""
    head = Head(
        snap.snapshot_id,
        snap.writer,
        datetime.now(UTC).isoformat(timespec="seconds"),
        snap.positions,
        [
            (o, hashlib.sha256(c.value).hexdigest())
            for o, c in zip(offsets, snap.chunks, strict=True)
        ],
        snap.persons,
        snap.consents,
    )
    return _seal(state, head.to_json(), HEAD_EVENT, snap.snapshot_id, f"{snap.writer}/head")


def _frame(raw: bytes) -> bytes:
    return _U32.pack(len(raw)) + raw


def _take(body: bytes, at: int) -> tuple[bytes, int]:
    if at + _U32.size > len(body):
        raise SnapshotRefused("a snapshot chunk cut short")
    (n,) = _U32.unpack_from(body, at)
    at += _U32.size
    if at + n > len(body):
        raise SnapshotRefused("a snapshot chunk cut short")
    return body[at : at + n], at + n


# --- verifying and loading ------------------------------------------------------------------


def open_record(state: RouterState, r: Any, event: str) -> bytes:
    """The payload of a snapshot record, only when the router party sealed and signed it;
    ``SnapshotRefused`` (with the reason) otherwise."""
    router = state.keys.party_id
    try:
        opened = open_sealed(
            r.key, r.value or b"", list(r.headers or ()),
            registry=state.registry, keyring=state.keyring, now=datetime.now(UTC),
        )  # fmt: skip
    except TrustError as err:
        raise SnapshotRefused(f"a snapshot record refused: {err.reason}") from None
    if opened.meta.sender != router or opened.meta.event != event:
        raise SnapshotRefused("a snapshot record not written by the router")
    return opened.payload


@dataclass
class Loaded:
    """A snapshot loaded into a fresh view, with what the consent log replays after it."""

    head: Head
    view: ConsentView
    erased: int  # persons whose data key was erased: unreadable by design
    dkids: list[tuple[str, str]] = field(default_factory=list)  # pseudonym, data key id


async def decode(state: RouterState, head: Head, bodies: list[bytes]) -> Loaded:
    """The view of a snapshot's chunk payloads (already checked against ``head``); yields to
    the event loop every few thousand persons. ``SnapshotRefused`` for a malformed chunk."""
    view = ConsentView()
    store = state.datakeys.store if state.datakeys is not None else None
    loaded = Loaded(head, view, 0)
    n = 0
    for body in bodies:
        tables, entries = chunk_entries(body)
        for raw_pseudo, blob in entries:
            n += 1
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            pseudo = raw_pseudo.decode("ascii", "replace")
            try:
                plain = open_layer(store, blob, TOPIC)
            except ErasedKey:
                loaded.erased += 1
                continue
            except TrustError:
                raise SnapshotRefused("a snapshot entry that does not open") from None
            try:
                view.restore_person(pseudo, plain, tables)
            except ValueError as err:
                raise SnapshotRefused(str(err)) from None
            dkid = layer_dkid(blob)
            if dkid is not None:
                loaded.dkids.append((pseudo, dkid))
    return loaded


def chunk_entries(body: bytes) -> tuple[SnapshotTables, list[tuple[bytes, bytes]]]:
    """A chunk payload's tables and its ``(pseudonym, person part)`` entries, the person part
    still under its data layer; ``SnapshotRefused`` for anything else."""
    if not body.startswith(_MAGIC):
        raise SnapshotRefused("not a consent snapshot chunk")
    raw_tables, at = _take(body, len(_MAGIC))
    try:
        tables = SnapshotTables.from_json(orjson.loads(raw_tables))
    except (orjson.JSONDecodeError, ValueError):
        raise SnapshotRefused("snapshot chunk tables that do not parse") from None
    entries = []
    while at < len(body):
        raw_pseudo, at = _take(body, at)
        blob, at = _take(body, at)
        entries.append((raw_pseudo, blob))
    return tables, entries


async def read_heads(settings: Settings, state: RouterState) -> tuple[list[Head], int]:
    """The latest valid head of every writer (newest reach first) and the number of head
    records refused (forged, not the router's, unreadable)."""
    latest: dict[str, Head] = {}
    refused = 0

    def one(r: Any) -> None:
        nonlocal refused
        try:
            head = Head.parse(open_record(state, r, HEAD_EVENT))
        except SnapshotRefused as err:
            refused += 1
            log.warning("consent snapshot head skipped: %s", err)
            return
        latest[head.writer] = head

    await _read(settings, TopicPartition(TOPIC, HEADS), None, one)
    heads = sorted(latest.values(), key=lambda h: (h.reach, h.at), reverse=True)
    return heads, refused


async def load_latest(settings: Settings, state: RouterState) -> Loaded | None:
    """The newest snapshot that verifies whole, loaded into a fresh view; None when there is
    none (the caller replays the whole consent log)."""
    heads, _ = await read_heads(settings, state)
    for head in heads:
        try:
            bodies = await _chunks(settings, state, head)
            return await decode(state, head, bodies)
        except SnapshotRefused as err:
            log.warning("consent snapshot %s not loaded: %s", head.snapshot_id, err)
    return None


async def _chunks(settings: Settings, state: RouterState, head: Head) -> list[bytes]:
    if not head.chunks:
        raise SnapshotRefused("a snapshot without chunks")
    wanted = {o: h for o, h in head.chunks}
    found: dict[int, bytes] = {}

    def one(r: Any) -> None:
        h = wanted.get(r.offset)
        if h is None or hashlib.sha256(r.value or b"").hexdigest() != h:
            return
        found[r.offset] = open_record(state, r, CHUNK_EVENT)

    first, last = min(wanted), max(wanted)
    await _read(settings, TopicPartition(TOPIC, CHUNKS), (first, last + 1), one)
    missing = [o for o in wanted if o not in found]
    if missing:
        raise SnapshotRefused(f"{len(missing)} chunk(s) missing or changed (compacted away?)")
    return [found[o] for o, _ in head.chunks]


async def _read(
    settings: Settings,
    tp: TopicPartition,
    span: tuple[int, int] | None,
    handle: Any,
    timeout: float = 120.0,
) -> None:
    """Hand the records of one partition (all, or offsets ``span[0]`` to ``span[1]``) to
    ``handle``. A topic that does not exist (a deployment from before snapshots) is empty."""
    consumer = make_consumer(
        settings,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=REPLAY_FETCH_WAIT_MS,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        parts: set[int] = set()
        for _ in range(10):
            await consumer.topics()
            parts = consumer.partitions_for_topic(tp.topic) or set()
            if parts:
                break
            await asyncio.sleep(0.05)
        if tp.partition not in parts:
            return
        consumer.assign([tp])
        if span is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, span[0])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=500)
            for r in batch.get(tp, []):
                if span is not None and r.offset >= span[1]:
                    return
                handle(r)
            pos = await consumer.position(tp)
            if span is not None and pos >= span[1]:
                return
            hw = consumer.highwater(tp)
            if hw is not None and pos >= hw:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"{tp.topic}[{tp.partition}] was not read in time")
    finally:
        await consumer.stop()


async def write(producer: Any, state: RouterState, snap: Snapshot) -> list[int]:
    """Publish the chunks, wait for their offsets, then the head: a head never points at
    chunks that are not on the topic. Returns the chunk offsets."""
    futures = [
        await producer.send(TOPIC, value=c.value, key=c.key, headers=c.headers, partition=CHUNKS)
        for c in snap.chunks
    ]
    offsets = [int((await f).offset) for f in futures]
    head = head_record(state, snap, offsets)
    await (
        await producer.send(
            TOPIC, value=head.value, key=head.key, headers=head.headers, partition=HEADS
        )
    )
    return offsets
