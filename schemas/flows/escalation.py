"""Escalation of a stuck case on the escalation ladder: which case is stuck, why (a closed list:
no payer, payment overdue for more than four weeks, no bed at a security level, no provider, no
decision, no care start, early end, stuck, other), since when, raised by whom, and on which step
(regional first, national after a configurable time or on request); optionally the episode, the
overdue claim and the person. Answers travel back as ``escalation-answer``.

The ladder (the ministers' letter: a national coordination point for stuck cases; the VNG
letter: "een heldere escalatieladder"): an escalation goes first to its region's step, the party
``KETENBUS_ESCALATION_REGIONAL_STEPS`` names for the ZVH's region (default: the region's
coordinating provider). The step acknowledges, assigns, asks for information or resolves it
(``escalation-answer``). Not resolved within ``KETENBUS_ESCALATION_REGIONAL_SECONDS`` (and not
waiting for information it asked), the router moves it to the national coordination point and
tells the escalating party (answer ``move-national``); ``level: national`` asks the national
point at once. Each escalation's state (open, acknowledged, assigned, info-requested, resolved),
level and age are folded from the topics (``broker/router/ladder.py``): no database.

The router's watchdogs raise escalations through the same path, signed as the router, at most
once per case and cause, and resolve them when the cause goes away: a referral without a decision
(``KETENBUS_WATCHDOG_UNDECIDED_SECONDS``, reason ``no-decision``), an inclusion without a start
of care (``KETENBUS_WATCHDOG_NO_CARE_START_SECONDS``, ``no-care-start``), a secure bed requested
by a scale-up without a location and not placed (``KETENBUS_WATCHDOG_NO_PLACEMENT_SECONDS``,
``no-bed`` at that level), care that ends before two years of follow-up (``early-end``).
Tests: ``tests/unit/router/test_ladder.py``, ``tests/integration/test_escalation_ladder.py``.

FHIR: Task (process; the focus), ``code`` = national-escalation, ``reasonCode`` = the reason (text
= the explanation), ``basedOn`` = the ZVH case (ServiceRequest by identifier), ``requester`` =
the raising party, ``authoredOn`` = when raised, inputs ``stuck-since`` (date), ``episode`` and
``overdue-claim`` (logical references), ``security-level`` (no-bed) and ``ladder-level``
(absent: regional); ``for`` → a Patient (identity) when the person is named.
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.errors import build_model, rule_error
from schemas.flows.claim import CLAIM_SYSTEM
from schemas.flows.common import (
    EPISODE_SYSTEM,
    FieldMap,
    IdValue,
    PartyId,
    Person,
    Src,
    Text,
    case_reference,
    code_in,
    concept,
    logical_reference,
    one,
    patient_resource,
    person_from_patient,
    read_case,
)
from schemas.messaging import (
    MessageMeta,
    ParsedMessage,
    build_message,
    fhir_datetime,
    full_url,
    new_id,
    party_reference,
)
from schemas.vocab import (
    DataCategory,
    EscalationLevel,
    EscalationReason,
    SecurityLevel,
    ServiceCode,
    TaskParameter,
)

ESCALATION_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/escalation"


class Escalation(BaseModel):
    """A stuck case raised on the escalation ladder (regional step, then national)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    escalation_id: IdValue = Field(description="The raising party's id of this escalation.")
    raised_by: PartyId = Field(
        description="The party raising it (ZVH, provider, municipality, the router's watchdogs); "
        "answers go back to it."
    )
    raised_at: AwareDatetime = Field(description="When it was raised.")
    zvh: PartyId = Field(description="The ZVH of the stuck case.")
    referral_id: IdValue = Field(description="The ZVH case number.")
    reason: EscalationReason = Field(description="Why the case is stuck.")
    stuck_since: date = Field(description="Since when the case is stuck.")
    security_level: SecurityLevel | None = Field(
        default=None, description="The security level of the bed that is missing (no-bed: 2-4)."
    )
    level: EscalationLevel = Field(
        default=EscalationLevel.REGIONAL,
        description="The ladder step: regional (default) or national (on request).",
    )
    explanation: Text | None = Field(
        default=None, description="What is going on (required for reason 'other')."
    )
    episode_id: IdValue | None = Field(default=None, description="The EpisodeOfCare, if any.")
    claim_id: IdValue | None = Field(
        default=None, description="The claim that stays unpaid (payment overdue)."
    )
    person: Person | None = Field(
        default=None, description="The person, when the coordination point needs to know."
    )

    @model_validator(mode="after")
    def _rules(self) -> Escalation:
        if self.reason is EscalationReason.OTHER and self.explanation is None:
            raise rule_error("explanation", "reason 'other' needs an explanation", "explanation")
        if self.reason is EscalationReason.NO_BED and self.security_level in (
            None,
            SecurityLevel.AMBULANT,
        ):
            raise rule_error(
                "security-level",
                "reason 'no-bed' needs a security level 2, 3 or 4",
                "security_level",
            )
        # Compare in UTC: the message carries the instant, and the rule must not depend on the
        # offset the sender happened to use.
        if self.stuck_since > self.raised_at.astimezone(UTC).date():
            raise rule_error("stuck-since", "stuck_since is after raised_at", "stuck_since")
        return self


