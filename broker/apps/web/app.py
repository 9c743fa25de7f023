"""The web app (FastAPI): secure-bed dashboard, operations and compliance pages.

Every asset is served from this package (no CDN: the machines have no internet). Pages render
on the server; small local scripts keep them live (server-sent events for the dashboard, a
periodic fragment for operations). The Content-Security-Policy allows nothing but this origin.

Access: operations users see the dashboard and the operations page (no person-level data);
only compliance officers see the audit search. A BSN typed into the search is turned into
pseudonyms at once and never logged, stored, audited or sent back.

Language: Dutch by default, English switchable (:mod:`broker.apps.web.i18n`); every text, code
meaning and time on a page comes from there. Sign-in: local passwords, and optionally the
organisations' identity providers (:mod:`broker.apps.web.oidc`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from broker.apps.monitoring.model import age_text
from broker.apps.web import i18n, oidc_page, reprocess_page, trace_page, views
from broker.apps.web.answers import make_answer, send_answer
from broker.apps.web.auth import AUDIT_ROLES, Role, Session, SessionStore, User, UserStore
from broker.apps.web.backend import WebBackend
from broker.apps.web.compliance import SearchNotAudited
from broker.apps.web.oidc import OidcLogin
from broker.audit import AuditQuery, to_csv
from schemas.vocab import EscalationAction, EventCode, LegalBasis, PurposeOfUse

log = logging.getLogger(__name__)

COOKIE = "kb_session"
MAX_FORM_BYTES = 16 * 1024
PACKAGE = Path(str(files("broker.apps.web")))
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
KINDS = ("decision-permit", "decision-deny", "delivery", "consent-change", "refusal",
         "compliance-search", "sign-in")
OUTCOMES = ("success", "minor-failure", "serious-failure")


class NotSignedIn(Exception):
    """No valid session: pages redirect to the sign-in page, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but the role may not see this. ``key``: the catalogue text
    (:mod:`broker.apps.web.i18n`); ``roles``: the roles that may."""

    def __init__(self, key: str, roles: tuple[Role, ...] = ()) -> None:
        super().__init__(key)
        self.key = key
        self.roles = roles

    def say(self, lang: str) -> str:
        if not self.roles:
            return i18n.text(lang, self.key)
        names = i18n.text(lang, "refused.and").join(
            i18n.text(lang, f"role.{r.value}") for r in self.roles)
        return i18n.text(lang, self.key, roles=names)


ANSWER_ACTIONS = ("acknowledge", "assign", "request-info", "resolve")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/dashboard"


def _moment(text: str, *, end: bool) -> datetime | None:
    """A date from a date input (the whole day; an end date includes its day), in UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # never the input back: a BSN typed into the wrong field must not be repeated
        raise ValueError("compliance.not_a_date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment + timedelta(days=1) if end and len(text) == 10 else moment


POST_HOMES = {"/compliance": "/compliance", "/reprocess": "/trace",
              "/escalations": "/escalations", "/login": "/login"}


def _here(request: Request) -> str:
    """This page for the language switch: the same page and filters (without ``lang``), or for
    a form's answer (a POST) the page the form is on."""
    if request.method == "GET":
        url = request.url.remove_query_params("lang")
        return url.path + (f"?{url.query}" if url.query else "")
    for prefix, home in POST_HOMES.items():
        if request.url.path.startswith(prefix):
            return home
    return "/dashboard"


def create_app(
    backend: WebBackend,
    users: UserStore,
    sessions: SessionStore | None = None,
    *,
    secure_cookies: bool = False,
    oidc: OidcLogin | None = None,
) -> FastAPI:
    """The app over a started (or test) backend. ``secure_cookies``: behind TLS. ``oidc``:
    sign-in through the organisations' identity providers, next to local passwords."""
    sessions = sessions or SessionStore()
    app = FastAPI(title="ketenbus web", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
    i18n.install(templates.env)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    parties = sorted(p.id for p in backend.registry.parties)
    cadence = timedelta(seconds=backend.settings.capacity_cadence_seconds)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        chosen = request.query_params.get("lang")
        if chosen in i18n.LANGUAGES:  # the switch: kept for the next pages
            response.set_cookie(i18n.COOKIE, str(chosen), max_age=365 * 86400, path="/",
                                samesite="lax", httponly=True, secure=secure_cookies)
        if not request.url.path.startswith(("/static/", "/api/capacity/stream")):
            who = sessions.get(request.cookies.get(COOKIE), touch=False)
            # NEN 7513: the person, not only the organisation (no query string: no input)
            log.info("access %s %s %d by %s", request.method, request.url.path,
                     response.status_code,
                     f"{who.user.name} ({who.user.role.value}, "
                     f"{who.user.organisation or 'deployment'})" if who else "anonymous")
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        session = sessions.get(request.cookies.get(COOKIE), touch=False)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.say("en")}, status_code=403)
        return render(request, "refused.html", session, {"reason": exc.say(language(request))},
                      403)

    def language(request: Request) -> str:
        return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE),
                           request.headers.get("accept-language"))

    def session_of(request: Request, *roles: Role) -> Session:
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise NotSignedIn()
        if roles and session.user.role not in roles:
            raise Forbidden("refused.roles", roles)
        return session

    def render(request: Request, name: str, session: Session | None,
               context: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
        lang = language(request)
        ctx = {"user": session.user if session else None, "providers": providers,
               "lang": lang, "script_messages": i18n.script_messages(lang),
               "here": _here(request),
               "csrf": session.csrf if session else "", "Role": Role, **(context or {})}
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    async def form(request: Request, session: Session | None = None) -> dict[str, list[str]]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Forbidden("refused.form_too_large")
        data = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if session is not None and data.get("csrf", [""])[0] != session.csrf:
            raise Forbidden("refused.form_expired")
        return data

    def one(data: dict[str, list[str]], name: str) -> str:
        return (data.get(name) or [""])[0].strip()

    # --- sign-in ----------------------------------------------------------------------------

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "figures_at": backend.collector.snapshot.taken_at.isoformat()}

    @app.get("/", response_model=None)
    async def root(request: Request) -> Response:
        return RedirectResponse("/dashboard", status_code=303)

    providers = sorted(oidc.providers.values(), key=lambda p: p.label) if oidc else []

    def signed_in(user: User, target: str) -> Response:
        """A new session for ``user`` and its cookie, on the way to ``target``."""
        session = sessions.create(user)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict",
                            secure=secure_cookies, path="/",
                            max_age=int(sessions.absolute.total_seconds()))
        return response

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/dashboard") -> HTMLResponse:
        return render(request, "login.html", None, {"next": _safe_next(next), "failed": False})

    @app.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        data = await form(request)
        name, password = one(data, "username"), (data.get("password") or [""])[0]
        target = _safe_next(one(data, "next"))
        user = await asyncio.to_thread(users.authenticate, name, password)
        if user is None:
            log.info("sign-in failed")
            return render(request, "login.html", None, {"next": target, "failed": True}, 401)
        log.info("user %s (%s) signed in", user.name, user.role.value)
        return signed_in(user, target)

    @app.post("/logout", response_model=None)
    async def logout(request: Request) -> Response:
        session = sessions.get(request.cookies.get(COOKIE))
        if session is not None:
            await form(request, session)
            sessions.drop(session.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # --- dashboard ----------------------------------------------------------------------------

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard(request: Request, region: str = "") -> HTMLResponse:
        session = session_of(request)
        data = views.capacity_view(backend.collector.snapshot, cadence)
        region = region if region in data["regions"] else ""
        return render(request, "dashboard.html", session, {
            "title": "dashboard.title", "data": data, "region": region, "levels": views.LEVELS,
            "rows": views.capacity_rows(data, region),
        })

    @app.get("/api/capacity")
    async def capacity(request: Request) -> dict[str, Any]:
        session_of(request)
        return views.capacity_view(backend.collector.snapshot, cadence)

    @app.get("/api/capacity/stream")
    async def capacity_stream(request: Request) -> StreamingResponse:
        session = session_of(request)

        async def events() -> AsyncIterator[str]:
            version = -1
            while True:
                if sessions.get(session.token, touch=False) is None:
                    yield "event: signed-out\ndata: {}\n\n"
                    return
                current = backend.collector.version
                if current != version:
                    version = current
                    payload = views.capacity_view(backend.collector.snapshot, cadence)
                    yield f"data: {json.dumps(payload)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                if await request.is_disconnected():
                    return
                await backend.collector.wait_for_change(version, timeout=10.0)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    # --- operations ---------------------------------------------------------------------------

    def operations_context(request: Request) -> dict[str, Any]:
        snap = backend.collector.snapshot
        hours = views.parse_hours(request.query_params.get("hours"))
        flow = views.parse_flow(request.query_params.get("flow"))
        return {
            "snap": snap, "hours": hours, "flow": flow, "hour_choices": views.HOUR_CHOICES,
            "flow_choices": views.FLOWS, "flows": views.flows_view(snap, hours, flow),
            "stuck": views.stuck_view(snap), "age": age_text,
        }

    @app.get("/operations", response_class=HTMLResponse)
    async def operations(request: Request) -> HTMLResponse:
        session = session_of(request)
        return render(request, "operations.html", session,
                      {"title": "operations.title", **operations_context(request)})

    @app.get("/operations/live", response_class=HTMLResponse)
    async def operations_live(request: Request) -> HTMLResponse:
        session = session_of(request)
        return render(request, "operations_live.html", session, operations_context(request))

    # --- escalations: the national coordination point's page -----------------------------------

    def escalations_context(request: Request, error: str = "") -> dict[str, Any]:
        board = backend.collector.escalation_board
        now = datetime.now(UTC)
        rows = [
            {"id": eid, "case": case, "f": f, "age": age_text(f.raised_at, now),
             "stuck": age_text(f.stuck_since, now), "answered": f.answered_at}
            for eid, case, f in board.items()
        ]
        return {"title": "escalations.title", "rows": rows, "error": error,
                "can_answer": backend.coordination is not None,
                "actions": ANSWER_ACTIONS, "refused": sorted(set(board.refused.values())),
                "sent": request.query_params.get("sent", "")[:32]}

    @app.get("/escalations", response_class=HTMLResponse)
    async def escalations(request: Request) -> HTMLResponse:
        session = session_of(request, Role.OPERATIONS)
        return render(request, "escalations.html", session, escalations_context(request))

    @app.post("/escalations/answer", response_model=None)
    async def escalation_answer(request: Request) -> Response:
        """Acknowledge, assign, ask for information or resolve, as the coordination point: the
        answer goes through the router (which refuses it when this point was not asked or the
        escalation is resolved) and shows here once the router accepted it."""
        session = session_of(request, Role.OPERATIONS)
        data = await form(request, session)
        client = backend.coordination
        board = backend.collector.escalation_board
        action, eid = one(data, "action"), one(data, "escalation")
        raised_by = one(data, "raised_by")
        found = [(c, f) for i, c, f in board.items() if i == eid and f.raised_by == raised_by]
        if client is None or action not in ANSWER_ACTIONS or not found:
            error = "escalations.no_such" if client else "escalations.no_keys"
            return render(request, "escalations.html", session,
                          escalations_context(request, error), 422)
        case, fig = found[0]
        try:
            answer, bundle = make_answer(
                client, escalation_id=eid, raised_by=raised_by, zvh=fig.zvh, case_id=case,
                action=EscalationAction(action), assignee=one(data, "assignee") or None,
                note=one(data, "note")[:4000] or None,
            )
        except ValidationError as err:
            msg = str(err.errors()[0].get("msg", "invalid answer"))
            return render(request, "escalations.html", session,
                          escalations_context(request, msg), 422)
        try:
            board.sent(await send_answer(backend.settings, client, bundle), answer)
        except KafkaError as err:  # the broker away: say so, never a bare 500
            log.error("escalation answer not sent: %s", type(err).__name__)
            return render(request, "escalations.html", session, escalations_context(
                request, "escalations.not_sent"), 503)
        log.info("user %s sent %s for an escalation", session.user.name, action)
        return RedirectResponse(f"/escalations?sent={quote(action)}", status_code=303)

    # --- compliance ---------------------------------------------------------------------------

    def compliance_context(**extra: Any) -> dict[str, Any]:
        return {
            "title": "compliance.title", "parties": parties,
            "purposes": [p.value for p in PurposeOfUse],
            "bases": [b.value for b in LegalBasis], "kinds": KINDS, "outcomes": OUTCOMES,
            "flows": [e.value for e in EventCode], "filters": {}, "result": None,
            "report": None, "error": None, "person": None,
            "can_search_person": bool(backend.compliance and backend.compliance.can_search_person),
            "available": backend.compliance is not None, **extra,
        }

    def query_from(
        data: dict[str, list[str]], session: Session
    ) -> tuple[AuditQuery, dict[str, str], str | None]:
        """The query of a search form, within the organisations the user may see; the filters
        to show again (without the BSN); the person's audit-domain pseudonym."""
        assert backend.compliance is not None
        filters = {k: one(data, k) for k in ("party", "sender", "purpose", "legal_basis",
                                              "since", "until", "outcome", "kind", "flow")}
        persons: dict[str, str] = {}
        bsn = one(data, "bsn")
        if bsn:
            if not backend.compliance.can_search_person:
                raise ValueError("compliance.no_pseudonyms")
            try:
                persons = backend.compliance.person_pseudonyms(bsn)
            except ValueError:  # the message never repeats the BSN
                raise ValueError("compliance.not_a_bsn") from None
        else:
            persons = {k.removeprefix("person_"): one(data, k)
                       for k in ("person_audit", "person_router") if one(data, k)}
        query = AuditQuery(
            persons=frozenset(persons.values()),
            party=filters["party"] or None,
            sender=filters["sender"] or None,
            purposes=frozenset({filters["purpose"]} - {""}),
            legal_bases=frozenset({filters["legal_basis"]} - {""}),
            since=_moment(filters["since"], end=False),
            until=_moment(filters["until"], end=True),
            outcomes=frozenset({filters["outcome"]} - {""}),
            kinds=frozenset({filters["kind"]} - {""}),
            flows=frozenset({filters["flow"]} - {""}),
            organisations=session.user.scope or frozenset(),
        )
        filters.update({f"person_{k}": v for k, v in persons.items()})
        return query, filters, persons.get("audit")

    @app.get("/compliance", response_class=HTMLResponse)
    async def compliance(request: Request) -> HTMLResponse:
        session = session_of(request, *AUDIT_ROLES)
        return render(request, "compliance.html", session, compliance_context())

    @app.post("/compliance/search", response_class=HTMLResponse)
    async def compliance_search(request: Request) -> HTMLResponse:
        session = session_of(request, *AUDIT_ROLES)
        data = await form(request, session)
        if backend.compliance is None:
            return render(request, "compliance.html", session, compliance_context(), 503)
        try:
            query, filters, person = query_from(data, session)
        except ValueError as exc:  # the message never repeats a BSN
            return render(request, "compliance.html", session,
                          compliance_context(error=str(exc)), 422)
        try:
            result = await backend.compliance.search(query, officer=session.user.name,
                                                     person=person)
        except SearchNotAudited as exc:
            log.error("compliance search refused: %s", exc)
            return render(request, "compliance.html", session,
                          compliance_context(filters=filters, error=str(exc)), 503)
        return render(request, "compliance.html", session,
                      compliance_context(filters=filters, result=result, person=person))

    @app.post("/compliance/export.csv", response_model=None)
    async def compliance_export(request: Request) -> Response:
        session = session_of(request, *AUDIT_ROLES)
        data = await form(request, session)
        if backend.compliance is None:
            return PlainTextResponse("the audit search is not available here", 503)
        try:
            query, _, person = query_from(data, session)
            result = await backend.compliance.search(query, officer=session.user.name,
                                                     person=person, export=True)
        except ValueError as exc:
            return PlainTextResponse(i18n.text(language(request), str(exc)), 422)
        except SearchNotAudited as exc:
            return PlainTextResponse(str(exc), 503)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Response(to_csv(result.rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="ketenbus-audit-{stamp}.csv"'})

    @app.post("/compliance/verify", response_class=HTMLResponse)
    async def compliance_verify(request: Request) -> HTMLResponse:
        session = session_of(request, *AUDIT_ROLES)
        await form(request, session)
        if backend.compliance is None:
            return render(request, "compliance.html", session, compliance_context(), 503)
        report = await backend.compliance.verify()
        return render(request, "compliance.html", session, compliance_context(report=report))

    if oidc is not None:
        oidc_page.mount(app, backend, oidc, render, signed_in, _safe_next)
    trace_page.mount(app, backend, session_of, render)
    reprocess_page.mount(app, backend, session_of, render, form)
    return app
