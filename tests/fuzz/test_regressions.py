"""Crashes the fuzzers found, kept as plain tests: each input is now refused with a reason."""

from __future__ import annotations

import copy
import json

import pytest

from adapters.zvh.format import parse_bytes, parse_document
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import header
from schemas import topics
from schemas.errors import MessageError
from schemas.messaging import parse_message
from tests.fuzz import mutate, targets


def test_zvh_consent_without_recipients_is_refused_not_crashed() -> None:
    # found by zvh.parse_bytes: accepted, then ConsentRecord raised a ValidationError while the
    # adapter turned it into a message (the inbox file stayed in processing/)
    doc = next(d for d in mutate.zvh_documents() if d["type"] == "consent")
    doc = {k: v for k, v in doc.items() if k not in ("recipients", "recipient_roles")}
    with pytest.raises(MessageError) as refused:
        parse_bytes(json.dumps(doc).encode())
    assert "recipient" in str(refused.value)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"valid_from": "2026-02-01", "valid_until": "2026-01-01"}, "before"),
        ({"grantor": "representative"}, "representative"),
    ],
)
def test_zvh_consent_breaking_a_business_rule_is_refused(
    change: dict[str, str], words: str
) -> None:
    doc = {**next(d for d in mutate.zvh_documents() if d["type"] == "consent"), **change}
    with pytest.raises(MessageError) as refused:
        parse_document(doc)
    assert words in str(refused.value)


def test_zvh_referral_with_a_legal_title_ending_before_it_starts_is_refused() -> None:
    doc = copy.deepcopy(mutate.zvh_documents()[0])
    doc["legal_titles"] = [
        {"kind": "wvggz-zorgmachtiging", "start": "2026-02-01", "end": "2026-01-01"}
    ]
    with pytest.raises(MessageError):
        parse_document(doc)


def _referral_with_patient_bsn(bsn: str) -> dict:  # type: ignore[type-arg]
    bundle = copy.deepcopy(
        next(
            b
            for b in targets.router_seeds()
            if _event(b) == "referral" and _sender(b) == "zvh-voorbeeld"
        )
    )
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["identifier"][0]["value"] = bsn
    return bundle


def _event(bundle: dict) -> str:  # type: ignore[type-arg]
    return str(bundle["entry"][0]["resource"]["eventCoding"]["code"])


def _sender(bundle: dict) -> str:  # type: ignore[type-arg]
    return str(bundle["entry"][0]["resource"]["sender"]["identifier"]["value"])


@pytest.mark.parametrize("bsn", ["123456789", "12", "99999001x"])
@pytest.mark.parametrize("full_validation", [False, True])
def test_router_refuses_a_message_whose_bsn_fails_the_eleven_test(
    bsn: str, full_validation: bool
) -> None:
    # found by router.Pipeline.route: pseudonymising the BSN raised ValueError out of route(),
    # also while refusing the message (the router would redeliver it forever)
    bundle = _referral_with_patient_bsn(bsn)
    rec = targets.seal_payload(mutate.dumps_any(bundle), bundle)
    result = Pipeline(targets.env().state(full_validation)).route(rec)
    assert [(f.kind, f.reason) for f in result.facts] == [(FactKind.REFUSAL, "invalid-bsn")]
    parked = [r for r in result.records if r.topic == topics.DEAD_LETTER.name]
    assert [header(r.headers, "kb-reason") for r in parked] == ["invalid-bsn"]
    assert any(r.topic == "out.zvh-voorbeeld" for r in result.records), "the sender is told"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"resourceType":"Bundle","id":"\\ud800"}',
        b'{"resourceType":"Bundle","id":"\\udfff"}',
        b'{"resourceType":"Bundle","id":"\xed\xa0\x80"}',
        '{"resourceType":"Bundle","id":"\ud800"}',
    ],
)
def test_a_lone_surrogate_is_not_json_text(raw: bytes | str) -> None:
    # found by router.Pipeline.route: json.loads accepts it, the router could not write the
    # projected message as UTF-8 again (UnicodeEncodeError out of route())
    with pytest.raises(MessageError) as refused:
        parse_message(raw)
    assert refused.value.reason == "not-json"


