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
import re
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

    from broker.apps.scenarios import demo

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


# --- raw JSON number tokens -----------------------------------------------------------------------

_SENTINEL = "\x00raw-token\x00"
_RAW_TOKENS = st.sampled_from(
    [b"1e400", b"-1e400", b"1e-400", b"2E+309", b"1" * 400, b"-0", b"0.1e1", b"NaN", b"Infinity"]
)


@st.composite
def with_raw_token(draw: st.DrawFn, tree: Any) -> bytes:
    """``tree`` serialised with one value replaced by a raw number token ``json.dumps`` never
    writes (``1e400`` reads as an infinity, ``1``x400 as a huge integer)."""
    t = copy.deepcopy(tree)
    slots: list[tuple[Any, Any]] = []
    _slots(t, slots)
    if slots:
        container, key = draw(st.sampled_from(slots))
        container[key] = _SENTINEL
    raw = dumps_any(t)
    return raw.replace(dumps_any(_SENTINEL), draw(_RAW_TOKENS), 1)


# --- delimited text (CSV) and other line-based files ----------------------------------------------

_CELL_VALUES = st.sampled_from(
    [
        "", " ", '"', '""', ";", ",", "\n", "\r", "\x00", "\ud800", "é", "\u202e", "NaN", "1e400",
        "-1", "0", "99999999999999999999", "2026-02-30", "9999-12-31", "999990019", "123456789",
        "ja", "nee", "x" * 300, "a|b|", "|", "=cmd()",
    ]
)  # fmt: skip


@st.composite
def csv_mutated(draw: st.DrawFn, text: str, max_edits: int = 3) -> bytes:
    """A CSV text with a few cell edits (hostile value, a character changed, a cell dropped
    or added, a row repeated or removed), encoded as UTF-8 (lone surrogates kept as escapes)."""
    sep = ";" if text.count(";") >= text.count(",") else ","
    rows = [line.split(sep) for line in text.split("\n")]
    for _ in range(draw(st.integers(1, max_edits))):
        r = draw(st.integers(0, len(rows) - 1))
        row = rows[r]
        if not row:
            row.append("")
        c = draw(st.integers(0, len(row) - 1))
        action = draw(st.sampled_from(["value", "value", "tweak", "drop", "add", "repeat", "cut"]))
        if action == "value":
            row[c] = draw(_CELL_VALUES)
        elif action == "tweak" and row[c]:
            i = draw(st.integers(0, len(row[c]) - 1))
            row[c] = row[c][:i] + draw(_TWEAKS) + row[c][i + 1 :]
        elif action == "drop":
            del row[c]
        elif action == "add":
            row.insert(c, draw(_CELL_VALUES))
        elif action == "repeat":
            rows.insert(r, list(row))
        elif action == "cut" and len(rows) > 1:
            del rows[r]
    out = "\n".join(sep.join(row) for row in rows)
    return out.encode("utf-8", errors="backslashreplace")


def text_inputs(seeds: list[bytes], cells: bool = True) -> st.SearchStrategy[bytes]:
    """Bytes for a reader of delimited text: cell edits, byte edits, a BOM, raw bytes."""
    seed = st.sampled_from(seeds)
    parts = [
        seed.flatmap(mutated_bytes),
        seed.map(lambda b: b"\xef\xbb\xbf" + b),
        st.binary(max_size=64),
    ]
    if cells:
        parts.insert(0, seed.map(lambda b: b.decode("utf-8")).flatmap(csv_mutated))
    return st.one_of(*parts)


_XML_TEXT = re.compile(rb">([^<>]+)<")


@st.composite
def xml_mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """An XML file with one element's text replaced by a hostile value (escaped or not), an
    element repeated, or an entity reference added."""
    texts = list(_XML_TEXT.finditer(raw))
    action = draw(st.sampled_from(["text", "text", "raw", "repeat", "entity"]))
    if not texts:
        return raw
    m = draw(st.sampled_from(texts))
    if action == "text":
        value = draw(_CELL_VALUES).encode("utf-8", errors="backslashreplace")
        value = value.replace(b"&", b"&amp;").replace(b"<", b"&lt;")
        return raw[: m.start(1)] + value + raw[m.end(1) :]
    if action == "raw":
        return (
            raw[: m.start(1)]
            + draw(st.sampled_from([b"&", b"<", b"&#0;", b"]]>"]))
            + raw[m.end(1) :]
        )
    if action == "entity":
        return raw[: m.start(1)] + b"&undefined;" + raw[m.end(1) :]
    close = raw.find(b"</", m.end(1))
    end = raw.find(b">", close) + 1
    start = raw.rfind(b"<", 0, m.start(1))
    return raw[:end] + raw[start:end] + raw[end:]


