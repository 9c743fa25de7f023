"""The provider's outbox files are written by orjson now (issue 19: the standard library's
indenting encoder was the largest cost per delivery); the EPD must get the same bytes as
before, and a value orjson refuses must still be written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.provider.service import pretty_json
from tests.conftest import ROOT

EXAMPLES = sorted((ROOT / "schemas" / "examples").glob("*.json"))


def _stdlib(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).stem)
def test_every_example_message_is_written_byte_for_byte_as_before(path: Path) -> None:
    doc = json.loads(path.read_text("utf-8"))
    assert pretty_json(doc) == _stdlib(doc)


def test_hostile_values_are_written_as_the_standard_library_writes_them() -> None:
    doc = {
        "huge": 2**70,  # beyond 64 bits: orjson refuses it, the fallback writes it
        "text": 'é ∑ \u202e RTL \x00 nul "quote" \\ back',
        "nested": [[[{}]], [], None, True, -0, 12345678901234567],
        "empty": {},
    }
    assert pretty_json(doc) == _stdlib(doc)
    assert json.loads(pretty_json(doc)) == doc
