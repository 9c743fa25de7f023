"""The fast message reader and writer behave exactly like the code they replaced.

The previous implementation is kept in ``reference_messaging.py``; every property here runs the
new and the old code on the same input and requires the same result: the same tree and
metadata, or a refusal with the same issues (path, code, message, reason). Inputs are the
mutations the fuzz targets use (tests/fuzz/mutate.py) plus the corners orjson treats
differently from ``json`` (big integers, 1e400, NaN, lone surrogates, BOM, UTF-16, nesting).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import uuid
from datetime import datetime
from typing import Any

import pytest
import reference_messaging as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import messaging
from schemas.errors import Issue, MessageError, operation_outcome
from schemas.flows.response import NO_DETAILS, MessageResponse, response_bundle, response_message
from schemas.messaging import (
    MessageMeta,
    ParsedMessage,
    ResponseCode,
    category_of,
    dumps,
    parse_message,
    read_meta,
)
from schemas.vocab import CODE_SYSTEMS, DataCategory, EventCode, LegalBasis, PurposeOfUse
from tests.fuzz import mutate

EXAMPLES = list(mutate.example_messages().values())
REFERRAL = mutate.example_messages()["referral"]


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    try:
        result = fn(*args, **kwargs)
    except MessageError as err:
        return ("refused", err.issues, str(err))
    if isinstance(result, ParsedMessage) or type(result).__name__ == "ParsedMessage":
        return ("ok", _same(result.bundle), dataclasses.astuple(result.meta))
    return ("ok", dataclasses.astuple(result))  # a MessageMeta (new and old are two classes)


def _same(tree: Any) -> Any:
    """A form of the tree that compares NaN as equal (never produced here, but be safe)."""
    return json.dumps(tree, sort_keys=False, ensure_ascii=True, default=repr)


ISSUE16_EXTENSIONS = tuple(
    messaging.EXT + name
    for name in ("legal-basis-valid-until", "legal-basis-exception", "legal-basis-legal-title")
)


def _without_issue16(new: tuple[Any, ...], old: tuple[Any, ...], raw: bytes | str) -> Any:
    """Issue 16 added basis extensions (validity, stated exceptions, legal title) that the old
    reader never read: compare what both read, and let a refusal of a malformed one of those
    extensions stand where the old reader accepted the message. Only for inputs that carry one
    (the inclusion notice example states an exception)."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if not any(url in text for url in ISSUE16_EXTENSIONS):
        return new
    if new[0] == "ok" and old[0] == "ok":
        meta = list(new[-1])
        detail = meta[7]
        if detail is not None:
            meta[7] = (*detail[:3], None, (), None) if any(detail[:3]) else None
        return (*new[:-1], tuple(meta))
    refused_for_it = new[0] == "refused" and old[0] == "ok"
    if refused_for_it and all(i.path.startswith("MessageHeader.extension") for i in new[1]):
        return old
    return new


def both(raw: bytes | str, full: bool = False) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The new and the old outcome; equal, except where the deliberate changes apply."""
    new = outcome(parse_message, raw, full=full)
    old = outcome(ref.parse_message, raw, full=full)
    new = _without_issue16(new, old, raw)
    if new[0] == "refused" and "beyond the range of a float" in new[2]:
        # the new reader refuses a number json reads as infinite (test_a_number_beyond_...);
        # the old one read it, then refused the text anyway or accepted an infinity
        assert _out_of_range(raw), raw
        assert old[0] == "refused" or "Infinity" in old[1], old
        return new, new
    return new, old


def _out_of_range(raw: bytes | str) -> bool:
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    numbers = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+|\d{309,}(?:\.\d+)?", text)
    return any(math.isinf(float(n)) for n in numbers)


# --- parse_message(full=False) ----------


@settings(max_examples=400, deadline=None)
@given(mutate.json_inputs(EXAMPLES))
def test_parse_message_accepts_and_refuses_like_before(raw: bytes) -> None:
    new, old = both(raw)
    assert new == old


@settings(max_examples=150, deadline=None)
@given(mutate.json_inputs(EXAMPLES))
def test_parse_message_of_text_like_before(raw: bytes) -> None:
    text = raw.decode("utf-8", "surrogatepass") if _decodes(raw) else raw.decode("latin-1")
    new, old = both(text)
    assert new == old


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def _with(value: Any, key: str = "id") -> bytes:
    """The referral with ``value`` as the MessageHeader's ``key``, as json writes it."""
    bundle = json.loads(json.dumps(REFERRAL))
    bundle["entry"][0]["resource"][key] = value
    return json.dumps(bundle).encode()