@st.composite
def fixed_width_mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """A fixed-width file with a run of characters overwritten in place (records keep their
    length), so the fields, not the framing, are what breaks."""
    b = bytearray(raw)
    for _ in range(draw(st.integers(1, 3))):
        if not b:
            break
        i = draw(st.integers(0, len(b) - 1))
        run = draw(st.sampled_from([b" ", b"0", b"9", b"X", b"-", b"\xc3\xa9", b"\x00"]))
        n = draw(st.integers(1, 12))
        b[i : i + n] = (run * n)[:n]
    return bytes(b)


# --- seeds of the adapters' file formats ----------------------------------------------------------

ZVH_CSV = (
    "case_id;region;registered_on;bsn;family_name;given_names;birth_date;municipality;homeless;"
    "signaller_name;signaller_sector;signal;legal_titles;care_avoider;basis;basis_justification;"
    "basis_decided_by\n"
    "MN-1;midden-nederland;2024-03-04;999990019;Jansen;Piet|Jan;1990-01-02;0344;nee;Politie;"
    "police;Dreiging.;strafrechtelijk/2023-12-10|wvggz-zorgmachtiging/2023-01-01/2023-06-30;ja;;;\n"
    "MN-2;midden-nederland;2024-03-05;999990019;Jansen;Piet;1990-01-02;0344;ja;Wijkteam;"
    "municipality;Zorgen.;;nee;conflict-of-duties;Acuut gevaar.;dr. X\n"
)

PROVIDER_CSVS = [
    "assessment_id;zvh;case_id;assessed_on;bsn;family_name;birth_date;decision;"
    "dangerous_behaviour;multi_problem;structure_need;legal_title;reasons;alternative;"
    "inclusion_date;episode_id;insurer_uzovi;basis;basis_justification;basis_decided_by\n"
    "B-1;zvh-mn;C-1;2023-11-10;999990019;Jansen;1990-01-02;included;met;met;met;met;"
    "Alle criteria vervuld.;;2023-11-15;EP-1;3311;;;\n"
    "B-2;zvh-mn;C-2;2023-11-10;999990019;Jansen;1990-01-02;not-included;met;not-met;met;met;"
    "Geen multiproblematiek.;social-support;;;;conflict-of-duties;Acuut gevaar.;dr. X\n",
    "transition_id;episode_id;kind;effective_on;bsn;family_name;birth_date;"
    "security_level;previous_level;location_id;notify\n"
    "T-1;EP-1;scale-up;2024-01-05;999990019;Jansen;1990-01-02;3;ambulant;"
    "unit-3;gemeente-utrecht|zvh-mn\n",
    "report_id;location_id;region;measured_at;level_3_in_service;level_3_occupied;"
    "level_3_available\n"
    "CAP-1;unit-3;midden-nederland;2024-01-05T08:00:00+01:00;12;11;1\n",
    "claim_id;zvh;case_id;service;period_start;period_end;quantity;unit_price_cents;"
    "wlz_care_office\n"
    "T-9;zvh-mn;C-1;treatment;2024-03-01;2024-03-31;4;12550;5507\n",
]


def provider_json_seeds() -> list[Any]:
    """What a provider's EPD may drop as JSON: its example messages, the same resources as a
    collection Bundle or one by one, and an array of items."""
    messages = [
        b
        for b in example_messages().values()
        if b["entry"][0]["resource"].get("source", {}).get("endpoint") == PROVIDER_ENDPOINT
    ]
    seeds: list[Any] = list(messages)
    for b in messages:
        resources = [e["resource"] for e in b["entry"][1:]]
        seeds.append(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in resources],
            }
        )
        seeds.extend(r for r in resources if r["resourceType"] in ("MeasureReport", "Claim"))
    seeds.append(messages[:2])
    return seeds


PROVIDER = "aanbieder-voorbeeld"
PROVIDER_ENDPOINT = f"urn:ketenbus:party:{PROVIDER}"
