"""An append-only, hash-chained, signed log of AuditEvents (the ``audit`` topic).

Record format (``docs/audit-format.md`` is the normative description)::

    body   = {"chain": <chain id>, "seq": n, "prev": <hash of record n-1, or 64 zeros>,
              "event": <AuditEvent>}
    hash   = hex(sha256(canonical(body)))
    sig    = hex(Ed25519-sign(router key, bytes.fromhex(hash)))
    record = canonical({**body, "hash": hash, "sig": sig, "kid": <key id>})

``canonical`` is :func:`broker.audit.canonical.canonical`. Sequence numbers start at 0 per
chain; several chains (one per router instance) may interleave on one topic.

**Batch-signed records** (:meth:`AuditChain.append_records`, two records or more): the chain
and the hashes are the same, but one signature covers the batch and each record carries an
eighth member, ``proof``, its RFC 9162 inclusion proof (:mod:`broker.trust.merkle`)::

    leaf_i = merkle.leaf_hash(bytes.fromhex(hash_i))      # SHA-256(0x00 || 32 hash bytes)
    root   = RFC 9162 Merkle tree head over leaf_0 .. leaf_{n-1}
    sig    = hex(Ed25519-sign(router key, b"ketenbus-audit-batch-v1" || n as 4 bytes BE || root))
    proof  = hex(merkle.encode_proof(proof_i))            # index, size, path (leaf to root)

:func:`verify` checks every record against the declared signers
(:mod:`broker.audit.signers`) and classifies what is wrong, each finding with the record's
**position** (0-based index in the stream: the Kafka offset of a single-partition topic read
from the start, or the line number minus one of a JSONL export). Per record, the first of
(``docs/audit-format.md`` section 8, design audit-record-v2 section 5):

* ``malformed``: not ``canonical(parse(bytes))`` (a duplicate member, whitespace, another
  escape, member order), a missing or extra field, a wrong type, or a line breaking the export's
  line rules (:class:`BadLine`);
* ``unknown-chain``: the chain is not declared (reported once per chain);
* ``changed``: the content does not match its hash;
* ``bad-signature``: the signature does not verify (or a batch proof does not fit);
* ``wrong-signer`` / ``key-not-valid``: a key not declared for the record's own chain (a party's
  own key, another chain's key), an event the chain's writer may not record, a signer against
  the rotation rule; a record outside its key's validity;
* ``batch-incomplete``: a member of a batch whose other members are not all there.

Then per chain, over the records that passed: ``inserted`` (a seq already taken: a replay),
``removed`` (seqs missing, at the record after the gap), ``reordered`` (the fewest records that
explain the disorder; both of two swapped records), ``forked`` (a signed record that does not
link to its predecessor). Then against signed checkpoints: ``truncated`` (the chain no longer
reaches its latest checkpoint), ``forked`` (another hash at a checkpoint's seq),
``missing-chain``, and ``bad-checkpoint`` for one that does not verify (never evidence).

A record that is changed, malformed, badly signed or undeclared stands in for the genuine record
at its place, so it is not also reported as a removal.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
)

from broker.audit.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical
from broker.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    latest,
    make_checkpoint,
    verify_checkpoint,
)
from broker.audit.event import AuditRecord, event_bytes
from broker.audit.event import build_audit_event as build_audit_event  # re-exported (bench)
from broker.audit.rotation import key_rotation_event, next_key_of, public_key_sha256
from broker.audit.signers import SignerKey, Signers
from broker.trust import merkle

ZERO_HASH = "0" * 64
RECORD_FIELDS = frozenset({"chain", "seq", "prev", "event", "hash", "sig", "kid"})
BATCH_FIELDS = RECORD_FIELDS | {"proof"}
BATCH_DOMAIN = b"ketenbus-audit-batch-v1"
_HEX = frozenset("0123456789abcdef")


class ChainError(ValueError):
    """The chain cannot be appended to (e.g. the record to resume from is not genuine)."""


class MalformedRecord(ValueError):
    """Bytes that are not an audit chain record; the message says why."""


class BadLine(bytes):
    """A line of a JSONL export that breaks the line rules (a CR, a blank line, no LF at the
    end): the bytes as read, and why. :func:`verify` reports it as ``malformed`` at its
    position whatever it holds; a reader that does not verify may take it as the bytes."""

    reason: str

    def __new__(cls, raw: bytes, reason: str) -> BadLine:
        line = super().__new__(cls, raw)
        line.reason = reason
        return line


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and set(value) <= _HEX


@dataclass(frozen=True, slots=True)
class ChainRecord:
    """One decoded record."""

    chain: str
    seq: int
    prev: str
    event: dict[str, Any]
    hash: str
    sig: str
    kid: str
    proof: str | None = None  # batch-signed records only: hex of merkle.encode_proof

    def body(self) -> dict[str, Any]:
        return {"chain": self.chain, "seq": self.seq, "prev": self.prev, "event": self.event}

    def computed_hash(self) -> str:
        """The hash of the content as it is now (raises CanonicalError for odd values)."""
        return hashlib.sha256(canonical(self.body())).hexdigest()

    @classmethod
    def decode(cls, raw: bytes) -> ChainRecord:
        """The record in ``raw``, read strictly (:meth:`decode_strict`)."""
        return cls.decode_strict(raw)[0]

    @classmethod
    def decode_strict(cls, raw: bytes) -> tuple[ChainRecord, bytes]:
        """The record in ``raw`` and its hash input (``docs/audit-format.md`` section 4).

        Strict reading (design audit-record-v2 section 3): ``raw`` must be exactly
        ``canonical(parse(raw))``. That one rule refuses duplicate member names at any depth
        (the canonical form has each name once), whitespace, other escapes, ``1.0`` for ``1``
        and member order, so two JSON readers can never read one record two ways: a record
        with ``"event"`` twice would show a first-wins reader the forgery and a last-wins
        reader the genuine event. Because the bytes are canonical, the hash input is cut out
        of them instead of serialising the event a second time."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedRecord(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedRecord("not a JSON object")
        fields = BATCH_FIELDS if "proof" in data else RECORD_FIELDS
        missing, extra = fields - data.keys(), data.keys() - fields
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {sorted(missing)}")
            if extra:
                parts.append(f"unexpected {sorted(extra)}")
            raise MalformedRecord("; ".join(parts))
        chain, seq, kid = data["chain"], data["seq"], data["kid"]
        if not isinstance(chain, str) or not chain:
            raise MalformedRecord("chain must be a non-empty string")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise MalformedRecord("seq must be a non-negative integer")
        if not isinstance(kid, str) or not kid:
            raise MalformedRecord("kid must be a non-empty string")
        if not _is_hex(data["prev"], 64) or not _is_hex(data["hash"], 64):
            raise MalformedRecord("prev and hash must be 64 lower-case hex digits")
        if not _is_hex(data["sig"], 128):
            raise MalformedRecord("sig must be 128 lower-case hex digits")
        if not isinstance(data["event"], dict):
            raise MalformedRecord("event must be a JSON object")
        proof = data.get("proof")
        if proof is not None and not _is_proof(proof):
            raise MalformedRecord("proof must be lower-case hex: 16 digits, then 64 per hash")
        if proof is not None and int(proof[8:16], 16) < 2:
            # one record is written without a proof: one form per record, as in the envelope
            raise MalformedRecord("a proof claims a batch of one record")
        try:
            again = canonical(data)
        except CanonicalError as exc:
            raise MalformedRecord(f"not canonicalisable: {exc}") from exc
        if again != raw:
            raise MalformedRecord(_not_canonical(raw, again))
        rec = cls(chain, seq, data["prev"], data["event"], data["hash"], data["sig"], kid, proof)
        head = b'{"chain":' + orjson.dumps(chain) + b',"event":'
        tail = (
            b',"hash":"' + rec.hash.encode() + b'","kid":' + orjson.dumps(kid)
            + b',"prev":"' + rec.prev.encode()
            + (b"" if proof is None else b'","proof":"' + proof.encode())
            + b'","seq":' + str(seq).encode() + b',"sig":"' + rec.sig.encode() + b'"}'
        )
        event = raw[len(head) : len(raw) - len(tail)]
        body = head + event + b',"prev":"' + rec.prev.encode() + b'","seq":' + str(seq).encode()
        return rec, body + b"}"

    def signed_bytes(self) -> bytes:
        """What ``sig`` signs: the 32 hash bytes, or for a batch-signed record the batch's
        domain, size and Merkle root recomputed from this record's hash and proof (raises
        ``merkle.ProofError`` when the proof does not fit its claimed tree)."""
        digest = bytes.fromhex(self.hash)
        if self.proof is None:
            return digest
        proof = merkle.decode_proof(bytes.fromhex(self.proof))
        root = merkle.root_from_proof(merkle.leaf_hash(digest), proof)
        return merkle.batch_signed_bytes(BATCH_DOMAIN, root, proof.size)


