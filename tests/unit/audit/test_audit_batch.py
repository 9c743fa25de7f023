"""Batch-signed audit records: one Ed25519 signature per ``append_records`` call, a Merkle
inclusion proof per record; the hash chain is unchanged. Verification accepts both forms and finds
every kind of tampering at its position, including the batch-specific ones."""

from __future__ import annotations

import hashlib
import json

import pytest
from audit_support import audit_signers, batch_records, chain_records, key, record
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit import AuditChain, CanonicalError, ChainRecord, FindingKind, canonical, verify
from broker.audit.chain import BATCH_DOMAIN, last_record_of
from broker.trust import merkle

KEYS = audit_signers({"router-1": key(1).public_key()})
SIZES = [3, 1, 5, 2, 4]  # batches at positions 0-2, 3, 4-8, 9-10, 11-14
N = sum(SIZES)
RECORDS = batch_records(SIZES)
PLAIN = chain_records(N)


def positions(report) -> list[tuple[int, str]]:
    return [(f.position, f.kind.value) for f in report.findings]


def data(raw: bytes) -> dict:
    return json.loads(raw)


def test_batches_keep_the_hash_chain_and_share_one_signature() -> None:
    for batched, single in zip(RECORDS, PLAIN, strict=True):
        b, s = data(batched), data(single)
        assert {k: b[k] for k in ("chain", "seq", "prev", "event", "hash", "kid")} == {
            k: s[k] for k in ("chain", "seq", "prev", "event", "hash", "kid")
        }
        assert batched == canonical(b)  # written canonically, members in canonical order
    sigs = [data(r)["sig"] for r in RECORDS]
    assert len(set(sigs[0:3])) == 1 and len(set(sigs[4:9])) == 1 and sigs[0] != sigs[4]
    assert RECORDS[3] == PLAIN[3]  # a batch of one is today's single-record form, exactly
    assert "proof" not in data(RECORDS[3]) and "proof" in data(RECORDS[0])


def test_the_batch_form_as_documented() -> None:
    """Recomputed with hashlib and the key only: leaf = SHA-256(0x00 || hash bytes), RFC 9162
    root, signature over domain || size (4 bytes BE) || root."""
    batch = [data(r) for r in RECORDS[4:9]]

    def node(a: bytes, b: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + a + b).digest()

    def mth(leaves: list[bytes]) -> bytes:
        if len(leaves) == 1:
            return leaves[0]
        k = 1 << ((len(leaves) - 1).bit_length() - 1)
        return node(mth(leaves[:k]), mth(leaves[k:]))

    leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(r["hash"])).digest() for r in batch]
    root = mth(leaves)
    signed = b"ketenbus-audit-batch-v1" + (5).to_bytes(4, "big") + root
    key(1).public_key().verify(bytes.fromhex(batch[0]["sig"]), signed)
    for i, r in enumerate(batch):
        proof = bytes.fromhex(r["proof"])
        assert proof[:8] == i.to_bytes(4, "big") + (5).to_bytes(4, "big")
        assert len(proof) == 8 + 32 * len(merkle.build(leaves)[1][i].path)
    assert BATCH_DOMAIN == b"ketenbus-audit-batch-v1"


def test_intact_batched_and_mixed_chains_verify() -> None:
    report = verify(RECORDS, KEYS)
    assert report.ok and report.records == N
    assert report.heads == {"router-1": (N - 1, data(RECORDS[-1])["hash"])}
    chain = AuditChain("router-1", key(1), "router-1")
    mixed = [
        chain.append_record(record(0)),
        *chain.append_records([record(1), record(2)]),
        chain.append_record(record(3)),
    ]
    assert verify(mixed, KEYS).ok
    assert chain.append_records([]) == [] and chain.last is not None and chain.last[0] == 3


def test_resume_after_a_batch_continues_the_chain() -> None:
    last = last_record_of(RECORDS, "router-1")
    assert last == RECORDS[-1]
    chain = AuditChain.resume("router-1", key(1), "router-1", last)
    more = chain.append_records([record(N + i) for i in range(3)])
    assert verify(RECORDS + more, KEYS).ok
    with pytest.raises(Exception, match="not signed by our key"):
        AuditChain.resume("router-1", key(2), "router-1", RECORDS[-1])


def test_a_failed_batch_does_not_move_the_chain() -> None:
    chain = AuditChain("router-1", key(1), "router-1")
    chain.append_records([record(0)])
    before = chain.last
    bad = record(2).model_copy(update={"detail": "x\ud800"})
    with pytest.raises(CanonicalError):
        chain.append_records([record(1), bad, record(3)])
    assert chain.last == before


# --- tampering, as for single-signed chains ---------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.integers(0, N - 1), st.data())
def test_any_flipped_byte_is_found_at_its_position(index: int, draw: st.DataObject) -> None:
    raw = bytearray(RECORDS[index])
    at = draw.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= draw.draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]))
    records = list(RECORDS)
    records[index] = bytes(raw)
    report = verify(records, KEYS)
    assert {f.position for f in report.findings} == {index}, report.findings
    assert report.findings[0].kind in {
        FindingKind.CHANGED,
        FindingKind.MALFORMED,
        FindingKind.BAD_SIGNATURE,
        FindingKind.UNKNOWN_CHAIN,  # a flipped byte in the chain id
        FindingKind.WRONG_SIGNER,  # a flipped byte in the key id
    }


