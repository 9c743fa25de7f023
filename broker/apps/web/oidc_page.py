"""The web app's OpenID Connect routes: ``/oidc/{provider}/start`` sends the browser to the
organisation's identity provider, ``/oidc/callback`` takes it back (:mod:`broker.apps.web.oidc`
checks everything). Every sign-in and every refusal is audited with the person when a verified
token named one (NEN 7513), and logged without the token's claims."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broker.apps.web.auth import User
from broker.apps.web.backend import WebBackend
from broker.apps.web.compliance import SearchNotAudited
from broker.apps.web.oidc import OidcLogin, SignInRefused

log = logging.getLogger(__name__)
STATE_COOKIE = "kb_oidc"


def mount(
    app: FastAPI,
    backend: WebBackend,
    oidc: OidcLogin,
    render: Callable[..., HTMLResponse],
    signed_in: Callable[[User, str], Response],
    safe_next: Callable[[str | None], str],
) -> None:
    """Add the two routes; ``signed_in`` makes the session and its cookie."""

    async def audit(user: str | None, provider: str, *, refused: str | None = None,
                    role: str | None = None, organisation: str | None = None) -> None:
        if backend.compliance is None:
            log.warning("no console chain here: the sign-in is logged, not audited")
            return
        await backend.compliance.audit_sign_in(user, provider=provider, refused=refused,
                                               role=role, organisation=organisation)

    async def refuse(request: Request, exc: SignInRefused, provider: str) -> HTMLResponse:
        log.info("sign-in through %s refused: %s (%s)", provider, exc.code,
                 exc.subject or "no verified person")
        try:
            await audit(exc.subject, provider, refused=exc.code)
        except SearchNotAudited as err:
            log.error("refused sign-in not audited: %s", err)
        status = 403 if exc.code in ("unknown-organisation", "no-role") else 401
        response = render(request, "login.html", None,
                          {"next": "/dashboard", "failed": False, "oidc_error": exc.code},
                          status)
        response.delete_cookie(STATE_COOKIE, path="/oidc")
        return response

    @app.get("/oidc/{provider}/start", response_model=None)
    async def oidc_start(request: Request, provider: str, next: str = "/dashboard") -> Response:
        try:
            url, state = await oidc.start(provider, str(request.url_for("oidc_callback")),
                                          safe_next(next))
        except SignInRefused as exc:
            return await refuse(request, exc, provider[:32])
        response = RedirectResponse(url, status_code=303)
        # lax, not strict: the identity provider's redirect back is a cross-site navigation
        response.set_cookie(STATE_COOKIE, state, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/oidc", max_age=600)
        return response

    @app.get("/oidc/callback", response_model=None, name="oidc_callback")
    async def oidc_callback(request: Request) -> Response:
        params: dict[str, Any] = dict(request.query_params)
        provider = "unknown"
        try:
            pending = oidc.take(str(params.get("state", "")), request.cookies.get(STATE_COOKIE))
            provider = pending.provider
            if params.get("error"):  # the provider said no (RFC 6749 §4.1.2.1)
                raise SignInRefused("provider-refused", "the identity provider refused")
            user = await oidc.finish(pending, str(params.get("code", "")))
        except SignInRefused as exc:
            return await refuse(request, exc, provider)
        try:
            await audit(user.name, provider, role=user.role.value,
                        organisation=user.organisation)
        except SearchNotAudited as err:  # NEN 7513: no unaudited access
            log.error("sign-in not audited, so refused: %s", err)
            return await refuse(request, SignInRefused("not-audited", subject=user.name),
                                provider)
        log.info("user %s (%s, %s) signed in through %s", user.name, user.role.value,
                 user.organisation, provider)
        response = signed_in(user, pending.next)
        response.delete_cookie(STATE_COOKIE, path="/oidc")
        return response
