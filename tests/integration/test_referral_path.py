"""The walking skeleton end to end on the embedded broker over TCP: ZVH adapter (inbox and
HTTP) → router (consent view from the consent topic) → provider adapter, with responses,
rejections, dead letters and audit events."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.audit import AuditKind, canonical
from broker.component import tracing
from schemas import topics
from schemas.identifiers import BSN_SYSTEM
from tests.helpers.kafka import consume_all, partitions_of
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration

ZVH = "zvh-midden-nederland"
PROVIDER = "fivoor"


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    state = tmp_path_factory.mktemp("state")
    # registry changes (rotation, revocation) reach running components within 0.2 s here
    async with running_stack(kafka_bootstrap, state, demo.PARTIES, registry_poll_seconds=0.2) as s:
        yield s


@pytest.fixture
def rng() -> random.Random:
    return random.Random()


def person(rng: random.Random) -> dict[str, Any]:
    from broker.apps.synthetic import synthetic_bsn

    return {
        "bsn": synthetic_bsn(rng),
        "family_name": "Testpersoon",
        "given_names": ["Kees"],
        "birth_date": "1985-04-03",
        "gender": "male",
        "municipality": "0344",
    }


async def post(stack: LocalStack, path: str, doc: dict[str, Any]) -> httpx.Response:
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        return await c.post(path, json=doc)


async def give_consent(stack: LocalStack, bsn: str, cid: str, status: str = "active") -> None:
    r = await post(stack, "/consents", demo.consent(cid, bsn, date.today(), status=status))
    assert r.status_code == 202, r.text
    answer = await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20)
    assert answer is not None and answer["status"] == "accepted", answer


async def refer_by_file(stack: LocalStack, case: str, p: dict[str, Any]) -> str:
    name = f"{case}.json"
    demo.drop(
        stack.inbox(ZVH), name, demo.dump(demo.referral(case, "midden-nederland", p, date.today()))
    )
    receipt_path = stack.inbox(ZVH) / "processed" / f"{name}.receipt.json"
    for _ in range(200):
        if receipt_path.exists():
            break
        await asyncio.sleep(0.05)
    receipt = json.loads(receipt_path.read_text())
    return str(receipt["accepted"][0]["message_id"])


async def delivered_to(
    stack: LocalStack, party: str, message_id: str, timeout: float = 15
) -> Path | None:
    path = stack.outbox(party) / f"{message_id}.json"
    for _ in range(int(timeout / 0.05)):
        if path.exists():
            return path
        await asyncio.sleep(0.05)
    return None


async def test_referral_with_consent_is_delivered_minimised(
    stack: LocalStack, rng: random.Random
) -> None:
    p = person(rng)
    await give_consent(stack, p["bsn"], f"c-{rng.randrange(10**9)}")
    mid = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
    answer = await stack.zvh[ZVH].wait_response(mid, 20)
    assert answer is not None and answer["status"] == "accepted", answer
    path = await delivered_to(stack, PROVIDER, mid)
    assert path is not None, "the provider never received the referral"
    bundle = json.loads(path.read_text())
    assert (
        bundle["type"] == "message"
        and bundle["entry"][0]["resource"]["resourceType"] == "MessageHeader"
    )
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"ServiceRequest", "Patient", "RiskAssessment"} <= kinds
    assert "Task" not in kinds, "the ZVH's workflow Task is not for the provider (category process)"
    bsns = [
        i["value"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient"
        for i in e["resource"]["identifier"]
        if i["system"] == BSN_SYSTEM
    ]
    assert bsns == [p["bsn"]], (
        "the provider has a legal need for the BSN, inside its encrypted payload"
    )


async def test_referral_without_consent_is_refused_with_reason(
    stack: LocalStack, rng: random.Random
) -> None:
    p = person(rng)
    case = f"CASE-{rng.randrange(10**9)}"
    r = await post(stack, "/referrals", demo.referral(case, "midden-nederland", p, date.today()))
    assert r.status_code == 202, r.text
    mid = r.json()["message_id"]
    answer = await stack.zvh[ZVH].wait_response(mid, 20)
    assert answer is not None and answer["status"] == "refused"
    assert answer["code"] == "fatal-error"
    assert [x["code"] for x in answer["reasons"]] == ["no-consent"]
    assert PROVIDER in answer["reasons"][0]["problem"]
    assert await delivered_to(stack, PROVIDER, mid, timeout=1) is None
    rejected = await consume_all(stack.settings.bootstrap_servers or "", topics.REJECTED.name)
    mine = [r for r in rejected if dict(r.headers).get("kb-id") == mid.encode()]
    assert mine and dict(mine[0].headers)["kb-reason"] == b"no-consent"


async def test_revoked_consent_refuses_the_next_referral(
    stack: LocalStack, rng: random.Random
) -> None:
    p = person(rng)
    cid = f"c-{rng.randrange(10**9)}"
    await give_consent(stack, p["bsn"], cid)
    first = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
    assert (await stack.zvh[ZVH].wait_response(first, 20) or {}).get("status") == "accepted"
    await give_consent(stack, p["bsn"], cid, status="revoked")
    second = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
    answer = await stack.zvh[ZVH].wait_response(second, 20)
    assert answer is not None and answer["status"] == "refused"
    assert answer["reasons"][0]["code"] in {"no-consent", "consent-revoked"}
    assert await delivered_to(stack, PROVIDER, second, timeout=1) is None


async def test_malformed_input_is_reported_dead_lettered_and_adapter_lives_on(
    stack: LocalStack, rng: random.Random
) -> None:
    bad = {
        "type": "referral",
        "case_id": "BAD-1",
        "region": "midden-nederland",
        "registered_on": "2026-11-01",
        "person": {"bsn": "123456789", "family_name": "X", "birth_date": "1990-01-01"},
        "signaller": {"name": "P", "sector": "police"},
        "signal": "s",
    }
    name = f"bad-{rng.randrange(10**9)}.json"
    demo.drop(stack.inbox(ZVH), name, demo.dump(bad))
    report_path = stack.inbox(ZVH) / "failed" / f"{name}.error.json"
    for _ in range(200):
        if report_path.exists():
            break
        await asyncio.sleep(0.05)
    report = json.loads(report_path.read_text())
    assert report["issues"][0]["path"] == "person.bsn"
    assert "11-check" in report["issues"][0]["problem"]
    notjson = f"notjson-{rng.randrange(10**9)}.json"
    demo.drop(stack.inbox(ZVH), notjson, b"{this is not json")
    notjson_report = stack.inbox(ZVH) / "failed" / f"{notjson}.error.json"
    for _ in range(200):
        if notjson_report.exists():
            break
        await asyncio.sleep(0.05)
    assert json.loads(notjson_report.read_text())["reason"] == "not-json"
    r = await post(stack, "/referrals", {"type": "referral", "case_id": "X"})
    assert r.status_code == 422
    assert {i["path"] for i in r.json()["issues"]} >= {"region", "person", "signal"}
    # a referral posted to the consent endpoint: refused and dead-lettered, not only answered
    r = await post(stack, "/consents", {"type": "referral", "case_id": "X"})
    assert r.status_code == 422 and r.json()["reason"] == "type", r.text
    # a number no JSON writer can write back: refused at the door, not sealed as "Infinity"
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        r = await c.post("/referrals", content=b'{"type": "referral", "x": 1e400}')
    assert r.status_code == 400 and r.json()["reason"] == "not-json", r.text
    dead = await consume_all(stack.settings.bootstrap_servers or "", topics.DEAD_LETTER.name)
    reasons = [dict(d.headers).get("kb-reason") for d in dead]
    assert b"bsn-check" in reasons and b"not-json" in reasons and b"missing" in reasons
    assert b"type" in reasons
    for d in dead:  # the refused input is sealed: the BSN never appears in clear on the topic
        assert b"123456789" not in d.value
    # ...and the adapter still works
    p = person(rng)
    await give_consent(stack, p["bsn"], f"c-{rng.randrange(10**9)}")
    mid = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
    assert (await stack.zvh[ZVH].wait_response(mid, 20) or {}).get("status") == "accepted"


async def test_every_decision_is_audited(stack: LocalStack, rng: random.Random) -> None:
    ok, no = person(rng), person(rng)
    await give_consent(stack, ok["bsn"], f"c-{rng.randrange(10**9)}")
    permitted = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", ok)
    denied = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", no)
    for mid in (permitted, denied):
        await stack.zvh[ZVH].wait_response(mid, 20)
    records = await consume_all(stack.settings.bootstrap_servers or "", topics.AUDIT.name)
    events = [json.loads(r.value)["event"] for r in records]

    def outcomes_for(mid: str) -> list[str]:
        found = []
        for ev in events:
            if any(mid in json.dumps(e) for e in ev.get("entity", [])):
                found.append(ev.get("outcome"))
        return found

    assert "0" in outcomes_for(permitted), "a permit is audited with outcome success"
    assert any(o != "0" for o in outcomes_for(denied)), "a deny is audited with a failure outcome"
    for r in records:
        assert ok["bsn"].encode() not in r.value and no["bsn"].encode() not in r.value


async def test_the_audit_chain_on_the_topic_verifies_and_tampering_is_caught(
    stack: LocalStack, tmp_path: Path
) -> None:
    """``ketenbus audit verify`` on the chain the router wrote to the topic, with only the public
    registry as keys; then the same records with one rewritten are refused."""
    from typer.testing import CliRunner

    from broker.apps.cli.main import app

    registry = stack.settings.state_dir / "registry.yaml"
    bootstrap = stack.settings.bootstrap_servers or ""
    rng = random.Random()
    for _ in range(2):  # a few decisions of our own, whatever ran before
        mid = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", person(rng))
        await stack.zvh[ZVH].wait_response(mid, 20)
    assert stack.router is not None
    chain = stack.router.audit.chain_id
    records = await consume_all(bootstrap, topics.AUDIT.name)
    lines = [r.value.decode() for r in records if r.key == chain.encode()]
    assert len(lines) >= 2
    export = tmp_path / "chain.jsonl"
    export.write_text("\n".join(lines) + "\n")
    ok = await asyncio.to_thread(  # the CLI runs its own event loop
        CliRunner().invoke, app, ["audit", "verify", "--keys", str(registry), "--file", str(export)]
    )
    assert ok.exit_code == 0, ok.output
    victim = len(lines) // 2
    tampered = json.loads(lines[victim])
    tampered["event"]["outcomeDesc"] = "nothing to see here"  # rewrite history
    lines[victim] = canonical(tampered).decode()  # canonical: else it is merely malformed
    export = tmp_path / "audit.jsonl"
    export.write_text("\n".join(lines) + "\n")
    bad = await asyncio.to_thread(
        CliRunner().invoke, app, ["audit", "verify", "--keys", str(registry), "--file", str(export)]
    )
    assert bad.exit_code == 1, bad.output
    assert "changed" in bad.output or "hash" in bad.output



async def test_the_acting_person_of_the_input_is_the_user_in_the_decision_audit_record(
    stack: LocalStack, rng: random.Random
) -> None:
    """Issue 17, NEN 7513 "gebruiker": the person the ZVH system names as having acted travels as
    MessageHeader.author to the provider and is the user (agent ``humanuser``) of the router's
    audit record of the decision; an over-long or control-character value is refused, parked on
    dead-letter with its reason and never sent."""
    p = person(rng)
    await give_consent(stack, p["bsn"], f"c-{rng.randrange(10**9)}")
    doc = demo.referral(f"CASE-{rng.randrange(10**9)}", "midden-nederland", p, date.today())
    r = await post(stack, "/referrals", {**doc, "acting_person": "employee:mw-0042"})
    assert r.status_code == 202, r.text
    mid = r.json()["message_id"]
    answer = await stack.zvh[ZVH].wait_response(mid, 20)
    assert answer is not None and answer["status"] == "accepted", answer
    path = await delivered_to(stack, PROVIDER, mid)
    assert path is not None
    header = json.loads(path.read_text())["entry"][0]["resource"]
    assert header["author"]["identifier"]["value"] == "mw-0042"
    records = await consume_all(stack.settings.bootstrap_servers or "", topics.AUDIT.name)
    events = [json.loads(x.value)["event"] for x in records]
    kinds = (AuditKind.DECISION_PERMIT.value, AuditKind.DELIVERY.value)
    decisions = [
        ev for ev in events if ev["type"]["code"] in kinds and mid in json.dumps(ev["entity"])
    ]
    assert {ev["type"]["code"] for ev in decisions} == set(kinds), "decision and delivery"
    for ev in decisions:
        users = [a for a in ev["agent"] if a["type"]["coding"][0]["code"] == "humanuser"]
        assert [u["who"]["identifier"]["value"] for u in users] == ["employee:mw-0042"]
    for bad in ("employee:" + "x" * 200, "uzi:12\u001b[2J", "uzi:1\n2"):
        case = f"CASE-{rng.randrange(10**9)}"
        r = await post(stack, "/referrals", {**doc, "case_id": case, "acting_person": bad})
        assert r.status_code == 422, r.text
        assert [(i["path"], i["code"]) for i in r.json()["issues"]] == [
            ("acting_person", "acting-person")
        ]
    dead = await consume_all(stack.settings.bootstrap_servers or "", topics.DEAD_LETTER.name)
    assert sum(dict(d.headers).get("kb-reason") == b"acting-person" for d in dead) >= 3


async def test_one_referral_is_one_trace_from_zvh_adapter_over_router_to_provider(
    stack: LocalStack, rng: random.Random
) -> None:
    """Issue 17: OpenTelemetry spans across adapter -> router -> recipient adapter, parent and
    child over the Kafka ``traceparent`` header, with ids as attributes and no personal data
    (AVG art. 5(1)(c)): every attribute of every span of the run is scanned for the person."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.install(provider)
    p = person(rng)
    try:
        await give_consent(stack, p["bsn"], f"c-{rng.randrange(10**9)}")
        mid = await refer_by_file(stack, f"CASE-{rng.randrange(10**9)}", p)
        answer = await stack.zvh[ZVH].wait_response(mid, 20)
        assert answer is not None and answer["status"] == "accepted", answer
        assert await delivered_to(stack, PROVIDER, mid) is not None
        deliver: list[ReadableSpan] = []
        for _ in range(100):  # the provider's span ends once its handler returned
            deliver = [
                s for s in exporter.get_finished_spans()
                if s.name == f"deliver out.{PROVIDER}" and attr(s, tracing.MESSAGE_ID) == mid
            ]
            if deliver:
                break
            await asyncio.sleep(0.05)
    finally:
        tracing.install(previous)
    spans = exporter.get_finished_spans()
    mine = [s for s in spans if attr(s, tracing.MESSAGE_ID) == mid]

    def only(scope: str, name: str) -> ReadableSpan:
        found = [s for s in mine if s.instrumentation_scope and
                 s.instrumentation_scope.name == scope and s.name == name]
        assert len(found) == 1, (scope, name, [(s.instrumentation_scope, s.name) for s in mine])
        return found[0]

    send = only("ketenbus.adapter.zvh", f"send {topics.IN_REFERRAL.name}")
    route = only("ketenbus.router", f"route {topics.IN_REFERRAL.name}")
    delivered = only("ketenbus.adapter.coordinating-provider", f"deliver out.{PROVIDER}")
    decide = [s for s in mine if s.name == "decide" and attr(s, tracing.RECIPIENT) == PROVIDER]
    assert send.context and route.context and delivered.context and decide
    assert {s.context.trace_id for s in (send, route, delivered, *decide) if s.context} == {
        send.context.trace_id
    }, "one trace from the ZVH adapter to the provider adapter"
    assert route.parent is not None and route.parent.span_id == send.context.span_id
    assert delivered.parent is not None and delivered.parent.span_id == route.context.span_id
    assert decide[0].parent is not None and decide[0].parent.span_id == route.context.span_id
    assert attr(send, tracing.SENDER) == ZVH and attr(send, tracing.FLOW) == "referral"
    assert attr(decide[0], tracing.DECISION) == "decision-permit"
    assert attr(delivered, tracing.RECIPIENT) == PROVIDER
    personal = [p["bsn"], p["family_name"], *p["given_names"], p["birth_date"]]
    for s in spans:
        texts = [s.name, *(f"{k}={v}" for k, v in (s.attributes or {}).items())]
        texts += [f"{k}={v}" for k, v in s.resource.attributes.items()]
        for ev in s.events:
            texts += [ev.name, *(str(v) for v in (ev.attributes or {}).values())]
        leaked = [t for t in texts for x in personal if x in t]
        assert not leaked, f"personal data on span {s.name}: {leaked}"
        assert set(s.attributes or {}) <= tracing.ATTRIBUTES


