"""Answer to an escalation: the regional step or the national coordination point acknowledges
it, assigns it to a party, asks the escalating party for information, or resolves it; the
router's ladder moves it to national when the regional step lets it age. The answer travels
back to the escalating party (its ``out.<party>``, its outbox) and to the steps of the ladder.

FHIR: Task (process; the focus), ``code`` = escalation-answer, ``partOf`` = the escalation's
Task (logical reference by …/NamingSystem/escalation), ``basedOn`` = the ZVH case, ``owner`` =
the answering party, ``requester`` = the escalating party, ``authoredOn`` = when answered,
``businessStatus`` = the action (text = the note), inputs ``ladder-level`` and ``assignee``.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.errors import build_model, rule_error
from schemas.flows.common import (
    FieldMap,
    IdValue,
    PartyId,
    Src,
    Text,
    case_reference,
    code_in,
    concept,
    logical_reference,
    one,
    read_case,
)
from schemas.flows.escalation import ESCALATION_SYSTEM
from schemas.messaging import (
    MessageMeta,
    ParsedMessage,
    build_message,
    fhir_datetime,
    new_id,
    party_reference,
)
from schemas.vocab import (
    DataCategory,
    EscalationAction,
    EscalationLevel,
    ServiceCode,
    TaskParameter,
)

ANSWER_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/escalation-answer"

_STATUS = {
    EscalationAction.ACKNOWLEDGE: "accepted",
    EscalationAction.ASSIGN: "in-progress",
    EscalationAction.REQUEST_INFO: "on-hold",
    EscalationAction.MOVE_NATIONAL: "in-progress",
    EscalationAction.RESOLVE: "completed",
}


class EscalationAnswer(BaseModel):
    """One step's answer to an escalation, for the escalating party."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer_id: IdValue = Field(description="The answering party's id of this answer.")
    escalation_id: IdValue = Field(description="The escalation answered.")
    raised_by: PartyId = Field(description="The escalating party (the answer goes back to it).")
    answered_by: PartyId = Field(description="The answering party (regional step, national).")
    answered_at: AwareDatetime = Field(description="When it was answered.")
    zvh: PartyId = Field(description="The ZVH of the stuck case.")
    referral_id: IdValue = Field(description="The ZVH case number.")
    action: EscalationAction = Field(description="What the answer does.")
    level: EscalationLevel = Field(description="The ladder step that answers.")
    assignee: PartyId | None = Field(
        default=None, description="The party the case is assigned to (assign)."
    )
    note: Text | None = Field(
        default=None, description="What was done or what is asked (required for request-info)."
    )

    @model_validator(mode="after")
    def _rules(self) -> EscalationAnswer:
        if self.action is EscalationAction.ASSIGN and self.assignee is None:
            raise rule_error("assignee", "action 'assign' needs an assignee", "assignee")
        if self.action is EscalationAction.REQUEST_INFO and self.note is None:
            raise rule_error("note", "action 'request-info' needs a note saying what", "note")
        return self


MAPPING = (
    FieldMap("answer_id", "Task.identifier (…/NamingSystem/escalation-answer)", "process"),
    FieldMap("escalation_id", "Task.partOf (Task by …/NamingSystem/escalation)", "process"),
    FieldMap("raised_by", "Task.requester (party id)", "process"),
    FieldMap("answered_by", "Task.owner (party id)", "process"),
    FieldMap("answered_at", "Task.authoredOn", "process"),
    FieldMap("zvh, referral_id", "Task.basedOn (ServiceRequest by …/zvh-case/<zvh>)", "process"),
    FieldMap("action", "Task.businessStatus.coding (and Task.status)", "process"),
    FieldMap("note", "Task.businessStatus.text", "process"),
    FieldMap("level", "Task.input[ladder-level].valueCodeableConcept", "process"),
    FieldMap("assignee", "Task.input[assignee].valueReference (party id)", "process"),
)


def answer_entries(a: EscalationAnswer) -> list[tuple[dict[str, Any], DataCategory]]:
    inputs: list[dict[str, Any]] = [
        {"type": concept(TaskParameter.LADDER_LEVEL), "valueCodeableConcept": concept(a.level)}
    ]
    if a.assignee is not None:
        inputs.append(
            {"type": concept(TaskParameter.ASSIGNEE), "valueReference": party_reference(a.assignee)}
        )
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": new_id(),
        "identifier": [{"system": ANSWER_SYSTEM, "value": a.answer_id}],
        "partOf": [logical_reference("Task", ESCALATION_SYSTEM, a.escalation_id)],
        "basedOn": [case_reference(a.zvh, a.referral_id)],
        "status": _STATUS[a.action],
        "businessStatus": concept(a.action, a.note),
        "intent": "order",
        "code": concept(ServiceCode.ESCALATION_ANSWER),
        "authoredOn": fhir_datetime(a.answered_at),
        "requester": party_reference(a.raised_by),
        "owner": party_reference(a.answered_by),
        "input": inputs,
    }
    return [(task, DataCategory.PROCESS)]


def answer_message(a: EscalationAnswer, meta: MessageMeta) -> dict[str, Any]:
    """The answer as a FHIR message Bundle; the focus is the Task."""
    return build_message(meta, answer_entries(a), focus=[0])


def answer_from_message(msg: ParsedMessage) -> EscalationAnswer:
    """Read the answer back; ``MessageError`` with the exact path when it is malformed."""
    task = one(msg, "Task")
    inputs: dict[TaskParameter, Src] = {}
    for i in task.items("input"):
        kind = i.code("type", TaskParameter)
        if kind in inputs or kind not in (TaskParameter.LADDER_LEVEL, TaskParameter.ASSIGNEE):
            raise i.error("type", "invalid", f"unexpected or repeated input {kind.value}", "input")
        inputs[kind] = i
    ladder = inputs.get(TaskParameter.LADDER_LEVEL)
    if ladder is None:
        raise task.error("input", "required", "input ladder-level is missing", "required")
    assignee = inputs.get(TaskParameter.ASSIGNEE)
    status = task.obj("businessStatus")
    part_of = task.single("partOf").obj("identifier")
    if part_of.opt_string("system") != ESCALATION_SYSTEM:
        raise part_of.error("system", "value", f"must be {ESCALATION_SYSTEM}", "system")
    zvh, referral_id, case_path = read_case(task.single("basedOn"))
    return build_model(
        EscalationAnswer,
        {
            "answer_id": task.identifier(ANSWER_SYSTEM)[0],
            "escalation_id": part_of.string("value"),
            "raised_by": task.party("requester"),
            "answered_by": task.party("owner"),
            "answered_at": task.instant("authoredOn"),
            "zvh": zvh,
            "referral_id": referral_id,
            "action": code_in(status, EscalationAction),
            "level": ladder.code("valueCodeableConcept", EscalationLevel),
            "assignee": assignee.party("valueReference") if assignee else None,
            "note": status.opt_string("text"),
        },
        {
            "answer_id": task.at("identifier"),
            "escalation_id": task.at("partOf"),
            "raised_by": task.at("requester"),
            "answered_by": task.at("owner"),
            "answered_at": task.at("authoredOn"),
            "zvh": case_path,
            "referral_id": case_path,
            "assignee": assignee.path if assignee else task.at("input"),
            "note": status.at("text"),
        },
        "Task",
    )
