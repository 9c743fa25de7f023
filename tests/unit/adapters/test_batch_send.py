"""Adapters seal what they send in one go under one batch signature; the router routes each
message on its own, and an inbox file keeps its order, ids and consent waits."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.zvh import service as zvh_service
from adapters.zvh.format import parse_document
from adapters.zvh.service import ZvhAdapter
from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.config import Settings
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.flows.referral import referral_message
from schemas.messaging import MessageMeta
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

ZVH = "zvh-midden-nederland"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(tmp_path_factory.mktemp("dep"), demo.PARTIES)


def person() -> dict[str, Any]:
    bsn = synthetic_bsn(random.Random())
    return {"bsn": bsn, "family_name": "Test", "birth_date": "1980-01-01", "municipality": "0344"}


def referral_bundle(client: PartyClient, p: dict[str, Any]) -> dict[str, Any]:
    doc = parse_document(demo.referral("CASE-1", "midden-nederland", p, date.today()))
    meta = MessageMeta.new(
        EventCode.REFERRAL, client.party_id, PurposeOfUse.COC, LegalBasis.CONSENT
    )
    return referral_message(doc.to_referral(client.party_id), meta)  # type: ignore[union-attr]


def consent_bundle(client: PartyClient, bsn: str) -> dict[str, Any]:
    doc = parse_document(demo.consent("c-1", bsn, date.today()))
    meta = MessageMeta.new(EventCode.CONSENT, client.party_id, PurposeOfUse.COC, LegalBasis.CONSENT)
    return consent_message(doc.to_record(client.party_id), meta)  # type: ignore[union-attr]


def test_seal_messages_one_signature_each_routes_alone(deployment: Deployment) -> None:
    zvh: PartyClient = deployment.party_client(ZVH)
    pipeline = Pipeline(deployment.router_state(default_policy()))
    people = [person() for _ in range(3)]
    for p in people:
        key, value, headers = zvh.seal_message(consent_bundle(zvh, p["bsn"]), p["bsn"])
        assert "kb-sig-proof" not in dict(headers)  # one message: the ordinary signature
        pipeline.route(Incoming(topics.IN_CONSENT.name, key, value, headers))
    sealed = zvh.seal_messages([(referral_bundle(zvh, p), p["bsn"]) for p in people])
    assert len({dict(h)["kb-sig"] for _, _, h in sealed}) == 1
    assert all("kb-sig-proof" in dict(h) for _, _, h in sealed)
    for key, value, headers in reversed(sealed):  # any order, each on its own
        result = pipeline.route(Incoming(topics.IN_REFERRAL.name, key, value, headers))
        assert [f.kind for f in result.facts] == [FactKind.PERMIT, FactKind.DELIVERY]
    # a replayed member is a duplicate, as before
    key, value, headers = sealed[0]
    result = pipeline.route(Incoming(topics.IN_REFERRAL.name, key, value, headers))
    assert [f.kind for f in result.facts] == [FactKind.DUPLICATE]


async def test_an_inbox_file_is_sent_in_order_with_one_signature_per_run(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zvh_service, "SEND_BATCH", 2)
    zvh: PartyClient = deployment.party_client(ZVH)
    adapter = ZvhAdapter(Settings(), zvh, tmp_path / "in", tmp_path / "out")
    sent: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []
    keys: list[bytes] = []
    waits: list[tuple[str, int]] = []

    async def send(topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        sent.append((topic, value, headers))
        keys.append(key)

    async def wait_response(message_id: str, timeout: float) -> dict[str, Any]:
        waits.append((message_id, len(sent)))
        return {"status": "accepted"}

    async def dead_letter(*args: Any, **kw: Any) -> None:
        sent.append((topics.DEAD_LETTER.name, b"", []))
        keys.append(b"")

    monkeypatch.setattr(adapter.runtime, "send", send)
    monkeypatch.setattr(adapter.runtime, "dead_letter", dead_letter)
    monkeypatch.setattr(adapter, "wait_response", wait_response)
    p = [person() for _ in range(5)]
    docs: list[Any] = [
        demo.referral("CASE-1", "midden-nederland", p[0], date.today()),
        demo.referral("CASE-2", "midden-nederland", p[1], date.today()),
        demo.referral("CASE-3", "midden-nederland", p[2], date.today()),
        demo.consent("c-9", p[3]["bsn"], date.today()),
        {"type": "referral"},  # refused alone
        demo.referral("CASE-5", "midden-nederland", p[4], date.today()),
    ]
    content = json.dumps(docs).encode()
    demo.drop(adapter.inbox.directory, "batch.json", content)
    [path] = adapter.inbox.claim()
    receipt = await adapter.process_file(path)
    assert [a["index"] for a in receipt["accepted"]] == [0, 1, 2, 3, 5]
    assert [r["index"] for r in receipt["refused"]] == [4]
    assert [t for t, _, _ in sent] == [
        topics.IN_REFERRAL.name,
        topics.IN_REFERRAL.name,
        topics.IN_REFERRAL.name,
        topics.IN_CONSENT.name,
        topics.DEAD_LETTER.name,
        topics.IN_REFERRAL.name,
    ]
    sigs = [dict(h).get("kb-sig") for t, _, h in sent if t != topics.DEAD_LETTER.name]
    assert sigs[0] == sigs[1] != sigs[2]  # batches of at most SEND_BATCH
    assert len(set(sigs)) == 4
    assert "kb-sig-proof" not in dict(sent[2][2]) and "kb-sig-proof" in dict(sent[0][2])
    # the consent was sent after the referrals before it, and waited for before what follows
    assert waits == [(receipt["accepted"][3]["message_id"], 4)]
    # message ids are those of the documents: re-processing sends the very same ids
    ids = [dict(h)["kb-id"].decode() for t, _, h in sent if t != topics.DEAD_LETTER.name]
    assert ids == [a["message_id"] for a in receipt["accepted"]]
    first = zvh_service.content_key(parse_document(docs[0]))
    assert ids[0] == zvh_service.attempt_message_id(ZVH, first, 0)
    # every sent message routes at the router
    pipeline = Pipeline(deployment.router_state(default_policy()))
    kinds = []
    for key, (t, value, headers) in zip(keys, sent, strict=True):
        if t != topics.DEAD_LETTER.name:
            kinds += [f.kind for f in pipeline.route(Incoming(t, key, value, headers)).facts]
    # no consent yet for the first three people: denied, which needs a verified signature
    assert kinds == [FactKind.DENY] * 3 + [FactKind.CONSENT_CHANGE, FactKind.DENY]
