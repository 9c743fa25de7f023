"""Erasure on an append-only log (issue 16 §6; AVG art. 17): ``ketenbus erase`` for one person
while the router runs (it forgets the key without a restart); then, after a restart of every
component, an independent client that reads the full history of
the topics ketenbus keeps about people -- the key store, the consent log, ``rejected``,
``dead-letter``, the audit trail and its checkpoints, the escalation ladder log, the delivery
index and any ``journal.*`` -- with *every* party's private keys and *every* KEK file left on
disk finds none of that person's test values, while the other person's are still readable;
the audit trail, erasure record included, still verifies.

The embedded broker neither compacts nor deletes, so every record ever written is still on the
topics when the client reads them: what it cannot read is what the erasure destroyed.
Not covered here (``docs/erasure.md``): ``in.*`` and ``out.*`` (sealed for the router or the
recipient, with no inner data layer yet: bounded by their retention), the recipients' outboxes
(their own records) and inbox copies (pruned by ``ketenbus prune``). One router instance and no
broker restart here; two instances and a broker restart: ``tests/fault/test_erasure_restart.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.apps.cli.lifecycle import erase_subject
from broker.apps.deployment import Deployment, LocalParty
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.apps.synthetic import synthetic_bsn
from broker.apps.web.compliance import ComplianceService
from broker.audit import AuditQuery, ChainRecord, verify
from broker.audit.keystore import kek_dir
from broker.audit.sealed import SealedDetailErased, SealedDetailError, open_detail
from broker.audit.signers import signers_from_registry
from broker.config import Settings
from broker.policy import default_policy
from broker.policy.consent_view import ConsentView
from broker.router import consent_snapshot
from broker.router.consent_log import ConsentLog
from broker.router.pipeline import AUDIT_DOMAIN, ROUTER_DOMAIN
from broker.router.reprocess import PARKED_HEADERS
from broker.router.service import RouterService
from broker.trust import TrustError, open_sealed, seal_for
from broker.trust.datakeys import (
    ErasedKey,
    carried,
    channel_subject,
    layer_context,
    layer_dkid,
    message_context,
    open_carried,
)
from schemas import topics
from schemas.erasure_notice import ErasureNotice
from schemas.vocab import PartyRole
from tests.helpers.kafka import async_wait_until, consume_all
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration

ZVH, PROVIDER, WEB = "zvh-midden-nederland", "fivoor", "dashboard"
PARKING_HEADERS = set(PARKED_HEADERS)  # what the router adds when it parks a record
PARTIES = [*demo.PARTIES, LocalParty(WEB, "Landelijk dashboard", PartyRole.CAPACITY_DASHBOARD)]


def person(rng: random.Random, family: str) -> dict[str, Any]:
    year, month, day = rng.randrange(1950, 2000), rng.randrange(1, 13), rng.randrange(1, 29)
    return {
        "bsn": synthetic_bsn(rng),
        "family_name": family,
        "given_names": ["Testpersoon"],
        "birth_date": f"{year}-{month:02d}-{day:02d}",
        "gender": "male",
        "municipality": "0344",
    }


def values_of(p: dict[str, Any]) -> list[bytes]:
    return [p["bsn"].encode(), p["family_name"].encode(), p["birth_date"].encode()]


async def wait_for(path: Path) -> None:
    for _ in range(300):
        if path.exists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path.name} did not appear")


async def send_person_through(stack: LocalStack, p: dict[str, Any], rng: random.Random) -> None:
    """A referral refused for want of consent (parked on ``rejected``), the consent, and a
    conflict-of-duties referral whose justification names the person (sealed audit detail)."""
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        case = f"ER-{rng.randrange(10**9)}"
        doc = demo.referral(case, "midden-nederland", p, date.today())
        r = await c.post("/referrals", json=doc)
        assert r.status_code == 202, r.text
        answer = await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20)
        assert answer is not None and answer["status"] == "refused", answer
        cid = f"c-{rng.randrange(10**9)}"
        r = await c.post("/consents", json=demo.consent(cid, p["bsn"], date.today()))
        assert r.status_code == 202, r.text
        answer = await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20)
        assert answer is not None and answer["status"] == "accepted", answer
    case = f"ER-{rng.randrange(10**9)}"
    doc = demo.referral(case, "midden-nederland", p, date.today(), basis={
        "kind": "conflict-of-duties",
        "justification": f"Acuut gevaar; {p['family_name']} weigert elk contact.",
        "decided_by": "procesregisseur ZVH Midden-Nederland"})  # fmt: skip
    demo.drop(stack.inbox(ZVH), f"{case}.json", demo.dump(doc))
    receipt = stack.inbox(ZVH) / "processed" / f"{case}.json.receipt.json"
    await wait_for(receipt)
    mid = json.loads(receipt.read_text())["accepted"][0]["message_id"]
    assert (await stack.zvh[ZVH].wait_response(mid, 20) or {}).get("status") == "accepted"
    await wait_for(stack.outbox(PROVIDER) / f"{mid}.json")


async def wait_for_notice(outbox: Path) -> Path:
    for _ in range(200):
        found = sorted(outbox.glob("*.erasure-notice.json"))
        if found:
            assert len(found) == 1, found
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no erasure notice in {outbox}")


async def person_topics(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = {t["topic"] for t in await admin.describe_topics()}
    finally:
        await admin.close()
    fixed = [topics.KEY_STORE.name, topics.CONSENT.name, topics.CONSENT_SNAPSHOT.name,
             topics.REJECTED.name,
             topics.DEAD_LETTER.name, topics.AUDIT.name, topics.AUDIT_CHECKPOINT.name,
             topics.ESCALATION.name, topics.DELIVERIES.name]  # fmt: skip
    # the parties' key stores, their journals and every message in transit (in.*, out.*)
    varying = ("journal.", f"{topics.KEY_STORE.name}.", "in.", topics.OUTBOUND_PREFIX)
    return [*fixed, *sorted(n for n in names if n.startswith(varying))]


@dataclass
class Reading:
    """What the independent client could read: ``seen[i]`` came from topic ``where[i]``."""

    seen: list[bytes]
    where: list[str]
    erased_layers: int  # data layers and sealed details whose key was erased

    def topics_with(self, value: bytes) -> list[str]:
        return sorted({t for t, text in zip(self.where, self.seen, strict=True) if value in text})


async def read_everything(
    bootstrap: str, dep: Deployment, settings: Settings, people: list[dict[str, Any]]
) -> Reading:
    """The independent client: every person topic's full history, opened with every party's
    private keys, every pseudonym of ``people`` and every key store whose KEK files are on disk
    (the router's and each party's own)."""
    keyrings = [dep.keyring(p.id) for p in dep.registry.parties]
    # every key store whose KEK files are on disk: the router's and each party's own
    stores = [dep.key_store(settings)] + [
        dep.key_store(settings, party=p.id)
        for p in dep.registry.parties
        if kek_dir(dep.keys_dir, p.id).is_dir()
    ]
    assert len(stores) >= 2  # the router's and the provider's (its journal)
    for store in stores:
        await store.load()

    def unlayer(blob: bytes, topic: str, context: bytes | None = None) -> bytes:
        """The payload under a data layer, with whichever key store holds its key; a key
        record carried with the layer is tried too (its wrap needs a KEK on disk)."""
        erased = False
        contexts = [c for c in (context, layer_context(topic)) if c is not None]
        for store, ctx in [(store, ctx) for store in stores for ctx in contexts]:
            try:
                return open_carried(store.store, blob, context=ctx)
            except ErasedKey:
                erased = True
            except TrustError:
                pass
        raise ErasedKey(str(layer_dkid(blob))) if erased else TrustError("decrypt-failed", "x")

    compliance = dep.keyring(WEB).current
    seen: list[bytes] = []
    where: list[str] = []
    erased_layers = 0
    names = await person_topics(bootstrap)
    fetched = await asyncio.gather(  # side by side: every in.*, out.* and key-store topic too
        *(consume_all(bootstrap, t, fetch_max_wait_ms=50) for t in names)
    )
    for topic, records in zip(names, fetched, strict=True):
        for rec in records:
            value = rec.value or b""
            seen.append(value)
            where += [topic] * (len(seen) - len(where))
            if layer_dkid(value) is not None:
                try:
                    value = unlayer(value, topic)
                    seen.append(value)
                except ErasedKey:
                    erased_layers += 1
                    continue
                except TrustError:
                    continue
            # a parked record carries the reason beside the envelope's own headers, and its
            # Kafka key is the sender, not the sender's pseudonym the envelope was sealed with
            # (that is in kb-original-key): this reader also tries both persons' pseudonyms
            headers = [h for h in rec.headers or () if h[0] not in PARKING_HEADERS]
            sender = dict(headers).get("kb-sender", b"").decode()
            keys = [rec.key, *(v for k, v in rec.headers or () if k == "kb-original-key")]
            if sender in dep.registry:
                keys += [dep.pseudonymiser(sender).pseudonym(sender, p["bsn"]).encode()
                         for p in people]  # fmt: skip
            for ring, key in [(ring, key) for ring in keyrings for key in keys]:
                try:
                    opened = open_sealed(key, value, headers,
                                         registry=dep.registry, keyring=ring)  # fmt: skip
                except TrustError:
                    continue
                seen.append(opened.payload)
                if opened.meta.event == consent_snapshot.CHUNK_EVENT:  # each person's part
                    tables, entries = consent_snapshot.chunk_entries(opened.payload)
                    for pseudo, blob in entries:
                        try:
                            part = unlayer(blob, topic)
                        except ErasedKey:
                            erased_layers += 1
                            continue
                        one = ConsentView()
                        one.restore_person(pseudo.decode(), part, tables)
                        seen += [r.model_dump_json().encode() for _, r in one]
                if layer_dkid(opened.payload) is not None or carried(opened.payload):
                    inner = message_context(opened.meta.message_id)
                    try:
                        seen.append(unlayer(opened.payload, topic, inner))
                    except ErasedKey:
                        erased_layers += 1
                    except TrustError:
                        pass
            if topic == topics.AUDIT.name:
                for detail in ChainRecord.decode(rec.value or b"").event.get("entity", []):
                    for item in detail.get("detail", []):
                        if item.get("type") != "sealed":
                            continue
                        chain = ChainRecord.decode(rec.value or b"").chain
                        event_id = ChainRecord.decode(rec.value or b"").event["id"]
                        try:
                            opened_detail = open_detail(
                                item["valueBase64Binary"], chain=chain, event_id=event_id,
                                keys={compliance.key_id: compliance.encryption},
                                datakeys=stores[0].store)  # fmt: skip
                        except SealedDetailErased:
                            erased_layers += 1
                            continue
                        except SealedDetailError:
                            continue
                        seen.append(json.dumps(opened_detail).encode())
            where += [topic] * (len(seen) - len(where))
    return Reading(seen, where, erased_layers)


def contents(view: ConsentView) -> set[tuple[str, str]]:
    return {(p, r.model_dump_json()) for p, r in view}


async def start_views(stack: LocalStack) -> tuple[ConsentView, RouterService]:
    """Two routers starting now, to their consent views only: one replays the whole consent
    log, the other as a router starts (the newest valid snapshot, then the log after it)."""
    settings, dep = stack.settings, stack.deployment
    full = dep.router_state(default_policy(), settings=settings)
    fast = dep.router_state(default_policy(), settings=settings)
    for s in (full, fast):
        assert s.datakeys is not None
        await s.datakeys.load()
    log = ConsentLog(settings, full)
    await log.start()
    await log.stop()
    starting = RouterService(settings, fast)
    await starting._start_consent_log()
    await starting._stop_consent_log()
    return full.consents, starting


async def forge_snapshot_head(stack: LocalStack) -> None:
    """A head for the router's snapshot, sealed for the router and signed by the ZVH with its
    own valid key, claiming to reach further than any genuine one."""
    from aiokafka import AIOKafkaProducer

    dep = stack.deployment
    head = consent_snapshot.Head("forged", "router", "2099-01-01T00:00:00+00:00",
                                 {p: 10**9 for p in range(6)}, [(0, "0" * 64)], 1, 1)  # fmt: skip
    sealed = seal_for(head.to_json(), dep.keyring(ZVH).current, dep.registry, dep.router_id,
                      event=consent_snapshot.HEAD_EVENT, message_id="forged",
                      pseudonym="router/head", timestamp=datetime.now(UTC))  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.CONSENT_SNAPSHOT.name,
            value=sealed.value,
            key=sealed.key,
            headers=sealed.headers,
            partition=0,
        )
    finally:
        await producer.stop()


async def test_erase_one_person_leaves_nothing_readable_and_the_trail_verifies(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random()
    p1 = person(rng, f"Eraseme{rng.randrange(10**6)}")
    p2 = person(rng, f"Keepme{rng.randrange(10**6)}")
    state = tmp_path / "state"
    async with running_stack(kafka_bootstrap, state, PARTIES) as stack:
        for p in (p1, p2):
            await send_person_through(stack, p, rng)
        settings, dep = stack.settings, stack.deployment
        assert stack.router is not None and stack.router.state.datakeys is not None

        # the consent view snapshot (issue 19.7): a forged one only, refused: a full replay
        await forge_snapshot_head(stack)
        full, starting = await start_views(stack)
        assert starting.snapshot_loaded is None
        assert contents(starting.state.consents) == contents(full)
        # a genuine one, then a tail: p2 consents again and revokes it
        snap = await stack.router.write_snapshot()
        assert snap.persons >= 2
        async with httpx.AsyncClient(
            base_url=stack.http_url or "", timeout=10, headers=stack.http_headers
        ) as c:
            for status in ("active", "revoked"):
                doc = demo.consent("c-tail", p2["bsn"], date.today(), status=status)
                r = await c.post("/consents", json=doc)
                assert r.status_code == 202, r.text
                answer = await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20)
                assert (answer or {}).get("status") == "accepted", answer
        full, starting = await start_views(stack)
        assert starting.snapshot_loaded is not None
        assert starting.snapshot_loaded.snapshot_id == snap.snapshot_id  # not the forged one
        assert starting.consent_log.applied < len(full)  # the tail only
        assert contents(starting.state.consents) == contents(full)
        p2_pseudo = dep.pseudonymiser(dep.router_id).pseudonym(ROUTER_DOMAIN, p2["bsn"])
        assert [r.status.value for r in full.records(p2_pseudo) if r.consent_id == "c-tail"] == [
            "inactive"
        ]

        running = stack.router.state.datakeys.store
        owner = running.owner(dep.pseudonymiser(dep.router_id).pseudonym(AUDIT_DOMAIN, p1["bsn"]))
        assert running.live_keys(owner)
        assert stack.router.state.channels is not None
        provider_channel = stack.router.state.channels.stores[PROVIDER]
        channel_owner = provider_channel.owner(channel_subject(p1["bsn"]))
        assert provider_channel.live_keys(channel_owner)  # p1's deliveries to the provider
        # the provider's adapter took the key from the deliveries that carried it
        adapter_channel = stack.providers[PROVIDER].runtime.client.channel
        assert adapter_channel is not None and adapter_channel.live_keys(channel_owner)
        assert await erase_subject(settings, dep, bsn=p1["bsn"]) >= 1
        # the running router follows the key stores: it forgets the keys without a restart,
        # its own and the person's channel keys
        for _ in range(100):
            if not running.live_keys(owner) and not provider_channel.live_keys(channel_owner):
                break
            await asyncio.sleep(0.1)
        assert not running.live_keys(owner)
        assert not provider_channel.live_keys(channel_owner)
        for _ in range(100):  # and the adapter, which follows its own store
            if not adapter_channel.live_keys(channel_owner):
                break
            await asyncio.sleep(0.1)
        assert not adapter_channel.live_keys(channel_owner)
        # AVG art. 17(2), 19: each party that exchanged p1's messages is told, in its outbox,
        # with its own pseudonym of the person and the fact, nothing else
        for party_id in (ZVH, PROVIDER):
            found = await wait_for_notice(stack.outbox(party_id))
            notice = ErasureNotice.parse(found.read_bytes())
            assert notice.pseudonym == dep.pseudonymiser(dep.router_id).pseudonym(
                party_id, p1["bsn"]
            )
            assert not any(v in found.read_bytes() for v in values_of(p1))
    # the provider, told of the erasure (AVG art. 19), erases in its own journal's key store
    assert await erase_subject(settings, dep, bsn=p1["bsn"], party=PROVIDER) >= 1

    # every component restarts and rebuilds its state from the topics
    snapshots_often = {"consent_snapshot_seconds": 0.3}
    async with running_stack(kafka_bootstrap, state, PARTIES, **snapshots_often) as stack:
        assert stack.router is not None
        # p1's consent: unreadable by design, in the snapshot the router loaded or the log
        assert stack.router.snapshot_loaded is not None
        assert stack.router.consent_log.erased + stack.router.snapshot_erased >= 1
        pseudo = dep.pseudonymiser(dep.router_id).pseudonym(ROUTER_DOMAIN, p1["bsn"])
        assert stack.router.state.consents.person_bsn(pseudo) is None
        # and absent from the next snapshot, written by the period (not even under a new key)
        assert stack.router.writes_snapshots()  # the one router holds in.consent[0]
        assert await async_wait_until(lambda: stack.router.snapshot_written is not None, 10)
        again = stack.router.snapshot_written
        assert again is not None and again.persons == 1 and again.left_out == 0  # p2 only
        # p2's consent still counts: a referral on consent is delivered after the restart
        case = f"ER-{rng.randrange(10**9)}"
        demo.drop(stack.inbox(ZVH), f"{case}.json",
                  demo.dump(demo.referral(case, "midden-nederland", p2, date.today())))
        receipt = stack.inbox(ZVH) / "processed" / f"{case}.json.receipt.json"
        await wait_for(receipt)
        mid = json.loads(receipt.read_text())["accepted"][0]["message_id"]
        assert (await stack.zvh[ZVH].wait_response(mid, 20) or {}).get("status") == "accepted"
        # the compliance view says what happened to p1's sealed detail
        web = stack.deployment.party_client(WEB)
        service = ComplianceService(stack.settings, stack.deployment.registry, web.keys, None,
                                    datakeys=stack.deployment.reader_key_store(stack.settings))
        await service.start()
        try:
            result = await service.search(AuditQuery(kinds=frozenset({"decision-permit"})),
                                          officer="fg-officer")
        finally:
            await service.stop()
        states = {r.justification or r.sealed_state for r in result.rows if r.sealed}
        assert "erased" in states
        assert any(p2["family_name"] in s for s in states)

    # --- the independent client: every topic's full history, every key on disk -------------
    got = await read_everything(kafka_bootstrap, dep, settings, [p1, p2])
    seen, erased_layers = got.seen, got.erased_layers
    everything = b"\n".join(seen)
    for value in values_of(p1):
        found = got.topics_with(value)
        assert not found, f"an erased person's value is still readable on {found}"
    for value in values_of(p2):
        found = got.topics_with(value)
        assert value in everything, f"the other person's data must stay readable {found}"
        if value == p2["bsn"].encode():  # the parked referral, the consent log, the snapshot
            want = {topics.REJECTED.name, topics.CONSENT.name, topics.CONSENT_SNAPSHOT.name}
            assert want <= set(found), found
            # and in transit, where the client opened p2's channel layer: the same reader
            # would have found p1's there had the erasure not reached in.* and out.*
            assert {topics.IN_REFERRAL.name, f"out.{PROVIDER}"} <= set(found), found
    # consent, the parked referral and the sealed detail, and p1's messages in transit
    assert erased_layers >= 6

    # the audit trail still verifies, the erasure record included
    mine = set(signers_from_registry(dep.registry))
    audit = [r.value for r in await consume_all(kafka_bootstrap, topics.AUDIT.name)
             if r.key is not None and r.key.decode() in mine]  # fmt: skip
    assert verify(audit, signers_from_registry(dep.registry)).ok
    kinds = [ChainRecord.decode(v).event["type"]["code"] for v in audit]
    assert kinds.count("erasure") == 2  # the router's and the provider's
    erasures = [v for v in audit if b'"erasure"' in v]
    assert not any(p1["bsn"].encode() in v for v in erasures)