def _not_canonical(raw: bytes, again: bytes) -> str:
    """Why bytes that parse are not a record's canonical form; a duplicate member name is named
    (found with a pairs hook at every depth, as no mapping keeps both)."""
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        duplicates.extend(n for i, n in enumerate(names) if n in names[:i])
        return dict(pairs)

    with contextlib.suppress(ValueError):  # it parsed once already; a second reader's error
        json.loads(raw, object_pairs_hook=pairs_hook)
    if duplicates:
        return f"duplicate member name {duplicates[0]!r}: two JSON readers would read it two ways"
    at = next((i for i, (a, b) in enumerate(zip(raw, again, strict=False)) if a != b),
              min(len(raw), len(again)))
    return f"not in canonical form (section 3 of docs/audit-format.md) from byte {at}"


def _is_proof(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) >= 16
        and (len(value) - 16) % 64 == 0
        and set(value) <= _HEX
    )


class AuditChain:
    """Appends records to one chain. All state is ``last`` = (seq, hash) of the chain's last
    record, which a restarted router takes from the last record it reads back from the topic
    (:meth:`resume`). Not thread-safe: one writer per chain."""

    def __init__(
        self,
        chain_id: str,
        signing_key: Ed25519PrivateKey,
        key_id: str,
        last: tuple[int, str] | None = None,
    ) -> None:
        if not chain_id:
            raise ValueError("chain_id must not be empty")
        if last is not None and (last[0] < 0 or not _is_hex(last[1], 64)):
            raise ValueError("last must be (seq >= 0, 64 lower-case hex digits)")
        self.chain_id = chain_id
        self.key_id = key_id
        self._key = signing_key
        self._last = last
        # checked once here: the only strings of a record's frame that are not hex digits
        self._chain_json = canonical(chain_id)
        self._kid_json = canonical(key_id)

    @property
    def last(self) -> tuple[int, str] | None:
        return self._last

    def append(self, event: dict[str, Any]) -> bytes:
        """Chain, hash and sign ``event``; returns the record bytes to produce to the topic."""
        return self._append_bytes([canonical(event)])[0]

    def append_events(self, events: Sequence[dict[str, Any]]) -> list[bytes]:
        """:meth:`append` for several events under one batch signature, as
        :meth:`append_records` does (for events that do not come from an AuditRecord)."""
        return self._append_bytes([canonical(e) for e in events])

    def append_record(self, record: AuditRecord) -> bytes:
        """Build the AuditEvent of ``record`` and append it (one record, its own signature)."""
        return self._append_bytes([event_bytes(record)])[0]

    def append_records(self, records: Sequence[AuditRecord]) -> list[bytes]:
        """Append ``records`` in order under **one** signature: each is chained and hashed as
        by :meth:`append_record`, and the batch's Merkle root over their hashes is signed once;
        every record carries that signature and its inclusion proof (``docs/audit-format.md``
        section 4.1). One record gets today's single-record form. All or nothing: if one
        record cannot be encoded, the chain does not move."""
        return self._append_bytes([event_bytes(r) for r in records])

    def _append_bytes(self, events: list[bytes]) -> list[bytes]:
        """Chain, hash and sign canonical event bytes; the record bytes are assembled from
        pieces in canonical member order (``chain, event, hash, kid, prev[, proof], seq,
        sig``) instead of re-encoding the event: the same bytes as ``canonical(record)``."""
        if not events:
            return []
        seq, prev = (0, ZERO_HASH) if self._last is None else (self._last[0] + 1, self._last[1])
        if seq + len(events) - 1 > MAX_SAFE_INTEGER:
            raise CanonicalError(f"$.seq: integer {seq + len(events) - 1} is outside +-(2**53 - 1)")
        head = b'{"chain":' + self._chain_json + b',"event":'
        sha256 = hashlib.sha256
        digests: list[bytes] = []
        parts: list[tuple[bytes, bytes, bytes, bytes]] = []  # event, hash, prev, seq (as text)
        for event in events:
            seq_text = str(seq).encode()
            prev_text = prev.encode()
            digest = sha256(
                head + event + b',"prev":"' + prev_text + b'","seq":' + seq_text + b"}"
            ).digest()
            digests.append(digest)
            prev = digest.hex()
            parts.append((event, prev.encode(), prev_text, seq_text))
            seq += 1
        tail_kid = b'","kid":' + self._kid_json + b',"prev":"'
        if len(digests) == 1:
            sig = self._key.sign(digests[0]).hex().encode()
            proofs = [b""]
        else:
            root, tree = merkle.build([merkle.leaf_hash(d) for d in digests])
            sig = self._key.sign(merkle.batch_signed_bytes(BATCH_DOMAIN, root, len(digests)))
            sig = sig.hex().encode()
            proofs = [b'","proof":"' + merkle.encode_proof(p).hex().encode() for p in tree]
        out = [
            head
            + event
            + b',"hash":"'
            + digest_hex
            + tail_kid
            + prev_text
            + proof
            + b'","seq":'
            + seq_text
            + b',"sig":"'
            + sig
            + b'"}'
            for (event, digest_hex, prev_text, seq_text), proof in zip(parts, proofs, strict=True)
        ]
        self._last = (seq - 1, prev)
        return out

    def rotate(
        self, next_key: Ed25519PrivateKey, next_kid: str, at: datetime | None = None
    ) -> bytes:
        """Hand the chain over to ``next_kid``: a ``key-rotation`` record signed by the current
        key, naming the next key (:mod:`broker.audit.rotation`); later records are signed by
        the next key. Returns the rotation record's bytes, to produce like any other."""
        event = key_rotation_event(self.chain_id, next_kid, next_key.public_key(), at)
        record = self.append(event)
        self._key, self.key_id, self._kid_json = next_key, next_kid, canonical(next_kid)
        return record

    def checkpoint(self, at: datetime | None = None) -> Checkpoint | None:
        """The chain's head signed with the current key (None before the first record)."""
        if self._last is None:
            return None
        seq, digest = self._last
        return make_checkpoint(
            self.chain_id, seq, digest, self._key, self.key_id, at or datetime.now(UTC)
        )

    @classmethod
    def resume(
        cls,
        chain_id: str,
        signing_key: Ed25519PrivateKey,
        key_id: str,
        last_record: bytes | None,
    ) -> AuditChain:
        """Continue a chain after its last record as read back from the topic (``None``: a new
        chain). The record must be of this chain, and genuine: its hash must match its content
        and, when it was signed under ``key_id``, its signature must verify with our key."""
        if last_record is None:
            return cls(chain_id, signing_key, key_id)
        try:
            rec = ChainRecord.decode(last_record)
            computed = rec.computed_hash()
        except (MalformedRecord, CanonicalError) as exc:
            raise ChainError(f"cannot resume from a malformed record: {exc}") from exc
        if rec.chain != chain_id:
            raise ChainError(f"the record belongs to chain {rec.chain!r}, not {chain_id!r}")
        if computed != rec.hash:
            raise ChainError(f"record seq {rec.seq} does not match its hash: refusing to extend")
        if rec.kid == key_id:
            try:
                signing_key.public_key().verify(bytes.fromhex(rec.sig), rec.signed_bytes())
            except (InvalidSignature, merkle.ProofError) as exc:
                raise ChainError(f"record seq {rec.seq} is not signed by our key") from exc
        return cls(chain_id, signing_key, key_id, (rec.seq, rec.hash))


