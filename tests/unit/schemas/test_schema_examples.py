"""Examples: every valid example validates with fhir.resources (R4B Bundle) and parse_message and
reads back to its model; every invalid example fails with the error stated in expected.yaml; the
committed files equal what ``python -m broker.apps.generate.examples`` generates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from broker.apps.generate.examples import EXAMPLES_DIR, INVALID_DIR, examples, generated_files
from schemas.errors import MessageError
from schemas.flows.registry import FLOWS, read_flow
from schemas.identifiers import BSN_SYSTEM, bsn_check
from schemas.messaging import parse_message

EXPECTED = yaml.safe_load((INVALID_DIR / "expected.yaml").read_text(encoding="utf-8"))
VALID = sorted(EXAMPLES_DIR.glob("*.json"))


def test_every_flow_has_an_example() -> None:
    names = {p.stem for p in VALID}
    assert {f.name for f in FLOWS} <= names
    assert {ex.name for ex in examples()} == names


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example(path: Path) -> None:
    raw = path.read_bytes()
    Bundle.model_validate_json(raw)
    msg = parse_message(raw, full=True)
    model = read_flow(msg)
    expected = next(ex.model for ex in examples() if ex.name == path.stem)
    assert model == expected
    bundle = json.loads(raw)
    for entry in bundle["entry"][1:]:  # synthetic but 11-check-valid BSNs only
        for ident in entry["resource"].get("identifier", []):
            if ident.get("system") == BSN_SYSTEM:
                assert ident["value"].startswith("9999") and bsn_check(ident["value"])


def test_every_invalid_example_is_listed() -> None:
    assert {p.name for p in INVALID_DIR.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_example_fails_with_its_stated_error(name: str) -> None:
    want = EXPECTED[name]
    raw = (INVALID_DIR / name).read_bytes()
    with pytest.raises(MessageError) as err:
        read_flow(parse_message(raw, full=True))
    got = [(i.path, i.reason, i.code) for i in err.value.issues]
    assert (want["path"], want["reason"], want["code"]) in got
    outcome = err.value.outcome()
    OperationOutcome.model_validate(outcome)
    assert any(want["path"] in i.get("expression", []) for i in outcome["issue"])


def test_committed_examples_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(EXAMPLES_DIR))
        for path, text in generated_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `python -m broker.apps.generate.examples`; stale: {stale}"