def test_a_surrogate_pair_escape_is_still_fine() -> None:
    bundle = copy.deepcopy(targets.router_seeds()[0])
    bundle["entry"][1]["resource"]["id"] = "x"
    raw = mutate.dumps_any(bundle).replace(b'"id":"x"', b'"id":"\\ud83d\\ude00"', 1)
    assert b"\\ud83d" in raw
    with pytest.raises(MessageError) as refused:  # refused for the id's form, not as not-JSON
        parse_message(raw)
    assert refused.value.reason != "not-json"


def test_router_refuses_a_lone_surrogate_with_a_reason() -> None:
    bundle = copy.deepcopy(next(b for b in targets.router_seeds() if _event(b) == "claim"))
    raw = mutate.dumps_any(bundle).replace(b'"Voorbeeld"', b'"Voorbeeld\\ud800"')
    assert b"\\ud800" in raw
    result = Pipeline(targets.env().state(False)).route(targets.seal_payload(raw, bundle))
    assert [(f.kind, f.reason) for f in result.facts] == [(FactKind.REFUSAL, "not-json")]


def test_a_repeated_response_can_be_opened_by_its_sender() -> None:
    rec = next(r for r in targets.sealed_examples() if r.topic == topics.IN_CLAIM.name)
    sender = str(header(rec.headers, "kb-sender"))
    pipeline = Pipeline(targets.env().state(False))
    pipeline.route(rec)
    again = pipeline.route(rec)  # at-least-once: the same record routed twice
    assert [f.kind for f in again.facts] == [FactKind.DUPLICATE]
    (repeated,) = [r for r in again.records if r.topic == f"out.{sender}"]
    targets.env().client(sender).open(repeated.key, repeated.value, repeated.headers)


# --- found when every adapter parser got a fuzz target (session 3) ----------------------------


def _plain_collection(meta: object = None, resource_type: object = None) -> bytes:
    """A provider's collection Bundle of the capacity example's resources, one part broken."""
    seed = next(s for s in mutate.provider_json_seeds() if s.get("type") == "collection")
    bundle = copy.deepcopy(seed)
    first = bundle["entry"][0]["resource"]
    if meta is not None:
        first["meta"] = meta
    if resource_type is not None:
        first["resourceType"] = resource_type
    return json.dumps(bundle).encode()


def test_the_seed_collection_is_accepted() -> None:
    from adapters.provider.inputs import Submission, parse_json

    [(_, item)] = parse_json(_plain_collection(), mutate.PROVIDER)
    assert isinstance(item, Submission), item


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        # the category tag went into meta.security: AttributeError on a float, the file stuck
        (_plain_collection(meta=1.5), "meta"),
        (_plain_collection(meta={"security": "x"}), "meta"),
        (_plain_collection(meta={"security": [1]}), "meta"),
        # the flow was told from a set of resource types: TypeError on a list
        (_plain_collection(resource_type=["Task"]), "resourceType"),
    ],
)
def test_provider_plain_resources_with_a_broken_part_are_refused(raw: bytes, words: str) -> None:
    from adapters.provider.inputs import parse_json

    [(_, item)] = parse_json(raw, mutate.PROVIDER)
    assert isinstance(item, MessageError), item
    targets.refused(item)
    assert words in str(item)


def test_payer_xml_declaring_an_unknown_encoding_is_refused() -> None:
    # found by payer.wmo.read_answer: expat raised LookupError, the answer file stayed unread
    from adapters.payer.formats import wmo

    raw = targets.payer_answers()["wmo"][0].replace(b'encoding="UTF-8"', b'encoding="TTF-8"', 1)
    assert b"TTF-8" in raw
    with pytest.raises(MessageError) as refused:
        wmo.read_answer(raw)
    assert refused.value.reason == "encoding"


def test_a_number_beyond_the_float_range_never_reaches_a_recipient() -> None:
    # found by messaging.parse_message once accepted input had to come out as strict JSON:
    # 1e400 was read as an infinity and the router would have sealed ``Infinity`` for the
    # recipient, which no JSON reader takes
    raw = json.dumps(mutate.example_messages()["referral"]).encode()
    raw = raw.replace(b'"type": "message"', b'"type": "message", "x": 1e400', 1)
    assert b"1e400" in raw
    with pytest.raises(MessageError) as refused:
        parse_message(raw, full=False)
    assert refused.value.reason == "not-json"