def resume_chain(
    chain_id: str,
    keys: Mapping[str, Ed25519PrivateKey],
    current_kid: str,
    last_record: bytes | None,
) -> tuple[AuditChain, list[bytes]]:
    """Continue ``chain_id`` with the writer's current key, handing the chain over first when
    its last record was signed by an older key of the writer (``keys``: key id -> private key,
    the current one included). Returns the chain and the rotation record to produce before any
    other (none when no hand-over is needed). A chain last signed by a key the writer does not
    hold is refused: only that key can hand it over (``ChainError``)."""
    current = keys[current_kid]
    if last_record is None:
        return AuditChain(chain_id, current, current_kid), []
    try:
        last = ChainRecord.decode(last_record)
    except MalformedRecord as exc:
        raise ChainError(f"cannot resume from a malformed record: {exc}") from exc
    last_kid = last.kid
    handed = next_key_of(last.event)
    if last_kid == current_kid or (
        handed is not None and handed == (current_kid, public_key_sha256(current.public_key()))
    ):  # ours, or the hand-over to our key was the last thing written
        return AuditChain.resume(chain_id, current, current_kid, last_record), []
    older = keys.get(last_kid)
    if older is None:
        raise ChainError(
            f"chain {chain_id!r} was last signed by key {last_kid!r}, which this writer does not "
            "hold: only that key can hand the chain over to the current one"
        )
    chain = AuditChain.resume(chain_id, older, last_kid, last_record)
    return chain, [chain.rotate(current, current_kid)]


