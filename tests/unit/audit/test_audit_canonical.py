"""The fast encoders give the documented canonical bytes exactly.

The reference here is written from docs/audit-format.md section 3 alone (stdlib ``json`` with the
documented options, and the documented refusals), not from ``broker.audit.canonical``: the fast
paths (orjson, the per-shape event templates) must match it byte for byte, and refuse what it
refuses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.audit import AuditKind, AuditRecord, CanonicalError, build_audit_event, canonical
from broker.audit.event import PSEUDONYM_SYSTEM_PREFIX, event_bytes
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse
from schemas.vocab.categories import DataCategory as Category

LIMIT = 2**53 - 1


def refusable(value: Any) -> bool:
    """Section 3: only objects with ASCII names, valid Unicode strings, integers below 2**53,
    booleans, null and arrays have a canonical form."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > LIMIT
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list | tuple):
        return any(refusable(v) for v in value)
    if isinstance(value, dict):
        return any(
            not isinstance(k, str) or not k.isascii() or refusable(v) for k, v in value.items()
        )
    return True


def reference(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


# strings an AuditRecord may carry, the nasty ones included
nasty = st.sampled_from(
    [
        "",
        "ö",
        "Coördinatie\ngeweigerd",
        "\u2028\u2029",
        "\U0001f600",
        "\ufeff",
        "\x7f",
        "\x00",
        "\x1f\x08\x0c\t\r\n",
        '"\\/',
        "\\u0000",
        "\ud800",
        "a\udfffb",
        "€" * 40,
        "ﬁ",
        "e\u0301",
        '","',
        "\\",
        '\\"',
        "\x00kb:3\x00",
    ]
)
texts = (
    st.text(max_size=30)
    | nasty
    | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12)
)
ascii_names = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8)
edges = st.sampled_from([LIMIT, -LIMIT, LIMIT + 1, -(2**53), 2**64])
leaves = st.none() | st.booleans() | texts | st.integers(-LIMIT, LIMIT) | edges
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(ascii_names | nasty, inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_canonical_is_the_documented_json_or_a_refusal(value: Any) -> None:
    if refusable(value):
        with pytest.raises(CanonicalError):
            canonical(value)
    else:
        assert canonical(value) == reference(value)


@pytest.mark.parametrize(
    "bad",
    [
        {"x": 1.0},
        {"x": float("nan")},
        [2**53],
        {"é": 1},
        {1: 2},
        {"x": "\ud800"},
        {"a": [{"b": "ok"}, {"c": "x\udc00"}]},
        {"x": {1, 2}},
        {"x": b"x"},
        {"x": datetime.now(UTC)},
    ],
)
def test_refusals_name_the_path(bad: Any) -> None:
    with pytest.raises(CanonicalError, match=r"^\$"):
        canonical(bad)


# --- AuditRecords ------------------------------------------------------------------------------


def no_surrogate(t: str) -> bool:
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in t)


# pydantic already refuses a lone surrogate in an AuditRecord's text (tested below with a copy)
texts = texts.filter(no_surrogate)
optional_text = st.none() | texts
party = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12)
moment = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
)


