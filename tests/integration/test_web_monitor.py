"""Monitor, metrics and web app against a real stack: router, adapters, sample traffic and the
web app on a private embedded broker over TCP (a private one, so the figures are exactly this
module's traffic).

Traffic: a consent and a referral for person A (delivered, so waiting for a decision), a
referral for person B without consent (refused), one malformed referral (dead letter), capacity
reports with known counts in region Limburg, an escalation, two claims of which one is paid.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from argon2 import PasswordHasher

from broker.apps.deployment import Deployment, create_local
from broker.apps.monitoring import figures
from broker.apps.monitoring.collector import Collector
from broker.apps.monitoring.model import Snapshot
from broker.apps.monitoring.parties import with_monitoring_parties
from broker.apps.monitoring.sample import SampleTraffic, Ward, person
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.apps.web.app import create_app
from broker.apps.web.auth import SessionStore, demo_users
from broker.apps.web.backend import WebBackend
from broker.apps.web.server import WebServer
from broker.audit import ChainRecord, canonical
from broker.component import metrics
from broker.config import Settings
from broker.kafka import EmbeddedBroker, ensure_topics
from broker.policy import default_policy
from broker.router.pipeline import AUDIT_DOMAIN
from schemas import topics
from schemas.topics import KeyKind, TopicSpec
from schemas.vocab import SecurityLevel
from tests.conftest import ROOT
from tests.helpers.cli import cli_env
from tests.helpers.kafka import consume_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ZVH = "zvh-midden-nederland"
PSEUDONYM = re.compile(r"p-[a-z2-7]{26}")
DENIES = metrics.ROUTER_DECISIONS.labels("decision-deny", "referral", "no-consent")
DEAD = metrics.ADAPTER_DEAD_LETTERS.labels("zvh-midden-nederland", "missing")
LIMBURG = Ward("fivoor", "fivoor-test-ward", "limburg",
               ((SecurityLevel.LEVEL_3, 9), (SecurityLevel.LEVEL_4, 3)))


@dataclass
class World:
    settings: Settings
    deployment: Deployment
    stack: LocalStack
    web_url: str
    credentials: dict[str, str]
    bsn_a: str
    bsn_b: str
    metrics_url: str
    backend: WebBackend
    baseline: dict[str, float]  # counters are per process: other modules' traffic is in them


async def _wait(collector: Collector, ok: object, timeout: float = 40.0) -> Snapshot:
    """Catch up until ``ok(snapshot)`` holds (behaviour, not timing: bounded retries)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        snap = await Collector(collector.settings, capacity=collector.capacity_client,
                               escalations=collector.escalation_client).catch_up()
        if ok(snap) or loop.time() > deadline:  # type: ignore[operator]
            return snap
        await asyncio.sleep(0.5)


def _ready(snap: Snapshot) -> bool:
    claims = {c.state: c.count for c in snap.claims}
    return (claims.get("answered") == 1 and claims.get("awaiting-answer") == 1
            and any(c.region == "limburg" for c in snap.capacity)
            and snap.escalation_summary.delivered == 1 and snap.referrals.count == 1
            and {r.reason for r in snap.refusals} >= {"no-consent", "missing"})


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    state = tmp_path_factory.mktemp("watched")
    broker = EmbeddedBroker(state_dir=state / "kafka")
    await broker.astart()
    # metrics_port 0: the router serves its metrics (and, as `ketenbus router` does, the
    # monitor's figures beside them), as when run alone
    settings = Settings(bootstrap_servers=broker.bootstrap, state_dir=state, metrics_port=0)
    deployment = create_local(state, with_monitoring_parties(demo.PARTIES))
    stack = LocalStack(settings, deployment, default_policy(), StackOptions(
        data_dir=state / "data", http_port=0, session_timeout_ms=2000, poll_interval=0.1))
    await stack.start()
    served = figures.served(settings)
    await served.__aenter__()
    metrics_url = metrics.serve(0)  # already running: the router's endpoint
    baseline = {"deny": DENIES._value.get(), "dead": DEAD._value.get()}
    rng = random.Random()
    today = date.today()
    a, b = person(rng, today), person(rng, today)
    async with httpx.AsyncClient(
        base_url=stack.http_url or "", timeout=10, headers=stack.http_headers
    ) as http:
        r = await http.post("/consents", json=demo.consent("c-monitor-a", a.bsn, today))
        await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20)
        for case, who in (("MON-A", a), ("MON-B", b)):
            doc = demo.referral(case, "midden-nederland", {
                "bsn": who.bsn, "family_name": who.family_name,
                "given_names": list(who.given_names), "birth_date": who.birth_date.isoformat(),
                "gender": who.gender.value, "municipality": "0344"}, today)
            r = await http.post("/referrals", json=doc)
            await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20)
        assert (await http.post("/referrals", json={"case_id": "BAD"})).status_code == 422
    traffic = SampleTraffic(settings, deployment, rng)
    await traffic.start()
    await traffic.demo(stuck_case="MON-A")  # a case the router routed
    await traffic.capacity(LIMBURG, {SecurityLevel.LEVEL_3: 2, SecurityLevel.LEVEL_4: 3})
    await traffic.stop()
    users, creds = demo_users(state, PasswordHasher(time_cost=1, memory_cost=1024,
                                                    parallelism=1))
    backend = WebBackend.from_deployment(settings, deployment)
    await backend.start()
    server = WebServer(create_app(backend, users, SessionStore()))
    url = await server.start(0)
    await _wait(backend.collector, _ready)
    try:
        yield World(settings, deployment, stack, url, creds, a.bsn, b.bsn, metrics_url, backend,
                    baseline)
    finally:
        await server.stop()
        await backend.stop()
        await stack.stop()
        await served.__aexit__(None, None, None)
        metrics.shutdown()
        await broker.astop()


