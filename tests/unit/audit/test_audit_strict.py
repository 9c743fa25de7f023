"""Strict reading, export line rules and batch completeness (design audit-record-v2 section 3),
through the Python API and ``ketenbus audit verify``; the web app's page runs the same table
in tests/unit/web/test_web_verify.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.audit import ChainRecord, MalformedRecord, canonical, verify
from broker.audit.reader import read_jsonl, write_jsonl
from broker.audit.signers import dump_signers
from tests.helpers.audit_trails import CASES, Writer, event, head
from tests.helpers.audit_trails import insert_before_member as insert_before

runner = CliRunner()


def positions(report) -> list[tuple[int, str]]:
    return sorted((f.position, f.kind.value) for f in report.findings)


def write_keys(tmp_path: Path, signers: dict) -> Path:
    f = tmp_path / "audit-keys.json"
    f.write_text(dump_signers(signers), encoding="utf-8")
    return f


def cli_verify(tmp_path: Path, records: list[bytes], signers: dict,
               checkpoints: list[bytes] = ()):  # type: ignore[assignment]
    f = tmp_path / "audit.jsonl"
    write_jsonl(records, f)
    extra: list[str] = []
    if checkpoints:
        cp = tmp_path / "checkpoints.jsonl"
        write_jsonl(checkpoints, cp)
        extra = ["--checkpoint", str(cp)]
    return runner.invoke(app, ["audit", "verify", "--file", str(f), "--keys",
                               str(write_keys(tmp_path, signers)), *extra],
                         env={"KETENBUS_BOOTSTRAP_SERVERS": ""})


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_trail_gives_its_findings(name: str) -> None:
    case = CASES[name]()
    report = verify(case.records, case.signers, checkpoints=case.checkpoints)
    assert positions(report) == case.expected, [str(f) for f in report.findings]
    assert report.ok is (not case.expected)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_trail_through_the_cli(tmp_path: Path, name: str) -> None:
    case = CASES[name]()
    result = cli_verify(tmp_path, case.records, case.signers, case.checkpoints)
    assert result.exit_code == (1 if case.expected else 0), result.output
    found = sorted(
        (int(m[1]), m[2])
        for m in re.finditer(r"^position (\d+)\b[^:]*: ([a-z-]+): ", result.output, re.M)
    )
    assert found == case.expected, result.output


def test_a_duplicated_event_is_named_and_the_forgery_never_read() -> None:
    w = Writer()
    genuine = w.singles(1)[0]
    forged = insert_before(genuine, "event", b'"event":' + json.dumps(event(0, recipient="menzis"),
                                                                     ensure_ascii=False,
                                                                     sort_keys=True,
                                                                     separators=(",", ":")
                                                                     ).encode() + b",")
    # the threat is real: a last-wins reader sees the genuine event, a first-wins one the forgery
    assert json.loads(forged)["event"] == json.loads(genuine)["event"]
    first_wins = json.loads(forged, object_pairs_hook=lambda p: dict(reversed(p)))
    assert first_wins["event"]["agent"][1]["who"]["identifier"]["value"] == "menzis"
    with pytest.raises(MalformedRecord, match="duplicate member name 'event'"):
        ChainRecord.decode(forged)
    report = verify([forged], {w.chain: w.signers()})
    assert positions(report) == [(0, "malformed")]
    assert "duplicate member name 'event'" in report.findings[0].detail


def test_the_writer_writes_what_strict_reading_accepts() -> None:
    w = Writer()
    records = w.singles(3) + w.batches(4, 1, 2)
    assert verify(records, {w.chain: w.signers()}).ok
    for raw in records:
        rec, body = ChainRecord.decode_strict(raw)
        assert body == canonical(rec.body())  # the hash input cut from the bytes is exact


# --- export line rules ----------------------------------------------------------------------


def export_file(tmp_path: Path, data: bytes) -> Path:
    f = tmp_path / "audit.jsonl"
    f.write_bytes(data)
    return f


def line_cases(records: list[bytes]) -> dict[str, tuple[bytes, list[tuple[int, str]]]]:
    lf = b"".join(r + b"\n" for r in records)
    return {
        "crlf-on-one-line": (lf.replace(records[1] + b"\n", records[1] + b"\r\n"),
                             [(1, "malformed")]),
        "crlf-everywhere": (lf.replace(b"\n", b"\r\n"),
                            [(i, "malformed") for i in range(len(records))]),
        "blank-line": (lf.replace(records[1] + b"\n", records[1] + b"\n\n"), [(2, "malformed")]),
        "no-final-lf": (lf[:-1], [(len(records) - 1, "malformed")]),
        "empty-file": (b"", []),
    }


@pytest.mark.parametrize("name", ["crlf-on-one-line", "crlf-everywhere", "blank-line",
                                  "no-final-lf", "empty-file"])
def test_export_line_rules(tmp_path: Path, name: str) -> None:
    w = Writer()
    records = w.singles(4)
    data, expected = line_cases(records)[name]
    f = export_file(tmp_path, data)
    report = verify(read_jsonl(f), {w.chain: w.signers()})
    assert positions(report) == expected, [str(x) for x in report.findings]
    why = {"crlf-on-one-line": "a CR in the line", "crlf-everywhere": "a CR in the line",
           "blank-line": "a blank line", "no-final-lf": "the last line has no LF"}
    for finding in report.findings:  # the line rule is named, whatever the bytes hold
        assert why[name] in finding.detail, finding
    result = runner.invoke(app, ["audit", "verify", "--file", str(f), "--keys",
                                 str(write_keys(tmp_path, {w.chain: w.signers()}))],
                           env={"KETENBUS_BOOTSTRAP_SERVERS": ""})
    assert result.exit_code == (1 if expected else 0), result.output
    if not expected:
        assert "intact: 0 records; no chains" in result.output


# --- the CLI's face ---------------------------------------------------------------------------


def test_the_cli_prints_full_heads(tmp_path: Path) -> None:
    w = Writer()
    records = w.singles(2) + w.batches(3)
    result = cli_verify(tmp_path, records, {w.chain: w.signers()})
    assert result.exit_code == 0, result.output
    head = json.loads(records[-1])["hash"]
    assert f"router-1 up to seq 4 (hash {head})" in result.output


def test_verify_help_documents_every_option() -> None:
    import typer.main

    group = typer.main.get_command(app)
    command = group.commands["audit"].commands["verify"]  # type: ignore[attr-defined]
    for param in command.params:
        assert getattr(param, "help", None), f"--help says nothing about {param.name}"
    result = runner.invoke(app, ["audit", "verify", "--help"], env={"COLUMNS": "200"})
    for param in command.params:
        for opt in param.opts:
            assert opt in result.output


def test_several_checkpoint_files_and_an_unreadable_one(tmp_path: Path) -> None:
    w = Writer()
    records = w.singles(5)
    old, new = tmp_path / "monday.jsonl", tmp_path / "tuesday.jsonl"
    write_jsonl([w.checkpoint(*head(records[2]))], old)
    write_jsonl([w.checkpoint(*head(records[4]))], new)
    f = tmp_path / "audit.jsonl"
    write_jsonl(records[:4], f)  # the last record dropped after Tuesday's export
    keys = str(write_keys(tmp_path, {w.chain: w.signers()}))
    base = ["audit", "verify", "--file", str(f), "--keys", keys, "--checkpoint", str(old)]
    env = {"KETENBUS_BOOTSTRAP_SERVERS": ""}
    assert runner.invoke(app, base, env=env).exit_code == 0  # Monday's head is still there
    result = runner.invoke(app, [*base, "--checkpoint", str(new)], env=env)
    assert result.exit_code == 1 and "position 4 chain router-1 seq 4: truncated" in result.output
    missing = runner.invoke(app, [*base, "--checkpoint", str(tmp_path / "nope.jsonl")], env=env)
    assert missing.exit_code == 2, missing.output