def attr(span: ReadableSpan, key: str) -> object:
    return (span.attributes or {}).get(key)


async def test_the_conformance_kit_passes_against_the_shipped_zvh_adapter_and_names_a_failure(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Issue 21 point 5: ``ketenbus conformance <party>`` runs every case of the shipped ZVH
    suite (schemas/conformance/zvh.yaml) through the inbox folder and the HTTP endpoint and
    checks the router's answers in the outbox: all pass. The same run with one expectation
    turned round (a broken case set) fails, and the report names that case."""
    import yaml
    from typer.testing import CliRunner

    from broker.apps.cli.main import app
    from broker.apps.conformance.cases import CASES_DIR

    env = {"KETENBUS_STATE_DIR": str(stack.settings.state_dir),
           "KETENBUS_BOOTSTRAP_SERVERS": stack.settings.bootstrap_servers or ""}
    out_json, out_xml = tmp_path / "report.json", tmp_path / "report.xml"
    args = ["conformance", ZVH, "--url", stack.http_url or "", "--json", str(out_json),
            "--junit", str(out_xml), "--timeout", "20"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    report = json.loads(out_json.read_text())
    failed = [r for r in report["results"] if r["result"] != "pass"]
    assert result.exit_code == 0 and not failed, (result.output, failed)
    channels = {(r["case"], r["channel"]) for r in report["results"]}
    assert ("referral-bsn-fails-11-check", "http") in channels
    assert ("limit-json-depth", "inbox") in channels
    assert any(r["router_checked"] for r in report["results"]), "the outbox was read"
    assert 'failures="0"' in out_xml.read_text()
    # the provider's suite against the shipped provider adapter (its inbox and outbox)
    args = ["conformance", PROVIDER, "--json", str(out_json), "--timeout", "20"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    report = json.loads(out_json.read_text())
    failed = [r for r in report["results"] if r["result"] != "pass"]
    assert result.exit_code == 0 and not failed, (result.output, failed)
    assert report["suite"] == "provider" and any(r["router_checked"] for r in report["results"])
    # a broken case set: it expects the 11-check failure to be accepted
    suite = yaml.safe_load((CASES_DIR / "zvh.yaml").read_text())
    [case] = [c for c in suite["cases"] if c["id"] == "referral-bsn-fails-11-check"]
    case["expect"] = {"adapter": "accepted"}
    suite["cases"] = [case]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(suite))
    args = ["conformance", ZVH, "--url", stack.http_url or "", "--cases", str(broken),
            "--junit", str(out_xml), "--timeout", "20"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 1, result.output
    assert "referral-bsn-fails-11-check" in result.output and "FAIL" in result.output
    xml = out_xml.read_text()
    assert 'failures="2"' in xml and "adapter refused" in xml


# --- a party's lifecycle on the running stack (issue 21; docs/onboarding.md) -------------------

NEWCOMER = "zvh-nieuwkomer"


def party_cli(stack: LocalStack, *args: str) -> str:
    """``ketenbus party …`` as an administrator runs it, beside the running stack."""
    from typer.testing import CliRunner

    from broker.apps.cli.main import app

    env = {"KETENBUS_STATE_DIR": str(stack.settings.state_dir)}
    admin = str(stack.settings.state_dir / "admin" / "local-admin.admin.json")
    result = CliRunner().invoke(app, ["party", *args, "--admin-key", admin], env=env)
    assert result.exit_code == 0, result.output
    assert "installed" in result.output, result.output
    return result.output


async def applied(stack: LocalStack, serial: int, timeout: float = 5) -> float:
    """Seconds until every running router and adapter holds registry ``serial``."""
    start = asyncio.get_running_loop().time()
    clients = [a.client for a in (*stack.zvh.values(), *stack.providers.values())]
    for _ in range(int(timeout / 0.02)):
        serials = {r.state.registry.serial for r in stack.routers}
        serials |= {c.registry.serial for c in clients}
        if serials == {serial}:
            return asyncio.get_running_loop().time() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"registry serial {serial} not applied everywhere: {serials}")


async def send_file(stack: LocalStack, party: str, name: str, doc: dict[str, Any]) -> str:
    demo.drop(stack.inbox(party), name, demo.dump(doc))
    receipt_path = stack.inbox(party) / "processed" / f"{name}.receipt.json"
    for _ in range(200):
        if receipt_path.exists():
            break
        await asyncio.sleep(0.05)
    return str(json.loads(receipt_path.read_text())["accepted"][0]["message_id"])


@pytest.fixture(scope="module")
async def newcomer(stack: LocalStack) -> AsyncIterator[str]:
    """docs/onboarding.md steps 2-5 for a new ZVH, while everything else keeps running: the
    administrators' signed registry change, its topics, and its own adapter."""
    from adapters.zvh.service import ZvhAdapter

    before = stack.deployment.registry.serial
    party_cli(stack, "onboard", "--party", NEWCOMER, "--role", "zvh", "--name",
              "ZVH Nieuwkomer", "--region", "midden-nederland")
    await applied(stack, before + 1)
    # the running router prepares the newcomer's topic itself (`ketenbus topics` not needed)
    assert stack.router is not None and stack.router._joining is not None
    await stack.router._joining
    assert await partitions_of(stack.settings.bootstrap_servers or "",
                               topics.outbound(NEWCOMER).name)
    adapter = ZvhAdapter(
        stack.settings,
        stack.deployment.party_client(NEWCOMER),
        stack.inbox(NEWCOMER),
        stack.outbox(NEWCOMER),
        poll_interval=0.1,
        session_timeout_ms=2000,
    )
    assert stack.registry_watch is not None
    stack.deployment.follow(stack.registry_watch, adapter.client)
    stack.zvh[NEWCOMER] = adapter
    await adapter.start()
    yield NEWCOMER  # stopped with the stack


async def test_onboarding_a_new_zvh_to_its_first_delivered_referral(
    stack: LocalStack, newcomer: str, rng: random.Random
) -> None:
    """docs/onboarding.md, from nothing to the first delivered referral."""
    p = person(rng)
    consent = await send_file(
        stack, newcomer, "consent.json", demo.consent(f"c-{rng.randrange(10**9)}", p["bsn"],
                                                      date.today())
    )
    assert (await stack.zvh[newcomer].wait_response(consent, 20) or {}).get("status") == "accepted"
    case = f"CASE-{rng.randrange(10**9)}"
    mid = await send_file(
        stack, newcomer, "first.json", demo.referral(case, "midden-nederland", p, date.today())
    )
    answer = await stack.zvh[newcomer].wait_response(mid, 20)
    assert answer is not None and answer["status"] == "accepted", answer
    assert await delivered_to(stack, PROVIDER, mid) is not None


async def test_rotation_overlaps_and_revocation_reaches_the_running_router(
    stack: LocalStack, newcomer: str, rng: random.Random
) -> None:
    """A new key is used and accepted at once, the old one still during the overlap; revoked,
    the old key is refused by the router that was running all along (``key-revoked``: parked on
    ``rejected`` with its reason and audited), within ``registry_poll_seconds``."""
    zvh = stack.zvh[newcomer]
    p = person(rng)
    consent = await zvh.submit_json(demo.consent(f"c-{rng.randrange(10**9)}", p["bsn"],
                                                 date.today()))
    assert (await zvh.wait_response(consent.message_id, 20) or {}).get("status") == "accepted"
    old = zvh.client.keys

    async def refer(wait: float = 20) -> tuple[str, dict[str, Any] | None]:
        doc = demo.referral(f"CASE-{rng.randrange(10**9)}", "midden-nederland", p, date.today())
        sent = await zvh.submit_json(doc)
        return sent.message_id, await zvh.wait_response(sent.message_id, wait)

    serial = stack.deployment.registry.serial
    party_cli(stack, "rotate", "--party", newcomer, "--overlap-hours", "1")
    await applied(stack, serial + 1)
    new = zvh.client.keys
    assert new.key_id != old.key_id, "the adapter signs with its new key once registered"
    mid, answer = await refer()
    assert answer is not None and answer["status"] == "accepted", answer
    assert await delivered_to(stack, PROVIDER, mid) is not None
    zvh.client.keys = old  # the old key, still within its overlap
    mid, answer = await refer()
    assert answer is not None and answer["status"] == "accepted", answer

    party_cli(stack, "revoke", "--party", newcomer, "--key-id", old.key_id)
    took = await applied(stack, serial + 2)
    assert took <= 0.2 + 1.0, f"revocation took {took:.2f} s to apply"
    assert zvh.client.keys.key_id == new.key_id, "the adapter left the revoked key by itself"
    zvh.client.keys = old  # whoever stole the old key signs with it
    stolen, answer = await refer(wait=1.5)
    assert answer is None, "a revoked key gets no answer in its holder's name"
    assert await delivered_to(stack, PROVIDER, stolen, timeout=0.5) is None
    bootstrap = stack.settings.bootstrap_servers or ""
    rejected = await consume_all(bootstrap, topics.REJECTED.name)
    mine = [r for r in rejected if dict(r.headers).get("kb-id") == stolen.encode()]
    assert mine and dict(mine[0].headers)["kb-reason"] == b"key-revoked"
    audit = [json.loads(r.value) for r in await consume_all(bootstrap, topics.AUDIT.name)]
    assert any(stolen in json.dumps(a) and "key-revoked" in json.dumps(a) for a in audit)
    zvh.client.keys = new  # the genuine holder goes on with its new key
    mid, answer = await refer()
    assert answer is not None and answer["status"] == "accepted", answer