def _raw_with(token: bytes) -> bytes:
    """The referral with a raw JSON token as an extra element of the Bundle."""
    raw = json.dumps(REFERRAL, separators=(",", ":")).encode()
    return b'{"x":' + token + b"," + raw[1:]


CORNERS: list[bytes | str] = [
    _raw_with(b"123456789012345678901234567890"),  # beyond 64 bits: an int, as before
    _raw_with(b"-9223372036854775809"),
    _raw_with(b"18446744073709551616"),
    _raw_with(b"9223372036854775807"),
    _raw_with(b"1e-400"),
    _raw_with(b"NaN"),
    _raw_with(b"Infinity"),
    _raw_with(b"-0"),
    _raw_with(b"-0.0"),
    _raw_with(b"0.1"),
    _raw_with(b"1.7976931348623157e308"),
    _raw_with(b'"\\ud800"'),  # lone surrogate escape
    _raw_with(b'"\\ud83d\\ude00"'),  # a pair is fine
    _raw_with(b'"\xed\xa0\x80"'),  # an encoded surrogate
    _raw_with(b'"\xff"'),  # invalid UTF-8
    _raw_with(b'"\x01"'),  # raw control character
    _raw_with(b"[" * 600 + b"]" * 600),  # deep: more openers than the fast path takes
    _raw_with(b"[" * 400 + b"]" * 400),
    _raw_with(b"[" * 1100 + b"]" * 1100),
    b"\xef\xbb\xbf" + json.dumps(REFERRAL).encode(),  # UTF-8 BOM: json accepts bytes with it
    "\ufeff" + json.dumps(REFERRAL),  # ... but not text
    json.dumps(REFERRAL).encode("utf-16"),
    json.dumps(REFERRAL).encode("utf-16-le"),
    json.dumps(REFERRAL).encode("utf-32"),
    b'{"resourceType":"Bundle","resourceType":"Bundle","type":"message"}',
    _raw_with(b'{"a":1,"b":2,"a":3}'),
    b"",
    b" ",
    b"null",
    b"[]",
    b"1" * 30,
    b'{"a":1}x',
    json.dumps(REFERRAL, indent=2).encode(),
    json.dumps(REFERRAL, ensure_ascii=False).encode(),
    json.dumps(REFERRAL),
    "x" * (messaging.MAX_MESSAGE_BYTES + 1),
    _with("ABC"),
    _with(str(uuid.uuid4()).upper()),
    _with("{" + str(uuid.uuid4()) + "}"),
]


@pytest.mark.parametrize("raw", CORNERS, ids=range(len(CORNERS)))
def test_corner_cases_like_before(raw: bytes | str) -> None:
    new, old = both(raw)
    assert new == old


@pytest.mark.parametrize("token", [b"1e400", b"-1e400", b"1" * 400 + b".0", b"2E+309"])
def test_a_number_beyond_the_float_range_is_refused(token: bytes) -> None:
    """The old reader made it an infinity, which ``dumps`` then wrote as the invalid JSON
    token ``Infinity`` into the recipient's message; now the sender hears why."""
    old = ref.parse_message(_raw_with(token), full=False)
    assert math.isinf(old.bundle["x"])  # the old behaviour this replaces
    with pytest.raises(MessageError) as err:
        parse_message(_raw_with(token), full=False)
    assert err.value.reason == "not-json"
    assert "beyond the range of a float" in str(err.value)
    assert token.decode()[:6] not in str(err.value)  # the sender's digits are not echoed


@pytest.mark.parametrize("token", [b"1e-400", b"1.7976931348623157e308", b"-0.0", b"1e308"])
def test_finite_extremes_are_accepted_and_written_back_as_valid_json(token: bytes) -> None:
    msg = parse_message(_raw_with(token), full=False)
    again = json.loads(dumps(msg.bundle), parse_constant=lambda c: pytest.fail(c))
    assert again["x"] == msg.bundle["x"] == float(token)


def test_big_integers_stay_integers() -> None:
    msg = parse_message(_raw_with(b"123456789012345678901234567890"), full=False)
    assert msg.bundle["x"] == 123456789012345678901234567890


def test_depth_beyond_the_recursion_limit_is_refused_as_before() -> None:
    raw = _raw_with(b"[" * 1100 + b"]" * 1100)
    with pytest.raises(MessageError) as err:
        parse_message(raw, full=False)
    assert err.value.reason == "not-json"


@pytest.mark.parametrize("name", sorted(mutate.example_messages()))
def test_every_example_parses_like_before(name: str) -> None:
    raw = json.dumps(mutate.example_messages()[name], ensure_ascii=False).encode()
    new, old = both(raw)
    assert new == old and new[0] == "ok"
    new, old = both(raw, full=True)
    assert new == old