def monitor_once(world: World) -> str:
    env = {**cli_env(), "KETENBUS_BOOTSTRAP_SERVERS": world.settings.bootstrap_servers or "",
           "KETENBUS_STATE_DIR": str(world.settings.state_dir), "COLUMNS": "180"}
    done = subprocess.run([sys.executable, "-m", "broker.apps.cli.main", "monitor", "--once"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def row_of(text: str, first: str) -> str:
    return next((line for line in text.splitlines() if line.strip("│ ").startswith(first)), "")


async def test_monitor_once_shows_every_figure_and_no_person(world: World) -> None:
    out = await asyncio.to_thread(monitor_once, world)
    assert "in.referral" in row_of(out, "in.referral") and "ketenbus-router" in out
    assert re.search(r"│ rejected\s+│ no-consent\s+│\s+1 │", out), out
    assert re.search(r"│ dead-letter\s+│ missing\s+│\s+1 │", out), out
    assert re.search(r"│\s+1 │\s+\S+ (s|min) │ fivoor 1\s+│\s+0 │", out), "one referral waits"
    assert re.search(r"│ awaiting-answer\s+│\s+1 │", out)
    assert re.search(r"│ answered\s+│\s+1 │", out)
    limburg = row_of(out, "limburg")
    assert "7 / 9" in limburg and "0 / 3" in limburg, limburg
    assert "midden-nederland" in out and "oost-nederland" in out
    for secret in (world.bsn_a, world.bsn_b):
        assert secret not in out
    assert not PSEUDONYM.search(out)


def test_monitor_finds_ketenbus_up_through_its_run_file_or_says_what_to_do(
    world: World, tmp_path: Path
) -> None:
    from broker.apps.monitoring import runinfo

    env = {**cli_env(), "KETENBUS_STATE_DIR": str(tmp_path)}
    args = [sys.executable, "-m", "broker.apps.cli.main", "monitor", "--once"]
    none = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and "ketenbus up" in none.stderr
    runinfo.write(tmp_path, {"bootstrap": world.settings.bootstrap_servers})
    found = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert found.returncode == 0, found.stderr
    assert "no-consent" in found.stdout
    assert "no capacity-dashboard keys" in found.stdout, "no keys in that state dir: says so"


async def test_lag_uses_the_fetch_high_watermark(world: World) -> None:
    """Three records in one batch (where ListOffsets is wrong on Tansu), one committed."""
    bootstrap = world.settings.bootstrap_servers or ""
    name = "out.lag-check"
    await ensure_topics(bootstrap, [TopicSpec(name, 1, KeyKind.NONE, "lag test")])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    for _ in range(3):
        await producer.send(name, b"x")
    await producer.flush()
    await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="lag-check",
                                enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(name, 0)
    consumer.assign([tp])
    await consumer.commit({tp: 1})
    await consumer.stop()
    snap = await Collector(world.settings).catch_up()
    [group] = [g for g in snap.groups if g.group == "lag-check"]
    assert (group.topics, group.lag) == ((name,), 2)
    [topic] = [t for t in snap.topics if t.name == name]
    assert topic.messages == 3
    assert all(g.lag == 0 for g in snap.groups if g.group.startswith("ketenbus-")), snap.groups


def test_the_router_serves_its_counters_and_the_figures(world: World) -> None:
    with urllib.request.urlopen(world.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    denies = world.baseline["deny"] + 1
    dead = world.baseline["dead"] + 1
    assert 'ketenbus_router_decisions_total{flow="referral",kind="decision-deny",' \
           f'reason="no-consent"}} {denies}' in text
    assert 'ketenbus_adapter_dead_letters_total{party="zvh-midden-nederland",' \
           f'reason="missing"}} {dead}' in text
    assert "ketenbus_referrals_waiting 1.0" in text, "the router's collector gives the figures"
    assert world.bsn_a not in text and not PSEUDONYM.search(text)


@asynccontextmanager
async def login(world: World, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.web_url, timeout=30,
                                 follow_redirects=True) as client:
        r = await client.post("/login", data={"username": name,
                                              "password": world.credentials[name]})
        assert r.status_code == 200 and "Afmelden" in r.text, "Dutch by default (issue 17)"
        yield client


async def test_operations_pages_show_live_figures_without_person_data(world: World) -> None:
    async with login(world, "operations") as web:
        dashboard = (await web.get("/dashboard")).text
        ops = (await web.get("/operations")).text
        capacity = (await web.get("/api/capacity")).json()
        assert (await web.get("/compliance")).status_code == 403
    cell = capacity["cells"]["limburg|3"]
    assert {k: cell[k] for k in ("in_service", "occupied", "available", "locations")} == {
        "in_service": 9, "occupied": 2, "available": 7, "locations": 1,
    }  # fmt: skip
    assert cell["stale"] is False and cell["oldest_at"].endswith("+00:00")  # fresh, dated
    assert 'data-region="limburg"' in dashboard
    assert 'geen toestemming<code class="code">no-consent</code>' in ops and "missing" in ops
    assert "escalatie: geen bed" in ops and 'data-reason="no-bed"' in ops
    for page in (dashboard, ops, json.dumps(capacity)):
        assert world.bsn_a not in page and world.bsn_b not in page
        assert not PSEUDONYM.search(page)


async def test_a_compliance_search_finds_the_delivery_and_is_itself_audited(
    world: World,
) -> None:
    async with login(world, "compliance") as web:
        form = (await web.get("/compliance")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        found = await web.post("/compliance/search", data={"csrf": csrf, "bsn": world.bsn_a})
        exported = await web.post("/compliance/export.csv", data={
            "csrf": csrf, "bsn": world.bsn_a, "kind": "decision-permit"})
        verified = await web.post("/compliance/verify", data={"csrf": csrf})
    pseudonym = world.deployment.pseudonymiser("router").pseudonym(AUDIT_DOMAIN, world.bsn_a)
    assert found.status_code == 200 and world.bsn_a not in found.text
    assert "c-monitor-a" in found.text, "the delivery shows the consent it relied on"
    assert 'data-basis="consent">toestemming' in found.text and "consent-change" in found.text
    assert 'id="trail-verified"' in found.text, "the search verified the trail it answers from"
    assert pseudonym in found.text
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert len(lines) == 2 and "decision-permit" in lines[1] and "c-monitor-a" in lines[1]
    assert world.bsn_a not in exported.text
    chain = web_chain(world)
    assert "Intact:" in verified.text and f"{chain} tot volgnummer 1" in verified.text
    records = await consume_all(world.settings.bootstrap_servers or "", topics.AUDIT.name)
    searches = [ChainRecord.decode(r.value) for r in records
                if json.loads(r.value)["chain"] == chain]
    assert [s.seq for s in searches] == [0, 1]
    for s, reason in zip(searches, ("searched", "exported"), strict=True):
        ev = s.event
        assert ev["type"]["code"] == "compliance-search" and ev["outcomeDesc"] == reason
        assert ev["entity"][0]["what"]["identifier"]["value"] == pseudonym
        assert any(a.get("name") == "compliance" for a in ev["agent"]), "who searched"
    assert all(world.bsn_a.encode() not in r.value for r in records)


def web_chain(world: World) -> str:
    """The audit chain the registry declares for the web app's searches."""
    decl = world.deployment.registry.audit_chain_of("capacity-dashboard")
    assert decl is not None
    return decl.chain


async def test_the_search_chain_resumes_after_a_restart(world: World) -> None:
    assert world.backend.compliance is not None
    from broker.apps.web.compliance import ComplianceService
    from broker.audit import AuditQuery

    before = world.backend.compliance
    chain = web_chain(world)
    head = (await before.verify()).heads.get(chain, (-1, ""))[0]
    again = ComplianceService(world.settings, world.deployment.registry, before.keys,
                              before.pseudonyms)
    await again.start()
    try:
        await again.search(AuditQuery(flows=frozenset({"claim"})), officer="compliance")
    finally:
        await again.stop()
    report = await again.verify()
    assert report.ok, [str(f) for f in report.findings]
    assert report.heads[chain][0] == head + 1, "continued, not restarted"


def cli_chain(world: World) -> str:
    """The chain the registry declares for the CLI's compliance searches."""
    chains = world.deployment.registry.audit_chains_of("capacity-dashboard")
    return next(d.chain for d in chains if d.chain.endswith("-cli"))


def audit_query(
    world: World, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(), "KETENBUS_BOOTSTRAP_SERVERS": world.settings.bootstrap_servers or "",
           "KETENBUS_STATE_DIR": str(world.settings.state_dir), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "broker.apps.cli.main", "audit", "query", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
                          input=stdin)


async def test_audit_query_bsn_answers_in_words_and_audits_the_search(world: World) -> None:
    done = await asyncio.to_thread(audit_query, world, "--bsn", "-", "--officer", "cora",
                                   stdin=world.bsn_a + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    pseudonym = world.deployment.pseudonymiser("router").pseudonym(AUDIT_DOMAIN, world.bsn_a)
    out = " ".join(done.stdout.split())  # the text is wrapped at 80 columns
    assert max(map(len, done.stdout.splitlines())) <= 80
    assert "(the trail verified)" in out and f"person searched as {pseudonym}" in out
    assert "PERMITTED" in out and "legal basis: Toestemming (consent); consent c-monitor-a" in out
    assert "NOT VERIFIED" not in out and "TAMPERED" not in out
    records = await consume_all(world.settings.bootstrap_servers or "", topics.AUDIT.name)
    [search] = [ChainRecord.decode(r.value) for r in records
                if json.loads(r.value)["chain"] == cli_chain(world)]
    ev = search.event
    assert ev["type"]["code"] == "compliance-search" and ev["outcomeDesc"] == "searched"
    assert ev["entity"][0]["what"]["identifier"]["value"] == pseudonym
    assert any(a.get("name") == "cora" for a in ev["agent"]), "who searched"
    assert any(a.get("who", {}).get("identifier", {}).get("value") == "capacity-dashboard"
               for a in ev["agent"]), "for which organisation"
    for text in (done.stdout, done.stderr, *(r.value.decode() for r in records)):
        assert world.bsn_a not in text
    as_person = await asyncio.to_thread(audit_query, world, "--person", world.bsn_a)
    assert as_person.returncode == 2 and "--bsn" in as_person.stderr
    assert world.bsn_a not in as_person.stdout + as_person.stderr


async def test_zz_a_forged_permit_on_the_topic_shows_on_the_page_and_in_the_cli(
    world: World,
) -> None:
    """Last in the module: it leaves the trail tampered. A denial rewritten into a permit,
    re-signed with the web app's own registered key, and appended to the topic."""
    bootstrap = world.settings.bootstrap_servers or ""
    records = await consume_all(bootstrap, topics.AUDIT.name)
    denial = next(json.loads(r.value) for r in records
                  if json.loads(r.value)["event"]["type"]["code"] == "decision-deny")
    denial["event"]["type"]["code"] = "decision-permit"
    denial["event"]["outcome"], denial["event"]["outcomeDesc"] = "0", "permitted"
    keys = world.deployment.keyring("capacity-dashboard").current
    body = {k: denial[k] for k in ("chain", "seq", "prev", "event")}
    denial["hash"] = hashlib.sha256(canonical(body)).hexdigest()
    denial["sig"] = keys.signing.sign(bytes.fromhex(denial["hash"])).hex()
    denial["kid"] = keys.key_id
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topics.AUDIT.name, canonical(denial),
                                     key=denial["chain"].encode())
    finally:
        await producer.stop()
    at = len(records)
    async with login(world, "compliance") as web:
        form = (await web.get("/compliance")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        page = (await web.post("/compliance/search", data={"csrf": csrf})).text
    assert 'id="tampered"' in page and f"{at}" in page
    assert f'unverified" data-position="{at}"' in page
    done = await asyncio.to_thread(audit_query, world, "--kind", "decision-deny")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("!! TAMPERED") and str(at) in done.stdout