def last_record_of(records: Iterable[bytes], chain_id: str) -> bytes | None:
    """The record of ``chain_id`` with the highest sequence number (well-formed ones only)."""
    best: tuple[int, bytes] | None = None
    for raw in records:
        try:
            rec = ChainRecord.decode(raw)
        except MalformedRecord:
            continue
        if rec.chain == chain_id and (best is None or rec.seq > best[0]):
            best = (rec.seq, raw)
    return None if best is None else best[1]


# --- verification -----------------------------------------------------------------------------


class FindingKind(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"
    REORDERED = "reordered"
    BAD_SIGNATURE = "bad-signature"
    MALFORMED = "malformed"
    BATCH_INCOMPLETE = "batch-incomplete"
    UNKNOWN_CHAIN = "unknown-chain"
    WRONG_SIGNER = "wrong-signer"
    KEY_NOT_VALID = "key-not-valid"
    FORKED = "forked"
    TRUNCATED = "truncated"
    MISSING_CHAIN = "missing-chain"
    BAD_CHECKPOINT = "bad-checkpoint"


@dataclass(frozen=True, slots=True)
class Finding:
    position: int
    seq: int | None
    kind: FindingKind
    detail: str
    chain: str | None = None

    def __str__(self) -> str:
        seq = "" if self.seq is None else f" seq {self.seq}"
        chain = "" if self.chain is None else f" chain {self.chain}"
        return f"position {self.position}{chain}{seq}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    records: int
    findings: list[Finding]
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)


class _Status(StrEnum):
    GENUINE = "genuine"
    CHANGED = "changed"
    BAD_SIGNATURE = "bad-signature"
    MALFORMED = "malformed"
    BATCH_INCOMPLETE = "batch-incomplete"
    UNKNOWN_CHAIN = "unknown-chain"
    WRONG_SIGNER = "wrong-signer"
    KEY_NOT_VALID = "key-not-valid"


# records that take part in the sequence checks: genuine ones, and the genuine members of an
# incomplete batch (reported as such, while a dropped sibling is reported where it is missing)
_IN_CHAIN = frozenset({_Status.GENUINE, _Status.BATCH_INCOMPLETE})


# non-genuine records that stand in for a missing record of any chain: a changed byte may be in
# the chain id (changed), or make it one nobody declared (unknown-chain)
_ANY_CHAIN = frozenset({_Status.CHANGED, _Status.UNKNOWN_CHAIN})


