"""Per-person data keys that can be forgotten: crypto-shredding on an append-only log
(issue 16 §6, AVG art. 17; ``docs/erasure.md``).

Person data that must be erasable is encrypted under a data key of that person (or case). The
data keys live on the ``keystore`` topic, so every router instance rebuilds them at start (no
central database), each *wrapped* under the key-encryption key (KEK) of one generation ``g``.
A KEK is a private file (0600, like a party's private keys) and never travels on a topic.

Forgetting must survive a rebuild from the topic, and a broker that never compacts keeps every
record it was given. So erasure (:meth:`DataKeyStore.erase`) writes a signed tombstone for the
person's keys, re-wraps every *surviving* key under a new generation ``g+1`` and then destroys
the KEK file of ``g``: every older record on the topic, the erased person's included, is from
then on ciphertext under a key that no longer exists.

Records are signed by their writer's Ed25519 key and accepted only from the writer party (the
router): a forged tombstone or a key injected by another party, even with its own valid key, is
refused. The wrapped key is also authenticated under the KEK with its id and generation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.trust._files import ensure_private_dir, read_private_file, write_private_file
from broker.trust.errors import KeyFileError, Reason, TrustError
from broker.trust.keys import PartyKeys
from broker.trust.registry import PartyRegistry
from schemas.memo import Memo

__all__ = [
    "CARRIED_PREFIX",
    "DATA_LAYER_PREFIX",
    "DataKeyStore",
    "ErasedKey",
    "KekRing",
    "KeyRecord",
    "carried",
    "channel_subject",
    "decrypt_layer",
    "encrypt_layer",
    "layer_context",
    "layer_dkid",
    "message_context",
    "open_carried",
    "open_layer",
    "seal_carried",
]

KEK_DIR = "kek"
LEDGER_FILE = "erasures.jsonl"
"""Beside the KEK files: one line per erasure, ``{"gen": <the new generation>, "erased": [dkid,
...]}``, written before the tombstones are published and before the old KEK is destroyed. It
names only opaque key ids (``pk1.<keyed owner>.<serial>``), never a person."""
_KEK_FILE = re.compile(r"^kek-(\d{1,9})\.key$")
_WRAP_AAD = b"ketenbus-datakey-wrap-v1"
_SIG_DOMAIN = b"ketenbus-keystore-record-v1"
DATA_LAYER_PREFIX = b"ketenbus-pdk-v1"
CARRIED_PREFIX = b"ketenbus-pdk-key-v1"
"""A data layer inside an envelope that carries its key's key-store record in front of it:
``CARRIED_PREFIX || len (4, BE) || key-store record || ketenbus-pdk-v1 layer``. The record is
signed by its writer and wrapped under the store's KEK, so carrying it reveals nothing the
topic does not, and ``ketenbus erase`` (which destroys that KEK) reaches it too; the reader
needs no wait for the key-store topic (the router and the party read another topic)."""
_NONCE = 12
OWNER_MEMO_SIZE = 65536
"""How many subjects' key-store owners a store keeps computed (pseudonyms, no key material)."""
_DKID = re.compile(r"^pk1\.[A-Za-z0-9_-]{8,64}\.[0-9a-f]{16}$")


class ErasedKey(TrustError):
    """The data key was erased (or never existed here): the data it sealed is gone."""

    def __init__(self, dkid: str) -> None:
        super().__init__(Reason.DECRYPT_FAILED, f"data key {dkid} is erased or unknown")
        self.dkid = dkid