def batch_of(index: int) -> range:
    """The positions of the batch that holds position ``index`` in RECORDS."""
    start = 0
    for size in SIZES:
        if index < start + size:
            return range(start, start + size)
        start += size
    raise IndexError(index)


@pytest.mark.parametrize("index", range(N))
def test_a_deleted_record_is_found_where_it_was(index: int) -> None:
    # the gap is reported where it is; the batch's other members are reported incomplete
    # (section 3 of the design): a proof shows a record belongs to a batch, not that the
    # batch is whole. The last record has no successor: only its batch shows the loss.
    records = list(RECORDS)
    del records[index]
    siblings = [p if p < index else p - 1 for p in batch_of(index) if p != index]
    expected = [(p, "batch-incomplete") for p in siblings]
    if index < N - 1:
        expected.append((index, "removed"))
    assert sorted(positions(verify(records, KEYS))) == sorted(expected)


def test_inserted_and_swapped_records() -> None:
    records = list(RECORDS)
    records.insert(10, RECORDS[5])
    assert positions(verify(records, KEYS)) == [(10, "inserted")]
    records = list(RECORDS)
    records[5], records[6] = records[6], records[5]  # inside one batch
    assert positions(verify(records, KEYS)) == [(5, "reordered"), (6, "reordered")]
    records = list(RECORDS)
    records[1], records[12] = records[12], records[1]  # across batches
    assert positions(verify(records, KEYS)) == [(1, "reordered"), (12, "reordered")]


# --- tampering specific to batches ------------------------------------------------------------


def rewrite(raw: bytes, **changes: object) -> bytes:
    return canonical({**data(raw), **changes})


def test_an_altered_proof_is_a_bad_signature() -> None:
    proof = data(RECORDS[6])["proof"]
    for altered in (
        proof[:20] + ("0" if proof[20] != "0" else "1") + proof[21:],  # a path hash
        (3).to_bytes(4, "big").hex() + proof[8:],  # another index (it is 2)
        proof[:-64],  # a hash short
        data(RECORDS[7])["proof"],  # a sibling's proof
    ):
        records = list(RECORDS)
        records[6] = rewrite(RECORDS[6], proof=altered)
        report = verify(records, KEYS)
        assert positions(report) == [(6, "bad-signature")], (altered, report.findings)
    records = list(RECORDS)
    records[6] = rewrite(RECORDS[6], proof="0000000000000001")  # a batch of one
    assert positions(verify(records, KEYS)) == [(6, "malformed")]
    records[6] = rewrite(RECORDS[6], proof="zz")  # not a proof at all
    assert positions(verify(records, KEYS)) == [(6, "malformed")]
    records[6] = canonical({k: v for k, v in data(RECORDS[6]).items() if k != "proof"})
    assert positions(verify(records, KEYS)) == [(6, "bad-signature")]  # proof stripped


def test_a_record_moved_into_another_batch() -> None:
    # the whole record, carried into another batch's stretch: it is still genuine, but out of order
    records = list(RECORDS)
    records.insert(12, records.pop(1))
    assert positions(verify(records, KEYS)) == [(12, "reordered")]
    # the record claiming membership of another batch (its signature and a proof from there)
    other = data(RECORDS[5])
    records = list(RECORDS)
    records[1] = rewrite(RECORDS[1], sig=other["sig"], proof=other["proof"])
    assert positions(verify(records, KEYS)) == [(1, "bad-signature")]
    # a single-signed record given a batch's signature and proof
    records = list(RECORDS)
    records[3] = rewrite(RECORDS[3], sig=other["sig"], proof=other["proof"])
    assert positions(verify(records, KEYS)) == [(3, "bad-signature")]


def test_a_batch_signed_by_another_key() -> None:
    forged = batch_records(SIZES, signer=7)  # same content, same kid, another key
    records = RECORDS[:4] + forged[4:9] + RECORDS[9:]
    report = verify(records, KEYS)
    assert positions(report) == [(i, "bad-signature") for i in range(4, 9)]
    assert "batch signature" in report.findings[0].detail
    # one record of a genuine batch with the forged batch's signature and proof
    records = list(RECORDS)
    records[7] = forged[7]
    assert positions(verify(records, KEYS)) == [(7, "bad-signature")]


def test_decoded_record_and_signed_bytes() -> None:
    rec = ChainRecord.decode(RECORDS[0])
    assert rec.proof == data(RECORDS[0])["proof"]
    assert rec.signed_bytes().startswith(BATCH_DOMAIN + (3).to_bytes(4, "big"))
    single = ChainRecord.decode(RECORDS[3])
    assert single.proof is None and single.signed_bytes() == bytes.fromhex(single.hash)
