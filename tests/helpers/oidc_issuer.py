"""A local OpenID Connect issuer for tests, served on 127.0.0.1: discovery, a JWKS with an RSA
key made at run time, an authorize endpoint that signs the configured person in at once, and a
token endpoint that checks the client's secret, the redirect URI and the PKCE verifier (RFC 7636
§4.6) before it hands out an ID token signed with joserfc.

Knobs for hostile tests: ``claims`` (who signs in), ``tamper`` (change the ID token's claims
before signing), ``sign_with`` (sign with another valid key that the JWKS does not publish),
``unsigned`` (``"alg": "none"``), ``discovery_issuer`` (a discovery document naming another
issuer)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from broker.apps.web.server import WebServer


def new_key(kid: str = "test-key") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})


@dataclass
class TestIssuer:
    client_id: str = "ketenbus-console"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    key: RSAKey = field(default_factory=new_key)
    claims: dict[str, Any] = field(default_factory=dict)
    tamper: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    sign_with: RSAKey | None = None
    unsigned: bool = False  # hand out an ID token with "alg": "none"
    discovery_issuer: str | None = None  # name another issuer in the discovery document
    url: str = ""
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _server: WebServer | None = None

    __test__ = False  # not a pytest class

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
        ])

    async def start(self) -> str:
        self._server = WebServer(self.app())  # type: ignore[arg-type]
        self.url = await self._server.start(0)
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.discovery_issuer or self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        })

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, 400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "why": "PKCE required"}, 400)
        code = secrets.token_urlsafe(16)
        self._codes[code] = {k: q.get(k, "") for k in
                             ("redirect_uri", "nonce", "code_challenge", "scope")}
        back = urlencode({"code": code, "state": q.get("state", "")})
        return RedirectResponse(f"{q['redirect_uri']}?{back}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        self.token_requests.append(form)
        auth = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if auth != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self._codes.pop(form.get("code", ""), None)  # a code is used once
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, 400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["code_challenge"]:
            return JSONResponse({"error": "invalid_grant", "why": "PKCE verifier"}, 400)
        now = int(time.time())
        claims = {"iss": self.url, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"], **self.claims}
        if self.tamper is not None:
            claims = self.tamper(claims)
        key = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        if self.unsigned:  # the classic forgery: no signature at all
            header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
            id_token = f"{header}.{id_token.split('.')[1]}."
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                             "expires_in": 300, "id_token": id_token})