class KekRing:
    """The KEK files of a key store: ``<dir>/kek-<g>.key``, 32 random bytes each, 0600."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def generations(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        found = (_KEK_FILE.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def current(self) -> int:
        """The newest generation, made (generation 1) when there is none yet."""
        gens = self.generations()
        return gens[-1] if gens else self.create(1)

    def create(self, generation: int) -> int:
        ensure_private_dir(self.directory)
        write_private_file(self._path(generation), os.urandom(32))
        return generation

    def key(self, generation: int) -> bytes | None:
        """The KEK of ``generation``, or None when it was destroyed (or never existed)."""
        path = self._path(generation)
        if not path.exists():
            return None
        data = read_private_file(path)
        if len(data) != 32:
            raise KeyFileError(f"{path} is not a 32-byte key")
        return data

    def destroy(self, generation: int) -> None:
        """Overwrite the KEK file and remove it (a copy-on-write file system or a backup may keep
        old blocks: docs/erasure.md says what that means)."""
        path = self._path(generation)
        if not path.exists():
            return
        with open(path, "r+b") as f:
            f.write(b"\0" * 32)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()

    def destroy_older(self, than: int) -> list[int]:
        """Destroy every generation older than ``than``: after an erasure, also one left behind
        by an earlier erasure that stopped before its last step. Returns those destroyed."""
        older = [g for g in self.generations() if g < than]
        for g in older:
            self.destroy(g)
        return older

    def _path(self, generation: int) -> Path:
        return self.directory / f"kek-{generation}.key"

    # --- the erasure ledger ----------------------------------------------------------------

    def record_erasure(self, generation: int, dkids: Iterable[str]) -> None:
        """Append an erasure to the ledger (:data:`LEDGER_FILE`) and sync it to disk *before*
        the tombstones reach the topic and the old KEK is destroyed. A process that holds a key
        under the destroyed generation but saw neither the tombstone nor the re-wrap (a broker
        lost its topics in between) can then still tell an erased key from a survivor
        (:meth:`DataKeyStore.settle`) instead of losing the survivor."""
        ensure_private_dir(self.directory)
        line = orjson.dumps({"gen": generation, "erased": sorted(dkids)}) + b"\n"
        path = self.directory / LEDGER_FILE
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def erasures(self) -> tuple[int, frozenset[str]]:
        """``(the newest generation an erasure made, every key id it erased)`` from the ledger;
        ``(0, {})`` without one. A line that does not parse (a crash mid-append) is skipped."""
        path = self.directory / LEDGER_FILE
        if not path.exists():
            return 0, frozenset()
        newest, erased = 0, set[str]()
        for raw in read_private_file(path, max_bytes=1 << 30).splitlines():
            try:
                doc = orjson.loads(raw)
                gen, ids = int(doc["gen"]), doc["erased"]
                if not isinstance(ids, list):
                    continue
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            newest = max(newest, gen)
            erased.update(str(d) for d in ids)
        return newest, frozenset(erased)


@dataclass(frozen=True)
class KeyRecord:
    """One record of the key-store topic: Kafka key = ``dkid``, value = :meth:`value`."""

    dkid: str
    owner: str  # the person's (or case's) key-store pseudonym
    generation: int  # 0 for a tombstone
    wrapped: bytes  # b"" for a tombstone
    writer: str
    at: str
    kid: str = ""
    sig: bytes = b""

    @property
    def erased(self) -> bool:
        return self.generation == 0

    def _signed_part(self) -> bytes:
        return orjson.dumps(
            {
                "at": self.at,
                "dkid": self.dkid,
                "gen": self.generation,
                "kid": self.kid,
                "owner": self.owner,
                "wrapped": base64.b64encode(self.wrapped).decode("ascii"),
                "writer": self.writer,
            },
            option=orjson.OPT_SORT_KEYS,
        )

    def signed(self, keys: PartyKeys) -> KeyRecord:
        unsigned = replace(self, kid=keys.key_id, sig=b"")
        return replace(unsigned, sig=keys.signing.sign(_SIG_DOMAIN + unsigned._signed_part()))

    def value(self) -> bytes:
        doc = orjson.loads(self._signed_part())
        doc["sig"] = base64.b64encode(self.sig).decode("ascii")
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def parse(cls, value: bytes) -> KeyRecord:
        """The record; ``TrustError`` (malformed) for anything else (signature not checked)."""
        try:
            doc = orjson.loads(value)
            if not isinstance(doc, dict) or set(doc) != {
                "at",
                "dkid",
                "gen",
                "owner",
                "wrapped",
                "writer",
                "kid",
                "sig",
            }:
                raise ValueError("fields")
            rec = cls(
                str(doc["dkid"]),
                str(doc["owner"]),
                int(doc["gen"]),
                base64.b64decode(doc["wrapped"], validate=True),
                str(doc["writer"]),
                str(doc["at"]),
                str(doc["kid"]),
                base64.b64decode(doc["sig"], validate=True),
            )
            if not _DKID.match(rec.dkid) or rec.generation < 0 or type(doc["gen"]) is not int:
                raise ValueError("dkid")
            return rec
        except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, binascii.Error):
            raise TrustError(Reason.MALFORMED_ENVELOPE, "not a key-store record") from None


def _wrap_aad(dkid: str, generation: int) -> bytes:
    return _WRAP_AAD + f"|{dkid}|{generation}".encode("ascii")


class DataKeyStore:
    """The data keys of one deployment, as rebuilt from the key-store topic with the KEK files.

    ``writer`` is the party whose records are accepted (the router); ``keys`` its signing keys
    when this process writes (the router, ``ketenbus erase``), None for a reader (compliance).
    ``co_writers`` are accepted too: a party's store is also its *channel* with the router
    (``in.<flow>`` and ``out.<party>`` payloads, ``docs/erasure.md``), where the router writes
    the keys of what it delivers and erases the person's keys; records are signed by whoever
    wrote them (``keys``' party).
    """

    def __init__(
        self,
        kek: KekRing,
        registry: PartyRegistry,
        *,
        writer: str,
        keys: PartyKeys | None = None,
        owner_secret: bytes,
        co_writers: Iterable[str] = (),
    ) -> None:
        self.kek = kek
        self.registry = registry
        self.writer = writer
        self.writers = frozenset({writer, *co_writers})
        self.keys = keys
        self._owner_secret = owner_secret
        self._owner_memo: Memo[str, str] = Memo(OWNER_MEMO_SIZE)  # the hot path asks per message
        self._keys: dict[str, bytes] = {}  # dkid -> data key
        self._records: dict[str, bytes] = {}  # dkid -> its newest wrapped record (to carry)
        self._gens: dict[str, int] = {}  # dkid -> the generation of its newest wrap seen here
        self._owners: dict[str, set[str]] = {}  # owner -> dkids (live and erased)
        self._erased: set[str] = set()
        self._erased_owners: set[str] = set()  # owners with a tombstone: persons erased
        self.refused = 0
        self.unreadable = 0
        self._settled_at: tuple[int, ...] | None = None  # the KEK files at the last settle()

    # --- identities ------------------------------------------------------------------------

    def owner(self, subject: str) -> str:
        """The key-store pseudonym of a person's BSN or a case id (``case:<id>``): keyed, so the
        topic names no one, and the same in every router instance (they share the secret)."""
        found = self._owner_memo.get(subject)
        if found is None:
            mac = hmac.new(self._owner_secret, b"keystore|" + subject.encode(), hashlib.sha256)
            found = base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")
            self._owner_memo.put(subject, found)
        return found

    # --- rebuilding from the topic ---------------------------------------------------------

    def apply(self, key: bytes | None, value: bytes | None) -> str | None:
        """Apply one record of the key-store topic (oldest first). Forged or unreadable records
        are counted and skipped, never applied. Returns the owner when the record is a tombstone
        this store had not seen yet (a person erased just now: the caller forgets what it holds
        in memory about them), else None."""
        if value is None:
            return None  # a Kafka tombstone says nothing we trust: unsigned
        try:
            rec = KeyRecord.parse(value)
            if rec.writer not in self.writers or (key is not None and key.decode() != rec.dkid):
                raise TrustError(Reason.UNKNOWN_SENDER, "not written by the key store's writer")
            entry = self.registry.key_entry(rec.writer, rec.kid)
            self.registry.signing_public_key(rec.writer, entry).verify(
                rec.sig, _SIG_DOMAIN + rec._signed_part()
            )
        except (TrustError, InvalidSignature, UnicodeDecodeError):
            self.refused += 1
            return None
        self._owners.setdefault(rec.owner, set()).add(rec.dkid)
        if rec.erased:
            new = rec.dkid not in self._erased
            self._erased.add(rec.dkid)
            self._erased_owners.add(rec.owner)
            self._keys.pop(rec.dkid, None)
            self._records.pop(rec.dkid, None)
            return rec.owner if new else None
        if rec.dkid in self._erased:
            return None  # an older wrap replayed after the tombstone
        kek = self.kek.key(rec.generation)
        if kek is None:
            return None  # an older generation: its KEK is destroyed; a newer record re-wraps it
        try:
            nonce, body = rec.wrapped[:_NONCE], rec.wrapped[_NONCE:]
            aad = _wrap_aad(rec.dkid, rec.generation)
            self._keys[rec.dkid] = AESGCM(kek).decrypt(nonce, body, aad)
            self._records[rec.dkid] = value
            self._gens[rec.dkid] = rec.generation
        except (InvalidTag, ValueError):
            self.unreadable += 1
        return None

    def load(self, records: Iterable[tuple[bytes | None, bytes | None]]) -> DataKeyStore:
        for key, value in records:
            self.apply(key, value)
        return self

    # --- use ---------------------------------------------------------------------------------

    def key(self, dkid: str) -> bytes:
        """The data key ``dkid``; ``ErasedKey`` when it is forgotten."""
        dk = self._keys.get(dkid)
        if dk is None:
            raise ErasedKey(dkid)
        return dk

    def key_for(self, owner: str) -> tuple[str, bytes, KeyRecord | None]:
        """The owner's live data key, made when there is none: ``(dkid, key, record to publish
        first or None)``."""
        for dkid in sorted(self._owners.get(owner, ())):
            if dkid in self._keys:
                return dkid, self._keys[dkid], None
        dkid = f"pk1.{owner}.{os.urandom(8).hex()}"
        dk = AESGCM.generate_key(bit_length=256)
        record = self._wrapped(dkid, owner, dk, self.kek.current())
        self._keys[dkid] = dk
        self._owners.setdefault(owner, set()).add(dkid)
        return dkid, dk, record

    def erase(self, owner: str, *more: str) -> tuple[list[KeyRecord], int]:
        """Forget every data key of ``owner`` (and of ``more`` owners: a party's journal and
        channel keys of one person): the records to publish (tombstones, then every surviving
        key re-wrapped under a new generation) and that new generation; every older one is to
        be destroyed *after* the records are on the topic (:meth:`KekRing.destroy_older`)."""
        new = self.kek.create(self.kek.current() + 1)
        now = _now()
        out: list[KeyRecord] = []
        for who in (owner, *more):
            for dkid in sorted(self._owners.get(who, ())):
                out.append(self._signed(KeyRecord(dkid, who, 0, b"", self._author, now)))
                self._erased.add(dkid)
                self._keys.pop(dkid, None)
                self._records.pop(dkid, None)
            self._erased_owners.add(who)
        for dkid, dk in sorted(self._keys.items()):
            out.append(self._wrapped(dkid, dkid.split(".")[1], dk, new))
        return out, new

    def settle(self) -> tuple[list[str], list[KeyRecord]]:
        """Decide the keys held here whose newest wrap is under a destroyed KEK: an erasure
        destroyed that generation, and this process saw neither the key's tombstone nor its
        re-wrap (the broker lost them, or the key was made here after ``erase`` read the store).
        The erasure ledger (:meth:`KekRing.record_erasure`) tells them apart: a key it names is
        forgotten like a tombstone (its owner returned when newly erased, so the caller drops
        what it holds in memory about the person), any other key is re-wrapped under the current
        generation (the records to publish). Without a ledger entry for the destruction (the
        file lost), such a key is left alone: kept in memory, never written back (``snapshot``),
        losing data rather than privacy (``docs/erasure.md``)."""
        on_disk = tuple(self.kek.generations())
        if on_disk == self._settled_at:
            return [], []  # no KEK destroyed since the last settle: nothing new to decide
        self._settled_at = on_disk
        dead = {g for g in set(self._gens.values()) if g not in on_disk}
        orphans = sorted(d for d, g in self._gens.items() if g in dead and d in self._keys)
        if not orphans:
            return [], []
        newest, ledger = self.kek.erasures()
        owners: list[str] = []
        records: list[KeyRecord] = []
        for dkid in orphans:
            owner = dkid.split(".")[1]
            if dkid in ledger:
                self._erased.add(dkid)
                self._keys.pop(dkid, None)
                self._records.pop(dkid, None)
                if owner not in self._erased_owners:
                    owners.append(owner)
                self._erased_owners.add(owner)
            elif newest > self._gens[dkid] and self.keys is not None:
                records.append(self._wrapped(dkid, owner, self._keys[dkid], self.kek.current()))
        return owners, records

    def snapshot(self) -> list[KeyRecord]:
        """Every live key wrapped under the current generation: to write the store back to a
        broker that lost its topics (memory storage), as the consent log is. Keys under a
        destroyed generation are settled first (:meth:`settle`): an erased one is forgotten, a
        survivor re-wrapped; one the ledger cannot decide stays out, since writing back an
        erased person's key under the new KEK would bring them back (``docs/erasure.md``)."""
        self.settle()
        gen = self.kek.current()
        alive = {g for g in set(self._gens.values()) if self.kek.key(g) is not None}
        return [
            self._wrapped(dkid, dkid.split(".")[1], dk, gen)
            for dkid, dk in sorted(self._keys.items())
            if self._gens.get(dkid) in alive
        ]

    def live_keys(self, owner: str) -> list[str]:
        """The ids of ``owner``'s data keys this store can still open."""
        return sorted(d for d in self._owners.get(owner, ()) if d in self._keys)

    def erased_owner(self, owner: str) -> bool:
        """Whether ``owner`` was erased and has no key made since (a consent given after the
        erasure makes a new one): nothing of theirs held in memory may be sealed again."""
        return owner in self._erased_owners and not self.live_keys(owner)

    def knows(self, dkid: str) -> bool:
        """Whether ``dkid`` is live or erased here (not merely unknown)."""
        return dkid in self._keys or dkid in self._erased

    def record(self, dkid: str) -> bytes | None:
        """The newest key-store record of a live key (to carry with what it seals)."""
        return self._records.get(dkid)

    def erased(self, dkid: str) -> bool:
        return dkid in self._erased or dkid not in self._keys

    def owners(self) -> int:
        return len(self._owners)

    def _wrapped(self, dkid: str, owner: str, dk: bytes, generation: int) -> KeyRecord:
        kek = self.kek.key(generation)
        if kek is None:
            raise KeyFileError(f"the key-store KEK of generation {generation} is missing")
        nonce = os.urandom(_NONCE)
        wrapped = nonce + AESGCM(kek).encrypt(nonce, dk, _wrap_aad(dkid, generation))
        rec = self._signed(KeyRecord(dkid, owner, generation, wrapped, self._author, _now()))
        self._records[dkid] = rec.value()
        self._gens[dkid] = generation
        return rec

    @property
    def _author(self) -> str:
        return self.keys.party_id if self.keys is not None else self.writer

    def _signed(self, rec: KeyRecord) -> KeyRecord:
        if self.keys is None or self.keys.party_id not in self.writers:
            raise TrustError(Reason.UNKNOWN_SENDER, "only the key store's writer writes records")
        return rec.signed(self.keys)


