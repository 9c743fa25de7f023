"""Hostile audit trails for the verifier, one table shared by the Python API, the CLI and the
web app's "Verify the audit chains": each case is records, the declared signers, checkpoints
and the findings it must give.

Keys are generated at run time. Every case is built the way an attacker (or a faulty writer)
would: bytes edited after signing, records dropped or replayed, a batch signed by hand, or
records and checkpoints signed with *another valid key* (a registered party's own key, another
chain's key, a key outside its validity)."""

from __future__ import annotations

import hashlib
import json
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.audit import AuditChain, canonical
from broker.audit.chain import BATCH_DOMAIN, ZERO_HASH
from broker.audit.checkpoint import make_checkpoint
from broker.audit.signers import ChainSigners, SignerKey
from broker.trust import AuditChainDecl, PartyRegistry, merkle
from broker.trust.registry import KeyEntry, Party
from schemas.vocab import PartyRole

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CHAIN = "router-1"
KID = "router-1-2026a"
EARLY = T0 - timedelta(days=30)


def event(i: int, *, recipient: str = "transfore", code: str = "decision-permit",
          at: datetime | None = None) -> dict[str, object]:
    """A short AuditEvent: the chain treats it as opaque, the verifier reads ``recorded`` and
    ``type.code`` (what the writer may record)."""
    moment = at or T0 + timedelta(seconds=i)
    return {
        "resourceType": "AuditEvent",
        "id": f"ev-{i}",
        "type": {"code": code},
        "recorded": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "outcome": "0",
        "outcomeDesc": "permitted",
        "agent": [{"who": {"identifier": {"value": "zvh-rotterdam"}}},
                  {"who": {"identifier": {"value": recipient}}}],
        "entity": [{"description": f"Coördinatie {i}", "what": {"reference": "https://x.nl/a"}}],
    }


@dataclass
class Writer:
    """One chain's writer with a fresh key (and the keys it rotated to)."""

    chain: str = CHAIN
    kid: str = KID
    party: str = "router"
    role: PartyRole = PartyRole.ROUTER
    code: str = "decision-permit"
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.keys: list[tuple[str, Ed25519PrivateKey, datetime, datetime | None]] = [
            (self.kid, self.key, EARLY, self.valid_until)]
        self.writer = AuditChain(self.chain, self.key, self.kid)
        self.n = 0

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def singles(self, count: int) -> list[bytes]:
        out = [self.writer.append(event(self.n + i, code=self.code)) for i in range(count)]
        self.n += count
        return out

    def batches(self, *sizes: int) -> list[bytes]:
        out: list[bytes] = []
        for size in sizes:
            out += self.writer.append_events(
                [event(self.n + i, code=self.code) for i in range(size)])
            self.n += size
        return out

    def rotate(self, kid: str) -> bytes:
        """Hand the chain over to a fresh key ``kid`` (the rotation record, old key signs)."""
        new = Ed25519PrivateKey.generate()
        self.keys.append((kid, new, EARLY, None))
        record = self.writer.rotate(new, kid, at=T0 + timedelta(seconds=self.n))
        self.n += 1
        return record

    def signers(self) -> ChainSigners:
        return ChainSigners(self.chain, self.party, self.role, tuple(
            SignerKey(kid, k.public_key(), start, until) for kid, k, start, until in self.keys))

    def checkpoint(self, seq: int, digest: str, *, key: Ed25519PrivateKey | None = None,
                   kid: str | None = None) -> bytes:
        return make_checkpoint(self.chain, seq, digest, key or self.writer._key,
                               kid or self.writer.key_id, T0 + timedelta(hours=1)).encode()


def head(record: bytes) -> tuple[int, str]:
    data = json.loads(record)
    return data["seq"], data["hash"]


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


