"""The alert inbox: the local receiver Alertmanager's webhook notifies (docker/alertmanager/).

Alertmanager routes each firing alert to a receiver; a deployment points the receivers at its
own mail, chat or pager, and this inbox is the one shipped: it takes Alertmanager's webhook
(payload version 4), keeps every alert as one JSON line in ``<state_dir>/alerts/alerts.jsonl``
(who was notified and of what, for the operations log) and logs one line per alert, so an alert
reaches the operations team's log and console even where nothing else is configured.

What is kept is codes only: the alert's name, severity, status, times and the labels the rules
set (reason, consumer group, topic, party ids), each a short identifier. The rules carry no
person and no message id (docker/prometheus/alerts.yml), and the inbox does not trust that: any
other label, an annotation's free text and any value that is not a short identifier are
dropped (AVG art. 5(1)(c)). A body that is not the webhook's JSON is refused with its reason.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger(__name__)

MAX_BODY: Final = 256 * 1024
"""Alertmanager sends a group's alerts in one body; 256 KB holds ~500 of ours."""
MAX_ALERTS: Final = 1000
KEPT_LABELS: Final = frozenset(
    {"alertname", "severity", "reason", "group", "topic", "party", "job", "instance",
     "component", "level", "flow"}
)  # fmt: skip
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}")
_STATUS: Final = frozenset({"firing", "resolved"})
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


class Refused(ValueError):
    """A body that is not Alertmanager's webhook; ``reason`` is the stable code."""

    def __init__(self, reason: str, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = status


def kept_alerts(payload: Any) -> list[dict[str, Any]]:
    """The alerts of one webhook payload, codes only; ``Refused`` for anything else."""
    if not isinstance(payload, dict):
        raise Refused("not-an-object", "the body must be a JSON object")
    if payload.get("version") != "4":
        raise Refused("version", "only Alertmanager's webhook payload version 4 is taken")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise Refused("alerts", "alerts must be a non-empty list")
    if len(alerts) > MAX_ALERTS:
        raise Refused("too-many", f"at most {MAX_ALERTS} alerts in one body", 413)
    receiver = _safe(payload.get("receiver"))
    out = []
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise Refused("alert", f"alerts[{i}] has no labels")
        status = alert.get("status")
        if status not in _STATUS:
            raise Refused("status", f"alerts[{i}].status must be firing or resolved")
        labels = {k: v for k, v in alert["labels"].items()
                  if k in KEPT_LABELS and _safe(v) is not None}  # fmt: skip
        if "alertname" not in labels:
            raise Refused("alertname", f"alerts[{i}] has no alertname")
        kept: dict[str, Any] = {"receiver": receiver, "status": status, "labels": labels}
        for key in ("startsAt", "endsAt"):
            value = alert.get(key)
            if isinstance(value, str) and _TIME.fullmatch(value):
                kept[key] = value
        out.append(kept)
    return out


def _safe(value: object) -> str | None:
    return value if isinstance(value, str) and _SAFE.fullmatch(value) else None


class AlertInbox:
    """Where the alerts land: a JSON-lines file and the last ``recent`` in memory."""

    def __init__(self, folder: Path, recent: int = 200) -> None:
        self.folder = folder
        self.path = folder / "alerts.jsonl"
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)
        self._lock = threading.Lock()

    def take(self, alerts: list[dict[str, Any]]) -> None:
        received = datetime.now(UTC).isoformat(timespec="seconds")
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            for alert in alerts:
                line = {"received": received, **alert}
                f.write(json.dumps(line, sort_keys=True) + "\n")
                self.recent.append(line)
                labels = alert["labels"]
                log.warning(
                    "alert %s %s (%s) for %s", alert["status"], labels["alertname"],
                    labels.get("severity", "-"), alert["receiver"] or "-",
                )


def create_app(inbox: AlertInbox) -> Starlette:
    """``POST /alerts`` (the webhook) and ``GET /alerts`` (the recent ones, newest last)."""

    async def receive(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return _refusal(Refused("too-large", f"at most {MAX_BODY} bytes", 413))
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _refusal(Refused("too-large", f"at most {MAX_BODY} bytes", 413))
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _refusal(Refused("not-json", "the body is not JSON", 400))
        try:
            alerts = kept_alerts(payload)
        except Refused as err:
            return _refusal(err)
        inbox.take(alerts)
        return JSONResponse({"status": "received", "alerts": len(alerts)})

    async def recent(request: Request) -> JSONResponse:
        return JSONResponse({"alerts": list(inbox.recent)})

    return Starlette(routes=[
        Route("/alerts", receive, methods=["POST"]),
        Route("/alerts", recent, methods=["GET"]),
    ])


def _refusal(err: Refused) -> JSONResponse:
    log.warning("alert webhook refused: %s", err.reason)
    return JSONResponse({"status": "refused", "reason": err.reason, "detail": str(err)},
                        status_code=err.status)