@dataclass(slots=True)
class _Item:
    pos: int
    status: _Status
    rec: ChainRecord | None
    note: str = ""
    used: bool = False  # a non-genuine record that stands in for a missing one


def verify(
    records: Iterable[bytes],
    signers: Signers,
    *,
    checkpoints: Iterable[bytes | Checkpoint] = (),
) -> VerifyReport:
    """Verify every chain in ``records`` against the declared ``signers`` (chain id -> the keys
    that may sign it, :mod:`broker.audit.signers`) and the signed ``checkpoints`` (raw JSONL
    lines or decoded); see the module documentation for the findings and their order."""
    verified: set[tuple[str, str, bytes]] = set()
    other_chains = {k.kid: (c.chain, k) for c in signers.values() for k in c.keys}
    items = [
        _check_one(pos, raw, signers, other_chains, verified) for pos, raw in enumerate(records)
    ]
    _check_rotations(items, signers)
    _check_batches(items)
    findings: list[Finding] = _unknown_chain_findings(items)
    heads: dict[str, tuple[int, str]] = {}

    genuine_by_chain: dict[str, list[_Item]] = defaultdict(list)
    for it in items:  # a batch-incomplete record is signed: it keeps its place in its chain
        if it.status in _IN_CHAIN and it.rec is not None:
            genuine_by_chain[it.rec.chain].append(it)

    accepted_by_chain: dict[str, dict[int, _Item]] = {}
    for chain, genuine in genuine_by_chain.items():
        accepted, dups = _pick_unique(genuine)
        accepted_by_chain[chain] = accepted
        for it, first in dups:
            dup = _rec(it)
            same = "a replay" if dup.hash == _rec(first).hash else "a different record"
            findings.append(
                Finding(
                    it.pos,
                    dup.seq,
                    FindingKind.INSERTED,
                    f"{same} of seq {dup.seq}, which is at position {first.pos}",
                    chain,
                )
            )

    # non-genuine records: report them; a forged duplicate of a taken seq is an insertion
    for it in items:
        if it.status in (_Status.GENUINE, _Status.UNKNOWN_CHAIN):
            continue
        rec = it.rec
        if (
            it.status is _Status.BAD_SIGNATURE
            and rec is not None
            and rec.seq in accepted_by_chain.get(rec.chain, {})
        ):
            first = accepted_by_chain[rec.chain][rec.seq]
            it.used = True  # it fills no gap
            findings.append(
                Finding(
                    it.pos,
                    rec.seq,
                    FindingKind.INSERTED,
                    f"seq {rec.seq} is already at position {first.pos}, and "
                    f"this record's signature does not verify ({it.note})",
                    rec.chain,
                )
            )
            continue
        kind = FindingKind(it.status.value)
        findings.append(
            Finding(it.pos, rec.seq if rec else None, kind, it.note, rec.chain if rec else None)
        )

    loose = [it for it in items if it.status not in _IN_CHAIN and not it.used]
    for chain, accepted in accepted_by_chain.items():
        findings += _order_findings(chain, accepted)
        findings += _gap_findings(chain, accepted, loose, len(items))
        findings += _link_findings(chain, accepted)
        top = max(accepted)
        heads[chain] = (top, _rec(accepted[top]).hash)
    findings += _checkpoint_findings(checkpoints, signers, items, accepted_by_chain)
    findings.sort(key=lambda f: (f.position, f.kind.value, f.seq if f.seq is not None else -1))
    return VerifyReport(not findings, len(items), findings, heads)