def continue_with(key: Ed25519PrivateKey, kid: str, after: bytes, events: list[dict[str, object]],
                  ) -> list[bytes]:
    """Records appended after ``after`` (same chain, next seq, linked) signed by ``key``."""
    data = json.loads(after)
    seq, prev, out = data["seq"] + 1, data["hash"], []
    for ev in events:
        body = {"chain": data["chain"], "seq": seq, "prev": prev, "event": ev}
        out.append(sign_one(key, kid, body))
        prev, seq = json.loads(out[-1])["hash"], seq + 1
    return out


@dataclass
class Case:
    records: list[bytes]
    writers: list[Writer]
    expected: list[tuple[int, str]]  # (position, finding kind), sorted
    checkpoints: list[bytes] = field(default_factory=list)
    # registered parties that write no audit chain (their keys are in the registry only)
    others: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @property
    def signers(self) -> dict[str, ChainSigners]:
        return {w.chain: w.signers() for w in self.writers}

    def registry(self) -> PartyRegistry:
        """The party registry that declares these chains (for the web app)."""
        def b64(raw: bytes) -> str:
            return b64encode(raw).decode()

        def entry(kid: str, public: Ed25519PublicKey, start: datetime,
                  until: datetime | None) -> KeyEntry:
            enc = X25519PrivateKey.generate().public_key().public_bytes_raw()
            return KeyEntry(key_id=kid, signing_public=b64(public.public_bytes_raw()),
                            encryption_public=b64(enc), valid_from=start, valid_until=until)

        parties = [Party(id=w.party, name=w.party, role=w.role,
                         keys=[entry(kid, k.public_key(), s, u) for kid, k, s, u in w.keys])
                   for w in self.writers]
        parties += [Party(id=party, name=party, role=PartyRole.ZVH,
                          keys=[entry(f"{party}-k1", public, EARLY, None)])
                    for party, public in self.others.items()]
        if not any(p.id == "capacity-dashboard" for p in parties):
            dashboard = Ed25519PrivateKey.generate().public_key()
            parties.append(Party(id="capacity-dashboard", name="dashboard",
                                 role=PartyRole.CAPACITY_DASHBOARD,
                                 keys=[entry("capacity-dashboard-k0", dashboard, EARLY, None)]))
        chains = [AuditChainDecl(chain=w.chain, writer=w.party, keys=[k[0] for k in w.keys])
                  for w in self.writers]
        return PartyRegistry(parties, chains)


def web_writer() -> Writer:
    return Writer(chain="web-1", kid="web-1-2026a", party="capacity-dashboard",
                  role=PartyRole.CAPACITY_DASHBOARD, code="compliance-search")


# --- strict reading and batches (design section 3) -----------------------------------------------


def _duplicate_event() -> Case:
    # "event" twice: a forged one first (an insurer received it), the genuine one last. A
    # last-wins reader checks the genuine event's hash; a first-wins reader shows the forgery.
    w = Writer()
    records = w.singles(4)
    forged = canonical(event(2, recipient="menzis"))
    records[2] = insert_before_member(records[2], "event", b'"event":' + forged + b",")
    return Case(records, [w], [(2, "malformed")])


def _duplicate_nested() -> Case:
    w = Writer()
    records = w.singles(3)
    records[1] = records[1].replace(b'"outcomeDesc":"permitted"',
                                    b'"outcomeDesc":"no-consent","outcomeDesc":"permitted"', 1)
    return Case(records, [w], [(1, "malformed")])


def _reencoded(change: Callable[[bytes], bytes]) -> Callable[[], Case]:
    def build() -> Case:
        w = Writer()
        records = w.singles(3)
        original, records[1] = records[1], change(records[1])
        assert records[1] != original and json.loads(records[1]) == json.loads(original)
        return Case(records, [w], [(1, "malformed")])

    return build


def _chain_after_event(raw: bytes) -> bytes:
    data = json.loads(raw)
    moved = {"event": data.pop("event"), "chain": data.pop("chain"), **data}
    return json.dumps(moved, separators=(",", ":"), ensure_ascii=False).encode()


def _batch_tail_member_dropped() -> Case:
    # a batch signed over two records, with one left: its proof still leads to the signed root
    w = Writer()
    records = w.batches(3, 2)[:-1]
    return Case(records, [w], [(3, "batch-incomplete")])


