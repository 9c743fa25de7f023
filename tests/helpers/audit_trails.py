"""Hostile audit trails for the verifier, one table shared by the Python API, the CLI and the
web app's "Verify the audit chains": each case is records plus the findings it must give.

Keys are generated at run time. Every case is built the way an attacker (or a faulty writer)
would: bytes edited after signing, records dropped or replayed, or a batch signed by hand."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.audit import AuditChain, canonical
from broker.audit.chain import BATCH_DOMAIN, ZERO_HASH
from broker.trust import merkle

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CHAIN = "router-1"
KID = "router-1-2026a"


def event(i: int, *, recipient: str = "transfore", outcome: str = "permitted") -> dict[str, object]:
    """A short AuditEvent: the chain treats it as opaque, the verifier reads only ``recorded``."""
    return {
        "resourceType": "AuditEvent",
        "id": f"ev-{i}",
        "type": {"code": "decision-permit" if outcome == "permitted" else "decision-deny"},
        "recorded": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "outcome": "0" if outcome == "permitted" else "4",
        "outcomeDesc": outcome,
        "agent": [{"who": {"identifier": {"value": "zvh-rotterdam"}}},
                  {"who": {"identifier": {"value": recipient}}}],
        "entity": [{"description": f"Coördinatie {i}", "what": {"reference": "https://x.nl/a"}}],
    }


@dataclass
class Writer:
    """One chain's writer with a fresh key."""

    chain: str = CHAIN
    kid: str = KID

    def __post_init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.writer = AuditChain(self.chain, self.key, self.kid)
        self.n = 0

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def singles(self, count: int) -> list[bytes]:
        out = [self.writer.append(event(self.n + i)) for i in range(count)]
        self.n += count
        return out

    def batches(self, *sizes: int) -> list[bytes]:
        out: list[bytes] = []
        for size in sizes:
            out += self.writer.append_events([event(self.n + i) for i in range(size)])
            self.n += size
        return out


def insert_before_member(raw: bytes, member: str, text: bytes) -> bytes:
    """``text`` placed just before the top-level member ``member`` (canonical order keeps
    ``"chain"`` first and ``"event"`` second, so the first match is the top-level one)."""
    at = raw.index(b',"' + member.encode() + b'":')
    return raw[: at + 1] + text + raw[at + 1 :]


def sign_batch(key: Ed25519PrivateKey, kid: str, bodies: list[dict[str, object]]) -> list[bytes]:
    """Records over ``bodies`` (chain, seq, prev, event) signed as one batch, whatever their
    seq: what a faulty or compromised writer could produce."""
    hashes = [hashlib.sha256(canonical(b)).digest() for b in bodies]
    root, proofs = merkle.build([merkle.leaf_hash(h) for h in hashes])
    sig = key.sign(merkle.batch_signed_bytes(BATCH_DOMAIN, root, len(bodies))).hex()
    return [
        canonical({**b, "hash": h.hex(), "sig": sig, "kid": kid,
                   "proof": merkle.encode_proof(p).hex()})
        for b, h, p in zip(bodies, hashes, proofs, strict=True)
    ]


def sign_one(key: Ed25519PrivateKey, kid: str, body: dict[str, object]) -> bytes:
    digest = hashlib.sha256(canonical(body)).digest()
    return canonical({**body, "hash": digest.hex(), "sig": key.sign(digest).hex(), "kid": kid})


@dataclass
class Case:
    records: list[bytes]
    keys: dict[str, Ed25519PublicKey]
    expected: list[tuple[int, str]]  # (position, finding kind), sorted


def _duplicate_event() -> Case:
    # "event" twice: a forged one first (an insurer received it), the genuine one last. A
    # last-wins reader checks the genuine event's hash; a first-wins reader shows the forgery.
    w = Writer()
    records = w.singles(4)
    forged = canonical(event(2, recipient="menzis"))
    records[2] = insert_before_member(records[2], "event", b'"event":' + forged + b",")
    return Case(records, {KID: w.public}, [(2, "malformed")])