def _check_one(
    pos: int,
    raw: bytes,
    signers: Signers,
    by_kid: Mapping[str, tuple[str, SignerKey]],
    verified: set[tuple[str, str, bytes]],
) -> _Item:
    """Classify one record on its own, first finding only (design audit-record-v2 section 5):
    malformed, unknown-chain, changed, bad-signature, wrong-signer / key-not-valid. The order
    of keys within a chain (rotation) needs the whole chain: :func:`_check_rotations`.
    ``verified`` remembers the (kid, sig, signed bytes) already verified, so a batch's
    signature is checked once; the other records of the batch cost their proof only."""
    if isinstance(raw, BadLine):
        return _Item(pos, _Status.MALFORMED, None, raw.reason)
    try:
        rec, body = ChainRecord.decode_strict(raw)
    except MalformedRecord as exc:
        return _Item(pos, _Status.MALFORMED, None, str(exc))
    declared = signers.get(rec.chain)
    if declared is None:
        return _Item(pos, _Status.UNKNOWN_CHAIN, rec, f"chain {rec.chain!r} is not declared")
    computed = hashlib.sha256(body).hexdigest()
    if computed != rec.hash:
        return _Item(
            pos,
            _Status.CHANGED,
            rec,
            f"content does not match its hash (stored {rec.hash}, computed {computed})",
        )
    key = declared.key(rec.kid)
    elsewhere = by_kid.get(rec.kid) if key is None else None
    if key is None and elsewhere is None:
        # not an audit key at all (a party's own key, or none): whatever it signed, that key
        # may not write this chain (NEN 7513: the log is written by its declared writer only)
        return _Item(
            pos, _Status.WRONG_SIGNER, rec,
            f"key {rec.kid!r} is not declared for chain {rec.chain!r} (nor for any audit chain)",
        )
    signer = key if key is not None else elsewhere[1]  # type: ignore[index]
    try:
        signed = rec.signed_bytes()
    except merkle.ProofError as exc:
        return _Item(pos, _Status.BAD_SIGNATURE, rec, f"batch proof does not fit: {exc}")
    done = (rec.kid, rec.sig, signed)
    if done not in verified:
        try:
            signer.public.verify(bytes.fromhex(rec.sig), signed)
        except InvalidSignature:
            what = "signature" if rec.proof is None else "batch signature (with this proof)"
            return _Item(
                pos, _Status.BAD_SIGNATURE, rec, f"{what} does not verify with key {rec.kid!r}"
            )
        verified.add(done)
    if key is None:
        return _Item(
            pos, _Status.WRONG_SIGNER, rec,
            f"signed with key {rec.kid!r} of chain {elsewhere[0]!r}, "  # type: ignore[index]
            f"not a key of chain {rec.chain!r}",
        )
    recorded = _recorded(rec.event)
    if recorded is None or not key.valid_at(recorded):
        until = key.valid_until.isoformat() if key.valid_until else "open"
        return _Item(
            pos, _Status.KEY_NOT_VALID, rec,
            f"event.recorded {rec.event.get('recorded')!r} is outside key {rec.kid!r}'s "
            f"validity [{key.valid_from.isoformat()}, {until})",
        )
    kind = rec.event.get("type")
    code = kind.get("code") if isinstance(kind, dict) else None
    if not declared.may_record(code if isinstance(code, str) else None):
        return _Item(
            pos, _Status.WRONG_SIGNER, rec,
            f"chain {rec.chain!r} (writer {declared.writer}, a {declared.role.value}) may not "
            f"record {code!r} events",
        )
    return _Item(pos, _Status.GENUINE, rec)


def _recorded(event: dict[str, Any]) -> datetime | None:
    """``event.recorded`` as an aware instant, or None when it is missing or not one."""
    text = event.get("recorded")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _check_rotations(items: list[_Item], signers: Signers) -> None:
    """The rotation rule (design audit-record-v2 section 1.2): a chain starts under its first
    declared key; a ``key-rotation`` record signed by the current key and naming a declared
    next key (by kid and SHA-256 of its public key) hands the chain over from the next seq on.
    A record under the new key before the hand-over, or under the old key after it, is
    ``wrong-signer``: a stolen old key cannot continue the chain, nor can a new key rewrite
    its past. Walks each chain's so-far genuine records in seq order."""
    by_chain: dict[str, list[_Item]] = defaultdict(list)
    for it in items:
        if it.status is _Status.GENUINE and it.rec is not None:
            by_chain[it.rec.chain].append(it)
    for chain, chain_items in by_chain.items():
        declared = signers[chain]
        order = [k.kid for k in declared.keys]
        current, since = order[0], 0  # the key that signs, and from which seq
        chain_items.sort(key=lambda it: (_rec(it).seq, it.pos))
        for it in chain_items:
            rec = _rec(it)
            if rec.kid != current:
                when = "after" if order.index(rec.kid) < order.index(current) else "before"
                it.status = _Status.WRONG_SIGNER
                it.note = (
                    f"key {rec.kid!r} signs {when} the chain's hand-over: from seq {since} "
                    f"on, only key {current!r} may sign"
                )
                continue
            handed = next_key_of(rec.event)
            if handed is None:
                continue
            nxt = declared.key(handed[0])
            if nxt is None or public_key_sha256(nxt.public) != handed[1]:
                it.status = _Status.WRONG_SIGNER
                it.note = f"hands the chain over to {handed[0]!r}, not a declared key of it"
                continue
            current, since = nxt.kid, rec.seq + 1


def _unknown_chain_findings(items: list[_Item]) -> list[Finding]:
    """One ``unknown-chain`` finding per undeclared chain, at its first record."""
    first: dict[str, list[_Item]] = defaultdict(list)
    for it in items:
        if it.status is _Status.UNKNOWN_CHAIN and it.rec is not None:
            first[it.rec.chain].append(it)
    return [
        Finding(
            its[0].pos, _rec(its[0]).seq, FindingKind.UNKNOWN_CHAIN,
            f"chain {chain!r} is not declared: its {len(its)} record(s) are refused as a whole",
            chain,
        )
        for chain, its in first.items()
    ]