@st.composite
def audit_records(draw: st.DrawFn) -> AuditRecord:
    kind = draw(st.sampled_from(list(AuditKind)))
    fields: dict[str, Any] = {
        "kind": kind,
        "recorded": draw(moment),
        "source": draw(texts.filter(bool)),
        "source_site": draw(optional_text),
        "reason": draw(texts.filter(bool)),
        "detail": draw(texts),
        "flow": draw(st.none() | st.sampled_from(list(EventCode))),
        "actor": draw(texts.filter(bool)),
        "actor_role": draw(st.sampled_from(list(PartyRole))),
        "recipient": draw(st.none() | party),
        "recipient_role": draw(st.none() | st.sampled_from(list(PartyRole))),
        "purpose": draw(st.none() | st.sampled_from(list(PurposeOfUse))),
        "legal_basis": draw(st.none() | st.sampled_from(list(LegalBasis))),
        "citation": draw(optional_text),
        "justification": draw(optional_text),
        "professional": draw(optional_text),
        "consent_id": draw(optional_text),
        "pseudonym": draw(
            st.none()
            | texts.filter(lambda t: not (t.strip().isdigit() and len(t.strip()) in (8, 9)))
        ),
        "pseudonym_system": draw(
            st.sampled_from(
                [
                    PSEUDONYM_SYSTEM_PREFIX + "/router",
                    PSEUDONYM_SYSTEM_PREFIX + "/audit",
                    PSEUDONYM_SYSTEM_PREFIX + '/x\u00e9"y',
                ]
            )
        ),
        "message_id": draw(optional_text),
        "categories": frozenset(draw(st.lists(st.sampled_from(list(DataCategory)), max_size=4))),
        "withheld": frozenset(draw(st.lists(st.sampled_from(list(Category)), max_size=3))),
        "controls": draw(st.none() | st.from_regex(r"\A[TF]{4}\Z")),
        "query": draw(optional_text)
        if kind is AuditKind.COMPLIANCE_SEARCH
        else draw(st.none() | st.just("{}")),
    }
    if draw(st.booleans()):
        fields["event_id"] = draw(st.from_regex(r"\A[A-Za-z0-9\-\.]{1,64}\Z"))
    return AuditRecord(**fields)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(audit_records())
def test_event_bytes_are_the_canonical_event(record: AuditRecord) -> None:
    event = build_audit_event(record)
    assert not refusable(event)  # only strings vary in an event: nothing else to check
    assert event_bytes(record) == reference(event) == canonical(event)
    assert event_bytes(record) == reference(event)  # again, from the cached template


def test_a_text_that_is_not_a_plain_str_takes_the_slow_path() -> None:
    r = AuditRecord(
        kind=AuditKind.REFUSAL,
        recorded=datetime(2024, 1, 1, tzinfo=UTC),
        source="router-1",
        reason="bad",
        actor="zvh",
        actor_role=PartyRole.ZVH,
    )
    odd = r.model_copy(update={"reason": AuditKind.REFUSAL})  # a str subclass
    assert event_bytes(odd) == reference(build_audit_event(odd))
    number = r.model_copy(update={"detail": 5})  # not text at all: what canonical() makes of it
    assert event_bytes(number) == reference(build_audit_event(number))


@pytest.mark.parametrize("field", ["detail", "actor", "pseudonym", "consent_id", "query"])
def test_a_lone_surrogate_is_refused_as_before(field: str) -> None:
    """pydantic refuses one in an AuditRecord; a copy that slips past it is still refused."""
    r = AuditRecord(
        kind=AuditKind.COMPLIANCE_SEARCH,
        recorded=datetime(2024, 1, 1, tzinfo=UTC),
        source="router-1",
        reason="searched",
        actor="zvh",
        actor_role=PartyRole.ZVH,
        detail="d",
        pseudonym="p",
        consent_id="c",
        query="{}",
    )
    event_bytes(r)  # the shape's template is cached: the refusal must not depend on it
    bad = r.model_copy(update={field: "x\ud800y"})
    # the query is logged in base64 of its UTF-8, so it fails earlier, when encoded, as before
    error = UnicodeEncodeError if field == "query" else CanonicalError
    with pytest.raises(error):
        event_bytes(bad)
    with pytest.raises(error):
        canonical(build_audit_event(bad))


@pytest.mark.parametrize("text", ['",', '","', 'a\\",', '\\', '"', '","x'])
def test_a_text_that_looks_like_the_separator_keeps_the_canonical_bytes(text: str) -> None:
    """Found by hypothesis (actor ``",``): the fast path split the texts' joined escapes at
    ``","``, which an escaped quote followed by ``,"`` also reads as. An independent verifier
    hashes ``canonical(event)``: any difference would show a genuine record as changed."""
    r = AuditRecord(
        kind=AuditKind.DECISION_PERMIT,
        recorded=datetime(2000, 1, 1, tzinfo=UTC),
        source="0",
        reason="0",
        detail="",
        actor=text,
        actor_role=PartyRole.ZVH,
        message_id=text,
    )
    assert event_bytes(r) == canonical(build_audit_event(r))
