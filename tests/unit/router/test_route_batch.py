"""A fetched batch is routed at once and everything the router seals in it carries one batch
signature; each record still verifies on its own at its reader."""

from __future__ import annotations

import json

import pytest

from broker.apps.deployment import Deployment
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming, header
from broker.trust.party import PartyClient
from schemas import topics
from tests.unit.router.test_pipeline import (
    PROVIDER,
    ZVH,
    bsn,
    consent_in,
    deployment,  # noqa: F401 - the module-scoped fixture
    referral_in,
    reply_of,
    to,
)


@pytest.fixture
def pipeline(deployment: Deployment) -> Pipeline:  # noqa: F811 - uses the imported fixture
    return Pipeline(deployment.router_state(default_policy()))


def _clients(deployment: Deployment) -> tuple[PartyClient, PartyClient]:  # noqa: F811
    return deployment.party_client(ZVH), deployment.party_client(PROVIDER)


def test_a_batch_is_signed_once_and_every_record_opens_at_its_reader(
    pipeline: Pipeline,
    deployment: Deployment,  # noqa: F811
) -> None:
    zvh, provider = _clients(deployment)
    people = [bsn() for _ in range(6)]
    consents = pipeline.route_batch([consent_in(zvh, p) for p in people])
    assert all(reply_of(zvh, r.records)["code"] == "ok" for r in consents)
    results = pipeline.route_batch([referral_in(zvh, p) for p in people])

    sealed = [rec for r in results for rec in r.records]
    ladder_log = [rec for rec in sealed if rec.topic == "escalation"]  # new cases, for the ladder
    assert len(ladder_log) == 1  # one ladder-log record per batch
    # a delivery, a response and a delivery-index record (docs/flows/correction.md) per referral
    assert len(sealed) - len(ladder_log) == 18
    assert len({header(rec.headers, "kb-sig") for rec in sealed}) == 1  # one signature
    assert all(header(rec.headers, "kb-sig-proof") for rec in sealed)
    for r in results:
        assert [f.kind for f in r.facts] == [FactKind.PERMIT, FactKind.DELIVERY]
        assert reply_of(zvh, r.records)["code"] == "ok"
        (delivery,) = to(r.records, f"out.{PROVIDER}")
        opened = provider.open(delivery.key, delivery.value, delivery.headers)
        assert json.loads(opened.payload)["type"] == "message"


def test_a_duplicate_in_the_same_batch_is_not_routed_twice_and_gets_the_response(
    pipeline: Pipeline,
    deployment: Deployment,  # noqa: F811
) -> None:
    zvh, _ = _clients(deployment)
    person = bsn()
    pipeline.route_batch([consent_in(zvh, person)])
    rec = referral_in(zvh, person)
    first, again = pipeline.route_batch([rec, rec])
    assert [f.kind for f in first.facts] == [FactKind.PERMIT, FactKind.DELIVERY]
    assert [f.kind for f in again.facts] == [FactKind.DUPLICATE]
    assert to(again.records, f"out.{PROVIDER}") == []
    # the repeat is the original response record, signed, and it opens at the sender
    assert to(again.records, f"out.{ZVH}") == to(first.records, f"out.{ZVH}")
    assert reply_of(zvh, again.records)["code"] == "ok"
    # and in a later batch as well
    (later,) = pipeline.route_batch([rec])
    assert reply_of(zvh, later.records) == reply_of(zvh, first.records)


def test_a_record_the_pipeline_fails_on_is_parked_and_the_rest_are_signed(
    pipeline: Pipeline,
    deployment: Deployment,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zvh, provider = _clients(deployment)
    people = [bsn() for _ in range(3)]
    pipeline.route_batch([consent_in(zvh, p) for p in people])
    recs = [referral_in(zvh, p) for p in people]
    bad_id = header(recs[1].headers, "kb-id")
    real = pipeline._deliver

    def flaky(rec: Incoming, *args: object) -> None:
        real(rec, *args)  # type: ignore[arg-type]
        if header(rec.headers, "kb-id") == bad_id:  # after it sealed: its work must vanish
            raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "_deliver", flaky)
    failures: list[str] = []
    results = pipeline.route_batch(recs, on_error=lambda rec, err: failures.append(str(err)))
    assert failures == ["a bug"]
    assert [r.topic for r in results[1].records] == [topics.DEAD_LETTER.name]
    assert header(results[1].records[0].headers, "kb-reason") == "internal-error"
    for r in (results[0], results[2]):
        (delivery,) = to(r.records, f"out.{PROVIDER}")
        provider.open(delivery.key, delivery.value, delivery.headers)  # raises if not signed
        assert reply_of(zvh, r.records)["code"] == "ok"
    # what the failed record left behind is gone: a re-send gets no "ok" for a parked message
    monkeypatch.undo()
    (again,) = pipeline.route_batch([recs[1]])
    assert to(again.records, f"out.{ZVH}") == []
    assert to(again.records, f"out.{PROVIDER}") == []
