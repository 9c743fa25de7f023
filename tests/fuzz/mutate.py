"""Inputs for the fuzzers: valid seeds (the committed example messages, ZVH documents, sealed
envelopes) and hypothesis strategies that break them a little or a lot.

A little: one to four mutations of a valid JSON tree (delete, replace with hostile JSON, change
type, swap in another string of the message, duplicate, empty, add a key). A lot: byte-level
edits of the serialised form, or arbitrary bytes. Hostile values include lone surrogates, control
characters, huge or deep values and JSON constants (NaN) that Python's parser accepts.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"

# --- seeds ----------------------------------------------------------------------------------------


@functools.cache
def example_messages() -> dict[str, dict[str, Any]]:
    """Every committed valid example message, by file stem (``referral``, ``claim``, ...)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))}


def examples_of(flow: str) -> list[dict[str, Any]]:
    """The example messages of one flow (``claim`` but not ``claim-response``)."""
    from schemas.flows.registry import BY_NAME

    event = BY_NAME[flow].event.value
    return [
        b
        for b in example_messages().values()
        if b["entry"][0]["resource"]["eventCoding"]["code"] == event
    ]


def zvh_documents() -> list[dict[str, Any]]:
    """Valid ZVH documents: the demo's referrals and consents (every optional part used once)."""
    from datetime import date

    from broker.runtime import demo

    today = date(2026, 1, 15)
    person = {
        "bsn": "999990019",
        "family_name": "Voorbeeld",
        "given_names": ["Anna", "Maria"],
        "birth_date": "1990-02-03",
        "gender": "female",
        "municipality": "0344",
        "homeless": False,
        "address": {"line": "Straat 1", "postal_code": "3511 AA", "city": "Utrecht"},
    }
    basis = {"kind": "conflict-of-duties", "justification": "Acuut gevaar.", "decided_by": "X"}
    return [
        demo.referral("MN-2026-0001", "midden-nederland", person, today),
        demo.referral("MN-2026-0002", "midden-nederland", person, today, basis=basis),
        demo.consent("toestemming-a", "999990019", today),
        demo.consent("toestemming-a", "999990019", today, status="revoked"),
    ]


# --- hostile values -------------------------------------------------------------------------------

_odd_strings = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",  # a lone surrogate: json.loads makes one from "\ud800", it cannot be encoded
        "\udfff abc",
        "\u202e",
        "\n\t\r",
        "null",
        "NaN",
        "urn:uuid:",
        "urn:uuid:not-a-uuid",
        "urn:ketenbus:party:",
        "urn:ketenbus:party:router",
        "Patient/1",
        "999990019",
        "123456789",
        "2026-02-30",
        "2026-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999+14:00",
        "x" * 5000,
        "é" * 300,
    ]
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | _odd_strings
)
json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _deep(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


# --- JSON tree mutations --------------------------------------------------------------------------


def _slots(node: Any, out: list[tuple[Any, Any]]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((node, k))
            _slots(v, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            _slots(v, out)


def _strings(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            _strings(v, out)
    elif isinstance(node, list):
        for v in node:
            _strings(v, out)


_ACTIONS = (
    "delete", "replace", "odd", "swap", "retype", "duplicate", "add", "empty", "deep",
    "tweak", "tweak", "tweak",  # small edits of a string: a BSN that fails the 11-check, ...
)  # fmt: skip
_TWEAKS = st.sampled_from([*"0123456789aZ -:./", "\x00", "\ud800", "é", "\u202e"])


@st.composite
def mutated(draw: st.DrawFn, tree: Any, max_mutations: int = 4) -> Any:
    """A deep copy of ``tree`` with one to ``max_mutations`` random mutations."""
    t = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, max_mutations))):
        slots: list[tuple[Any, Any]] = []
        _slots(t, slots)
        if not slots:
            return draw(json_values)
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(_ACTIONS))
        value = container[key]
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(json_values)
        elif action == "odd":
            container[key] = draw(_odd_strings)
        elif action == "swap":
            pool: list[str] = []
            _strings(t, pool)
            container[key] = draw(st.sampled_from(pool)) if pool else None
        elif action == "retype":
            container[key] = [value] if not isinstance(value, list) else (value[0] if value else {})
            if isinstance(value, str) and value.isdigit():
                container[key] = int(value)
        elif action == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(value))
        elif action == "add" and isinstance(value, dict):
            value[draw(st.text(max_size=10) | st.sampled_from(["id", "meta", "extension"]))] = draw(
                json_values
            )
        elif action == "empty":
            container[key] = type(value)() if isinstance(value, str | list | dict) else None
        elif action == "deep":
            container[key] = _deep(draw(st.integers(50, 400)))
        elif action == "tweak" and isinstance(value, str) and value:
            i = draw(st.integers(0, len(value) - 1))
            container[key] = value[:i] + draw(_TWEAKS) + value[i + 1 :]
    return t


def dumps_any(value: Any) -> bytes:
    """JSON bytes of any tree the mutations make (lone surrogates escaped, NaN allowed)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode()


# --- byte-level mutations -------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn, raw: bytes, max_edits: int = 4) -> bytes:
    """``raw`` with a few byte edits: flip, delete a range, insert, truncate, duplicate a range."""
    b = bytearray(raw)
    for _ in range(draw(st.integers(1, max_edits))):
        if not b:
            b += draw(st.binary(min_size=1, max_size=8))
            continue
        i = draw(st.integers(0, len(b) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "repeat"]))
        if action == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif action == "delete":
            del b[i : i + draw(st.integers(1, 16))]
        elif action == "insert":
            b[i:i] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b"\\ud800", b"{", b'"'])
            )
        elif action == "truncate":
            del b[i:]
        else:
            b[i:i] = b[i : i + draw(st.integers(1, 32))]
    return bytes(b)


def json_inputs(seeds: list[Any]) -> st.SearchStrategy[bytes]:
    """Bytes for a JSON reader: mutated seeds, byte-edited seeds, hostile JSON, raw bytes."""
    seed = st.sampled_from(seeds)
    return st.one_of(
        seed.flatmap(mutated).map(dumps_any),
        seed.map(dumps_any).flatmap(mutated_bytes),
        json_values.map(dumps_any),
        st.binary(max_size=64),
    )


def json_trees(seeds: list[Any]) -> st.SearchStrategy[Any]:
    """Decoded JSON for a reader of already-parsed input: mutated seeds or hostile JSON."""
    return st.one_of(st.sampled_from(seeds).flatmap(mutated), json_values)
