"""``ketenbus audit`` through Typer's CliRunner: exit codes and output on JSONL files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from audit_support import audit_signers, chain_records, key, write_public_key, write_signers
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.audit import canonical, rows_from_csv, rows_from_json
from broker.audit.reader import write_jsonl

RECORDS = chain_records(10)
runner = CliRunner()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return write_signers(tmp_path / "audit-keys.json", audit_signers(
        {"router-1": key(1).public_key(), "router-2": key(2).public_key()}))


def chain_file(tmp_path: Path, records: list[bytes]) -> Path:
    f = tmp_path / "audit.jsonl"
    write_jsonl(records, f)
    return f


def audit(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["audit", *args], env=env or {"KETENBUS_BOOTSTRAP_SERVERS": ""})


def test_verify_intact_chain_exits_0(tmp_path: Path, keys: Path) -> None:
    result = audit("verify", "--file", str(chain_file(tmp_path, RECORDS)), "--keys", str(keys))
    assert result.exit_code == 0, result.output
    assert "intact: 10 records" in result.output and "router-1 up to seq 9" in result.output


def test_keys_without_a_chain_binding_are_refused(tmp_path: Path) -> None:
    # <kid>.pem, a directory of them, a JSON map kid -> key: any listed key could sign any chain
    f = chain_file(tmp_path, RECORDS)
    d = tmp_path / "pems"
    d.mkdir()
    pem = write_public_key(d / "router-1.pem", key(1).public_key())
    km = tmp_path / "keys.json"
    km.write_text(json.dumps({"router-1": key(1).public_key().public_bytes_raw().hex()}))
    for bare in (pem, d, km):
        result = audit("verify", "-f", str(f), "--keys", str(bare))
        assert result.exit_code == 2, result.output
        assert "ketenbus audit keys" in " ".join(result.output.split())


def test_verify_flipped_byte_exits_1_with_position(tmp_path: Path, keys: Path) -> None:
    records = list(RECORDS)
    raw = bytearray(records[3])
    raw[raw.index(b'"outcomeDesc":"') + 15] ^= 0x01
    records[3] = bytes(raw)
    result = audit("verify", "--file", str(chain_file(tmp_path, records)), "--keys", str(keys))
    assert result.exit_code == 1, result.output
    assert "position 3 chain router-1 seq 3: changed" in result.output
    assert "NOT intact: 1 finding(s) in 10 records" in result.output


def test_verify_deleted_inserted_swapped_each_exit_1(tmp_path: Path, keys: Path) -> None:
    cases = {
        "position 4 chain router-1 seq 4: removed": RECORDS[:4] + RECORDS[5:],
        "position 6 chain router-1 seq 1: inserted": [*RECORDS[:6], RECORDS[1], *RECORDS[6:]],
        "position 2 chain router-1 seq 5: reordered": [*RECORDS[:2], RECORDS[5], *RECORDS[3:5],
                                                        RECORDS[2], *RECORDS[6:]],
    }
    for expected, records in cases.items():
        result = audit("verify", "-f", str(chain_file(tmp_path, records)), "--keys", str(keys))
        assert result.exit_code == 1, result.output
        assert expected in result.output


def test_verify_wrong_key_exits_1(tmp_path: Path) -> None:
    other = write_signers(tmp_path / "other.json", audit_signers({"router-1": key(5).public_key()}))
    result = audit("verify", "-f", str(chain_file(tmp_path, RECORDS)), "--keys", str(other))
    assert result.exit_code == 1
    assert result.output.count("bad-signature") == 10


def test_verify_input_errors_exit_2(tmp_path: Path, keys: Path) -> None:
    f = chain_file(tmp_path, RECORDS)
    assert audit("verify", "--keys", str(keys)).exit_code == 2  # no --file, no bootstrap
    assert audit("verify", "-f", str(tmp_path / "nope.jsonl"), "--keys", str(keys)).exit_code == 2
    assert audit("verify", "-f", str(f), "--keys", str(tmp_path / "nokeys")).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert audit("verify", "-f", str(f), "--keys", str(empty)).exit_code == 2
    assert audit("verify", "-f", str(f)).exit_code == 2  # --keys is required


def test_query_json_csv_and_text(tmp_path: Path, keys: Path) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    k = ("--keys", str(keys))
    result = audit("query", "-f", f, *k, "--person", "psn-1", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and {r["pseudonym"] for r in rows} == {"psn-1"}
    assert all(r["verified"] for r in rows)
    result = audit("query", "-f", f, *k, "--refused", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows and {r["kind"] for r in rows} == {"decision-deny", "refusal"}
    result = audit("query", "-f", f, *k, "--party", "menzis", "--purpose", "HPAYMT",
                   "--legal-basis", "legal-obligation", "--since", "2024-06-01",
                   "--until", "2024-06-01", "--outcome", "success", "--format", "json")
    rows = json.loads(result.output)
    assert rows and {(r["recipient"], r["outcome"]) for r in rows} == {("menzis", "0")}
    result = audit("query", "-f", f, *k, "--until", "2024-05-31", "--format", "json")
    assert json.loads(result.output) == []
    result = audit("query", "-f", f, *k)
    assert result.exit_code == 0, result.output
    assert "10 of 10 audit records (the trail verified)" in result.output
    assert audit("query", "-f", f, *k, "--since", "yesterday").exit_code == 2
    # issue 17: search by message id
    result = audit("query", "-f", f, *k, "--message-id", "msg-00003", "--format", "json")
    rows = json.loads(result.output)
    assert rows and {r["message_id"] for r in rows} == {"msg-00003"}


def test_export_copies_a_file(tmp_path: Path) -> None:
    src = chain_file(tmp_path, RECORDS)
    out = tmp_path / "copy.jsonl"
    result = audit("export", "--file", str(src), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == src.read_bytes()


def test_verify_a_batch_signed_chain(tmp_path: Path, keys: Path) -> None:
    from audit_support import batch_records

    records = batch_records([4, 1, 5])
    result = audit("verify", "--file", str(chain_file(tmp_path, records)), "--keys", str(keys))
    assert result.exit_code == 0, result.output
    assert "intact: 10 records" in result.output and "router-1 up to seq 9" in result.output
    tampered = json.loads(records[6])
    tampered["proof"] = tampered["proof"][:-1] + ("0" if tampered["proof"][-1] != "0" else "1")
    records[6] = canonical(tampered)
    result = audit("verify", "--file", str(chain_file(tmp_path, records)), "--keys", str(keys))
    assert result.exit_code == 1, result.output
    assert "position 6" in result.output and "bad-signature" in result.output
    rows = audit("query", "--file", str(chain_file(tmp_path, records)), "--keys", str(keys),
                 "--format", "json")
    assert rows.exit_code == 1, "a query over a trail with a finding says so"
    answered = json.loads(rows.stdout)
    assert len(answered) == 10
    assert [r["position"] for r in answered if not r["verified"]] == [6]


# --- audit query verifies before it answers (issue 14 point 4) --------------------------------

DENIAL = 2  # record(2) is a decision-deny (no-consent)


def _into_permit(raw: bytes, signer: Ed25519PrivateKey | None = None, kid: str = "") -> bytes:
    rec = json.loads(raw)
    rec["event"]["type"]["code"] = "decision-permit"
    rec["event"]["outcome"], rec["event"]["outcomeDesc"] = "0", "permitted"
    if signer is not None:
        body = {k: rec[k] for k in ("chain", "seq", "prev", "event")}
        rec["hash"] = hashlib.sha256(canonical(body)).hexdigest()
        rec["sig"], rec["kid"] = signer.sign(bytes.fromhex(rec["hash"])).hex(), kid
    return canonical(rec)


@pytest.mark.parametrize("re_signed", [False, True], ids=["edited", "re-signed-by-another-key"])
def test_query_on_a_tampered_trail_says_so_and_exits_1(
    tmp_path: Path, keys: Path, re_signed: bool
) -> None:
    other = Ed25519PrivateKey.generate()  # a valid key, of another chain
    keys = write_signers(keys, audit_signers({"router-1": key(1).public_key(),
                                              "capacity-dashboard": other.public_key()}))
    forged = _into_permit(RECORDS[DENIAL], other if re_signed else None, "capacity-dashboard")
    f = str(chain_file(tmp_path, [*RECORDS[:DENIAL], forged, *RECORDS[DENIAL + 1:]]))
    finding = DENIAL  # changed, or re-signed: wrong-signer (another chain's key)
    denials = audit("query", "-f", f, "--keys", str(keys), "--kind", "decision-deny")
    assert denials.exit_code == 1, denials.output
    assert denials.stdout.startswith("!! TAMPERED: the audit trail does not verify")
    assert f"at position(s) {finding}." in denials.stdout
    assert f"#{DENIAL} " not in denials.stdout, "the forged permit is not a denial any more"
    everything = audit("query", "-f", f, "--keys", str(keys), "--format", "json")
    assert everything.exit_code == 1
    assert "TAMPERED" in everything.stderr and f"position {finding}" in everything.stderr
    unverified = [r["position"] for r in json.loads(everything.stdout) if not r["verified"]]
    assert unverified == [DENIAL]


def test_query_without_keys_refuses_to_answer_unverified(tmp_path: Path) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    result = audit("query", "-f", f, env={"KETENBUS_BOOTSTRAP_SERVERS": "",
                                          "KETENBUS_STATE_DIR": str(tmp_path / "none")})
    assert result.exit_code == 2 and "give --keys" in result.output


@pytest.mark.parametrize("bsn", ["999990019", "12345672", "999 99 0019", "999.990.019",
                                 "999-99-0019", " 999990019 "])
def test_a_bsn_given_to_person_is_refused_pointing_to_bsn(
    tmp_path: Path, keys: Path, bsn: str
) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    result = audit("query", "-f", f, "--keys", str(keys), "--person", "psn-1", "--person", bsn)
    assert result.exit_code == 2
    assert "--person takes a pseudonym" in result.output and "--bsn" in result.output
    assert bsn.strip() not in result.output and "999990019" not in result.output


@pytest.mark.parametrize("bad", ["123456789", "99999001", "abcdefghi", "9999900190", "",
                                 "99999001٩", "-1"])
def test_a_bad_bsn_is_refused_without_repeating_it(tmp_path: Path, keys: Path, bad: str) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    result = audit("query", "-f", f, "--keys", str(keys), "--bsn", bad, "--officer", "cora")
    assert result.exit_code == 2
    assert "--bsn: not a BSN" in result.output
    assert not bad or bad not in result.output


def test_bsn_needs_an_officer_and_the_officer_is_no_bsn(tmp_path: Path, keys: Path) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    result = audit("query", "-f", f, "--keys", str(keys), "--bsn", "999990019")
    assert result.exit_code == 2 and "--bsn needs --officer" in result.output
    assert "999990019" not in result.output
    result = audit("query", "-f", f, "--keys", str(keys), "--bsn", "999990019",
                   "--officer", "999990020")
    assert result.exit_code == 2 and "not a BSN" in result.output


def test_bsn_from_stdin_is_checked_the_same_way(tmp_path: Path, keys: Path) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    result = runner.invoke(app, ["audit", "query", "-f", f, "--keys", str(keys), "--bsn", "-",
                                 "--officer", "cora"], input="123456789\n",
                           env={"KETENBUS_BOOTSTRAP_SERVERS": ""})
    assert result.exit_code == 2 and "eleven test" in result.output
    assert "123456789" not in result.output


def test_text_output_is_readable_at_80_columns(tmp_path: Path, keys: Path) -> None:
    forged = _into_permit(RECORDS[DENIAL])
    f = str(chain_file(tmp_path, [*RECORDS[:DENIAL], forged, *RECORDS[DENIAL + 1:]]))
    result = audit("query", "-f", f, "--keys", str(keys),
                   env={"KETENBUS_BOOTSTRAP_SERVERS": "", "COLUMNS": "80"})
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80, [x for x in lines if len(x) > 80]
    assert "DENIED: NO CONSENT" in result.stdout and "PERMITTED  NOT VERIFIED" in result.stdout
    assert "purpose: coordination of care (COC)" in result.stdout
    assert "legal basis: Toestemming (consent); consent consent-0" in result.stdout
    assert "to: menzis (Zorgverzekeraar)" in result.stdout


def test_csv_and_json_exports_read_back_into_the_same_rows(tmp_path: Path, keys: Path) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    as_json = audit("query", "-f", f, "--keys", str(keys), "--format", "json")
    as_csv = audit("query", "-f", f, "--keys", str(keys), "--format", "csv")
    assert as_json.exit_code == as_csv.exit_code == 0
    rows = rows_from_json(as_json.stdout)
    assert len(rows) == 10 and all(r.verified for r in rows)
    assert rows_from_csv(as_csv.stdout) == rows
    assert json.loads(as_json.stdout)[DENIAL]["decision_text"] == "denied: no consent"


def test_bsn_audits_on_the_topic_so_it_needs_a_broker(tmp_path: Path, keys: Path) -> None:
    f = str(chain_file(tmp_path, RECORDS))
    args = ("query", "-f", f, "--keys", str(keys), "--bsn", "999990019", "--officer", "cora")
    result = audit(*args)
    assert result.exit_code == 2 and "give --bootstrap" in result.output
    assert "999990019" not in result.output


def test_bsn_with_an_unreachable_broker_shows_nothing(tmp_path: Path, keys: Path) -> None:
    """The search cannot be audited, so nothing is answered (NEN 7513: searches are logged)."""
    from broker.apps.deployment import LocalParty, create_local
    from schemas.vocab import PartyRole

    dep = create_local(tmp_path / "state", [
        LocalParty("capacity-dashboard", "dashboard", PartyRole.CAPACITY_DASHBOARD)])
    dep.pseudonymiser(dep.router_id)  # the router's secret, as on the router's machine
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = audit("query", "-f", str(chain_file(tmp_path, RECORDS)), "--keys", str(keys),
                   "--bsn", "999990019", "--officer", "cora", "--bootstrap", f"127.0.0.1:{port}",
                   env={"KETENBUS_STATE_DIR": str(tmp_path / "state"),
                        "KETENBUS_BOOTSTRAP_SERVERS": ""})
    assert result.exit_code == 2, result.output
    assert "cannot be audited" in result.output and "no results are shown" in result.output
    assert "#0 " not in result.output and "999990019" not in result.output


def test_query_against_a_checkpoint_sees_a_cut_off_tail(tmp_path: Path, keys: Path) -> None:
    """The last three records dropped: the chain still verifies on its own, so only the signed
    checkpoint kept elsewhere shows the cut; with it, the query says the trail is tampered."""
    from datetime import UTC, datetime

    from broker.audit.chain import ChainRecord
    from broker.audit.checkpoint import make_checkpoint, write_checkpoints

    last = ChainRecord.decode(RECORDS[-1])
    cp = make_checkpoint("router-1", last.seq, last.hash, key(1), "router-1", datetime.now(UTC))
    checkpoints = tmp_path / "checkpoints.jsonl"
    write_checkpoints([cp], checkpoints)
    cut = str(chain_file(tmp_path, RECORDS[:-3]))
    plain = audit("query", "-f", cut, "--keys", str(keys))
    assert plain.exit_code == 0, plain.output
    checked = audit("query", "-f", cut, "--keys", str(keys), "--checkpoint", str(checkpoints))
    assert checked.exit_code == 1, checked.output
    assert "TAMPERED" in checked.output and "truncated" in checked.output
    # a checkpoint signed with another valid key is never evidence: the query refuses to call
    # the trail intact, but for the bad checkpoint, not a truncation
    forged = make_checkpoint("router-1", 99, "ab" * 32, key(2), "router-1", datetime.now(UTC))
    write_checkpoints([forged], checkpoints)
    bad = audit("query", "-f", cut, "--keys", str(keys), "--checkpoint", str(checkpoints))
    assert bad.exit_code == 1 and "truncated" not in bad.output, bad.output
