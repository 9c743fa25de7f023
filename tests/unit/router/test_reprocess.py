"""The router's side of a deliberate re-process (issue 17): a record refused for lack of consent
goes through again, once, when the console signed the request; a plain replay is still a
duplicate; a request signed with another valid key, moved to another record, altered after
signing or replayed is refused; a recipient already delivered is never delivered twice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.scenarios import demo
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming, Outgoing, header
from broker.router.reprocess import (
    PARKED_HEADERS,
    REQUEST_HEADER,
    ReprocessRequest,
    new_request,
    request_headers,
)
from broker.trust import PartyKeys
from broker.trust.party import PartyClient
from schemas import topics
from schemas.vocab import PartyRole
from tests.unit.router.test_pipeline import ZVH, bsn, consent_in, referral_in, reply_of, to

PROVIDER = "fivoor"
CONSOLE = LocalParty("console", "console", PartyRole.CAPACITY_DASHBOARD)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(tmp_path_factory.mktemp("dep"), [*demo.PARTIES, CONSOLE])


@pytest.fixture
def pipeline(deployment: Deployment) -> Pipeline:
    return Pipeline(deployment.router_state(default_policy()))


@pytest.fixture
def zvh(deployment: Deployment) -> PartyClient:
    client: PartyClient = deployment.party_client(ZVH)
    return client


@pytest.fixture
def console(deployment: Deployment) -> PartyKeys:
    return deployment.keyring(CONSOLE.id).current


def again(parked: Outgoing, keys: PartyKeys, request: ReprocessRequest | None = None) -> Incoming:
    """The parked record sent back to its source topic with a request signed by ``keys``."""
    request = request or new_request(parked.value, "rejected/0/7", "audit-1", keys)
    original = next(v for k, v in parked.headers if k == "kb-original-key")
    return Incoming(topics.IN_REFERRAL.name, original, parked.value,
                    request_headers(parked.headers, request, keys))


def refused(pipeline: Pipeline, zvh: PartyClient, person: str) -> Outgoing:
    result = pipeline.route(referral_in(zvh, person))
    [parked] = to(result.records, topics.REJECTED.name)
    assert header(parked.headers, "kb-reason") == "no-consent"
    return parked


def delivered(records: list[Outgoing]) -> int:
    return len(to(records, f"out.{PROVIDER}"))


def test_a_reprocess_delivers_once_the_consent_is_recorded(
    pipeline: Pipeline, zvh: PartyClient, console: PartyKeys
) -> None:
    person = bsn()
    parked = refused(pipeline, zvh, person)
    pipeline.route(consent_in(zvh, person))
    request = new_request(parked.value, "rejected/0/7", "audit-1", console)
    result = pipeline.route(again(parked, console, request))
    assert delivered(result.records) == 1
    kinds = [f.kind for f in result.facts]
    assert kinds == [FactKind.REPROCESS, FactKind.PERMIT, FactKind.DELIVERY]
    assert request.attempt in result.facts[0].detail and "audit-1" in result.facts[0].detail
    assert reply_of(zvh, result.records)["code"] == "ok", "the sender gets the new answer"
    # the same request again (a replay of the re-process): a duplicate, nothing delivered
    replay = pipeline.route(again(parked, console, request))
    assert delivered(replay.records) == 0 and replay.facts[0].kind is FactKind.DUPLICATE
    # a fresh request: the router remembers the delivery and sends nothing twice
    second = pipeline.route(again(parked, console))
    assert delivered(second.records) == 0
    skipped = [f for f in second.facts if f.reason == "already-delivered"]
    assert [f.recipient for f in skipped] == [PROVIDER]
    # a plain re-send of the record: still a duplicate
    plain = [(k, v) for k, v in parked.headers if k not in PARKED_HEADERS]
    original = next(v for k, v in parked.headers if k == "kb-original-key")
    resent = pipeline.route(Incoming(topics.IN_REFERRAL.name, original, parked.value, plain))
    assert delivered(resent.records) == 0 and resent.facts[0].kind is FactKind.DUPLICATE


def test_recipients_named_as_delivered_are_skipped(
    pipeline: Pipeline, zvh: PartyClient, console: PartyKeys
) -> None:
    """After a router restart its memory is empty: the audit trail's deliveries, named in the
    signed request, keep it from delivering twice."""
    person = bsn()
    parked = refused(pipeline, zvh, person)
    pipeline.route(consent_in(zvh, person))
    request = new_request(parked.value, "rejected/0/7", "audit-1", console,
                          frozenset({PROVIDER}))
    result = pipeline.route(again(parked, console, request))
    assert delivered(result.records) == 0
    assert [f.reason for f in result.facts] == ["reprocess", "already-delivered"]


def test_a_request_still_refused_is_parked_again_with_its_request(
    pipeline: Pipeline, zvh: PartyClient, console: PartyKeys
) -> None:
    parked = refused(pipeline, zvh, bsn())
    result = pipeline.route(again(parked, console))  # no consent yet
    [again_parked] = to(result.records, topics.REJECTED.name)
    assert header(again_parked.headers, "kb-reason") == "no-consent"
    assert header(again_parked.headers, REQUEST_HEADER), "a second re-process can refer to it"
    assert delivered(result.records) == 0


def _refused_for(result_records: list[Outgoing], facts: list[object]) -> str | None:
    parked = to(result_records, topics.REJECTED.name)
    return header(parked[0].headers, "kb-reason") if parked else None


@pytest.mark.parametrize("forgery", ["another-valid-key", "other-record", "altered", "bad-sig"])
def test_a_request_the_console_did_not_sign_for_this_record_is_refused(
    pipeline: Pipeline, zvh: PartyClient, console: PartyKeys, deployment: Deployment,
    forgery: str, tmp_path: Path,
) -> None:
    person = bsn()
    parked = refused(pipeline, zvh, person)
    pipeline.route(consent_in(zvh, person))
    if forgery == "another-valid-key":  # the ZVH's own, registered key
        rec = again(parked, deployment.keyring(ZVH).current)
    elif forgery == "other-record":  # a genuine request, for another parked record
        other = refused(pipeline, zvh, bsn())
        rec = dataclasses.replace(again(parked, console), headers=request_headers(
            parked.headers, new_request(other.value, "rejected/0/8", "audit-2", console),
            console))
    else:
        rec = again(parked, console)
        headers = list(rec.headers)
        i = next(n for n, (k, _) in enumerate(headers) if k == REQUEST_HEADER)
        if forgery == "altered":  # skip list added after signing
            body = orjson.loads(headers[i][1])
            body["skip"] = [PROVIDER]
            headers[i] = (REQUEST_HEADER, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        else:
            headers = [(k, b"AAAA" if k == "reprocess-signature" else v) for k, v in headers]
        rec = dataclasses.replace(rec, headers=headers)
    result = pipeline.route(rec)
    assert delivered(result.records) == 0
    assert _refused_for(result.records, result.facts) == "reprocess-not-authorised"
    assert not to(result.records, f"out.{ZVH}"), "the sender did nothing wrong: not told"
    assert result.facts[0].kind is FactKind.REFUSAL