def encrypt_layer(dkid: str, dk: bytes, payload: bytes, *, context: bytes) -> bytes:
    """``ketenbus-pdk-v1 || len(dkid) || dkid || nonce || AES-256-GCM(dk, payload, context)``:
    the inner layer that makes a payload erasable with its data key."""
    raw = dkid.encode("ascii")
    nonce = os.urandom(_NONCE)
    body = AESGCM(dk).encrypt(nonce, payload, DATA_LAYER_PREFIX + context)
    return DATA_LAYER_PREFIX + bytes([len(raw)]) + raw + nonce + body


def layer_dkid(blob: bytes) -> str | None:
    """The data key id of an inner layer, or None when ``blob`` is not one."""
    if not blob.startswith(DATA_LAYER_PREFIX) or len(blob) <= len(DATA_LAYER_PREFIX):
        return None
    n = blob[len(DATA_LAYER_PREFIX)]
    raw = blob[len(DATA_LAYER_PREFIX) + 1 : len(DATA_LAYER_PREFIX) + 1 + n]
    return raw.decode("ascii", "replace") if len(raw) == n else None


def decrypt_layer(store: DataKeyStore, blob: bytes, *, context: bytes) -> bytes:
    """The payload of :func:`encrypt_layer`; ``ErasedKey`` when its key is forgotten,
    ``TrustError`` when it is not a layer or was changed."""
    dkid = layer_dkid(blob)
    if dkid is None:
        raise TrustError(Reason.MALFORMED_ENVELOPE, "not a ketenbus-pdk-v1 layer")
    at = len(DATA_LAYER_PREFIX) + 1 + len(dkid.encode("ascii"))
    nonce, body = blob[at : at + _NONCE], blob[at + _NONCE :]
    try:
        return AESGCM(store.key(dkid)).decrypt(nonce, body, DATA_LAYER_PREFIX + context)
    except (InvalidTag, ValueError):
        raise TrustError(Reason.DECRYPT_FAILED, "the data layer does not open") from None


