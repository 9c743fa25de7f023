"""The ZVH adapter's HTTP endpoint (FastAPI), bound to 127.0.0.1 by default.

``POST /referrals``, ``/consents``, ``/escalations``, ``/escalation-answers`` and
``/withdrawals`` take one ZVH document; 202 with the message id when accepted, 422 with every
field problem (and the FHIR OperationOutcome) when not, 413 for a body over ``max_input_bytes``
(docs/adapters/limits.md). The body is read exactly like an inbox file (UTF-8, the same depth and
size limits), so file and HTTP accept and refuse the same bytes. A document sent before answers
202 with its original message id and ``"repeat": true``. A referral with ``corrects`` is a
correction; whether the router forwards a correction or withdrawal (only the original's sender
may) comes back as its response, like any message's.

With an :class:`~adapters.zvh.auth.IntakeAuth` (the default of every deployment: setting
``zvh_http_auth``), every ``POST`` needs the party's bearer token or client certificate first:
401 or 403 before the body is read (adapters/zvh/auth.py lists the reasons), each refusal
audited on the adapter's chain by the digest of the token or certificate name presented, never
the credential itself (and nothing of a malformed one, which may be a password).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.common.limits import read_json, refusal, safe_detail, too_large
from adapters.common.runtime import error_document
from adapters.zvh.auth import REALM, AuthRefused, IntakeAuth
from adapters.zvh.service import RefusedInput, ZvhAdapter
from adapters.zvh.tls import names_of
from broker.component.lifecycle import BrokerNotReady
from broker.trust.intake_token import TOKEN_RE
from schemas.errors import Issue, MessageError

log = logging.getLogger(__name__)


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (:class:`_TooLarge`) as soon as it is known to exceed
    ``limit``: from ``Content-Length`` before reading, else while it streams in. A 50 MB post
    never enters memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(adapter: ZvhAdapter, auth: IntakeAuth | None = None) -> FastAPI:
    """The intake of ``adapter``; ``auth`` None leaves it open (``zvh_http_auth = "none"``,
    loopback only)."""
    app = FastAPI(title=f"ketenbus ZVH adapter ({adapter.party_id})", version="0.1.0")

    async def _refused(raw: bytes, err: MessageError, status: int, **kw: Any) -> JSONResponse:
        """Every refusal: dead-lettered and audited, answered with the reason and the FHIR
        OperationOutcome."""
        adapter.refused += 1
        ref = await adapter.runtime.dead_letter(
            raw, None, err.reason, safe_detail(err), source="http", **kw
        )
        adapter.runtime.event("invalid", None, f"HTTP input refused: {err.reason}")
        return JSONResponse({**error_document(err, "http"), "reference": ref}, status_code=status)

    async def _unauthorised(request: Request, no: AuthRefused) -> JSONResponse:
        """A refusal before the body is read: audited by the digest of the credential shown
        (the registry's own record of a token, for a known one), counted and answered. Not
        dead-lettered: the body is not read, and nothing of it is kept (it is no party's
        input, or not input this intake takes from it)."""
        adapter.refused += 1
        names = names_of(request.scope)
        shown = request.headers.get("authorization", "").partition(" ")[2].strip()
        if not TOKEN_RE.match(shown):
            shown = ""  # maybe a password sent by mistake: not even its digest is kept
        shown = f"certificate:{names[0]}" if names else shown
        digest = hashlib.sha256(shown.encode()).hexdigest()
        await adapter.runtime.audit_refusal(no.reason, b"", "http", digest=digest)
        adapter.runtime.event("unauthorised", None, f"HTTP intake refused: {no.reason}")
        code = "login" if no.status == 401 else "forbidden"
        doc = error_document(refusal(no.reason, no.problem, code=code), "http")
        headers = {"WWW-Authenticate": REALM} if no.status == 401 else {}
        return JSONResponse(doc, status_code=no.status, headers=headers)

    async def _accept(request: Request, expected: str) -> JSONResponse:
        try:
            if auth is not None:
                try:
                    auth.check(
                        request.headers.get("authorization"), expected, names_of(request.scope)
                    )
                except AuthRefused as no:
                    return await _unauthorised(request, no)
            return await _take(request, expected)
        except BrokerNotReady as err:
            return JSONResponse(
                {"status": "unavailable", "reason": "broker-not-ready", "detail": str(err)},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        except Exception as err:  # a bug: still an answer with a reason, never a bare 500
            log.error("HTTP intake failed: %s", type(err).__name__)
            problem = refusal(
                "internal-error", "the adapter failed on this input", code="exception"
            )
            return JSONResponse(error_document(problem, "http"), status_code=500)

    async def _take(request: Request, expected: str) -> JSONResponse:
        limits = adapter.limits
        try:
            raw = await _body(request, limits.max_bytes)
        except _TooLarge as big:
            digest = hashlib.sha256(f"http body of {big.size} bytes".encode()).hexdigest()
            return await _refused(b"", too_large(big.size, limits.max_bytes), 413, digest=digest)
        try:
            data: Any = read_json(raw, limits)
        except MessageError as err:
            return await _refused(raw, err, 422 if err.reason != "not-json" else 400)
        if isinstance(data, dict):
            data.setdefault("type", expected)
            if data["type"] != expected:
                wrong = MessageError(
                    [Issue("type", "value", f"this endpoint takes type '{expected}'", "type")]
                )
                return await _refused(raw, wrong, 422)
        try:
            accepted = await adapter.submit_json(data)
        except MessageError as err:
            ref = {"reference": err.reference} if isinstance(err, RefusedInput) else {}
            return JSONResponse({**error_document(err, "http"), **ref}, status_code=422)
        body: dict[str, Any] = {
            "status": "accepted",
            "message_id": accepted.message_id,
            "case": accepted.case,
        }
        if accepted.repeat:
            # sent before: the original message id; its outcome is the original outcome
            body["repeat"] = True
            outcome = adapter.responses.get(accepted.message_id)
            if outcome is not None:
                body["outcome"] = outcome["status"]
        return JSONResponse(body, status_code=202)

    @app.post("/referrals", status_code=202)
    async def post_referral(request: Request) -> JSONResponse:
        """Submit an aanmelding (ZVH referral document)."""
        return await _accept(request, "referral")

    @app.post("/consents", status_code=202)
    async def post_consent(request: Request) -> JSONResponse:
        """Submit a consent or a revocation."""
        return await _accept(request, "consent")

    @app.post("/escalations", status_code=202)
    async def post_escalation(request: Request) -> JSONResponse:
        """Raise an escalation of a stuck case (regional step first, or ``level: national``)."""
        return await _accept(request, "escalation")

    @app.post("/escalation-answers", status_code=202)
    async def post_escalation_answer(request: Request) -> JSONResponse:
        """Answer an escalation, when this ZVH is its region's escalation step."""
        return await _accept(request, "escalation-answer")
    @app.post("/withdrawals", status_code=202)
    async def post_withdrawal(request: Request) -> JSONResponse:
        """Withdraw a message this ZVH sent (``{"message_id": ...}``): entered in error."""
        return await _accept(request, "withdrawal")

    @app.get("/health")
    async def health() -> JSONResponse:
        """The adapter's health (broker reachable, restored after a restart...) and counters;
        503 while it cannot accept input."""
        body = {
            **adapter.runtime.health.as_dict(),
            "party": adapter.party_id,
            "accepted": adapter.accepted,
            "refused": adapter.refused,
        }
        return JSONResponse(body, status_code=200 if adapter.runtime.health.ok else 503)

    return app
