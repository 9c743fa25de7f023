"""OpenID Connect sign-in against a local test issuer on 127.0.0.1 (tests/helpers/oidc_issuer.py):
the authorization-code flow with PKCE, and every way a sign-in must be refused (a token signed by
another valid key, wrong audience or issuer, expired, wrong nonce or state, an organisation that
is not a party, no role). The real ComplianceService writes the audit records (NEN 7513: the
user is the person, ``sub`` at the provider, not the organisation); only Kafka's producer is
replaced by a list."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from argon2 import PasswordHasher
from joserfc.jwk import RSAKey

from broker.apps.web.app import COOKIE, create_app
from broker.apps.web.auth import Role, SessionStore, UserStore
from broker.apps.web.backend import WebBackend
from broker.apps.web.compliance import ComplianceService
from broker.apps.web.oidc import OidcLogin, load_providers
from broker.audit import AuditChain
from broker.config import Settings
from broker.trust import PartyRegistry, generate_party_keys, registry_entry
from schemas.vocab import PartyRole
from tests.helpers.oidc_issuer import TestIssuer, new_key
from tests.unit.web.test_web_app import FakeCollector

SUBJECT = "emp-4711"  # the person's id at the provider: no name, no BSN


@functools.cache
def issuer_key() -> RSAKey:
    """The test issuer's key, made once per run (an RSA key takes a while)."""
    return new_key()


@dataclass
class Producer:
    """Kafka's producer as a list: the audit records the console would send."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append(json.loads(value))


@dataclass
class Console:
    client: httpx.AsyncClient
    issuer: TestIssuer
    audit: Producer
    clock: list[datetime]

    async def sign_in(self, *, cookie: bool = True, replay: bool = False) -> httpx.Response:
        """Start at the console, let the issuer answer, return to the console's callback."""
        start = await self.client.get("/oidc/fivoor-idp/start?next=/operations")
        assert start.status_code == 303, start.text
        assert start.headers["location"].startswith(f"{self.issuer.url}/authorize?")
        async with httpx.AsyncClient() as browser:  # to the issuer, over 127.0.0.1
            answer = await browser.get(start.headers["location"])
        assert answer.status_code == 302, answer.text
        back = urlsplit(answer.headers["location"])
        if not cookie:  # the answer arrives in another browser
            self.client.cookies.clear()
        r = await self.client.get(f"{back.path}?{back.query}")
        if replay:
            r = await self.client.get(f"{back.path}?{back.query}")
        return r

    def records(self, kind: str = "sign-in") -> list[dict[str, Any]]:
        events = [r["event"] for r in self.audit.sent]
        return [e for e in events if e["type"]["code"] == kind]


def registry() -> PartyRegistry:
    return PartyRegistry([
        registry_entry(generate_party_keys(p), role=r, name=p)
        for p, r in (("router", PartyRole.ROUTER), ("fivoor", PartyRole.COORDINATING_PROVIDER),
                     ("capacity-dashboard", PartyRole.CAPACITY_DASHBOARD))
    ])


