"""The audit hash chain: format, resume, and every kind of tampering found at its position."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from audit_support import audit_signers, chain_records, key, record
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit import (
    AuditChain,
    CanonicalError,
    ChainError,
    ChainRecord,
    FindingKind,
    build_audit_event,
    canonical,
    last_record_of,
    verify,
)
from broker.audit.chain import ZERO_HASH
from broker.audit.checkpoint import make_checkpoint

KEYS = audit_signers({"router-1": key(1).public_key()})
N = 12
RECORDS = chain_records(N)


def positions(report) -> list[tuple[int, str]]:
    return [(f.position, f.kind.value) for f in report.findings]


def test_intact_chain_verifies() -> None:
    report = verify(RECORDS, KEYS)
    assert report.ok and report.records == N and report.findings == []
    last = ChainRecord.decode(RECORDS[-1])
    assert report.heads == {"router-1": (N - 1, last.hash)}


def test_record_format() -> None:
    raw = RECORDS[1]
    data = json.loads(raw)
    assert set(data) == {"chain", "seq", "prev", "event", "hash", "sig", "kid"}
    assert raw == canonical(data)  # the record itself is written canonically
    body = {k: data[k] for k in ("chain", "seq", "prev", "event")}
    assert data["hash"] == hashlib.sha256(canonical(body)).hexdigest()
    assert data["prev"] == json.loads(RECORDS[0])["hash"]
    assert json.loads(RECORDS[0])["prev"] == ZERO_HASH
    assert [json.loads(r)["seq"] for r in RECORDS] == list(range(N))
    key(1).public_key().verify(bytes.fromhex(data["sig"]), bytes.fromhex(data["hash"]))
    assert data["event"]["resourceType"] == "AuditEvent"


def test_canonical_form() -> None:
    assert canonical({"b": 1, "a": [True, None, "é\n\u001f"]}) == (
        b'{"a":[true,null,"\xc3\xa9\\n\\u001f"],"b":1}'
    )
    for bad in ({"x": 1.5}, {"é": 1}, {1: 2}, {"x": 2**53}, {"x": "\ud800"}, {"x": {1, 2}}):
        with pytest.raises(CanonicalError):
            canonical(bad)
    with pytest.raises(CanonicalError):
        AuditChain("c", key(1), "k").append({"value": 0.1})


# --- tampering --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["event", "seq", "prev", "hash", "sig", "kid", "chain"])
def test_a_changed_field_is_found_at_its_position(where: str) -> None:
    records = list(RECORDS)
    data = json.loads(records[5])
    if where == "event":
        data["event"]["outcomeDesc"] = "permitted-after-all"
    elif where == "seq":
        data["seq"] = 4
    elif where in ("prev", "hash"):
        data[where] = "f" + data[where][1:] if data[where][0] != "f" else "e" + data[where][1:]
    elif where == "sig":
        data["sig"] = key(9).sign(bytes.fromhex(data["hash"])).hex()
    elif where == "kid":
        data["kid"] = "router-2"
    else:
        data["chain"] = "router-x"
    records[5] = canonical(data)
    report = verify(records, KEYS)
    assert not report.ok
    assert [f.position for f in report.findings] == [5], report.findings
    # the classification order of the design (section 5): an undeclared chain before its hash,
    # a key not declared for the chain is the wrong signer whatever it signed
    expected = {"sig": FindingKind.BAD_SIGNATURE, "kid": FindingKind.WRONG_SIGNER,
                "chain": FindingKind.UNKNOWN_CHAIN}.get(where, FindingKind.CHANGED)
    assert report.findings[0].kind is expected


@settings(max_examples=400, deadline=None)
@given(st.integers(0, N - 1), st.data())
def test_any_flipped_byte_is_found_at_its_position(index: int, data: st.DataObject) -> None:
    raw = bytearray(RECORDS[index])
    at = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]))
    raw[at] ^= bit
    records = list(RECORDS)
    records[index] = bytes(raw)
    report = verify(records, KEYS)
    assert not report.ok
    assert {f.position for f in report.findings} == {index}, report.findings
    assert report.findings[0].kind in {FindingKind.CHANGED, FindingKind.MALFORMED,
                                       FindingKind.BAD_SIGNATURE, FindingKind.UNKNOWN_CHAIN,
                                       FindingKind.WRONG_SIGNER}  # chain id, key id


@pytest.mark.parametrize("index", range(N - 1))
def test_a_deleted_record_is_found_where_it_was(index: int) -> None:
    records = list(RECORDS)
    del records[index]
    report = verify(records, KEYS)
    assert positions(report) == [(index, "removed")]
    assert report.findings[0].seq == index


def test_deleting_the_last_records_needs_a_checkpoint() -> None:
    seq, digest = verify(RECORDS, KEYS).heads["router-1"]
    cp = make_checkpoint("router-1", seq, digest, key(1), "router-1", datetime.now(UTC))
    truncated = RECORDS[:-2]
    assert verify(truncated, KEYS).ok  # invisible from the records alone
    report = verify(truncated, KEYS, checkpoints=[cp.encode()])
    assert positions(report) == [(N - 2, "truncated")]
    assert verify(RECORDS, KEYS, checkpoints=[cp]).ok


def test_several_deleted_records_are_one_finding() -> None:
    records = RECORDS[:3] + RECORDS[7:]
    report = verify(records, KEYS)
    assert positions(report) == [(3, "removed")]
    assert "seq 3..6" in report.findings[0].detail


def test_an_inserted_replay_is_found_at_its_position() -> None:
    records = list(RECORDS)
    records.insert(8, RECORDS[2])
    assert positions(verify(records, KEYS)) == [(8, "inserted")]
    records = list(RECORDS)
    records.insert(1, RECORDS[9])  # a replay placed before its original
    assert positions(verify(records, KEYS)) == [(1, "inserted")]


def test_an_inserted_forgery_is_found_at_its_position() -> None:
    forged_chain = AuditChain("router-1", key(7), "router-1",
                              last=(3, ChainRecord.decode(RECORDS[3]).hash))
    forged = forged_chain.append(build_audit_event(record(99)))  # claims seq 4, links to 3
    records = list(RECORDS)
    records.insert(4, forged)
    report = verify(records, KEYS)
    assert positions(report) == [(4, "inserted")]
    assert "signature does not verify" in report.findings[0].detail
    # a forgery appended at the end (new seq) is a bad signature
    forged_chain = AuditChain("router-1", key(7), "router-1",
                              last=(N - 1, ChainRecord.decode(RECORDS[-1]).hash))
    records = [*RECORDS, forged_chain.append(build_audit_event(record(100)))]
    assert positions(verify(records, KEYS)) == [(N, "bad-signature")]


@pytest.mark.parametrize(("i", "j"), [(0, 1), (3, 4), (2, 4), (1, 8), (0, N - 1)])
def test_two_swapped_records_are_both_found(i: int, j: int) -> None:
    records = list(RECORDS)
    records[i], records[j] = records[j], records[i]
    report = verify(records, KEYS)
    assert positions(report) == [(i, "reordered"), (j, "reordered")]
    assert f"position {j}" in report.findings[0].detail


def test_a_moved_record_is_the_only_finding() -> None:
    records = list(RECORDS)
    records.insert(9, records.pop(2))
    report = verify(records, KEYS)
    assert positions(report) == [(9, "reordered")]
    assert "after seq 1" in report.findings[0].detail


def test_garbage_and_truncated_records_are_malformed() -> None:
    records = list(RECORDS)
    records[3] = records[3][:-10]
    records[6] = b"\xff\xfe not json"
    records[9] = json.dumps({"chain": "router-1"}).encode()
    report = verify(records, KEYS)
    assert positions(report) == [(3, "malformed"), (6, "malformed"), (9, "malformed")]


def test_wrong_key_is_a_bad_signature_everywhere() -> None:
    report = verify(RECORDS, audit_signers({"router-1": key(2).public_key()}))
    assert positions(report) == [(i, "bad-signature") for i in range(N)]
    report = verify(RECORDS, {})  # no chain declared: refused as a whole, once
    assert positions(report) == [(0, "unknown-chain")]
    assert f"its {N} record(s)" in report.findings[0].detail


def test_interleaved_chains_are_verified_each() -> None:
    a = chain_records(6, chain_id="router-1")
    b = chain_records(6, chain_id="router-2", signer=2, kid="router-2", start=50)
    mixed = [x for pair in zip(a, b, strict=True) for x in pair]
    keys = {**KEYS, **audit_signers({"router-2": key(2).public_key()})}
    report = verify(mixed, keys)
    assert report.ok and set(report.heads) == {"router-1", "router-2"}
    del mixed[5]  # router-2 seq 2; its successor (router-2 seq 3) is now at position 6
    report = verify(mixed, keys)
    assert positions(report) == [(6, "removed")]
    assert report.findings[0].chain == "router-2"


def test_two_signed_histories_are_a_fork() -> None:
    records = list(RECORDS[:6])
    other = AuditChain("router-1", key(1), "router-1",
                       last=(4, "ab" * 32)).append(build_audit_event(record(77)))
    records[5] = other  # signed by the real key, but does not link to seq 4
    report = verify(records, KEYS)
    assert positions(report) == [(5, "forked")]
    assert "does not link" in report.findings[0].detail


# --- resume -----------------------------------------------------------------------------------


def test_resume_from_the_last_record_continues_the_chain() -> None:
    first = chain_records(5)
    last = last_record_of(first, "router-1")
    assert last == first[-1]
    chain = AuditChain.resume("router-1", key(1), "router-1", last)
    assert chain.last == (4, ChainRecord.decode(first[-1]).hash)
    more = [chain.append(build_audit_event(record(i))) for i in range(5, 9)]
    report = verify(first + more, KEYS)
    assert report.ok and report.heads["router-1"][0] == 8
    assert first + more == chain_records(9)  # exactly as if never restarted


def test_resume_of_a_new_chain_and_refusals() -> None:
    assert AuditChain.resume("router-1", key(1), "router-1", None).last is None
    assert last_record_of(RECORDS, "router-9") is None
    data = json.loads(RECORDS[-1])
    data["event"]["outcome"] = "0" if data["event"]["outcome"] != "0" else "4"
    with pytest.raises(ChainError, match="does not match its hash"):
        AuditChain.resume("router-1", key(1), "router-1", canonical(data))
    with pytest.raises(ChainError, match="not signed by our key"):
        AuditChain.resume("router-1", key(2), "router-1", RECORDS[-1])
    with pytest.raises(ChainError, match="belongs to chain"):
        AuditChain.resume("router-2", key(1), "router-1", RECORDS[-1])
    with pytest.raises(ChainError, match="malformed"):
        AuditChain.resume("router-1", key(1), "router-1", b"{}")
