"""Withdrawal (intrekking): the sender takes back a message it sent, because it was entered in
error (a wrong person, a wrong case). AVG art. 17 and 19: the controller tells every recipient
of the original; the router forwards it to exactly those (``docs/flows/correction.md``).

A *correction* is not a flow of its own: it is a new message of the original's flow whose
MessageHeader names the original (extension ``follow-up-of``), minimised per recipient like the
original. A withdrawal names the original the same way and carries one Provenance, the focus:

FHIR: Provenance (process) with ``target`` = the original message by identifier
(``urn:ietf:rfc:3986`` / ``urn:uuid:<message id>``), ``recorded`` = when it was withdrawn,
``activity`` = HL7 v3 DataOperation ``NULLIFY`` (treat the original as if it never existed),
``reason`` = ``entered-in-error`` (the status FHIR gives a record that should not have existed),
and ``agent.who`` = the withdrawing party. No free text: a withdrawal tells the recipients which
message is void, never why in words (a reason in words could carry what the original should not
have disclosed).
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.errors import build_model
from schemas.flows.common import FieldMap, PartyId, one
from schemas.messaging import (
    URI_SYSTEM,
    MessageMeta,
    ParsedMessage,
    build_message,
    fhir_datetime,
    full_url,
    new_id,
    party_reference,
)
from schemas.vocab import DataCategory

DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
NULLIFY = "NULLIFY"
ENTERED_IN_ERROR = "entered-in-error"
REASON_SYSTEM = "https://ketenbus.nl/fhir/CodeSystem/withdrawal-reason"
MESSAGE_ID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class Withdrawal(BaseModel):
    """The sender declares one of its messages void (entered in error)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    original_id: str = Field(
        pattern=MESSAGE_ID, description="The message id of the message withdrawn."
    )
    withdrawn_by: PartyId = Field(description="The party withdrawing it: the original's sender.")
    withdrawn_at: AwareDatetime = Field(description="When it was withdrawn.")


MAPPING = (
    FieldMap(
        "original_id",
        "Provenance.target.identifier (urn:ietf:rfc:3986, urn:uuid:<id>); "
        "MessageHeader.extension[follow-up-of].valueId",
        "process",
    ),
    FieldMap("withdrawn_by", "Provenance.agent.who (party id)", "process"),
    FieldMap("withdrawn_at", "Provenance.recorded", "process"),
    FieldMap(
        "(fixed)",
        "Provenance.activity = v3-DataOperation#NULLIFY; Provenance.reason = entered-in-error",
        "process",
    ),
)


def withdrawal_entries(w: Withdrawal) -> list[tuple[dict[str, Any], DataCategory]]:
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": new_id(),
        "target": [{"identifier": {"system": URI_SYSTEM, "value": full_url(w.original_id)}}],
        "recorded": fhir_datetime(w.withdrawn_at),
        "reason": [{"coding": [{"system": REASON_SYSTEM, "code": ENTERED_IN_ERROR}]}],
        "activity": {"coding": [{"system": DATA_OPERATION, "code": NULLIFY}]},
        "agent": [{"who": party_reference(w.withdrawn_by)}],
    }
    return [(provenance, DataCategory.PROCESS)]


def withdrawal_message(w: Withdrawal, meta: MessageMeta) -> dict[str, Any]:
    """The withdrawal as a FHIR message Bundle; the MessageHeader names the original too."""
    meta = MessageMeta(
        message_id=meta.message_id,
        event=meta.event,
        sender=meta.sender,
        timestamp=meta.timestamp,
        purpose=meta.purpose,
        legal_basis=meta.legal_basis,
        destinations=meta.destinations,
        basis_detail=meta.basis_detail,
        response=meta.response,
        refers_to=w.original_id,
    )
    return build_message(meta, withdrawal_entries(w), focus=[0])


def withdrawal_from_message(msg: ParsedMessage) -> Withdrawal:
    """Read the withdrawal back; the Provenance's target must be the header's original."""
    prov = one(msg, "Provenance")
    target = prov.single("target").obj("identifier")
    if target.opt_string("system") != URI_SYSTEM:
        raise target.error("system", "value", f"must be {URI_SYSTEM}", "system")
    original = target.string("value").removeprefix("urn:uuid:")
    if msg.meta.refers_to is not None and original != msg.meta.refers_to:
        raise target.error(
            "value", "value", "the target is not the header's follow-up-of", "follow-up-of"
        )
    activity = prov.obj("activity").single("coding")
    if (activity.opt_string("system"), activity.opt_string("code")) != (DATA_OPERATION, NULLIFY):
        raise activity.error("code", "value", "activity must be NULLIFY", "activity")
    return build_model(
        Withdrawal,
        {
            "original_id": original,
            "withdrawn_by": prov.single("agent").party("who"),
            "withdrawn_at": prov.instant("recorded"),
        },
        {"original_id": target.at("value"), "withdrawn_at": prov.at("recorded")},
        "Provenance",
    )