@settings(max_examples=300, deadline=None)
@given(mutate.json_trees(EXAMPLES))
def test_read_meta_like_before(tree: Any) -> None:
    old = outcome(ref.read_meta, tree)
    new = _without_issue16(outcome(read_meta, tree), old, json.dumps(tree, default=repr))
    assert new == old


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF-{}:urnid\u212a\u0130 ", max_size=40))
def test_uuid_check_like_uuid_module(text: str) -> None:
    try:
        expected = str(uuid.UUID(text)) == text.lower()
    except ValueError:
        expected = False
    assert bool(messaging._UUID.fullmatch(text)) == expected


def test_no_character_lowers_to_a_hex_digit_or_hyphen() -> None:
    """Why the UUID regex equals ``str(uuid.UUID(x)) == x.lower()`` (see messaging._UUID)."""
    allowed = set("0123456789abcdef-")
    odd = [
        cp
        for cp in range(sys.maxunicode + 1)
        if chr(cp) not in "0123456789abcdefABCDEF-" and set(chr(cp).lower()) <= allowed
    ]
    assert odd == []


# --- ParsedMessage helpers and category_of ----------


@settings(max_examples=300, deadline=None)
@given(mutate.json_trees(EXAMPLES))
def test_message_helpers_like_before(tree: Any) -> None:
    if not isinstance(tree, dict):
        tree = {"entry": tree}
    new = ParsedMessage(tree, None)  # type: ignore[arg-type]
    old = ref.ParsedMessage(tree, None)
    assert new.resources() == old.resources()
    assert new.resources("Patient") == old.resources("Patient")
    assert new.subject_bsn() == old.subject_bsn()
    assert new.categories() == old.categories()
    for r in new.resources():
        assert category_of(r) == ref.category_of(r)


def test_category_of_odd_codes() -> None:
    system = DataCategory.default_system()
    for code in (None, 1, 10**5000, ["identity"], "identity", DataCategory.IDENTITY, "nope"):
        r = {"meta": {"security": [{"system": system, "code": code}]}}
        assert category_of(r) == ref.category_of(r)


# --- Coded.lookup / from_coding ----------


def _old_from_coding(enum: Any, coding: dict[str, Any]) -> Any:
    try:
        return ref._ref_from_coding(enum, coding)
    except ValueError as err:
        return str(err)


def _new_from_coding(enum: Any, coding: dict[str, Any]) -> Any:
    try:
        return enum.from_coding(coding)
    except ValueError as err:
        return str(err)


_systems = st.sampled_from(sorted({m.system for e in CODE_SYSTEMS for m in e}))
_codes = st.sampled_from(sorted({m.value for e in CODE_SYSTEMS for m in e}))
_odd = st.none() | st.integers() | st.lists(st.text(max_size=3), max_size=2) | st.text(max_size=8)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(CODE_SYSTEMS), _systems | _odd, _codes | _odd)
def test_from_coding_like_before(enum: Any, system: Any, code: Any) -> None:
    coding = {"system": system, "code": code}
    assert _new_from_coding(enum, coding) == _old_from_coding(enum, coding)


def test_from_coding_with_enum_members_as_values() -> None:
    member = EventCode.REFERRAL
    coding = {"system": member.system, "code": member}
    assert _new_from_coding(EventCode, coding) == _old_from_coding(EventCode, coding) == member


# --- dumps ----------

_keys = st.text(max_size=6) | st.sampled_from(["\ud800", "é", "a\x00", "\u2028"])
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["\ud800", "é", "\x7f", "\x1f", '"\\/', DataCategory.IDENTITY, 2**64])
)
_trees = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
        | st.dictionaries(st.integers(0, 3) | st.booleans(), inner, max_size=2)
    ),
    max_leaves=16,
)


def _dumps_outcome(fn: Any, tree: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(tree)
    except (TypeError, ValueError) as err:
        return "error", type(err).__name__


def _tiny_float(tree: Any) -> bool:
    """Whether the tree holds a float that orjson may write in another notation."""
    if isinstance(tree, float):
        return math.isfinite(tree) and tree != 0 and abs(tree) < 1e-4
    if isinstance(tree, dict):
        return any(_tiny_float(v) for v in tree.values())
    if isinstance(tree, list | tuple):
        return any(_tiny_float(v) for v in tree)
    return False


@settings(max_examples=600, deadline=None)
@given(_trees)
def test_dumps_like_before(tree: Any) -> None:
    new = _dumps_outcome(dumps, tree)
    old = _dumps_outcome(ref.dumps, tree)
    if new[0] == old[0] == "ok" and _tiny_float(tree):
        # the one documented difference: notation of floats below 1e-4, never their value
        assert json.loads(new[1]) == json.loads(old[1]) or new[1] != new[1]
        return
    assert new == old


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        [float("inf")],
        {"a": -math.inf},
        2**64,
        -(2**63) - 1,
        {"a": "\ud800"},
        {1: 2},
        {"a": (1, 2)},
        _deep := mutate._deep(300),
        {"a": uuid.UUID(int=1).hex},
        {"x": 1e16, "y": 1.5e300, "z": 123456789.123, "w": -0.0},
        REFERRAL,
    ],
)
def test_dumps_corners_like_before(value: Any) -> None:
    assert _dumps_outcome(dumps, value) == _dumps_outcome(ref.dumps, value)


