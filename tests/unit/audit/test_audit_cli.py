"""``ketenbus audit`` through Typer's CliRunner: exit codes and output on JSONL files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from audit_support import chain_records, key, write_public_key
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.audit.reader import write_jsonl

RECORDS = chain_records(10)
runner = CliRunner()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    d.mkdir()
    write_public_key(d / "router-1.pem", key(1).public_key())
    write_public_key(d / "router-2.pem", key(2).public_key())
    return d


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


def test_verify_with_a_single_pem_and_a_json_key_map(tmp_path: Path) -> None:
    f = chain_file(tmp_path, RECORDS)
    pem = write_public_key(tmp_path / "router-1.pem", key(1).public_key())
    assert audit("verify", "-f", str(f), "--keys", str(pem)).exit_code == 0
    raw = key(1).public_key().public_bytes_raw().hex()
    km = tmp_path / "keys.json"
    km.write_text(json.dumps({"router-1": raw}))
    assert audit("verify", "-f", str(f), "--keys", str(km)).exit_code == 0


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
    other = tmp_path / "other"
    other.mkdir()
    write_public_key(other / "router-1.pem", key(5).public_key())
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
    records[6] = json.dumps(tampered, separators=(",", ":")).encode()
    result = audit("verify", "--file", str(chain_file(tmp_path, records)), "--keys", str(keys))
    assert result.exit_code == 1, result.output
    assert "position 6" in result.output and "bad-signature" in result.output
    rows = audit("query", "--file", str(chain_file(tmp_path, records)), "--keys", str(keys),
                 "--format", "json")
    assert rows.exit_code == 1, "a query over a trail with a finding says so"
    answered = json.loads(rows.stdout)
    assert len(answered) == 10
    assert [r["position"] for r in answered if not r["verified"]] == [6]