def _check_batches(items: list[_Item]) -> None:
    """Batch completeness (design audit-record-v2 section 3): the records of one batch (same
    chain, signature and size ``n``) must all be present, at consecutive ``seq`` in index
    order, indices ``0 .. n-1``. A proof proves that a record *belongs* to a signed batch,
    not that the rest of the batch is still there: without this check a batch signed over
    two records with one dropped verifies. Every genuine member of an incomplete batch becomes
    ``batch-incomplete``. A missing member with a non-genuine record at its place (changed,
    malformed, badly signed) is not counted missing: that record is reported itself, and its
    batch is not reported again. A replayed member is left to the sequence check
    (``inserted``)."""
    batches: dict[tuple[str, str, int], list[tuple[int, _Item]]] = defaultdict(list)
    for it in items:
        rec = it.rec
        if rec is None or rec.proof is None or it.status is not _Status.GENUINE:
            continue
        try:
            proof = merkle.decode_proof(bytes.fromhex(rec.proof))
        except merkle.ProofError:
            continue
        batches[(rec.chain, rec.sig, proof.size)].append((proof.index, it))
    standing_in: set[int] = set()  # positions of the non-genuine records already standing in
    for (_, _, size), members in batches.items():
        present = {index for index, _ in members}
        missing = [
            i
            for i in range(size)
            if i not in present and not _stand_in(i, members, items, standing_in)
        ]
        starts = {_rec(it).seq - index for index, it in members}
        if not missing and len(starts) <= 1:
            continue
        why = (
            f"index(es) {', '.join(map(str, missing))} missing"
            if missing
            else "its records are not at consecutive seq in index order"
        )
        for index, it in members:
            it.status = _Status.BATCH_INCOMPLETE
            it.note = f"member {index} of a batch of {size} signed by {_rec(it).kid!r}: {why}"


def _stand_in(
    index: int,
    members: list[tuple[int, _Item]],
    items: list[_Item],
    taken: set[int],
) -> bool:
    """Whether a missing batch member has a non-genuine record at its place (between the
    members with the nearest lower and higher index): that record is reported itself (a
    flipped byte makes it ``malformed``), so its batch is not reported again."""
    lo = max((it.pos for i, it in members if i < index), default=-1)
    hi = min((it.pos for i, it in members if i > index), default=len(items))
    for it in items[lo + 1 : hi]:
        if it.pos not in taken and it.status is not _Status.GENUINE:
            taken.add(it.pos)  # of any chain: a changed byte may be in the chain id
            return True
    return False


def _pick_unique(genuine: list[_Item]) -> tuple[dict[int, _Item], list[tuple[_Item, _Item]]]:
    """One genuine record per seq; when a seq occurs more than once, keep the occurrence that
    fits the order of the other records best (fewest inversions; the first on a tie)."""
    by_seq: dict[int, list[_Item]] = defaultdict(list)
    for it in genuine:
        by_seq[_rec(it).seq].append(it)
    unique = [(lst[0].pos, seq) for seq, lst in by_seq.items() if len(lst) == 1]
    accepted: dict[int, _Item] = {}
    dups: list[tuple[_Item, _Item]] = []
    for seq, lst in by_seq.items():
        if len(lst) == 1:
            accepted[seq] = lst[0]
            continue

        def inversions(it: _Item, seq: int = seq) -> int:
            return sum(1 for p, s in unique if (p < it.pos) == (s > seq))

        keep = min(lst, key=lambda it: (inversions(it), it.pos))
        accepted[seq] = keep
        dups += [(it, keep) for it in lst if it is not keep]
    return accepted, dups


def _order_findings(chain: str, accepted: dict[int, _Item]) -> list[Finding]:
    """Genuine records out of sequence order.

    Stream order vs sequence order is a permutation; each of its cycles is one disorder. A
    2-cycle is two swapped records: both are reported. In a longer cycle (a record moved across
    several others shifts them all) only the records outside a longest increasing run of the
    cycle are reported: the fewest moves that explain it.
    """
    in_stream = sorted(accepted.values(), key=lambda it: it.pos)
    seqs = [_rec(it).seq for it in in_stream]
    rank = {seq: r for r, seq in enumerate(sorted(seqs))}
    target = [rank[s] for s in seqs]  # stream index -> index it should have
    out: list[Finding] = []
    seen = [False] * len(target)
    by_seq = {s: it for s, it in zip(seqs, in_stream, strict=True)}
    for start in range(len(target)):
        if seen[start] or target[start] == start:
            continue
        cycle = []
        i = start
        while not seen[i]:
            seen[i] = True
            cycle.append(i)
            i = target[i]
        cycle.sort()
        if len(cycle) == 2:
            a, b = (in_stream[k] for k in cycle)
            out.append(
                Finding(
                    a.pos,
                    _rec(a).seq,
                    FindingKind.REORDERED,
                    f"swapped with seq {_rec(b).seq} at position {b.pos}",
                    chain,
                )
            )
            out.append(
                Finding(
                    b.pos,
                    _rec(b).seq,
                    FindingKind.REORDERED,
                    f"swapped with seq {_rec(a).seq} at position {a.pos}",
                    chain,
                )
            )
            continue
        keep = _longest_increasing([seqs[k] for k in cycle])
        for n, k in enumerate(cycle):
            if n in keep:
                continue
            it, seq = in_stream[k], seqs[k]
            smaller = [s for s in seqs if s < seq]
            where = (
                f"after seq {max(smaller)} (position {by_seq[max(smaller)].pos})"
                if smaller
                else "at the start of the chain"
            )
            out.append(
                Finding(it.pos, seq, FindingKind.REORDERED, f"out of order: belongs {where}", chain)
            )
    return out


def _rec(it: _Item) -> ChainRecord:
    assert it.rec is not None
    return it.rec