MAPPING = (
    FieldMap("escalation_id", "Task.identifier (…/NamingSystem/escalation)", "process"),
    FieldMap("raised_by", "Task.requester (party id)", "process"),
    FieldMap("raised_at", "Task.authoredOn", "process"),
    FieldMap("zvh, referral_id", "Task.basedOn (ServiceRequest by …/zvh-case/<zvh>)", "process"),
    FieldMap("reason", "Task.reasonCode.coding", "process"),
    FieldMap("explanation", "Task.reasonCode.text", "process"),
    FieldMap("stuck_since", "Task.input[stuck-since].valueDate", "process"),
    FieldMap("security_level", "Task.input[security-level].valueCodeableConcept", "process"),
    FieldMap("level", "Task.input[ladder-level].valueCodeableConcept", "process"),
    FieldMap("episode_id", "Task.input[episode].valueReference (EpisodeOfCare)", "process"),
    FieldMap("claim_id", "Task.input[overdue-claim].valueReference (Claim)", "process"),
    FieldMap("person", "Patient; Task.for", "identity / contact"),
)


def escalation_entries(e: Escalation) -> list[tuple[dict[str, Any], DataCategory]]:
    inputs: list[dict[str, Any]] = [
        {"type": concept(TaskParameter.STUCK_SINCE), "valueDate": e.stuck_since.isoformat()}
    ]
    if e.security_level is not None:
        inputs.append(
            {
                "type": concept(TaskParameter.SECURITY_LEVEL),
                "valueCodeableConcept": concept(e.security_level),
            }
        )
    inputs.append(
        {"type": concept(TaskParameter.LADDER_LEVEL), "valueCodeableConcept": concept(e.level)}
    )
    if e.episode_id is not None:
        inputs.append(
            {
                "type": concept(TaskParameter.EPISODE),
                "valueReference": logical_reference("EpisodeOfCare", EPISODE_SYSTEM, e.episode_id),
            }
        )
    if e.claim_id is not None:
        inputs.append(
            {
                "type": concept(TaskParameter.OVERDUE_CLAIM),
                "valueReference": logical_reference("Claim", CLAIM_SYSTEM, e.claim_id),
            }
        )
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": new_id(),
        "identifier": [{"system": ESCALATION_SYSTEM, "value": e.escalation_id}],
        "basedOn": [case_reference(e.zvh, e.referral_id)],
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": concept(ServiceCode.NATIONAL_ESCALATION),
        "authoredOn": fhir_datetime(e.raised_at),
        "requester": party_reference(e.raised_by),
        "reasonCode": concept(e.reason, e.explanation),
        "input": inputs,
    }
    entries: list[tuple[dict[str, Any], DataCategory]] = [(task, DataCategory.PROCESS)]
    if e.person is not None:
        patient = patient_resource(e.person)
        patient["id"] = new_id()
        task["for"] = {"reference": full_url(patient["id"])}
        entries.append((patient, DataCategory.IDENTITY))
    return entries


def escalation_message(e: Escalation, meta: MessageMeta) -> dict[str, Any]:
    """The escalation as a FHIR message Bundle; the focus is the Task."""
    return build_message(meta, escalation_entries(e), focus=[0])


def escalation_from_message(msg: ParsedMessage) -> Escalation:
    """Read the escalation back; needs the Task (and the Patient when ``Task.for`` names one)."""
    task = one(msg, "Task")
    inputs: dict[TaskParameter, Src] = {}
    for i in task.items("input"):
        kind = i.code("type", TaskParameter)
        if kind in inputs or kind not in (
            TaskParameter.STUCK_SINCE,
            TaskParameter.EPISODE,
            TaskParameter.OVERDUE_CLAIM,
            TaskParameter.SECURITY_LEVEL,
            TaskParameter.LADDER_LEVEL,
        ):
            raise i.error("type", "invalid", f"unexpected or repeated input {kind.value}", "input")
        inputs[kind] = i
    since = inputs.get(TaskParameter.STUCK_SINCE)
    if since is None:
        raise task.error("input", "required", "input stuck-since is missing", "required")
    episode = inputs.get(TaskParameter.EPISODE)
    claim = inputs.get(TaskParameter.OVERDUE_CLAIM)
    sec = inputs.get(TaskParameter.SECURITY_LEVEL)
    ladder = inputs.get(TaskParameter.LADDER_LEVEL)
    reason = task.obj("reasonCode")
    zvh, referral_id, case_path = read_case(task.single("basedOn"))
    patient = task.resolve("for", msg, "Patient") if task.opt_obj("for") else None
    return build_model(
        Escalation,
        {
            "escalation_id": task.identifier(ESCALATION_SYSTEM)[0],
            "raised_by": task.party("requester"),
            "raised_at": task.instant("authoredOn"),
            "zvh": zvh,
            "referral_id": referral_id,
            "reason": code_in(reason, EscalationReason),
            "stuck_since": since.date("valueDate"),
            "security_level": sec.code("valueCodeableConcept", SecurityLevel) if sec else None,
            "level": ladder.code("valueCodeableConcept", EscalationLevel)
            if ladder
            else EscalationLevel.REGIONAL,
            "explanation": reason.opt_string("text"),
            "episode_id": episode.logical("valueReference", EPISODE_SYSTEM) if episode else None,
            "claim_id": claim.logical("valueReference", CLAIM_SYSTEM) if claim else None,
            "person": person_from_patient(patient.data) if patient else None,
        },
        {
            "escalation_id": task.at("identifier"),
            "raised_by": task.at("requester"),
            "raised_at": task.at("authoredOn"),
            "zvh": case_path,
            "referral_id": case_path,
            "explanation": reason.at("text"),
            "stuck_since": since.at("valueDate"),
            "security_level": sec.path if sec else task.at("input"),
            "episode_id": episode.path if episode else task.at("input"),
            "claim_id": claim.path if claim else task.at("input"),
        },
        "Task",
    )