def write_config(path: Path, issuer: TestIssuer) -> Path:
    secret = path.parent / "fivoor-idp.secret"
    secret.write_text(issuer.client_secret)
    path.write_text(f"""
providers:
  - id: fivoor-idp
    label: Fivoor
    issuer: {issuer.url}
    client_id: {issuer.client_id}
    client_secret_file: {secret.name}
    organisation_claim: org
    organisations: {{FIVOOR: fivoor, GHOST: ghost-party}}
    roles_claim: groups
    roles: {{ketenbus-ops: operations, ketenbus-privacy: compliance}}
""")
    return path


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    issuer = TestIssuer(key=issuer_key(), claims={
        "sub": SUBJECT, "org": "FIVOOR", "groups": ["ketenbus-ops"], "name": "Dr. A. Person",
        "email": "a.person@fivoor.example"})
    await issuer.start()
    reg = registry()
    keys = generate_party_keys("capacity-dashboard")
    service = ComplianceService(Settings(), reg, keys, None)
    producer = Producer()
    service._producer = producer  # type: ignore[assignment]
    service.writer._chain = AuditChain(service.chain_id, keys.signing, keys.key_id, None)
    now = [datetime.now(UTC)]
    sessions = SessionStore(idle=timedelta(minutes=30), clock=lambda: now[0])
    backend = WebBackend(Settings(), reg, FakeCollector(), service,  # type: ignore[arg-type]
                         "capacity-dashboard")
    oidc = OidcLogin(load_providers(write_config(tmp_path / "oidc.yaml", issuer)),
                     backend.knows_party)
    users = UserStore(tmp_path / "users.json",
                      hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app = create_app(backend, users, sessions, oidc=oidc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        yield Console(client, issuer, producer, now)
    await issuer.stop()


async def test_a_person_signs_in_through_the_identity_provider_with_pkce(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    login = await console.client.get("/login")
    assert 'href="/oidc/fivoor-idp/start?next=/dashboard"' in login.text
    with caplog.at_level(logging.INFO):
        r = await console.sign_in()
        assert r.status_code == 303 and r.headers["location"] == "/operations", r.text
        page = await console.client.get("/operations")
    assert page.status_code == 200
    assert f"{SUBJECT}@fivoor-idp" in page.text and "fivoor" in page.text
    # PKCE: the token request carried the verifier, and the issuer checked it against the
    # challenge of the authorization request (it refuses a wrong one: see below)
    (token_request,) = console.issuer.token_requests
    assert token_request["grant_type"] == "authorization_code"
    assert 43 <= len(token_request["code_verifier"]) <= 128
    # NEN 7513: the audit record's user is the person, the organisation acts
    (record,) = console.records()
    requestor, person = record["agent"]
    assert requestor["who"]["identifier"]["value"] == "capacity-dashboard"
    assert person["who"]["display"] == f"{SUBJECT}@fivoor-idp" and record["outcome"] == "0"
    text = json.dumps(record)
    assert "Dr. A. Person" not in text and "a.person@" not in text, "claims are not kept"
    logs = caplog.text
    assert f"{SUBJECT}@fivoor-idp" in logs and "Dr. A. Person" not in logs
    assert f"by {SUBJECT}@fivoor-idp (operations, fivoor)" in logs


def _refused(r: httpx.Response, code: str, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:400])
    assert f'data-code="{code}"' in r.text, r.text[:2000]
    assert COOKIE not in r.cookies


HOSTILE: dict[str, tuple[Callable[[TestIssuer], None], str, int]] = {
    # the same key id, another valid RSA key: the forger has a key, not the issuer's
    "signed-by-another-valid-key": (lambda i: setattr(i, "sign_with", new_key("test-key")),
                                    "bad-signature", 401),
    "wrong-audience": (lambda i: setattr(i, "tamper", lambda c: {**c, "aud": "other-app"}),
                       "wrong-audience", 401),
    "second-audience-without-azp": (
        lambda i: setattr(i, "tamper", lambda c: {**c, "aud": [c["aud"], "other-app"]}),
        "wrong-audience", 401),
    "wrong-issuer": (lambda i: setattr(i, "tamper", lambda c: {**c, "iss": "https://evil.example"}),
                     "wrong-issuer", 401),
    "expired": (lambda i: setattr(i, "tamper", lambda c: {**c, "iat": c["iat"] - 900,
                                                          "exp": c["iat"] - 600}),
                "expired", 401),
    "wrong-nonce": (lambda i: setattr(i, "tamper", lambda c: {**c, "nonce": "replayed"}),
                    "wrong-nonce", 401),
    "no-nonce": (lambda i: setattr(i, "tamper", lambda c: {k: v for k, v in c.items()
                                                          if k != "nonce"}),
                 "wrong-nonce", 401),
    "unknown-organisation": (lambda i: i.claims.update(org="NOBODY"), "unknown-organisation",
                             403),
    "organisation-not-a-party": (lambda i: i.claims.update(org="GHOST"),
                                 "unknown-organisation", 403),
    "no-console-role": (lambda i: i.claims.update(groups=["staff"]), "no-role", 403),
    "unsigned-alg-none": (lambda i: setattr(i, "unsigned", True), "bad-token", 401),
    "identifier-with-markup": (lambda i: i.claims.update(sub="<b>x</b>\nforged log"),
                               "bad-identifier", 401),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_hostile_or_unfit_token_is_refused_clearly_and_audited(
    console: Console, case: str
) -> None:
    arrange, code, status = HOSTILE[case]
    arrange(console.issuer)
    r = await console.sign_in()
    _refused(r, code, status)
    assert (await console.client.get("/operations")).status_code == 303, "not signed in"
    (record,) = console.records()
    assert record["outcome"] == "4" and record["outcomeDesc"] == f"sign-in-refused:{code}"
    text = json.dumps(record)
    if code in ("unknown-organisation", "no-role"):  # the token verified: the person is named
        assert f"{SUBJECT}@fivoor-idp" in text
    if code in ("bad-signature", "wrong-audience", "expired", "wrong-nonce"):
        assert SUBJECT not in text, "an unverified token names nobody"


async def test_state_binds_the_answer_to_this_browser_and_one_sign_in(console: Console) -> None:
    _refused(await console.sign_in(cookie=False), "state-mismatch", 401)
    _refused(await console.sign_in(replay=True), "state-mismatch", 401)
    r = await console.client.get("/oidc/callback?code=x&state=made-up",
                                 cookies={"kb_oidc": "made-up"})
    _refused(r, "state-mismatch", 401)
    refused = [r for r in console.records() if r["outcome"] == "4"]
    assert [r["outcomeDesc"] for r in refused] == ["sign-in-refused:state-mismatch"] * 3


async def test_a_wrong_pkce_verifier_gets_no_token(console: Console) -> None:
    """The issuer refuses the code with another verifier: the console sent the one it made."""
    start = await console.client.get("/oidc/fivoor-idp/start")
    location = start.headers["location"].replace("code_challenge=", "code_challenge=AAAA")
    async with httpx.AsyncClient() as browser:
        back = urlsplit((await browser.get(location)).headers["location"])
    _refused(await console.client.get(f"{back.path}?{back.query}"), "token-exchange-failed",
             401)


async def test_an_unknown_provider_is_refused(console: Console) -> None:
    _refused(await console.client.get("/oidc/nobody/start"), "unknown-provider", 401)


async def test_a_discovery_document_naming_another_issuer_is_refused(console: Console) -> None:
    """Discovery 1.0 §4.3: the document's issuer must be the configured one (else an attacker
    who controls the document could point the console at their own keys)."""
    console.issuer.discovery_issuer = "https://evil.example"
    _refused(await console.client.get("/oidc/fivoor-idp/start"), "wrong-issuer", 401)


async def test_an_identity_provider_session_expires_like_any_other(console: Console) -> None:
    assert (await console.sign_in()).status_code == 303
    assert (await console.client.get("/operations")).status_code == 200
    console.clock[0] += timedelta(minutes=31)
    r = await console.client.get("/operations")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_configuration_keeps_secrets_out_and_wants_https(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    base = ("providers:\n  - id: p\n    client_id: c\n    organisation: fivoor\n"
            "    roles: {ops: operations}\n")
    path.write_text(base + "    issuer: https://idp.example\n    client_secret: s3cret\n")
    with pytest.raises(ValueError, match="client_secret_env or client_secret_file"):
        load_providers(path)
    path.write_text(base + "    issuer: http://idp.example\n")
    with pytest.raises(ValueError, match="https"):
        load_providers(path)
    path.write_text(base + "    issuer: https://idp.example\n    client_secret_env: NOT_SET_X\n")
    with pytest.raises(ValueError, match="NOT_SET_X"):
        load_providers(path)
    path.write_text(base.replace("roles: {ops: operations}", "roles: {ops: superuser}")
                    + "    issuer: https://idp.example\n")
    with pytest.raises(ValueError):
        load_providers(path)
    path.write_text(base + "    issuer: https://idp.example\n")
    (p,) = load_providers(path)
    assert p.client_secret is None and p.roles == {"ops": Role.OPERATIONS}
    assert time.time() > 0
