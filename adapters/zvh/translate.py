"""From FHIR messages back to the ZVH format: what the ZVH case system finds in its outbox.

Responses say accepted or refused, with every reason. Assessment outcomes, care transitions and
escalations become flat ZVH documents (docs/adapters/zvh.md) read from the message as delivered:
the router has already removed what a ZVH may not see (e.g. the criteria's clinical grounds), so
the readers take what is there and leave out the rest. A message the ZVH format cannot express
arrives as ``{"type": <event>, …, "fhir": <message>}``.
"""

from __future__ import annotations

from typing import Any

from schemas.errors import MessageError
from schemas.flows.assessment import ASSESSMENT_SYSTEM, EXT_CRITERION_RESULT
from schemas.flows.common import (
    EPISODE_SYSTEM,
    Person,
    Src,
    code_in,
    one,
    opt_one,
    person_from_patient,
    read_case,
)
from schemas.flows.escalation import escalation_from_message
from schemas.flows.escalation_answer import answer_from_message
from schemas.flows.response import response_from_message
from schemas.flows.transition import transition_from_message
from schemas.messaging import ParsedMessage
from schemas.vocab import (
    AdvisedAlternative,
    AssessmentDecision,
    CriterionResult,
    EventCode,
    InclusionCriterion,
    TaskParameter,
)


def _person(msg: ParsedMessage) -> dict[str, Any] | None:
    """The person as the ZVH knows them, when the message carries identity."""
    patient = opt_one(msg, "Patient")
    if patient is None:
        return None
    try:
        p: Person = person_from_patient(patient.data)
    except MessageError:
        return None  # only a pseudonym stub: the router withheld identity
    doc: dict[str, Any] = {
        "bsn": p.bsn,
        "family_name": p.family_name,
        "given_names": list(p.given_names),
        "birth_date": p.birth_date.isoformat(),
    }
    if p.residence_municipality:
        doc["municipality"] = p.residence_municipality
    return doc


def _assessment(msg: ParsedMessage) -> dict[str, Any]:
    task = one(msg, "Task")
    outputs: dict[TaskParameter, Src] = {}
    for o in task.items("output"):
        outputs[o.code("type", TaskParameter)] = o
    if TaskParameter.DECISION not in outputs:
        raise task.error("output", "required", "no decision", "required")
    _, case_id, _ = read_case(task.single("basedOn"))
    doc: dict[str, Any] = {
        "case_id": case_id,
        "assessment_id": task.identifier(ASSESSMENT_SYSTEM)[0],
        "provider": task.party("owner"),
        "assessed_on": task.date("authoredOn").isoformat(),
        "decision": outputs[TaskParameter.DECISION]
        .code("valueCodeableConcept", AssessmentDecision)
        .value,
    }
    if TaskParameter.REASONS in outputs:
        doc["reasons"] = outputs[TaskParameter.REASONS].string("valueString")
    alt = outputs.get(TaskParameter.ADVISED_ALTERNATIVE)
    if alt is not None:
        cc = alt.obj("valueCodeableConcept")
        doc["advised_alternative"] = code_in(cc, AdvisedAlternative).value
        if cc.opt_string("text"):
            doc["advised_alternative_note"] = cc.opt_string("text")
    episode = opt_one(msg, "EpisodeOfCare")
    if episode is not None:
        doc["episode_id"] = episode.identifier(EPISODE_SYSTEM)[0]
        doc["inclusion_date"] = episode.obj("period").date("start").isoformat()
    impression = opt_one(msg, "ClinicalImpression")
    if impression is not None:  # only when the policy lets the ZVH see the criteria
        doc["criteria"] = {
            f.code("itemCodeableConcept", InclusionCriterion).value: f.req_extension(
                EXT_CRITERION_RESULT
            )
            .coding("valueCoding", CriterionResult)
            .value
            for f in impression.items("finding")
        }
    return doc


def _transition(msg: ParsedMessage) -> dict[str, Any]:
    t = transition_from_message(msg)
    doc: dict[str, Any] = {
        "transition_id": t.transition_id,
        "episode_id": t.episode_id,
        "kind": t.kind.value,
        "effective_on": t.effective_on.isoformat(),
        "provider": t.provider,
        "security_level": t.security_level.value,
    }
    optional = {
        "previous_provider": t.previous_provider,
        "previous_level": t.previous_level.value if t.previous_level else None,
        "location_id": t.location_id,
        "location_name": t.location_name,
        "reason": t.reason,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    return doc


def _escalation(msg: ParsedMessage) -> dict[str, Any]:
    e = escalation_from_message(msg)
    doc: dict[str, Any] = {
        "escalation_id": e.escalation_id,
        "case_id": e.referral_id,
        "raised_by": e.raised_by,
        "raised_at": e.raised_at.isoformat(),
        "reason": e.reason.value,
        "stuck_since": e.stuck_since.isoformat(),
    }
    doc["level"] = e.level.value
    optional = {
        "explanation": e.explanation,
        "episode_id": e.episode_id,
        "claim_id": e.claim_id,
        "security_level": e.security_level.value if e.security_level else None,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    return doc


def _answer(msg: ParsedMessage) -> dict[str, Any]:
    """An answer of the escalation ladder: what the step did, at which level."""
    a = answer_from_message(msg)
    doc: dict[str, Any] = {
        "answer_id": a.answer_id,
        "escalation_id": a.escalation_id,
        "case_id": a.referral_id,
        "raised_by": a.raised_by,
        "answered_by": a.answered_by,
        "answered_at": a.answered_at.isoformat(),
        "action": a.action.value,
        "level": a.level.value,
    }
    optional = {"assignee": a.assignee, "note": a.note}
    doc.update({k: v for k, v in optional.items() if v is not None})
    return doc


READERS = {
    EventCode.ASSESSMENT_OUTCOME: _assessment,
    EventCode.CARE_TRANSITION: _transition,
    EventCode.ESCALATION: _escalation,
    EventCode.ESCALATION_ANSWER: _answer,
}


def to_zvh(msg: ParsedMessage) -> dict[str, Any]:
    """A delivered message as a ZVH outbox document."""
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
    envelope = {
        "type": m.event.value,
        "message_id": m.message_id,
        "from": m.sender,
        "received_at": m.timestamp.isoformat(),
    }
    if m.refers_to is not None:  # docs/adapters/zvh.md: corrections and withdrawals
        envelope["withdraws" if m.event is EventCode.WITHDRAWAL else "corrects"] = m.refers_to
    reader = READERS.get(m.event)
    if reader is not None:
        try:
            body = reader(msg)
        except MessageError:
            body = None
        if body is not None:
            person = _person(msg)
            return {**envelope, **body, **({"person": person} if person else {})}
    return {**envelope, "fhir": msg.bundle}