def _longest_increasing(seqs: list[int]) -> set[int]:
    """Indices of one longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []  # seq values
    tail_idx: list[int] = []
    parent = [-1] * len(seqs)
    for i, s in enumerate(seqs):
        j = bisect.bisect_left(tails, s)
        if j == len(tails):
            tails.append(s)
            tail_idx.append(i)
        else:
            tails[j] = s
            tail_idx[j] = i
        parent[i] = tail_idx[j - 1] if j > 0 else -1
    out: set[int] = set()
    k = tail_idx[-1] if tail_idx else -1
    while k != -1:
        out.add(k)
        k = parent[k]
    return out


def _gap_findings(
    chain: str, accepted: dict[int, _Item], loose: list[_Item], total: int
) -> list[Finding]:
    out = []
    present = sorted(accepted)
    expected = 0
    for seq in present:
        if seq > expected:
            missing = seq - expected
            after = accepted[seq].pos
            before = accepted[expected - 1].pos if expected > 0 else -1
            lo, hi = min(before, after), max(before, after)
            fill = [
                it
                for it in loose
                if not it.used
                and lo < it.pos < hi
                and (it.rec is None or it.rec.chain == chain or it.status in _ANY_CHAIN)
            ]
            for it in fill[:missing]:
                it.used = True
            if len(fill) < missing:
                span = f"seq {expected}" if missing == 1 else f"seq {expected}..{seq - 1}"
                out.append(
                    Finding(
                        after,
                        expected,
                        FindingKind.REMOVED,
                        f"{span} missing before seq {seq}",
                        chain,
                    )
                )
        expected = seq + 1
    return out


def _link_findings(chain: str, accepted: dict[int, _Item]) -> list[Finding]:
    out = []
    for seq, it in accepted.items():
        rec = it.rec
        assert rec is not None
        if seq == 0:
            if rec.prev != ZERO_HASH:
                out.append(
                    Finding(
                        it.pos,
                        0,
                        FindingKind.FORKED,
                        "the first record's prev is not 64 zeros",
                        chain,
                    )
                )
            continue
        before = accepted.get(seq - 1)
        if before is not None and before.rec is not None and rec.prev != before.rec.hash:
            out.append(
                Finding(
                    it.pos,
                    seq,
                    FindingKind.FORKED,
                    f"does not link to seq {seq - 1} at position {before.pos} "
                    "(a fork: two signed histories)",
                    chain,
                )
            )
    return out


def _checkpoint_findings(
    checkpoints: Iterable[bytes | Checkpoint],
    signers: Signers,
    items: list[_Item],
    accepted_by_chain: dict[str, dict[int, _Item]],
) -> list[Finding]:
    """Against signed checkpoints (design audit-record-v2 section 2): ``truncated`` (the chain
    no longer reaches the latest checkpoint's seq: a dropped tail, a whole last batch),
    ``forked`` (the record at a checkpoint's seq has another hash), ``missing-chain`` (no
    record of a checkpointed chain at all). A checkpoint that does not verify under its
    chain's declared keys is ``bad-checkpoint`` and never used as evidence. These findings sit
    at the end of the stream (position = number of records), except ``forked``."""
    end = len(items)
    out: list[Finding] = []
    good: list[Checkpoint] = []
    for n, raw in enumerate(checkpoints):
        try:
            cp = raw if isinstance(raw, Checkpoint) else Checkpoint.decode(bytes(raw))
        except CheckpointError as exc:
            out.append(Finding(end, None, FindingKind.BAD_CHECKPOINT, f"checkpoint {n}: {exc}"))
            continue
        try:
            verify_checkpoint(cp, signers)
        except CheckpointError as exc:
            out.append(
                Finding(end, cp.seq, FindingKind.BAD_CHECKPOINT, f"checkpoint {n}: {exc}",
                        cp.chain)
            )
            continue
        good.append(cp)
    present = {it.rec.chain for it in items if it.rec is not None}
    claimed = {(it.rec.chain, it.rec.seq) for it in items
               if it.rec is not None and it.status not in _IN_CHAIN}
    for cp in good:
        accepted = accepted_by_chain.get(cp.chain, {})
        it = accepted.get(cp.seq)
        if it is not None and _rec(it).hash != cp.hash:
            out.append(
                Finding(it.pos, cp.seq, FindingKind.FORKED,
                        f"the checkpoint of {cp.at} names hash {cp.hash} for this seq", cp.chain)
            )
    for chain, cp in latest(good).items():
        accepted = accepted_by_chain.get(chain, {})
        top = max(accepted) if accepted else None
        if chain not in present:
            out.append(
                Finding(end, cp.seq, FindingKind.MISSING_CHAIN,
                        f"no record of chain {chain!r}, which has a checkpoint at seq {cp.seq} "
                        f"({cp.at})", chain)
            )
        elif (top is None or cp.seq > top) and (chain, cp.seq) not in claimed:
            out.append(
                Finding(end, cp.seq, FindingKind.TRUNCATED,
                        f"the chain ends at seq {top} but its checkpoint of {cp.at} names seq "
                        f"{cp.seq} (hash {cp.hash})", chain)
            )
    return out
