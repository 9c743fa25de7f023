"""The conformance kit (docs/conformance.md) against a deliberately broken counterpart: an
"adapter" whose inbox accepts every file it is given. ``ketenbus conformance`` must fail and
name each case it got wrong, in its table, its JSON and its JUnit report; and a case file that
is not a valid suite is refused with the rule it breaks. (It passes against the shipped adapters
on a live stack: tests/integration/test_referral_path.py.)"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest
import yaml
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.apps.conformance.cases import CASES_DIR, CaseFileError, load_suite, shipped_suites


@pytest.fixture
def accept_all(tmp_path: Path) -> Iterator[Path]:
    """An inbox that takes everything: each file to processed/ with a receipt accepting it."""
    inbox = tmp_path / "inbox"
    (inbox / "processed").mkdir(parents=True)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for p in inbox.iterdir():
                if p.is_file() and not p.name.startswith("."):
                    p.rename(inbox / "processed" / p.name)
                    receipt = {"file": p.name, "refused": [],
                               "accepted": [{"index": 0, "message_id": str(uuid.uuid4())}]}
                    (inbox / "processed" / f"{p.name}.receipt.json").write_text(
                        json.dumps(receipt))
            time.sleep(0.02)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    yield inbox
    stop.set()
    worker.join(5)


def test_an_inbox_that_accepts_what_it_must_refuse_fails_each_such_case_by_name(
    accept_all: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(tmp_path / "state"))
    out_json, out_xml = tmp_path / "r.json", tmp_path / "r.xml"
    result = CliRunner().invoke(app, [
        "conformance", "zvh", "--inbox", str(accept_all), "--json", str(out_json),
        "--junit", str(out_xml), "--timeout", "5",
    ])
    assert result.exit_code == 1, result.output
    report = json.loads(out_json.read_text())
    verdict = {r["case"]: r["result"] for r in report["results"]}
    must_refuse = {c.id for c in shipped_suites()["zvh"].cases
                   if "inbox" in c.channels and c.expect.adapter == "refused"}
    assert must_refuse and {verdict[c] for c in must_refuse} == {"fail"}
    assert verdict["referral-conflict-of-duties-delivered"] == "pass", "valid input is valid"
    assert "referral-bsn-fails-11-check" in result.output and "FAIL" in result.output
    assert "the router's answers were not checked" in result.output
    assert report["summary"]["failed"] == len(must_refuse) and report["finished"]
    root = SafeET.fromstring(out_xml.read_bytes())
    failing = {tc.get("name") for tc in root.iter("testcase") if tc.find("failure") is not None}
    assert failing == must_refuse
    assert all(r["channel"] == "inbox" for r in report["results"]), "no HTTP was given"


def test_a_flow_runs_only_its_own_cases(
    accept_all: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(tmp_path / "state"))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["conformance", "consent", "--inbox", str(accept_all),
                                      "--json", str(out), "--timeout", "5"])
    assert result.exit_code == 0, result.output
    cases = {r["case"] for r in json.loads(out.read_text())["results"]}
    assert cases == {"consent-recorded"}


def test_nothing_to_test_and_an_unknown_target_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(tmp_path))
    assert CliRunner().invoke(app, ["conformance", "zvh"]).exit_code == 2
    only_http = ["conformance", "zvh", "--inbox", str(tmp_path), "--only", "http"]
    assert CliRunner().invoke(app, only_http).exit_code == 2, "--only http without a --url"
    result = CliRunner().invoke(app, ["conformance", "no-such-thing", "--inbox", str(tmp_path)])
    assert result.exit_code == 2 and "no suite" in result.output


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda c: c.update(text="also text"), "exactly one of json, text or generate"),
        (lambda c: c.update(expect={"adapter": "refused", "router": "accepted"}),
         "only an accepted input reaches the router"),
        (lambda c: c.update(id="Not An Id"), "id"),
        (lambda c: c.update(surprise=1), "surprise"),
        (lambda c: c.update(doc="https://example.org"), "doc"),
    ],
)
def test_a_broken_case_file_is_refused_with_its_rule(
    tmp_path: Path, change: object, rule: str
) -> None:
    suite = yaml.safe_load((CASES_DIR / "zvh.yaml").read_text())
    assert callable(change)
    change(suite["cases"][0])
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(CaseFileError) as err:
        load_suite(path)
    assert rule in str(err.value) and str(path) in str(err.value)


def test_case_ids_are_unique_and_fields_known(tmp_path: Path) -> None:
    suite = yaml.safe_load((CASES_DIR / "zvh.yaml").read_text())
    suite["cases"].append(suite["cases"][0])
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(CaseFileError, match="appear twice"):
        load_suite(path)
    from broker.apps.conformance.cases import render
    from broker.config import Settings

    case = shipped_suites()["zvh"].cases[0].model_copy(update={"text": "${nobody}",
                                                               "json_": None})
    with pytest.raises(CaseFileError, match="nobody"):
        render(case, Settings(), "midden-nederland")


def test_every_shipped_case_names_a_documented_section() -> None:
    """A case cites the page (and heading) that promises what it checks."""
    root = CASES_DIR.parents[1]
    for suite in shipped_suites().values():
        for case in suite.cases:
            page, _, anchor = case.doc.partition("#")
            text = (root / page).read_text()
            if anchor:
                headings = {_anchor(line) for line in text.splitlines() if line.startswith("#")}
                assert anchor in headings, f"{case.id}: {case.doc}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    import re

    text = heading.lstrip("#").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_a_run_tag_never_looks_like_a_personal_number() -> None:
    """Every adapter refuses an id with eight or more digits in a row (it may be a BSN or
    another personal number: docs/adapters/limits.md), so the tag each run puts into the valid
    cases' ids must never be one; a hex tag was, one run in 43, and failed a valid case."""
    from broker.apps.conformance.cases import fields_for

    [case] = [c for c in load_suite(CASES_DIR / "provider.yaml").cases
              if c.id == "capacity-report-csv-valid"]
    tags = {fields_for(case, "midden-nederland")["run"] for _ in range(2000)}
    assert len(tags) == 2000
    assert not [t for t in tags if any(ch.isdigit() for ch in t)]
