"""Re-process from the web (issue 17), for the roles that may (operations, administrator): the
trace page offers it for a message the router parked; the first step shows what would happen
now (the same dry run as ``ketenbus reprocess``), the second sends it as a new attempt audited
with the signed-in person (:mod:`broker.apps.operations.reprocess`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from broker.apps.operations.reprocess import Item, Reprocessor, ReprocessRefused, Selection
from broker.apps.web.auth import REPROCESS_ROLES, Session
from broker.apps.web.backend import WebBackend
from broker.apps.web.trace_page import MESSAGE_ID
from broker.policy import default_policy

log = logging.getLogger(__name__)


def mount(
    app: FastAPI,
    backend: WebBackend,
    session_of: Callable[..., Session],
    render: Callable[..., HTMLResponse],
    form: Callable[..., Awaitable[dict[str, list[str]]]],
) -> None:
    """Add ``POST /reprocess`` (dry run, or ``send=1`` to send) to the app."""

    @app.post("/reprocess", response_class=HTMLResponse)
    async def reprocess(request: Request) -> HTMLResponse:
        session = session_of(request, *REPROCESS_ROLES)
        data = await form(request, session)
        mid = (data.get("id") or [""])[0].strip()
        send = (data.get("send") or [""])[0] == "1"
        context: dict[str, Any] = {"title": "reprocess.title", "message_id": mid, "items": [],
                                   "sent": None, "error": None}
        if not MESSAGE_ID.match(mid):
            context.update(message_id="", error="reprocess.bad_id")
            return render(request, "reprocess.html", session, context, 422)
        if backend.deployment is None:
            context["error"] = "reprocess.unavailable"
            return render(request, "reprocess.html", session, context, 503)
        scope = session.user.scope
        try:
            writer = backend.compliance.writer if backend.compliance is not None else None
            worker = Reprocessor(backend.settings, backend.deployment, default_policy(),
                                 session.user.name, writer=writer)
            items: list[Item] = await worker.plan(Selection(ids=frozenset({mid})), limit=10)
            if scope is not None and any(i.record.sender not in scope for i in items):
                context["error"] = "reprocess.not_yours"
                return render(request, "reprocess.html", session, context, 403)
            context["items"] = items
            if send:
                context["sent"] = await worker.send(items)
                log.info("re-process of %s by %s: %d sent", mid, session.user.name,
                         context["sent"])
        except ReprocessRefused as exc:
            context["error"] = str(exc)
            return render(request, "reprocess.html", session, context, 404)
        return render(request, "reprocess.html", session, context)
