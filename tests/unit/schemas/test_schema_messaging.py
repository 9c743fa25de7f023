"""FHIR messaging rules: Bundle.type message, MessageHeader first, event code from our code
system, source endpoint, destinations, focus inside the Bundle, a unique UUID Bundle.identifier
(the de-duplication key), timestamps; and structured errors for every violation."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import given
from hypothesis import strategies as st
from schema_strategies import PROFILE, metas

from broker.apps.generate.examples import EXAMPLES_DIR
from schemas.errors import MessageError
from schemas.messaging import (
    MAX_MESSAGE_BYTES,
    PARTY_ENDPOINT,
    MessageMeta,
    ParsedMessage,
    build_message,
    category_of,
    deterministic_ids,
    dumps,
    fhir_datetime,
    parse_instant,
    parse_message,
    read_meta,
)
from schemas.vocab import DataCategory, EventCode, LegalBasis, PurposeOfUse


def _meta(**kw: Any) -> MessageMeta:
    return MessageMeta.new(
        EventCode.REFERRAL,
        kw.pop("sender", "zvh-a"),
        PurposeOfUse.COC,
        LegalBasis.CONSENT,
        destinations=kw.pop("destinations", ("router", "provider-b")),
        **kw,
    )


def _bundle(meta: MessageMeta | None = None) -> dict[str, Any]:
    entries = [
        ({"resourceType": "Task", "status": "requested", "intent": "order"}, DataCategory.PROCESS),
        ({"resourceType": "Patient"}, DataCategory.IDENTITY),
    ]
    return build_message(meta or _meta(), entries)


def _fails(bundle: Any, path: str, reason: str) -> MessageError:
    with pytest.raises(MessageError) as err:
        read_meta(bundle)
    issue = err.value.issues[0]
    assert (issue.path, issue.reason) == (path, reason), err.value
    OperationOutcome.model_validate(err.value.outcome())
    return err.value


def test_bundle_is_a_message_with_the_header_first() -> None:
    b = _bundle()
    assert b["resourceType"] == "Bundle" and b["type"] == "message"
    assert b["entry"][0]["resource"]["resourceType"] == "MessageHeader"
    parse_message(dumps(b), full=True)  # valid R4(B)


def test_event_code_source_and_destinations() -> None:
    meta = _meta()
    header = _bundle(meta)["entry"][0]["resource"]
    assert header["eventCoding"] == EventCode.REFERRAL.coding()
    assert header["eventCoding"]["system"] == "https://ketenbus.nl/fhir/CodeSystem/message-event"
    assert header["source"]["endpoint"] == PARTY_ENDPOINT + "zvh-a"
    assert [d["endpoint"] for d in header["destination"]] == [
        PARTY_ENDPOINT + "router",
        PARTY_ENDPOINT + "provider-b",
    ]
    assert read_meta(_bundle(meta)) == meta


def test_focus_points_inside_the_bundle() -> None:
    b = _bundle()
    urls = {e["fullUrl"] for e in b["entry"][1:]}
    focus = b["entry"][0]["resource"]["focus"]
    assert focus and all(f["reference"] in urls for f in focus)
    assert read_meta(b).focus == (b["entry"][1]["fullUrl"],)


def test_identifier_is_a_fresh_uuid_and_equals_the_header_id() -> None:
    a, b = _bundle(), _bundle()
    assert a["identifier"]["system"] == "urn:ietf:rfc:3986"
    for x in (a, b):
        value = x["identifier"]["value"]
        assert value.startswith("urn:uuid:")
        assert str(uuid.UUID(value.removeprefix("urn:uuid:"))) == value.removeprefix("urn:uuid:")
        assert x["entry"][0]["resource"]["id"] == value.removeprefix("urn:uuid:")
    assert a["identifier"]["value"] != b["identifier"]["value"]


def test_timestamps_are_instants_in_utc() -> None:
    now = datetime(2024, 5, 1, 10, 30, 0, 123000, tzinfo=timezone(timedelta(hours=2)))
    b = _bundle(_meta(now=now))
    assert b["timestamp"] == "2024-05-01T08:30:00.123Z"
    assert read_meta(b).timestamp == now
    micro = now.replace(microsecond=123456)
    assert read_meta(_bundle(_meta(now=micro))).timestamp == micro


def test_every_content_resource_carries_one_category() -> None:
    b = _bundle()
    assert [category_of(e["resource"]) for e in b["entry"][1:]] == [
        DataCategory.PROCESS,
        DataCategory.IDENTITY,
    ]
    assert ParsedMessage(b, read_meta(b)).categories() == {
        DataCategory.PROCESS,
        DataCategory.IDENTITY,
    }


@PROFILE
@given(st.sampled_from(EventCode).flatmap(metas))
def test_meta_round_trips(meta: MessageMeta) -> None:
    b = build_message(
        meta, [({"resourceType": "Basic", "code": {"text": "x"}}, DataCategory.PROCESS)]
    )
    assert parse_message(dumps(b), full=True).meta == meta


def test_deterministic_ids_are_reproducible() -> None:
    with deterministic_ids("x"):
        a = _bundle()
    with deterministic_ids("x"):
        b = _bundle(
            MessageMeta.new(
                EventCode.REFERRAL,
                "zvh-a",
                PurposeOfUse.COC,
                LegalBasis.CONSENT,
                ("router", "provider-b"),
                now=datetime.fromisoformat(a["timestamp"]),
            )
        )
    assert a == b


def test_fhir_datetime_keeps_offsets_fhir_can_express() -> None:
    plus1 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert fhir_datetime(plus1) == "2024-01-02T03:04:05+01:00"
    assert fhir_datetime(plus1.astimezone(UTC)) == "2024-01-02T02:04:05Z"
    odd = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(seconds=3630)))
    assert fhir_datetime(odd) == "2024-01-02T02:03:35.000Z"
    with pytest.raises(ValueError):
        fhir_datetime(datetime(2024, 1, 1))
    assert parse_instant("2024-01-02T03:04:05.123456789Z").microsecond == 123456
    for bad in ("2024-01-02", "2024-01-02T03:04:05", "2024-W01-1T00:00:00Z", 5, None):
        with pytest.raises(ValueError):
            parse_instant(bad)


# --- violations ---------------------------------------------------------------------------------


def test_not_a_bundle() -> None:
    _fails({"resourceType": "Patient"}, "", "not-a-bundle")
    _fails([1, 2], "", "not-a-bundle")


def test_not_a_message() -> None:
    b = _bundle()
    b["type"] = "collection"
    _fails(b, "Bundle.type", "bundle-type")


@pytest.mark.parametrize(
    "value", [None, "x", "urn:uuid:nope", {"value": 5}, "urn:uuid:" + "0" * 32]
)
def test_identifier_must_be_a_uuid_urn(value: Any) -> None:
    b = _bundle()
    b["identifier"] = {"value": value} if not isinstance(value, dict) else value
    _fails(b, "Bundle.identifier", "bundle-identifier")


@pytest.mark.parametrize("value", [None, "2024-01-01", "2024-01-01T00:00:00", 1700000000])
def test_timestamp_must_be_an_instant(value: Any) -> None:
    b = _bundle()
    b["timestamp"] = value
    _fails(b, "Bundle.timestamp", "timestamp")


def test_header_must_come_first() -> None:
    b = _bundle()
    b["entry"].reverse()
    _fails(b, "Bundle.entry[0]", "header")
    b["entry"] = []
    _fails(b, "Bundle.entry", "empty")


def test_header_id_must_equal_the_identifier() -> None:
    b = _bundle()
    b["entry"][0]["resource"]["id"] = str(uuid.uuid4())
    _fails(b, "MessageHeader.id", "header-id")


def test_event_must_be_ours() -> None:
    b = _bundle()
    b["entry"][0]["resource"]["eventCoding"] = {"system": "http://example.org", "code": "referral"}
    _fails(b, "MessageHeader.eventCoding", "missing-code")
    b["entry"][0]["resource"]["eventCoding"] = "referral"
    _fails(b, "MessageHeader.eventCoding", "structure")


def test_source_and_destination_endpoints() -> None:
    b = _bundle()
    b["entry"][0]["resource"]["source"]["endpoint"] = "https://example.org"
    _fails(b, "MessageHeader.source.endpoint", "endpoint")
    b = _bundle()
    b["entry"][0]["resource"]["destination"][1]["endpoint"] = PARTY_ENDPOINT
    _fails(b, "MessageHeader.destination[1].endpoint", "endpoint")


def test_focus_outside_the_bundle_or_on_the_header() -> None:
    b = _bundle()
    b["entry"][0]["resource"]["focus"] = [{"reference": "Patient/123"}]
    _fails(b, "MessageHeader.focus[0]", "focus")
    b["entry"][0]["resource"]["focus"] = [{"reference": b["entry"][0]["fullUrl"]}]
    _fails(b, "MessageHeader.focus[0]", "focus")


def test_full_urls_are_unique_and_present() -> None:
    b = _bundle()
    b["entry"][2]["fullUrl"] = b["entry"][1]["fullUrl"]
    _fails(b, "Bundle.entry[2].fullUrl", "full-url")
    del b["entry"][2]["fullUrl"]
    _fails(b, "Bundle.entry[2].fullUrl", "full-url")


def test_untagged_or_double_tagged_resources() -> None:
    b = _bundle()
    del b["entry"][2]["resource"]["meta"]
    _fails(b, "Bundle.entry[2].resource.meta.security", "category")
    b = _bundle()
    b["entry"][1]["resource"]["meta"]["security"].append(DataCategory.CLINICAL.coding())
    _fails(b, "Bundle.entry[1].resource.meta.security", "category")


def test_purpose_and_basis_are_required() -> None:
    b = _bundle()
    b["meta"]["security"] = [PurposeOfUse.COC.coding()]
    _fails(b, "Bundle.meta.security", "missing-code")


def test_response_rules() -> None:
    meta = _meta()
    from schemas.messaging import ResponseCode, ResponseInfo

    b = _bundle(MessageMeta(**{**meta.__dict__, "response": ResponseInfo("abc", ResponseCode.OK)}))
    assert read_meta(b).response == ResponseInfo("abc", ResponseCode.OK)
    b["entry"][0]["resource"]["response"]["code"] = "maybe"
    _fails(b, "MessageHeader.response.code", "response-code")
    b["entry"][0]["resource"]["response"] = {"code": "ok", "identifier": "not an id!"}
    _fails(b, "MessageHeader.response.identifier", "response-identifier")
    b["entry"][0]["resource"]["response"] = {
        "code": "ok",
        "identifier": "a",
        "details": {"reference": "urn:uuid:x"},
    }
    _fails(b, "MessageHeader.response.details", "details")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not-json"),
        (b"\xff\xfe", "not-json"),
        (b'{"a": NaN}', "not-json"),
        (b"[" * 100_000 + b"]" * 100_000, "not-json"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "too-large"),
        (b'"just a string"', "not-a-bundle"),
    ],
)
def test_wire_level_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_message(raw)
    assert err.value.reason == reason
    OperationOutcome.model_validate(err.value.outcome())


def test_full_validation_names_the_path_never_a_stack_trace() -> None:
    b = json.loads((EXAMPLES_DIR / "referral.json").read_text())
    bad = copy.deepcopy(b)
    bad["entry"][1]["resource"]["authoredOn"] = "yesterday"
    with pytest.raises(MessageError) as err:
        parse_message(dumps(bad))
    paths = [i.path for i in err.value.issues]
    assert "Bundle.entry[1].resource.authoredOn" in paths
    bad = copy.deepcopy(b)
    bad["entry"][2]["resource"]["resourceType"] = "Nonsense"
    with pytest.raises(MessageError) as err:
        parse_message(dumps(bad))
    assert err.value.issues[0].path == "Bundle.entry[2].resource.resourceType"
    outcome = err.value.outcome()
    OperationOutcome.model_validate(outcome)
    assert "Traceback" not in json.dumps(outcome)
