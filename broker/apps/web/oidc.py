"""OpenID Connect sign-in for organisations that have their own identity provider (issue 17).

Why: staff of a care provider or a municipality already sign in to their own systems; the
console should accept that identity instead of a second password, and record the *person* as
the NEN 7513 user (NEN 7513:2018 §5.2: who did it), not the organisation.

The flow is the authorization-code flow (OpenID Connect Core 1.0 §3.1) with PKCE (RFC 7636,
``S256``), through Authlib's client:

- ``state`` binds the answer to this browser (a short-lived cookie holds it, RFC 6749 §10.12)
  and to one pending sign-in (used once, ten minutes at most);
- ``nonce`` binds the ID token to that sign-in (Core §3.1.2.1, §15.5.2);
- the ID token is verified (Core §3.1.3.7): its signature against the issuer's published keys
  (JWKS), ``iss`` equal to the configured issuer, ``aud`` holding our client id, ``exp`` in the
  future, ``iat`` not in the future, and the nonce ours.

Claims map to a :class:`~broker.apps.web.auth.User`: the user claim (``sub`` by default: a
stable, non-personal identifier) names the person, a roles claim gives the role through the
provider's ``roles`` mapping, and the organisation is the provider's own or, with
``organisation_claim``, the party its ``organisations`` mapping names. An organisation that is
not a party of the registry, or no mapped role, is refused.

Providers are configured in a YAML file (``<state dir>/web/oidc.yaml``, or ``ketenbus web serve
--oidc FILE``); a client secret comes from an environment variable or a file, never from the
configuration itself (so it is not committed with it).
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from authlib.common.security import is_secure_transport
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from broker.apps.web.auth import NAME_CHARS, Role, User

OIDC_FILE = Path("web") / "oidc.yaml"
PENDING_SECONDS = 600  # a sign-in not finished within ten minutes starts again
MAX_PENDING = 1000  # unauthenticated starts cannot fill the memory
LEEWAY_SECONDS = 60  # clock skew between us and the identity provider
ALGORITHMS = ("RS256", "ES256", "PS256")  # RS256 is the one every provider must offer (Core §15.1)
PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
SUBJECT = re.compile(r"^[A-Za-z0-9._@:+\-]{1,128}$")  # a user id that is safe in logs and audit


class SignInRefused(Exception):
    """An OpenID Connect sign-in that is refused; ``code`` is stable (the page explains it in
    the user's language, the audit record keeps the code)."""

    def __init__(self, code: str, detail: str = "", *, subject: str | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.subject = subject  # the person, once a verified token named them


@dataclass(frozen=True)
class Provider:
    """One organisation's identity provider."""

    id: str
    label: str
    issuer: str
    client_id: str
    client_secret: str | None
    roles: Mapping[str, Role]  # value of the roles claim -> role; the first match wins
    organisation: str | None = None
    organisation_claim: str | None = None
    organisations: Mapping[str, str] = field(default_factory=dict)  # claim value -> party id
    user_claim: str = "sub"
    roles_claim: str = "roles"
    scope: str = "openid"

    def organisation_of(self, claims: Mapping[str, Any], known: Callable[[str], bool]) -> str:
        """The party id the person works for; refused when it is not a known party."""
        if self.organisation_claim:
            value = claims.get(self.organisation_claim)
            party = self.organisations.get(value) if isinstance(value, str) else None
        else:
            party = self.organisation
        if party is None or not known(party):
            raise SignInRefused("unknown-organisation",
                                "the organisation named by the identity provider is not a "
                                "party of this ketenbus")
        return party

    def role_of(self, claims: Mapping[str, Any]) -> Role:
        value = claims.get(self.roles_claim)
        held = {value} if isinstance(value, str) else (
            {v for v in value if isinstance(v, str)} if isinstance(value, list) else set())
        for claim_value, role in self.roles.items():
            if claim_value in held:
                return role
        raise SignInRefused("no-role", "the identity provider gives this person no console role")

    def user(self, claims: Mapping[str, Any], known: Callable[[str], bool]) -> User:
        """The console user of verified claims: the person (user claim at this provider),
        their role and organisation."""
        subject = claims.get(self.user_claim)
        if not isinstance(subject, str) or not SUBJECT.match(subject):
            raise SignInRefused("bad-identifier", f"claim {self.user_claim!r} is missing or "
                                "not a plain identifier")
        name = f"{subject}@{self.id}"
        try:
            return User(name, self.role_of(claims), self.organisation_of(claims, known))
        except SignInRefused as exc:
            exc.subject = name  # a verified token named the person: the refusal names them
            raise


def _secret(entry: Mapping[str, Any], base: Path) -> str | None:
    if "client_secret" in entry:
        raise ValueError("put the client secret in client_secret_env or client_secret_file, "
                         "not in the configuration")
    if env := entry.get("client_secret_env"):
        value = os.environ.get(str(env))
        if not value:
            raise ValueError(f"environment variable {env} (client secret) is not set")
        return value
    if path := entry.get("client_secret_file"):
        return (base / str(path)).read_text(encoding="utf-8").strip()
    return None  # a public client: PKCE alone


def _party_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or not set(value) <= NAME_CHARS:
        raise ValueError(f"{what}: a party id (a-z, 0-9, '.', '_', '-')")
    return value


def load_providers(path: Path) -> list[Provider]:
    """The providers of a configuration file; ``ValueError`` naming what is wrong."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    providers: list[Provider] = []
    for entry in data.get("providers", []):
        pid = str(entry.get("id", ""))
        if not PROVIDER_ID.match(pid):
            raise ValueError(f"provider id {pid!r}: 1-32 of a-z, 0-9 and '-'")
        issuer = str(entry.get("issuer", ""))
        if not is_secure_transport(issuer):  # https, or a loopback test issuer
            raise ValueError(f"provider {pid}: the issuer must be an https URL")
        roles = {str(k): Role(v) for k, v in (entry.get("roles") or {}).items()}
        if not roles:
            raise ValueError(f"provider {pid}: map at least one value of the roles claim")
        organisation = entry.get("organisation")
        organisations = {str(k): _party_id(v, f"provider {pid}: organisations")
                         for k, v in (entry.get("organisations") or {}).items()}
        if organisation is None and not (entry.get("organisation_claim") and organisations):
            raise ValueError(f"provider {pid}: give organisation, or organisation_claim with "
                             "organisations")
        providers.append(Provider(
            id=pid, label=str(entry.get("label", pid)), issuer=issuer.rstrip("/"),
            client_id=str(entry["client_id"]), client_secret=_secret(entry, path.parent),
            roles=roles,
            organisation=_party_id(organisation, f"provider {pid}: organisation")
            if organisation is not None else None,
            organisation_claim=entry.get("organisation_claim"), organisations=organisations,
            user_claim=str(entry.get("user_claim", "sub")),
            roles_claim=str(entry.get("roles_claim", "roles")),
            scope=str(entry.get("scope", "openid")),
        ))
    if len({p.id for p in providers}) != len(providers):
        raise ValueError("two providers with the same id")
    return providers


def verify_id_token(
    token: str, jwks: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of an ID token that passed every check of Core §3.1.3.7 (signature, ``iss``,
    ``aud``, ``exp``, ``iat``, ``nonce``); :class:`SignInRefused` naming the first that failed."""
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SignInRefused("bad-keys", "the identity provider's key set is unusable") from exc
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
    except BadSignatureError as exc:
        raise SignInRefused("bad-signature", "the ID token's signature does not verify "
                            "against the identity provider's keys") from exc
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SignInRefused("bad-token", "the ID token is not a signed JWT of this "
                            "identity provider") from exc
    claims = dict(decoded.claims)
    checks = JWTClaimsRegistry(
        now=now if now is not None else int(time.time()), leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer}, aud={"essential": True, "value": client_id},
        exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
    )
    try:
        checks.validate(claims)
    except ExpiredTokenError as exc:
        raise SignInRefused("expired", "the ID token has expired") from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        claim = getattr(exc, "claim", "") or str(exc)
        code = {"iss": "wrong-issuer", "aud": "wrong-audience"}.get(claim, "bad-claims")
        raise SignInRefused(code, f"claim {claim!r} of the ID token is not acceptable") from exc
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise SignInRefused("wrong-audience", "the ID token was issued to another party (azp)")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
        raise SignInRefused("wrong-nonce", "the ID token does not belong to this sign-in")
    return claims


@dataclass(frozen=True)
class Pending:
    provider: str
    nonce: str
    verifier: str
    redirect_uri: str
    next: str
    created: float


@dataclass
class Discovery:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


class OidcLogin:
    """The console's OpenID Connect client: starts sign-ins and finishes them into a user."""

    def __init__(
        self,
        providers: list[Provider],
        known_party: Callable[[str], bool],
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.providers = {p.id: p for p in providers}
        self.known_party = known_party
        self.clock = clock
        self._transport = transport
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._discovery: dict[str, Discovery] = {}

    def _client(self, provider: Provider, **kwargs: Any) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=provider.client_id, client_secret=provider.client_secret,
            code_challenge_method="S256", scope=provider.scope, timeout=10.0,
            token_endpoint_auth_method="client_secret_basic" if provider.client_secret
            else "none", transport=self._transport, **kwargs)

    async def discover(self, provider: Provider) -> Discovery:
        """The provider's endpoints from its discovery document (Discovery 1.0 §4), whose
        ``issuer`` must be the configured one (§4.3)."""
        found = self._discovery.get(provider.id)
        if found is not None:
            return found
        url = f"{provider.issuer}/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=10.0, transport=self._transport) as http:
                doc = (await http.get(url)).raise_for_status().json()
            if doc.get("issuer", "").rstrip("/") != provider.issuer:
                raise SignInRefused("wrong-issuer", "the discovery document names another "
                                    "issuer")
            found = Discovery(str(doc["authorization_endpoint"]), str(doc["token_endpoint"]),
                              str(doc["jwks_uri"]))
        except (httpx.HTTPError, ValueError, KeyError, AttributeError) as exc:
            raise SignInRefused("issuer-unreachable", "the identity provider could not be "
                                "reached") from exc
        for endpoint in (found.authorization_endpoint, found.token_endpoint, found.jwks_uri):
            if not is_secure_transport(endpoint):
                raise SignInRefused("issuer-unreachable", "an endpoint is not https")
        self._discovery[provider.id] = found
        return found

    def _purge(self) -> None:
        now = self.clock()
        for state in [s for s, p in self._pending.items() if now - p.created > PENDING_SECONDS]:
            del self._pending[state]
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)

    async def start(self, provider_id: str, redirect_uri: str, next_page: str) -> tuple[str, str]:
        """The identity provider's authorization URL and the ``state`` to keep in a cookie."""
        provider = self.providers.get(provider_id)
        if provider is None:
            raise SignInRefused("unknown-provider", "no such identity provider")
        endpoints = await self.discover(provider)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # RFC 7636 §4.1: 43-128 characters
        async with self._client(provider, redirect_uri=redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoints.authorization_endpoint, state=state, code_verifier=verifier,
                nonce=nonce)
        self._purge()
        self._pending[state] = Pending(provider.id, nonce, verifier, redirect_uri, next_page,
                                       self.clock())
        return str(url), state

    def take(self, state: str, cookie_state: str | None) -> Pending:
        """The pending sign-in of ``state``, once: refused when unknown, expired or begun in
        another browser."""
        if not state or not cookie_state or not hmac.compare_digest(state, cookie_state):
            raise SignInRefused("state-mismatch", "this answer does not belong to a sign-in "
                                "started in this browser")
        pending = self._pending.pop(state, None)
        if pending is None or self.clock() - pending.created > PENDING_SECONDS:
            raise SignInRefused("state-mismatch", "the sign-in expired or was already used")
        return pending

    async def finish(self, pending: Pending, code: str) -> User:
        """Exchange the code (with the PKCE verifier), verify the ID token, map its claims."""
        provider = self.providers[pending.provider]
        endpoints = await self.discover(provider)
        try:
            async with self._client(provider, redirect_uri=pending.redirect_uri) as client:
                token = await client.fetch_token(
                    endpoints.token_endpoint, grant_type="authorization_code", code=code,
                    code_verifier=pending.verifier)
                jwks = (await client.get(endpoints.jwks_uri)).raise_for_status().json()
        except Exception as exc:  # Authlib's OAuthError, httpx errors, a non-JSON answer
            raise SignInRefused("token-exchange-failed", "the identity provider did not hand "
                                "out a token for this sign-in") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("bad-token", "the identity provider's answer has no ID token")
        claims = verify_id_token(id_token, jwks, issuer=provider.issuer,
                                 client_id=provider.client_id, nonce=pending.nonce,
                                 now=int(self.clock()))
        return provider.user(claims, self.known_party)


def load(path: Path, known_party: Callable[[str], bool]) -> OidcLogin | None:
    """The OpenID Connect client of a configuration file; ``None`` when there is none."""
    if not path.exists():
        return None
    providers = load_providers(path)
    return OidcLogin(providers, known_party) if providers else None