def layer_context(topic: str) -> bytes:
    """What a data layer is bound to: the topic it was written for, so a layer cut from one
    topic does not open as another's payload."""
    return b"ketenbus-topic|" + topic.encode("utf-8")


def message_context(message_id: str) -> bytes:
    """What the data layer inside an envelope is bound to: its message id (the envelope's
    ``kb-id``), so a layer cut from one message does not open as another's payload."""
    return b"ketenbus-message|" + message_id.encode("utf-8")


def seal_carried(
    store: DataKeyStore, owner: str, payload: bytes, *, context: bytes
) -> tuple[bytes, KeyRecord | None]:
    """``payload`` under ``owner``'s data key with that key's record carried in front
    (:data:`CARRIED_PREFIX`), and the record of a key made just now (to publish on the
    key-store topic too, so a reader that restarts rebuilds it), else None."""
    dkid, dk, made = store.key_for(owner)
    record = store.record(dkid) or b""
    blob = encrypt_layer(dkid, dk, payload, context=context)
    return CARRIED_PREFIX + len(record).to_bytes(4, "big") + record + blob, made


def carried(data: bytes) -> bool:
    return data.startswith(CARRIED_PREFIX)


def open_carried(store: DataKeyStore, data: bytes, *, context: bytes) -> bytes:
    """The payload of :func:`seal_carried` (or of a bare :func:`encrypt_layer`): a carried key
    this store does not know yet is applied first -- only if its writer's signature verifies
    and its wrap opens under a KEK held here (:meth:`DataKeyStore.apply`); an erased key is
    never brought back. ``ErasedKey`` when the key is forgotten, ``TrustError`` otherwise."""
    blob = data
    if carried(data):
        at = len(CARRIED_PREFIX)
        n = int.from_bytes(data[at : at + 4], "big")
        record, blob = data[at + 4 : at + 4 + n], data[at + 4 + n :]
        if len(record) != n:
            raise TrustError(Reason.MALFORMED_ENVELOPE, "a carried key record is cut short")
        dkid = layer_dkid(blob)
        if n and dkid is not None and not store.knows(dkid):
            store.apply(dkid.encode("ascii"), record)
    return decrypt_layer(store, blob, context=context)


def channel_subject(bsn: str) -> str:
    """The subject of a person's channel keys in a party's store: the router and the party
    both know the BSN (each has its own pseudonym of it), and :meth:`DataKeyStore.owner` keys
    it with the store's secret, so the topic names no one."""
    return "channel|" + bsn


def open_layer(store: DataKeyStore | None, value: bytes, topic: str) -> bytes:
    """``value`` without its data layer (a value without one is returned as it is): how a
    reader of ``consent``, ``rejected`` or ``dead-letter`` gets the sealed envelope back. A
    layer that carries its key's record (:func:`seal_carried`, the consent log's) opens with a
    key this store has not read from the key-store topic yet.
    ``ErasedKey`` when the person was erased; ``TrustError`` when the layer is changed or there
    is no key store to open it."""
    if layer_dkid(value) is None and not carried(value):
        return value
    if store is None:
        raise TrustError(Reason.DECRYPT_FAILED, "a person's data layer: the key store is needed")
    return open_carried(store, value, context=layer_context(topic))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
