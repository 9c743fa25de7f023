"""The ZVH adapter's HTTP endpoint (FastAPI), bound to 127.0.0.1 by default.

``POST /referrals``, ``POST /consents`` and ``POST /withdrawals`` take one ZVH document; 202
with the message id when accepted, 422 with every field problem (and the FHIR OperationOutcome)
when not. A referral with ``corrects`` is a correction; whether the router forwards a correction
or withdrawal (only the original's sender may) comes back as its response, like any message's.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.common.runtime import error_document
from adapters.zvh.service import ZvhAdapter
from broker.component.lifecycle import BrokerNotReady
from schemas import jsontext
from schemas.errors import Issue, MessageError


def create_app(adapter: ZvhAdapter) -> FastAPI:
    app = FastAPI(title=f"ketenbus ZVH adapter ({adapter.party_id})", version="0.1.0")

    async def _accept(request: Request, expected: str) -> JSONResponse:
        raw = await request.body()
        try:
            data: Any = jsontext.loads(raw)
        except ValueError:
            err = MessageError([Issue("", "structure", "body is not valid JSON", "not-json")])
            adapter.refused += 1
            await adapter.runtime.dead_letter(raw, None, err.reason, str(err), source="http")
            return JSONResponse(error_document(err, "http"), status_code=400)
        if isinstance(data, dict):
            data.setdefault("type", expected)
            if data["type"] != expected:
                err = MessageError(
                    [Issue("type", "value", f"this endpoint takes type '{expected}'", "type")]
                )
                adapter.refused += 1
                await adapter.runtime.dead_letter(raw, None, err.reason, str(err), source="http")
                return JSONResponse(error_document(err, "http"), status_code=422)
        try:
            accepted = await adapter.submit_json(data)
        except MessageError as err:
            return JSONResponse(error_document(err, "http"), status_code=422)
        except BrokerNotReady as err:
            return JSONResponse(
                {"status": "unavailable", "reason": "broker-not-ready", "detail": str(err)},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse(
            {"status": "accepted", "message_id": accepted.message_id, "case": accepted.case},
            status_code=202,
        )

    @app.post("/referrals", status_code=202)
    async def post_referral(request: Request) -> JSONResponse:
        """Submit an aanmelding (ZVH referral document)."""
        return await _accept(request, "referral")

    @app.post("/consents", status_code=202)
    async def post_consent(request: Request) -> JSONResponse:
        """Submit a consent or a revocation."""
        return await _accept(request, "consent")

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