def _batch_middle_member_dropped() -> Case:
    w = Writer()
    records = w.batches(2, 3, 2)
    del records[3]  # seq 3, index 1 of the middle batch
    return Case(records, [w], [(2, "batch-incomplete"), (3, "batch-incomplete"), (3, "removed")])


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
    return Case(records, [w], [(2, "batch-incomplete"), (4, "batch-incomplete")])


def _batch_member_duplicated() -> Case:
    w = Writer()
    records = w.batches(2, 3, 2)
    records.insert(4, records[3])  # a replay of index 1 right after it
    return Case(records, [w], [(4, "inserted")])


def _hand_signed_batch_intact() -> Case:
    # a control for the builder: a hand-signed consecutive batch verifies
    w = Writer()
    bodies = [{"chain": CHAIN, "seq": 0, "prev": ZERO_HASH, "event": event(0)}]
    bodies.append({"chain": CHAIN, "seq": 1,
                   "prev": hashlib.sha256(canonical(bodies[0])).hexdigest(), "event": event(1)})
    return Case(sign_batch(w.key, KID, bodies), [w], [])


# --- signer binding (design section 1) ---------------------------------------------------------


def _registered_non_audit_key() -> Case:
    # appended to the router's chain, signed with a ZVH's own registered key, claiming that an
    # insurer received referral data
    w = Writer()
    zvh = Ed25519PrivateKey.generate()
    records = w.singles(3)
    records += continue_with(zvh, "zvh-rotterdam-k1", records[-1],
                             [event(3, recipient="menzis")])
    return Case(records, [w], [(3, "wrong-signer")],
                others={"zvh-rotterdam": zvh.public_key()})


def _another_chains_key() -> Case:
    # the router's chain continued from seq 3 under the web app's (declared, valid) key
    w, web = Writer(), web_writer()
    records = w.singles(3) + web.singles(2)
    records += continue_with(web.key, web.kid, records[2], [event(3 + i) for i in range(3)])
    return Case(records, [w, web], [(5, "wrong-signer"), (6, "wrong-signer"),
                                    (7, "wrong-signer")])


def _outside_validity() -> Case:
    w = Writer(valid_until=T0 + timedelta(seconds=2))
    records = w.singles(4)  # recorded at T0+0s .. T0+3s
    return Case(records, [w], [(2, "key-not-valid"), (3, "key-not-valid")])


def _rotation_intact() -> Case:
    w = Writer()
    records = [*w.singles(2), w.rotate("router-1-2026b"), *w.singles(2), *w.batches(3)]
    return Case(records, [w], [])


def _old_key_after_rotation() -> Case:
    # whoever kept the old key continues the chain after the hand-over
    w = Writer()
    old = w.key
    records = [*w.singles(2), w.rotate("router-1-2026b"), *w.singles(1)]
    records += continue_with(old, KID, records[-1], [event(9)])
    return Case(records, [w], [(4, "wrong-signer")])


def _new_key_before_rotation() -> Case:
    # whoever holds the new key rewrites a record from before the hand-over
    w = Writer()
    records = [*w.singles(2), w.rotate("router-1-2026b"), *w.singles(1)]
    new_kid, new_key = w.keys[1][0], w.keys[1][1]
    body = {k: v for k, v in json.loads(records[1]).items() if k in ("chain", "seq", "prev",
                                                                     "event")}
    records[1] = sign_one(new_key, new_kid, body)
    return Case(records, [w], [(1, "wrong-signer")])


def _unknown_chain() -> Case:
    w = Writer()
    rogue = Writer(chain="router-9", kid="router-9-2026a")
    a, b = w.singles(3), rogue.singles(3)
    records = [a[0], b[0], a[1], b[1], a[2], b[2]]
    return Case(records, [w], [(1, "unknown-chain")])