def test_dumps_of_a_cycle_raises_like_before() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["a"] = cyclic
    assert _dumps_outcome(dumps, cyclic) == _dumps_outcome(ref.dumps, cyclic)


@pytest.mark.parametrize("name", sorted(mutate.example_messages()))
def test_dumps_of_every_example_is_byte_identical(name: str) -> None:
    bundle = mutate.example_messages()[name]
    assert dumps(bundle) == ref.dumps(bundle)


# --- response messages, codings and ids ----------


def _ref_response_message(
    resp: MessageResponse, sender: str, recipient: str, purpose: PurposeOfUse, now: datetime
) -> dict[str, Any]:
    """``response_message`` as it was: MessageMeta.new, then ``dataclasses.replace``."""
    meta = ref.MessageMeta.new(
        EventCode.RESPONSE,
        sender,
        purpose,
        LegalBasis.LEGAL_OBLIGATION,
        destinations=(recipient,),
        now=now,
    )
    entries: list[tuple[dict[str, Any], DataCategory]] = []
    if resp.issues or resp.code != "ok":
        issues = resp.issues or (Issue("", "informational", "no details were given", NO_DETAILS),)
        entries = [(operation_outcome(issues, outcome_id=ref.new_id()), DataCategory.PROCESS)]
    details_ref = ref.full_url(entries[0][0]["id"]) if entries else None
    meta = dataclasses.replace(
        meta, response=ref.ResponseInfo(resp.request_id, ref.ResponseCode(resp.code), details_ref)
    )
    return ref.build_message(meta, entries, focus=[0] if entries else [])  # type: ignore[no-any-return]


_issues = st.builds(
    Issue,
    st.sampled_from(["", "Patient.identifier", "MessageHeader.destination"]),
    st.sampled_from(["invalid", "security", "structure"]),
    st.text(max_size=20),
    st.none() | st.sampled_from(["bsn-check", "no-consent"]),
)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(ResponseCode)),
    st.lists(_issues, max_size=3).map(tuple),
    st.sampled_from(list(PurposeOfUse)),
    _times,
    st.text(alphabet="abcdef0123456789-", min_size=1, max_size=36),
)
def test_response_message_like_before(
    code: ResponseCode,
    issues: tuple[Issue, ...],
    purpose: PurposeOfUse,
    now: datetime,
    request_id: str,
) -> None:
    resp = MessageResponse(request_id, code, issues)
    with messaging.deterministic_ids("t"):
        new = response_message(resp, "router", "zvh-a", purpose, now=now)
    with ref.deterministic_ids("t"):
        old = _ref_response_message(resp, "router", "zvh-a", purpose, now)
    assert new == old
    assert dumps(new) == ref.dumps(old)
    with messaging.deterministic_ids("t"):
        meta = MessageMeta.new(
            EventCode.RESPONSE, "router", purpose, LegalBasis.LEGAL_OBLIGATION, ("zvh-a",), now=now
        )
        assert response_bundle(resp, meta) == new


def test_message_meta_fields_are_the_ones_response_copies() -> None:
    """response_bundle spells out dataclasses.replace: a new field must be added there too."""
    assert [f.name for f in dataclasses.fields(MessageMeta)] == [
        "message_id", "event", "sender", "timestamp", "purpose", "legal_basis",
        "destinations", "basis_detail", "response", "focus", "refers_to", "controller",
        "author",
    ]  # fmt: skip


@pytest.mark.parametrize("enum", CODE_SYSTEMS)
def test_coding_is_a_fresh_dict_as_before(enum: Any) -> None:
    for m in enum:
        coding = m.coding()
        assert coding == {"system": m.system, "code": m.value, "display": m.display}
        coding["code"] = "changed"
        assert m.coding()["code"] == m.value


def test_random_ids_are_uuid4() -> None:
    ids = {messaging.new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for i in ids:
        u = uuid.UUID(i)
        assert str(u) == i and u.version == 4 and u.variant == uuid.RFC_4122
