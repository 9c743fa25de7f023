"""docs/audit-format.md is executable: its worked example is recomputed with our code, and its
independent verification script is extracted and run against generated chains."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from audit_support import audit_signers, batch_records, chain_records, key, write_signers
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from broker.audit import AuditChain, canonical
from broker.audit.reader import write_jsonl

DOC = Path(__file__).parents[3] / "docs" / "audit-format.md"
TEXT = DOC.read_text(encoding="utf-8")


def block(marker: str) -> str:
    """The fenced code block right after ``<!-- marker -->``."""
    m = re.search(rf"<!-- {re.escape(marker)} -->\n```[a-z]*\n(.*?)\n```", TEXT, re.S)
    assert m, f"no code block after <!-- {marker} --> in {DOC}"
    return m.group(1)


EXAMPLE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def test_worked_example_matches_the_implementation() -> None:
    pem = EXAMPLE_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert block("example-key") == pem.strip()
    event = json.loads(block("example-event"))
    second = json.loads(re.search(r"The next event, `(.*?)`, becomes", TEXT, re.S)
                        .group(1).replace("\n", " "))  # type: ignore[union-attr]
    chain = AuditChain("router-1", EXAMPLE_KEY, "router-1")
    r0, r1 = chain.append(event), chain.append(second)
    assert block("example-record-0").encode() == r0
    assert block("example-record-1").encode() == r1
    hash_input = block("example-hash-input").encode()
    body = {k: json.loads(r0)[k] for k in ("chain", "seq", "prev", "event")}
    assert hash_input == canonical(body)
    assert f"one line, {len(hash_input)} bytes" in TEXT
    digest = hashlib.sha256(hash_input).hexdigest()
    assert f"hash = {digest}" in TEXT
    assert f"sig  = {json.loads(r0)['sig']}" in TEXT


@pytest.fixture
def script(tmp_path: Path) -> Path:
    code = block("verify-script")
    assert 20 <= len([ln for ln in code.splitlines() if ln.strip()]) <= 110
    assert "broker" not in code and "ketenbus." not in code  # independent of our code
    path = tmp_path / "verify_audit.py"
    path.write_text(code, encoding="utf-8")
    return path


def run(script: Path, records: list[bytes], keydir: Path,
        checkpoints: list[bytes] | None = None) -> subprocess.CompletedProcess[str]:
    """The doc's script on ``records`` with the key export ``keydir`` (and checkpoints)."""
    export = keydir.parent / "audit.jsonl"
    write_jsonl(records, export)
    args = [str(export), str(keydir)]
    if checkpoints is not None:
        write_jsonl(checkpoints, keydir.parent / "checkpoints.jsonl")
        args.append(str(keydir.parent / "checkpoints.jsonl"))
    return subprocess.run([sys.executable, str(script), *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    """The key export of section 4.2 (what ``ketenbus audit keys`` writes)."""
    return write_signers(tmp_path / "audit-keys.json", audit_signers(
        {"router-1": key(1).public_key(), "router-2": key(2).public_key()}))


def example_keys(tmp_path: Path) -> Path:
    public = load_pem_public_key((block("example-key") + "\n").encode())
    assert isinstance(public, Ed25519PublicKey)
    return write_signers(tmp_path / "example-keys.json", audit_signers({"router-1": public}))


RECORDS = chain_records(15)


def test_doc_script_accepts_an_intact_chain(script: Path, keydir: Path) -> None:
    other = chain_records(5, chain_id="router-2", signer=2, kid="router-2", start=40)
    mixed = RECORDS[:7] + other + RECORDS[7:]
    result = run(script, mixed, keydir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 records, 0 problem(s)" in result.stdout
    assert "'router-1': 14" in result.stdout and "'router-2': 4" in result.stdout


def test_doc_script_accepts_the_worked_example(script: Path, tmp_path: Path) -> None:
    records = [block("example-record-0").encode(), block("example-record-1").encode()]
    result = run(script, records, example_keys(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def flip(raw: bytes, at: int) -> bytes:
    b = bytearray(raw)
    b[at] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize(
    ("tamper", "position"),
    [
        (lambda r: [*r[:3], flip(r[3], r[3].index(b'"outcomeDesc":"') + 16), *r[4:]], 3),
        (lambda r: [*r[:3], flip(r[3], r[3].index(b'"sig":"') + 9), *r[4:]], 3),
        (lambda r: r[:5] + r[6:], 5),  # deleted
        (lambda r: [*r[:9], r[2], *r[9:]], 9),  # inserted replay
        (lambda r: [*r[:4], r[5], r[4], *r[6:]], 4),  # swapped
    ],
    ids=["changed", "bad-signature", "deleted", "inserted", "swapped"],
)
def test_doc_script_finds_tampering(script: Path, keydir: Path, tamper, position: int) -> None:
    result = run(script, tamper(RECORDS), keydir)
    assert result.returncode == 1, result.stdout
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"position {position}:"), result.stdout


def test_doc_script_rejects_a_wrong_key(script: Path, tmp_path: Path) -> None:
    d = write_signers(tmp_path / "wrong.json", audit_signers({"router-1": key(3).public_key()}))
    result = run(script, RECORDS, d)
    assert result.returncode == 1 and "15 problem(s)" in result.stdout


# --- batch-signed records (section 4.1) -----------------------------------------------------------

BATCHED = batch_records([3, 1, 6, 2, 3])  # 15 records; batches at 0-2, 3, 4-9, 10-11, 12-14


def test_doc_script_accepts_batch_signed_chains(script: Path, keydir: Path) -> None:
    other = batch_records([2, 3], chain_id="router-2", signer=2, kid="router-2", start=40)
    mixed = BATCHED[:7] + other + BATCHED[7:]
    result = run(script, mixed, keydir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 records, 0 problem(s)" in result.stdout
    assert "'router-1': 14" in result.stdout and "'router-2': 4" in result.stdout


def with_members(raw: bytes, **changes: object) -> bytes:
    return canonical({**json.loads(raw), **changes})


def other_batch(raw: bytes) -> bytes:
    """Record 1 (batch 0-2) claiming to be in batch 4-9: that batch's signature and a proof."""
    donor = json.loads(BATCHED[5])
    return with_members(raw, sig=donor["sig"], proof=donor["proof"])


def altered_proof(raw: bytes) -> bytes:
    proof = json.loads(raw)["proof"]
    return with_members(raw, proof=proof[:30] + ("0" if proof[30] != "0" else "1") + proof[31:])


FORGED = batch_records([3, 1, 6, 2, 3], signer=7)  # same records and kid, another key


@pytest.mark.parametrize(
    ("tamper", "position"),
    [
        (lambda r: [*r[:6], altered_proof(r[6]), *r[7:]], 6),
        (lambda r: [*r[:6], with_members(r[6], proof=json.loads(r[6])["proof"][:-64]), *r[7:]], 6),
        (lambda r: [r[0], other_batch(r[1]), *r[2:]], 1),
        (lambda r: [*r[:4], *FORGED[4:10], *r[10:]], 4),
        (lambda r: [*r[:8], flip(r[8], r[8].index(b'"outcomeDesc":"') + 16), *r[9:]], 8),
        (lambda r: r[:5] + r[6:], 5),  # deleted
        (lambda r: [*r[:9], r[2], *r[9:]], 9),  # inserted replay
        (lambda r: [*r[:4], r[5], r[4], *r[6:]], 4),  # swapped
    ],
    ids=["proof-altered", "proof-shortened", "other-batch", "other-key", "changed", "deleted",
         "inserted", "swapped"],
)
def test_doc_script_finds_tampering_in_batches(script: Path, keydir: Path, tamper,
                                               position: int) -> None:
    result = run(script, tamper(BATCHED), keydir)
    assert result.returncode == 1, result.stdout
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"position {position}:"), result.stdout


def test_doc_script_agrees_with_verify_on_batch_tampering(script: Path, keydir: Path) -> None:
    """The independent script flags every record ``broker.audit.verify`` flags (and, being
    simple, may flag the next one too: section 7)."""
    from broker.audit import verify

    keys = audit_signers({"router-1": key(1).public_key()})
    for records in ([*BATCHED[:6], altered_proof(BATCHED[6]), *BATCHED[7:]],
                    [*BATCHED[:4], *FORGED[4:10], *BATCHED[10:]]):
        ours = {f.position for f in verify(records, keys).findings}
        out = run(script, records, keydir).stdout.splitlines()[:-1]
        flagged = {int(line.split(":")[0].split()[1]) for line in out}
        assert ours and ours <= flagged <= ours | {p + 1 for p in ours}


def test_worked_batch_example_matches_the_implementation() -> None:
    from broker.trust import merkle

    chain = AuditChain("router-1", EXAMPLE_KEY, "router-1")
    chain.append(json.loads(block("example-event")))
    chain.append(json.loads(block("example-record-1"))["event"])
    events = [{"resourceType": "AuditEvent", "id": f"ev-{n}", "type": {"code": "delivery"},
               "recorded": f"2024-06-01T10:00:0{n - 1}.000Z", "outcome": "0",
               "outcomeDesc": "permitted"} for n in (3, 4, 5)]
    records = chain.append_events(events)
    assert block("example-batch-records").encode().split(b"\n") == records
    hashes = [bytes.fromhex(json.loads(r)["hash"]) for r in records]
    leaf = [hashlib.sha256(b"\x00" + h).digest() for h in hashes]
    node = lambda a, b: hashlib.sha256(b"\x01" + a + b).digest()  # noqa: E731
    root = node(node(leaf[0], leaf[1]), leaf[2])
    assert root == merkle.build(leaf)[0]
    signed = b"ketenbus-audit-batch-v1" + (3).to_bytes(4, "big") + root
    assert block("example-batch") == f"root   = {root.hex()}\nsigned = {signed.hex()}"
    EXAMPLE_KEY.public_key().verify(bytes.fromhex(json.loads(records[0])["sig"]), signed)
    assert json.loads(records[0])["proof"] == "00000000" "00000003" + leaf[1].hex() + leaf[2].hex()
    assert json.loads(records[2])["proof"] == "00000002" "00000003" + node(leaf[0], leaf[1]).hex()


def test_doc_script_accepts_the_worked_batch(script: Path, tmp_path: Path) -> None:
    records = [block("example-record-0").encode(), block("example-record-1").encode(),
               *block("example-batch-records").encode().split(b"\n")]
    result = run(script, records, example_keys(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 records, 0 problem(s)" in result.stdout


def test_the_strict_reading_snippet_refuses_what_verify_refuses() -> None:
    from tests.helpers.audit_trails import CASES

    scope: dict[str, object] = {"json": json, "canonical": canonical}
    exec(block("strict-reading"), scope)  # the doc's own code
    strict = scope["strict"]
    for name in ("duplicate-event-member", "duplicate-nested-member", "whitespace",
                 "escaped-non-ascii", "escaped-solidus", "member-order"):
        case = CASES[name]()
        bad = {p for p, kind in case.expected if kind == "malformed"}
        for position, raw in enumerate(case.records):
            if position in bad:
                with pytest.raises(ValueError):
                    strict(raw)  # type: ignore[operator]
            else:
                assert strict(raw) == json.loads(raw)  # type: ignore[operator]


# the script against the hostile trails it claims to see (section 7): strict reading, signer
# binding and rotation, checkpoints, line rules. Batch completeness and what a writer may record
# are left to ketenbus audit verify.
SCRIPT_CASES = [
    "duplicate-event-member", "duplicate-nested-member", "whitespace", "escaped-non-ascii",
    "escaped-solidus", "member-order", "registered-non-audit-key", "another-chains-key",
    "outside-key-validity", "rotation-intact", "old-key-after-rotation",
    "new-key-before-rotation", "unknown-chain", "truncated-tail", "truncated-whole-batch",
    "missing-chain", "empty-trail-with-checkpoint", "forked-against-checkpoint",
    "checkpoint-by-another-key", "checkpoint-tampered", "checkpoints-intact",
    "hand-signed-batch-intact",
]


@pytest.mark.parametrize("name", SCRIPT_CASES)
def test_doc_script_on_the_hostile_trails(script: Path, tmp_path: Path, name: str) -> None:
    from tests.helpers.audit_trails import CASES

    case = CASES[name]()
    export = write_signers(tmp_path / "audit-keys.json", case.signers)
    result = run(script, case.records, export, case.checkpoints)
    assert result.returncode == (1 if case.expected else 0), result.stdout + result.stderr
    flagged = {int(m) for m in re.findall(r"^position (\d+):", result.stdout, re.M)}
    against = {"truncated", "forked", "missing-chain", "bad-checkpoint"}
    assert {p for p, kind in case.expected if kind not in against} <= flagged, result.stdout
    if any(kind in against for _, kind in case.expected):  # found from the checkpoint file
        assert "checkpoint:" in result.stdout


@pytest.mark.parametrize(("data", "bad"), [
    (lambda r: b"".join(x + b"\n" for x in r)[:-1], 4),  # no final LF
    (lambda r: b"".join(x + b"\r\n" for x in r), 0),  # CRLF
    (lambda r: r[0] + b"\n\n" + b"".join(x + b"\n" for x in r[1:]), 1),  # a blank line
], ids=["no-final-lf", "crlf", "blank-line"])
def test_doc_script_keeps_the_line_rules(script: Path, keydir: Path, data, bad: int) -> None:
    export = keydir.parent / "lines.jsonl"
    export.write_bytes(data(RECORDS[:5]))
    result = subprocess.run([sys.executable, str(script), str(export), str(keydir)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and f"position {bad}:" in result.stdout, result.stdout