def _writer_may_not_record() -> Case:
    # an adapter's own chain and key, recording a decision only the router may record
    w = Writer()
    adapter = Writer(chain="adapter-zvh-1", kid="zvh-rotterdam-2026a", party="zvh-rotterdam",
                     role=PartyRole.ZVH, code="refusal")
    records = w.singles(2) + adapter.singles(1)
    adapter.code = "decision-permit"
    records += adapter.singles(1)
    return Case(records, [w, adapter], [(3, "wrong-signer")])


# --- checkpoints (design section 2) ------------------------------------------------------------


def _truncated_tail() -> Case:
    w = Writer()
    records = w.singles(6)
    cp = w.checkpoint(*head(records[-1]))
    return Case(records[:-2], [w], [(4, "truncated")], [cp])


def _truncated_whole_batch() -> Case:
    w = Writer()
    records = w.batches(2, 3, 3)
    cp = w.checkpoint(*head(records[-1]))
    return Case(records[:5], [w], [(5, "truncated")], [cp])


def _missing_chain() -> Case:
    # the web app's entire chain (who searched for a person) dropped
    w, web = Writer(), web_writer()
    records = w.singles(2) + web.singles(2) + w.singles(1)
    cps = [w.checkpoint(*head(records[-1])), web.checkpoint(*head(records[3]))]
    return Case([r for r in records if b'"chain":"web-1"' not in r], [w, web],
                [(3, "missing-chain")], cps)


def _empty_trail_with_checkpoint() -> Case:
    w = Writer()
    records = w.singles(1)
    return Case([], [w], [(0, "missing-chain")], [w.checkpoint(*head(records[0]))])


def _forked_against_checkpoint() -> Case:
    # the writer's own key signed a head of another history at seq 2: the topic holds a fork
    w = Writer()
    records = w.singles(4)
    cp = w.checkpoint(2, "ab" * 32)
    return Case(records, [w], [(2, "forked")], [cp, w.checkpoint(*head(records[-1]))])


def _checkpoint_by_another_key() -> Case:
    # a checkpoint signed by a registered party's own key: a finding, never evidence (the
    # seq it claims lies beyond the chain, yet nothing is reported truncated)
    w = Writer()
    zvh = Ed25519PrivateKey.generate()
    records = w.singles(3)
    cp = w.checkpoint(9, "cd" * 32, key=zvh, kid="zvh-rotterdam-k1")
    return Case(records, [w], [(3, "bad-checkpoint")], [cp],
                others={"zvh-rotterdam": zvh.public_key()})


def _checkpoint_tampered() -> Case:
    w = Writer()
    records = w.singles(3)
    cp = json.loads(w.checkpoint(*head(records[-1])))
    cp["seq"] = 7  # the signature was over seq 2
    return Case(records, [w], [(3, "bad-checkpoint")], [canonical(cp)])


def _checkpoints_intact() -> Case:
    w, web = Writer(), web_writer()
    records = w.batches(2, 3) + web.singles(2) + [w.rotate("router-1-2026b")] + w.singles(1)
    cps = [w.checkpoint(*head(records[4])), w.checkpoint(*head(records[-1])),
           web.checkpoint(*head(records[6]))]
    return Case(records, [w, web], [], cps)


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
    "hand-signed-batch-intact": _hand_signed_batch_intact,
    "registered-non-audit-key": _registered_non_audit_key,
    "another-chains-key": _another_chains_key,
    "outside-key-validity": _outside_validity,
    "rotation-intact": _rotation_intact,
    "old-key-after-rotation": _old_key_after_rotation,
    "new-key-before-rotation": _new_key_before_rotation,
    "unknown-chain": _unknown_chain,
    "writer-may-not-record-it": _writer_may_not_record,
    "truncated-tail": _truncated_tail,
    "truncated-whole-batch": _truncated_whole_batch,
    "missing-chain": _missing_chain,
    "empty-trail-with-checkpoint": _empty_trail_with_checkpoint,
    "forked-against-checkpoint": _forked_against_checkpoint,
    "checkpoint-by-another-key": _checkpoint_by_another_key,
    "checkpoint-tampered": _checkpoint_tampered,
    "checkpoints-intact": _checkpoints_intact,
}
