"""The web trace page: one message's whole path, the same hops as ``ketenbus trace``
(:mod:`broker.apps.operations.trace`). For operations, compliance officers, auditors and
administrators, within the organisations the user may see (``User.scope``); each trace
is audited in the web app's chain with the person who asked (NEN 7513: the user is the person),
before the hops are shown. A message id is not personal data; hops carry codes, party ids,
topics and audit positions only."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from broker.apps.operations.trace import Trace, trace
from broker.apps.web.auth import REPROCESS_ROLES, TRACE_ROLES, Session
from broker.apps.web.backend import WebBackend
from broker.apps.web.compliance import SearchNotAudited

log = logging.getLogger(__name__)
MESSAGE_ID = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")  # FHIR id


def mount(
    app: FastAPI,
    backend: WebBackend,
    session_of: Callable[..., Session],
    render: Callable[..., HTMLResponse],
) -> None:
    """Add ``GET /trace`` to the app (its session and page helpers passed in)."""

    @app.get("/trace", response_class=HTMLResponse)
    async def trace_page(request: Request, id: str = "") -> HTMLResponse:
        session = session_of(request, *TRACE_ROLES)
        context: dict[str, Any] = {"title": "trace.title", "message_id": id, "result": None,
                                   "error": None}
        if not id:
            return render(request, "trace.html", session, context)
        if not MESSAGE_ID.match(id):
            context.update(message_id="", error="trace.bad_id")
            return render(request, "trace.html", session, context, 422)
        if backend.compliance is None:
            context["error"] = "trace.unavailable"
            return render(request, "trace.html", session, context, 503)
        try:
            await backend.compliance.audit_trace(id, user=session.user.name,
                                                 role=session.user.role.value)
            result: Trace = await trace(backend.settings, backend.registry, id,
                                        session.user.scope)
        except SearchNotAudited as exc:
            context["error"] = str(exc)
            return render(request, "trace.html", session, context, 503)
        context["result"] = result
        context["may_reprocess"] = session.user.role in REPROCESS_ROLES
        return render(request, "trace.html", session, context, 200 if result.found else 404)