def _duplicate_nested() -> Case:
    w = Writer()
    records = w.singles(3)
    records[1] = records[1].replace(b'"outcomeDesc":"permitted"',
                                    b'"outcomeDesc":"no-consent","outcomeDesc":"permitted"', 1)
    return Case(records, {KID: w.public}, [(1, "malformed")])


def _reencoded(change: Callable[[bytes], bytes]) -> Callable[[], Case]:
    def build() -> Case:
        w = Writer()
        records = w.singles(3)
        original, records[1] = records[1], change(records[1])
        assert records[1] != original and json.loads(records[1]) == json.loads(original)
        return Case(records, {KID: w.public}, [(1, "malformed")])

    return build


def _chain_after_event(raw: bytes) -> bytes:
    data = json.loads(raw)
    moved = {"event": data.pop("event"), "chain": data.pop("chain"), **data}
    return json.dumps(moved, separators=(",", ":"), ensure_ascii=False).encode()


def _batch_tail_member_dropped() -> Case:
    # a batch signed over two records, with one left: its proof still leads to the signed root
    w = Writer()
    records = w.batches(3, 2)[:-1]
    return Case(records, {KID: w.public}, [(3, "batch-incomplete")])


def _batch_middle_member_dropped() -> Case:
    w = Writer()
    records = w.batches(2, 3, 2)
    del records[3]  # seq 3, index 1 of the middle batch
    return Case(records, {KID: w.public},
                [(2, "batch-incomplete"), (3, "batch-incomplete"), (3, "removed")])


def _batch_not_consecutive() -> Case:
    # one signature over seq 2 and seq 4 (indices 0 and 1), seq 3 signed alone: every record
    # is signed and linked, but the batch is not consecutive in seq
    w = Writer()
    records = w.singles(2)
    prev = json.loads(records[-1])["hash"]
    bodies = []
    for seq in (2, 3, 4):
        body = {"chain": CHAIN, "seq": seq, "prev": prev, "event": event(seq)}
        bodies.append(body)
        prev = hashlib.sha256(canonical(body)).hexdigest()
    batch = sign_batch(w.key, KID, [bodies[0], bodies[2]])
    records += [batch[0], sign_one(w.key, KID, bodies[1]), batch[1]]
    return Case(records, {KID: w.public}, [(2, "batch-incomplete"), (4, "batch-incomplete")])


def _batch_member_duplicated() -> Case:
    w = Writer()
    records = w.batches(2, 3, 2)
    records.insert(4, records[3])  # a replay of index 1 right after it
    return Case(records, {KID: w.public}, [(4, "inserted")])


def _batch_first_record_zero_prev() -> Case:
    # sanity for the builder: a hand-signed consecutive batch verifies
    w = Writer()
    bodies = [{"chain": CHAIN, "seq": 0, "prev": ZERO_HASH, "event": event(0)}]
    bodies.append({"chain": CHAIN, "seq": 1,
                   "prev": hashlib.sha256(canonical(bodies[0])).hexdigest(), "event": event(1)})
    return Case(sign_batch(w.key, KID, bodies), {KID: w.public}, [])


CASES: dict[str, Callable[[], Case]] = {
    "duplicate-event-member": _duplicate_event,
    "duplicate-nested-member": _duplicate_nested,
    "whitespace": _reencoded(lambda r: r.replace(b'"seq":', b'"seq": ', 1)),
    "escaped-non-ascii": _reencoded(lambda r: r.replace("ö".encode(), b"\\u00f6", 1)),
    "escaped-solidus": _reencoded(lambda r: r.replace(b"https://", b"https:\\/\\/", 1)),
    "member-order": _reencoded(_chain_after_event),
    "batch-member-missing-at-the-tail": _batch_tail_member_dropped,
    "batch-member-missing-in-the-middle": _batch_middle_member_dropped,
    "batch-not-consecutive": _batch_not_consecutive,
    "batch-member-duplicated": _batch_member_duplicated,
    "hand-signed-batch-intact": _batch_first_record_zero_prev,
}
