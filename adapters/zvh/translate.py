"""From FHIR messages back to the ZVH format: what the ZVH case system finds in its outbox."""

from __future__ import annotations

from typing import Any

from schemas.flows.response import response_from_message
from schemas.messaging import ParsedMessage
from schemas.vocab import EventCode


def to_zvh(msg: ParsedMessage) -> dict[str, Any]:
    """A delivered message as a ZVH outbox document. Responses say accepted or refused, with
    every reason; other flows carry the FHIR message for the case system to import."""
    m = msg.meta
    if m.event is EventCode.RESPONSE:
        resp = response_from_message(msg)
        return {
            "type": "response",
            "in_reply_to": resp.request_id,
            "status": "accepted" if resp.code.value == "ok" else "refused",
            "code": resp.code.value,
            "reasons": [
                {"code": i.reason or i.code, "path": i.path, "problem": i.message}
                for i in resp.issues
            ],
            "received_at": m.timestamp.isoformat(),
        }
    return {
        "type": m.event.value,
        "message_id": m.message_id,
        "from": m.sender,
        "received_at": m.timestamp.isoformat(),
        "fhir": msg.bundle,
    }
