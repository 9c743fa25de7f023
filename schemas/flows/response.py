"""Message response: ``ok``, ``transient-error`` or ``fatal-error`` with an OperationOutcome,
correlated to the request by ``MessageHeader.response.identifier`` = the request's message id
(its MessageHeader.id, equal to its Bundle.identifier UUID; see ``schemas.messaging``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.errors import Issue, operation_outcome
from schemas.messaging import (
    MessageMeta,
    ParsedMessage,
    ResponseCode,
    ResponseInfo,
    build_message,
    full_url,
    new_id,
)
from schemas.vocab import DataCategory, EventCode, LegalBasis, PurposeOfUse


@dataclass(frozen=True)
class MessageResponse:
    request_id: str
    code: ResponseCode
    issues: tuple[Issue, ...] = ()


def response_message(
    resp: MessageResponse,
    sender: str,
    recipient: str,
    purpose: PurposeOfUse = PurposeOfUse.COC,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A response message from ``sender`` (usually the router) to the request's sender."""
    entries: list[tuple[dict[str, Any], DataCategory]] = []
    details_ref = None
    if resp.issues or resp.code is not ResponseCode.OK:
        oo = operation_outcome(
            resp.issues or (Issue("", "informational", "no details", None),),
            outcome_id=new_id(),
        )
        details_ref = full_url(oo["id"])
        entries.append((oo, DataCategory.PROCESS))
    meta = MessageMeta.new(
        EventCode.RESPONSE,
        sender,
        purpose,
        LegalBasis.LEGAL_OBLIGATION,
        destinations=(recipient,),
        response=ResponseInfo(resp.request_id, resp.code, details_ref),
        now=now,
    )
    return build_message(meta, entries, focus=[0] if entries else [])


def response_from_message(msg: ParsedMessage) -> MessageResponse:
    info = msg.meta.response
    if info is None:
        raise ValueError("not a response message")
    issues: list[Issue] = []
    for oo in msg.resources("OperationOutcome"):
        for i in oo.get("issue", []):
            reason = None
            for c in (i.get("details") or {}).get("coding", []):
                reason = c.get("code")
            issues.append(
                Issue(
                    (i.get("expression") or [""])[0],
                    i.get("code", "processing"),
                    i.get("diagnostics", ""),
                    reason,
                )
            )
    return MessageResponse(info.request_id, info.code, tuple(issues))


def issues_text(issues: Sequence[Issue]) -> str:
    return "; ".join(f"{i.path or '(message)'}: {i.message}" for i in issues)
