"""The web app over a fake backend: sign-in, roles, CSRF, the pages' figures and filters, the
compliance search (BSN in, pseudonyms out) and what may never leave the server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.apps.monitoring.model import (
    CapacityCell,
    CapacityPoint,
    ClaimFigure,
    DeadLetter,
    EscalationFigure,
    ReasonCount,
    Snapshot,
    WaitingReferrals,
)
from broker.apps.web import app as web_app
from broker.apps.web.app import COOKIE, create_app
from broker.apps.web.auth import Role, SessionStore, UserStore
from broker.apps.web.backend import WebBackend
from broker.apps.web.compliance import PERSON_DOMAINS, SearchNotAudited, SearchResult
from broker.audit import (
    AuditChain,
    AuditKind,
    AuditQuery,
    AuditRecord,
    AuditRow,
    TrailTrust,
    VerifyReport,
    answer,
    build_audit_event,
    canonical,
)
from broker.audit.signers import ChainSigners, SignerKey
from broker.config import Settings
from broker.trust import PartyRegistry, Pseudonymiser, generate_party_keys, registry_entry
from schemas.vocab import LegalBasis, PartyRole, PurposeOfUse

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
BSN = "999990019"
PASSWORD = "a password for tests"
SECRET = b"s" * 32

SNAP = Snapshot(
    taken_at=NOW,
    refusals=(ReasonCount("rejected", "no-consent", 4, NOW),
              ReasonCount("dead-letter", "not-json", 1, NOW)),
    dead_letters=(DeadLetter("dead-letter", NOW, "not-json", "zvh-a", "inbox.json", "",
                             "body is not valid JSON"),),
    referrals=WaitingReferrals(2, NOW - timedelta(days=2), (("fivoor", 2),), 0),
    claims=(ClaimFigure("awaiting-answer", 1, NOW - timedelta(days=3)),
            ClaimFigure("answered", 0), ClaimFigure("refused", 0)),
    capacity=(CapacityCell("limburg", "3", 12, 9, 3, 2, NOW),
              CapacityCell("oost-nederland", "2", 8, 8, 0, 1, NOW)),
    capacity_history=(CapacityPoint(NOW, {"limburg|3": 3, "oost-nederland|2": 0}),),
    escalations=(EscalationFigure("no-bed", "zvh-a", "zvh-a", date(2026, 11, 1), NOW),),
    flows_per_hour=((NOW.replace(minute=0), "referral", 5),
                    (NOW.replace(minute=0) - timedelta(hours=1), "claim", 2)),
    sources=("capacity: deliveries to capacity-dashboard",),
)


@dataclass
class FakeCollector:
    snapshot: Snapshot = SNAP
    version: int = 1
    on_wait: Any = None

    async def wait_for_change(self, version: int, timeout: float) -> int:
        if self.on_wait:
            self.on_wait()
        await asyncio.sleep(0.01)
        return self.version


@dataclass
class FakeCompliance:
    """The service without Kafka: a fixed row, or with ``trail`` the real answer (verification
    included) over those records."""

    can_search_person: bool = True
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False
    trail: list[bytes] | None = None
    trust: TrailTrust | None = None

    def person_pseudonyms(self, bsn: str) -> dict[str, str]:
        return Pseudonymiser(SECRET).translate(bsn, PERSON_DOMAINS)

    async def search(self, query: AuditQuery, *, officer: str, person: str | None = None,
                     export: bool = False) -> SearchResult:
        if self.fail:
            raise SearchNotAudited("the search could not be audited: broker down")
        self.calls.append({"query": query, "officer": officer, "person": person,
                           "export": export})
        if self.trail is not None and self.trust is not None:
            return answer(self.trail, query, self.trust)
        rows = [AuditRow(position=3, chain="router", seq=3, event_id="e3", recorded=NOW,
                         kind="decision-permit", action="E", outcome="0", reason="permitted",
                         flow="referral", sender="zvh-a", sender_role="zvh",
                         recipient="fivoor", recipient_role="coordinating-provider",
                         purpose="COC", legal_basis="consent", consent_id="toestemming-42",
                         pseudonym=person, message_id="m-1", categories=("identity",),
                         verified=True)]
        return SearchResult(rows, 10, 0, VerifyReport(True, 10, [], {"router": (9, "ab" * 32)}))

    async def verify(self) -> VerifyReport:
        return VerifyReport(True, 10, [], {"router": (9, "ab" * 32)})


@dataclass
class Web:
    client: httpx.AsyncClient
    users: UserStore
    sessions: SessionStore
    collector: FakeCollector
    compliance: FakeCompliance

    async def login(self, name: str) -> httpx.AsyncClient:
        r = await self.client.post("/login", data={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return self.client

    async def csrf(self, path: str = "/compliance") -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', (await self.client.get(path)).text)
        assert m, "no CSRF token on the page"
        return m.group(1)


def registry() -> PartyRegistry:
    return PartyRegistry([
        registry_entry(generate_party_keys(p), role=r, name=p)
        for p, r in (("router", PartyRole.ROUTER), ("fivoor", PartyRole.COORDINATING_PROVIDER),
                     ("capacity-dashboard", PartyRole.CAPACITY_DASHBOARD))
    ])


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
    users = UserStore(tmp_path / "users.json", hasher=fast)
    users.set("olga", Role.OPERATIONS, PASSWORD)
    users.set("cora", Role.COMPLIANCE, PASSWORD)
    sessions = SessionStore()
    collector, compliance = FakeCollector(), FakeCompliance()
    backend = WebBackend(Settings(), registry(), collector, compliance,  # type: ignore[arg-type]
                         "capacity-dashboard")
    transport = httpx.ASGITransport(app=create_app(backend, users, sessions))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers={"Accept-Language": "en"},  # English texts below
                                 follow_redirects=True) as client:
        yield Web(client, users, sessions, collector, compliance)


async def test_pages_need_a_sign_in(web: Web) -> None:
    r = await web.client.get("/operations?hours=6", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/operations%3Fhours%3D6"
    assert (await web.client.get("/api/capacity")).status_code == 401
    assert (await web.client.get("/health")).json()["status"] == "ok"


async def test_sign_in_sets_a_strict_http_only_cookie_and_returns_to_the_page(web: Web) -> None:
    r = await web.client.post("/login", data={"username": "olga", "password": PASSWORD,
                                        "next": "/operations"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/operations"
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


async def test_a_wrong_password_is_refused_without_saying_which_part(web: Web) -> None:
    r = await web.client.post("/login", data={"username": "olga", "password": "not it at all"})
    assert r.status_code == 401 and "wrong user name or password" in r.text
    assert COOKIE not in web.client.cookies


async def test_no_open_redirect_after_sign_in(web: Web) -> None:
    r = await web.client.post("/login", data={"username": "olga", "password": PASSWORD,
                                        "next": "//evil.example/x"}, follow_redirects=False)
    assert r.headers["location"] == "/dashboard"


async def test_dashboard_shows_beds_per_region_and_level_and_filters_by_region(web: Web) -> None:
    client = await web.login("olga")
    page = (await client.get("/dashboard")).text
    assert 'data-region="limburg"' in page and 'data-region="oost-nederland"' in page
    assert "<b>3</b>" in page and "/ 12" in page
    only = (await client.get("/dashboard?region=limburg")).text
    assert 'data-region="limburg"' in only and 'data-region="oost-nederland"' not in only
    data = (await client.get("/api/capacity")).json()
    assert data["cells"]["limburg|3"]["available"] == 3
    assert data["history"][0]["available"]["limburg|3"] == 3


async def test_the_capacity_stream_sends_figures_and_ends_when_the_session_does(web: Web) -> None:
    client = await web.login("olga")
    token = client.cookies[COOKIE]
    web.collector.on_wait = lambda: web.sessions.drop(token)
    r = await client.get("/api/capacity/stream")
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.text.split("\n\n") if e.strip()]
    assert events[0].startswith("data: ") and '"limburg|3"' in events[0]
    assert events[-1].startswith("event: signed-out")


async def test_operations_page_shows_refusals_stuck_cases_and_filters_flows(web: Web) -> None:
    client = await web.login("olga")
    page = (await client.get("/operations")).text
    for expected in ("no consent", "no-consent", "not-json", "escalation: no bed", "zvh-a",
                     "2 referral(s) waiting", "1 claim(s) awaiting an answer", "2026-11-01"):
        assert expected in page, expected
    flows = (await client.get("/operations/live?flow=referral&hours=24")).text
    header = flows.split('id="flows"')[1].split("</thead>")[0]
    assert "referral" in header and "claim" not in header
    all_flows = (await client.get("/operations/live?hours=24")).text.split('id="flows"')[1]
    assert "claim" in all_flows.split("</thead>")[0]
    odd = await client.get("/operations/live?flow=<script>&hours=9999")
    assert odd.status_code == 200 and "<script>" not in odd.text


async def test_an_operations_user_is_refused_the_compliance_pages(web: Web) -> None:
    client = await web.login("olga")
    page = (await client.get("/dashboard")).text
    assert 'href="/compliance"' not in page
    r = await client.get("/compliance")
    assert r.status_code == 403 and "Access refused" in r.text
    csrf = await web.csrf("/dashboard")
    for path in ("/compliance/search", "/compliance/export.csv", "/compliance/verify"):
        r = await client.post(path, data={"csrf": csrf, "bsn": BSN})
        assert r.status_code == 403, path
    assert web.compliance.calls == []


async def test_compliance_search_turns_the_bsn_into_pseudonyms_and_never_shows_it(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await web.login("cora")
    assert 'href="/compliance"' in (await client.get("/dashboard")).text
    r = await client.post("/compliance/search", data={"csrf": await web.csrf(), "bsn": BSN,
                                                "purpose": "COC", "since": "2026-01-01"})
    assert r.status_code == 200, r.text
    [call] = web.compliance.calls
    expected = Pseudonymiser(SECRET).translate(BSN, PERSON_DOMAINS)
    assert call["query"].persons == frozenset(expected.values())
    assert call["person"] == expected["audit"] and call["officer"] == "cora"
    assert call["query"].purposes == frozenset({"COC"})
    assert call["query"].since == datetime(2026, 1, 1, tzinfo=UTC)
    assert BSN not in r.text
    assert BSN not in caplog.text
    assert "toestemming-42" in r.text
    assert 'data-basis="consent">consent<code class="code">consent</code>' in r.text
    assert 'id="trail-verified"' in r.text and 'id="tampered"' not in r.text
    assert expected["audit"] in r.text, "compliance officers see pseudonyms"
    # the hidden person filter carries pseudonyms, so a refined search needs no BSN again
    r2 = await client.post("/compliance/search", data={
        "csrf": await web.csrf(), "person_audit": expected["audit"],
        "person_router": expected["router"], "kind": "decision-permit"})
    assert r2.status_code == 200
    assert web.compliance.calls[-1]["query"].persons == frozenset(expected.values())
    assert web.compliance.calls[-1]["query"].kinds == frozenset({"decision-permit"})


async def test_a_bad_bsn_is_refused_without_repeating_it(web: Web) -> None:
    client = await web.login("cora")
    r = await client.post("/compliance/search", data={"csrf": await web.csrf(), "bsn": "123456789"})
    assert r.status_code == 422 and "eleven test" in r.text
    assert "123456789" not in r.text
    assert web.compliance.calls == []


async def test_forms_without_the_session_csrf_token_are_refused(web: Web) -> None:
    client = await web.login("cora")
    r = await client.post("/compliance/search", data={"csrf": "forged", "bsn": BSN})
    assert r.status_code == 403 and web.compliance.calls == []


async def test_a_search_that_cannot_be_audited_shows_no_results(web: Web) -> None:
    web.compliance.fail = True
    client = await web.login("cora")
    r = await client.post("/compliance/search", data={"csrf": await web.csrf(), "flow": "referral"})
    assert r.status_code == 503 and "could not be audited" in r.text
    assert 'id="results"' not in r.text


async def test_csv_export_is_a_download_and_an_audited_search(web: Web) -> None:
    client = await web.login("cora")
    r = await client.post("/compliance/export.csv", data={"csrf": await web.csrf(), "bsn": BSN})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    lines = r.text.splitlines()
    assert lines[0].startswith("position,chain,seq") and len(lines) == 2
    assert BSN not in r.text
    assert web.compliance.calls[-1]["export"] is True


def declared(chains: dict[str, tuple[str, Ed25519PrivateKey]]) -> dict[str, ChainSigners]:
    """Chain id -> its one declared key (kid, key), valid from a day before NOW."""
    return {chain: ChainSigners(chain, chain, PartyRole.ROUTER, (
        SignerKey(kid, k.public_key(), NOW - timedelta(days=1)),)) for chain, (kid, k)
        in chains.items()}


def signed_trail(router: Ed25519PrivateKey) -> list[bytes]:
    """A router chain of a permit, a denial and a delivery about one person."""
    chain = AuditChain("router", router, "router-2026a")
    out = []
    for i, kind in enumerate((AuditKind.DECISION_PERMIT, AuditKind.DECISION_DENY,
                              AuditKind.DELIVERY)):
        out.append(chain.append(build_audit_event(AuditRecord(
            kind=kind, event_id=f"e{i}", recorded=NOW, source="router",
            reason="no-consent" if kind is AuditKind.DECISION_DENY else "permitted",
            actor="zvh-a", actor_role=PartyRole.ZVH, recipient="fivoor",
            recipient_role=PartyRole.COORDINATING_PROVIDER, purpose=PurposeOfUse.COC,
            legal_basis=LegalBasis.CONSENT, pseudonym="p-" + "a" * 26, message_id=f"m-{i}"))))
    return out


@pytest.mark.parametrize("re_signed", [False, True], ids=["edited", "re-signed-by-another-key"])
async def test_a_tampered_trail_shows_the_banner_and_marks_the_rows(
    web: Web, re_signed: bool
) -> None:
    router, web_app = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trail = signed_trail(router)
    rec = json.loads(trail[1])  # the denial, rewritten into a permit
    rec["event"]["type"]["code"] = "decision-permit"
    rec["event"]["outcome"], rec["event"]["outcomeDesc"] = "0", "permitted"
    if re_signed:  # with the web app's own (valid, registered) key
        body = {k: rec[k] for k in ("chain", "seq", "prev", "event")}
        rec["hash"] = hashlib.sha256(canonical(body)).hexdigest()
        rec["sig"], rec["kid"] = web_app.sign(bytes.fromhex(rec["hash"])).hex(), "web-2026a"
    trail[1] = canonical(rec)
    web.compliance.trail = trail
    web.compliance.trust = TrailTrust(declared({"router": ("router-2026a", router),
                                                "web": ("web-2026a", web_app)}))
    client = await web.login("cora")
    denials = await client.post("/compliance/search", data={
        "csrf": await web.csrf(), "kind": "decision-deny"})
    assert denials.status_code == 200
    assert 'id="tampered"' in denials.text and "TAMPERED: the audit trail does not verify" in (
        denials.text)
    finding = 1  # edited: changed; re-signed with the web app's key: wrong-signer
    assert f"finding(s) at position(s) {finding}." in denials.text
    assert "No audit records match." in denials.text, "the denial is gone: the banner says why"
    everything = await client.post("/compliance/search", data={"csrf": await web.csrf()})
    marked = re.findall(r'<tr class="[^"]*unverified" data-position="(\d+)"', everything.text)
    assert marked == ["1"]
    assert everything.text.count('<td class="verified"><b>not verified</b>') == len(marked)
    assert 'id="trail-verified"' not in everything.text


async def test_an_intact_trail_says_it_verified(web: Web) -> None:
    router = Ed25519PrivateKey.generate()
    web.compliance.trail = signed_trail(router)
    web.compliance.trust = TrailTrust(declared({"router": ("router-2026a", router)}))
    client = await web.login("cora")
    r = await client.post("/compliance/search", data={"csrf": await web.csrf()})
    assert 'id="trail-verified"' in r.text and 'id="tampered"' not in r.text
    assert "unverified" not in r.text and r.text.count("denied: no consent") == 1
    assert 'coordination of care<code class="code">COC</code>' in r.text


async def test_chain_verification_from_the_page(web: Web) -> None:
    client = await web.login("cora")
    r = await client.post("/compliance/verify", data={"csrf": await web.csrf()})
    assert r.status_code == 200 and "Intact:" in r.text and "router up to seq 9" in r.text


async def test_sign_out_ends_the_session(web: Web) -> None:
    client = await web.login("olga")
    token = client.cookies[COOKIE]
    await client.post("/logout", data={"csrf": await web.csrf("/dashboard")})
    assert web.sessions.get(token) is None
    client.cookies.set(COOKIE, token)
    assert (await client.get("/dashboard", follow_redirects=False)).status_code == 303


async def test_every_response_forbids_other_origins(web: Web) -> None:
    r = await web.client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"


def test_every_asset_is_served_locally() -> None:
    root = Path(web_app.__file__).parent
    for path in [*root.glob("templates/*.html"), *root.glob("static/*")]:
        text = path.read_text(encoding="utf-8")
        for url in re.findall(r"""(?:src|href)=["']([^"']+)""", text):
            assert url.startswith("/") and not url.startswith("//"), f"{path.name}: {url}"
        external = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not external, f"{path.name}: {external}"
        assert "<script>" not in text and " style=" not in text, f"{path.name}: inline code"
