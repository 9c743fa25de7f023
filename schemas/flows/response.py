"""Message response: ``ok``, ``transient-error`` or ``fatal-error`` with an OperationOutcome,
correlated to the request by ``MessageHeader.response.identifier`` = the request's message id.

We correlate on the request's ``MessageHeader.id``, which equals the UUID of its
``Bundle.identifier`` (see ``schemas.messaging``): R4 defines ``response.identifier`` as the
original MessageHeader.id, R5 as the original Bundle.identifier, and with one UUID for both the
value is right under either reading. It is also the de-duplication key, so a receiver that sees a
duplicate can re-send the stored response for that id.

FHIR: MessageHeader.response (identifier, code, details → OperationOutcome) and, for an error or
when issues are given, an OperationOutcome (process; the focus). An error response without issues
carries one placeholder issue (reason ``no-details``; FHIR says the narrative of a fatal-error SHALL
describe the issue); reading it back gives no issues again, so ``no-details`` is reserved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.errors import ISSUE_CODE_SYSTEM, Issue, MessageError, operation_outcome
from schemas.flows.common import FieldMap, Src
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

NO_DETAILS = "no-details"


@dataclass(frozen=True)
class MessageResponse:
    """The answer to one message: its id, the response code and the issues found."""

    request_id: str
    code: ResponseCode
    issues: tuple[Issue, ...] = ()


MAPPING = (
    FieldMap("request_id", "MessageHeader.response.identifier", "(header)"),
    FieldMap("code", "MessageHeader.response.code", "(header)"),
    FieldMap(
        "issues",
        "OperationOutcome.issue (code; diagnostics = message; expression[0] = path; "
        "details.coding (…/CodeSystem/issue) = reason); MessageHeader.response.details",
        "process",
    ),
)


def response_entries(resp: MessageResponse) -> list[tuple[dict[str, Any], DataCategory]]:
    """The OperationOutcome (process), when the response has issues or is an error."""
    if not resp.issues and resp.code is ResponseCode.OK:
        return []
    issues = resp.issues or (Issue("", "informational", "no details were given", NO_DETAILS),)
    return [(operation_outcome(issues, outcome_id=new_id()), DataCategory.PROCESS)]


def response_bundle(resp: MessageResponse, meta: MessageMeta) -> dict[str, Any]:
    """The response as a message Bundle under ``meta`` (event ``response``); ``meta.response``
    is filled from ``resp``."""
    entries = response_entries(resp)
    details_ref = full_url(entries[0][0]["id"]) if entries else None
    meta = MessageMeta(  # dataclasses.replace, spelt out: replace() is slow for a hot path
        message_id=meta.message_id,
        event=meta.event,
        sender=meta.sender,
        timestamp=meta.timestamp,
        purpose=meta.purpose,
        legal_basis=meta.legal_basis,
        destinations=meta.destinations,
        basis_detail=meta.basis_detail,
        response=ResponseInfo(resp.request_id, resp.code, details_ref),
        focus=meta.focus,
        refers_to=meta.refers_to,
        controller=meta.controller,
        author=meta.author,
    )
    return build_message(meta, entries, focus=[0] if entries else [])


def response_message(
    resp: MessageResponse,
    sender: str,
    recipient: str,
    purpose: PurposeOfUse = PurposeOfUse.COC,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A response message from ``sender`` (usually the router) to the request's sender.

    What ``response_bundle(resp, MessageMeta.new(...))`` gives, with one MessageMeta made
    instead of two (the router answers every message). Ids are drawn in the same order (the
    message's, then the OperationOutcome's), so deterministic ids give the same examples."""
    message_id = new_id()
    timestamp = (now or datetime.now(UTC)).astimezone(UTC)
    entries = response_entries(resp)
    details_ref = full_url(entries[0][0]["id"]) if entries else None
    meta = MessageMeta(
        message_id=message_id,
        event=EventCode.RESPONSE,
        sender=sender,
        timestamp=timestamp,
        purpose=purpose,
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        destinations=(recipient,),
        response=ResponseInfo(resp.request_id, resp.code, details_ref),
    )
    return build_message(meta, entries, focus=[0] if entries else [])


def _issue(i: Src) -> Issue:
    expression = i.strings("expression")
    reason = None
    details = i.opt_obj("details")
    for c in details.items("coding") if details else []:
        if c.data.get("system") == ISSUE_CODE_SYSTEM:
            reason = c.string("code")
    return Issue(
        expression[0] if expression else "",
        i.string("code"),
        i.opt_string("diagnostics") or "",
        reason,
    )


def response_from_message(msg: ParsedMessage) -> MessageResponse:
    """Read the response back: ``MessageHeader.response`` and the OperationOutcome it names."""
    info = msg.meta.response
    if info is None:
        raise MessageError(
            [Issue("MessageHeader.response", "required", "not a response message", "response")]
        )
    issues: list[Issue] = []
    if info.details_ref is not None:
        target = msg.by_url().get(info.details_ref)
        if target is None or target.get("resourceType") != "OperationOutcome":
            raise MessageError(
                [
                    Issue(
                        "MessageHeader.response.details",
                        "not-found",
                        "must point to an OperationOutcome in the Bundle",
                        "details",
                    )
                ]
            )
        issues = [_issue(i) for i in Src(target, "OperationOutcome").items("issue")]
    if len(issues) == 1 and issues[0].reason == NO_DETAILS:
        issues = []
    return MessageResponse(info.request_id, info.code, tuple(issues))


def issues_text(issues: Sequence[Issue]) -> str:
    return "; ".join(f"{i.path or '(message)'}: {i.message}" for i in issues)
