"""Assessment outcome (inclusiebesluit): the provider assessed a referral against the four
Levensloopaanpak criteria and decided to include the person or not, with reasons; a non-inclusion
names the alternative it advises; an inclusion starts the episode (EpisodeOfCare) on the
inclusion date, from which client-bound coordination is billed.

FHIR: Task (care-episode; the focus) with ``basedOn`` = the ZVH case (ServiceRequest by
identifier) and outputs ``decision`` (coded), ``reasons``, ``advised-alternative`` and
``criteria`` (→ the ClinicalImpression); ClinicalImpression (risk-assessment) with one
``finding`` per criterion and its result; for an inclusion an EpisodeOfCare (care-episode) whose
``period.start`` is the inclusion date; Patient (identity).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.errors import build_model, rule_error
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
    coding_of,
    concept,
    one,
    opt_one,
    patient_resource,
    person_from_patient,
    read_case,
)
from schemas.messaging import (
    EXT,
    MessageMeta,
    ParsedMessage,
    build_message,
    full_url,
    new_id,
    party_reference,
)
from schemas.vocab import (
    AdvisedAlternative,
    AssessmentDecision,
    CriterionResult,
    DataCategory,
    InclusionCriterion,
    ServiceCode,
    TaskParameter,
)

ASSESSMENT_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/assessment"
EXT_CRITERION_RESULT = EXT + "criterion-result"
CRITERIA_PROTOCOL = "https://ketenbus.nl/fhir/criteria/levensloopaanpak"
AGE_OF_MAJORITY = 18
"""The target group is adults: "Personen (18+) die agressief en/of gevaarlijk gedrag (dreigen
te) vertonen ..." (implementation plan 2022, section 2.1 Doelgroepomschrijving, seed 002)."""


def birthday(born: date, years: int) -> date:
    """The day ``born`` turns ``years`` old; someone born on 29 February turns a year older on
    1 March in a year without it (the later reading: no one is taken for an adult too early)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # 29 February in a year without it
        return date(born.year + years, 3, 1)


def adult_on(born: date, on: date) -> bool:
    """Whether a person born on ``born`` is 18 or older on ``on`` (the 18th birthday counts)."""
    return on >= birthday(born, AGE_OF_MAJORITY)


class CriterionAssessment(BaseModel):
    """The judgement on one inclusion criterion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    criterion: InclusionCriterion = Field(description="Which of the four criteria.")
    result: CriterionResult = Field(description="met, not-met or not-assessed.")
    note: Text | None = Field(default=None, description="The grounds, briefly.")


class AssessmentOutcome(BaseModel):
    """The provider's inclusion decision on one referral."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    assessment_id: IdValue = Field(description="The provider's id of this assessment.")
    zvh: PartyId = Field(description="The ZVH whose case (referral) was assessed.")
    referral_id: IdValue = Field(description="The ZVH's case number of the referral.")
    provider: PartyId = Field(description="The assessing (coordinating) provider.")
    assessed_on: date = Field(description="Date of the decision.")
    person: Person = Field(description="The assessed person.")
    decision: AssessmentDecision = Field(description="included or not-included.")
    criteria: tuple[CriterionAssessment, ...] = Field(
        description="The judgement on each of the four criteria, each exactly once."
    )
    reasons: Text = Field(description="The reasons for the decision.")
    alternative: AdvisedAlternative | None = Field(
        default=None, description="The alternative advised (required when not included)."
    )
    alternative_note: Text | None = Field(
        default=None, description="Details of the advised alternative."
    )
    inclusion_date: date | None = Field(
        default=None, description="First day of inclusion (required when included)."
    )
    episode_id: IdValue | None = Field(
        default=None,
        description="Id of the new EpisodeOfCare (required when included); later care "
        "transitions and claims refer to it.",
    )

    @model_validator(mode="after")
    def _rules(self) -> AssessmentOutcome:
        seen = [c.criterion for c in self.criteria]
        if sorted(seen) != sorted(InclusionCriterion) or len(seen) != len(set(seen)):
            raise rule_error(
                "criteria", "judge each of the four inclusion criteria exactly once", "criteria"
            )
        if self.decision is AssessmentDecision.INCLUDED:
            # Judged on the decision date, at the decision: a referral of someone about to turn
            # 18 is registered and assessed; only the inclusion itself needs an adult (seed 002,
            # 2.1: "Personen (18+)").
            if not adult_on(self.person.birth_date, self.assessed_on):
                raise rule_error(
                    "age-of-majority",
                    "an inclusion needs a person of 18 or older on the decision date",
                    "person",
                )
            if any(c.result is not CriterionResult.MET for c in self.criteria):
                raise rule_error(
                    "inclusion-criteria", "an inclusion needs all four criteria met", "criteria"
                )
            if self.inclusion_date is None:
                raise rule_error(
                    "inclusion-date", "an inclusion needs an inclusion date", "inclusion_date"
                )
            if self.episode_id is None:
                raise rule_error("episode", "an inclusion needs an episode id", "episode_id")
            if self.alternative is not None or self.alternative_note is not None:
                raise rule_error(
                    "alternative", "an inclusion advises no alternative", "alternative"
                )
        else:
            if self.alternative is None:
                raise rule_error(
                    "alternative",
                    "a non-inclusion names the advised alternative (or 'none')",
                    "alternative",
                )
            if self.inclusion_date is not None or self.episode_id is not None:
                raise rule_error(
                    "inclusion-date",
                    "a non-inclusion has no inclusion date or episode",
                    "inclusion_date",
                )
        return self


MAPPING = (
    FieldMap("assessment_id", "Task.identifier (…/NamingSystem/assessment)", "care-episode"),
    FieldMap(
        "zvh, referral_id", "Task.basedOn (ServiceRequest by …/zvh-case/<zvh>)", "care-episode"
    ),
    FieldMap(
        "provider", "Task.owner (party id); EpisodeOfCare.managingOrganization", "care-episode"
    ),
    FieldMap(
        "assessed_on", "Task.authoredOn; ClinicalImpression.effectiveDateTime", "care-episode"
    ),
    FieldMap("person", "Patient", "identity / contact"),
    FieldMap("decision", "Task.output[decision].valueCodeableConcept", "care-episode"),
    FieldMap(
        "criteria",
        "ClinicalImpression.finding (itemCodeableConcept = criterion, "
        "extension[criterion-result] = result, basis = note); Task.output[criteria] → it",
        "risk-assessment",
    ),
    FieldMap("reasons", "Task.output[reasons].valueString (free text)", "clinical"),
    FieldMap("alternative", "Task.output[advised-alternative].valueCodeableConcept.coding",
             "care-episode"),
    FieldMap(
        "alternative_note",
        "Task.output[advised-alternative].valueCodeableConcept.text (free text)",
        "clinical",
    ),
    FieldMap("inclusion_date", "EpisodeOfCare.period.start", "care-episode"),
    FieldMap("episode_id", "EpisodeOfCare.identifier (…/NamingSystem/episode)", "care-episode"),
)


def _output(kind: TaskParameter, **value: Any) -> dict[str, Any]:
    return {"type": concept(kind), **value}


def assessment_entries(a: AssessmentOutcome) -> list[tuple[dict[str, Any], DataCategory]]:
    patient = patient_resource(a.person)
    patient["id"] = new_id()
    p_ref = {"reference": full_url(patient["id"])}
    impression: dict[str, Any] = {
        "resourceType": "ClinicalImpression",
        "id": new_id(),
        "status": "completed",
        "code": concept(ServiceCode.ASSESSMENT),
        "subject": p_ref,
        "effectiveDateTime": a.assessed_on.isoformat(),
        "protocol": [CRITERIA_PROTOCOL],
        "finding": [
            {
                "extension": [{"url": EXT_CRITERION_RESULT, "valueCoding": c.result.coding()}],
                "itemCodeableConcept": concept(c.criterion),
                **({"basis": c.note} if c.note is not None else {}),
            }
            for c in a.criteria
        ],
    }
    outputs = [
        _output(TaskParameter.DECISION, valueCodeableConcept=concept(a.decision)),
        _output(TaskParameter.REASONS, valueString=a.reasons),
    ]
    if a.alternative is not None:
        outputs.append(
            _output(
                TaskParameter.ADVISED_ALTERNATIVE,
                valueCodeableConcept=concept(a.alternative, a.alternative_note),
            )
        )
    outputs.append(
        _output(TaskParameter.CRITERIA, valueReference={"reference": full_url(impression["id"])})
    )
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": new_id(),
        "identifier": [{"system": ASSESSMENT_SYSTEM, "value": a.assessment_id}],
        "basedOn": [case_reference(a.zvh, a.referral_id)],
        "status": "completed",
        "intent": "order",
        "code": concept(ServiceCode.ASSESSMENT),
        "for": p_ref,
        "authoredOn": a.assessed_on.isoformat(),
        "requester": party_reference(a.zvh),
        "owner": party_reference(a.provider),
        "output": outputs,
    }
    entries: list[tuple[dict[str, Any], DataCategory]] = [
        (task, DataCategory.CARE_EPISODE),
        (patient, DataCategory.IDENTITY),
        (impression, DataCategory.RISK_ASSESSMENT),
    ]
    if a.episode_id is not None and a.inclusion_date is not None:
        episode: dict[str, Any] = {
            "resourceType": "EpisodeOfCare",
            "id": new_id(),
            "identifier": [{"system": EPISODE_SYSTEM, "value": a.episode_id}],
            "status": "active",
            "type": [concept(ServiceCode.LEVENSLOOP_CARE)],
            "patient": p_ref,
            "managingOrganization": party_reference(a.provider),
            "period": {"start": a.inclusion_date.isoformat()},
            "referralRequest": [case_reference(a.zvh, a.referral_id)],
        }
        entries.append((episode, DataCategory.CARE_EPISODE))
    return entries


def assessment_message(a: AssessmentOutcome, meta: MessageMeta) -> dict[str, Any]:
    """The assessment outcome as a FHIR message Bundle; the focus is the Task."""
    return build_message(meta, assessment_entries(a), focus=[0])


def _outputs(task: Src) -> dict[TaskParameter, Src]:
    out: dict[TaskParameter, Src] = {}
    for o in task.items("output"):
        kind = o.code("type", TaskParameter)
        if kind in out:
            raise o.error("type", "invalid", f"output {kind.value} appears twice", "duplicate")
        out[kind] = o
    return out


def _criterion(f: Src) -> CriterionAssessment:
    result = f.req_extension(EXT_CRITERION_RESULT)
    return build_model(
        CriterionAssessment,
        {
            "criterion": f.code("itemCodeableConcept", InclusionCriterion),
            "result": coding_of(result.obj("valueCoding"), CriterionResult),
            "note": f.opt_string("basis"),
        },
        {"note": f.at("basis")},
        f.path,
    )


def assessment_from_message(msg: ParsedMessage) -> AssessmentOutcome:
    """Read the assessment outcome back; needs the Task, Patient and ClinicalImpression, and for
    an inclusion the EpisodeOfCare."""
    task = one(msg, "Task")
    patient = one(msg, "Patient")
    outputs = _outputs(task)

    def output(kind: TaskParameter) -> Src:
        if kind not in outputs:
            raise task.error("output", "required", f"output {kind.value} is missing", "required")
        return outputs[kind]

    decision = output(TaskParameter.DECISION)
    reasons = output(TaskParameter.REASONS)
    alternative = outputs.get(TaskParameter.ADVISED_ALTERNATIVE)
    alt_cc = alternative.obj("valueCodeableConcept") if alternative else None
    impression = output(TaskParameter.CRITERIA).resolve("valueReference", msg, "ClinicalImpression")
    episode = opt_one(msg, "EpisodeOfCare")
    zvh, referral_id, case_path = _case(task)
    episode_id, episode_path = episode.identifier(EPISODE_SYSTEM) if episode else (None, "")
    inclusion = episode.obj("period").date("start") if episode else None
    return build_model(
        AssessmentOutcome,
        {
            "assessment_id": task.identifier(ASSESSMENT_SYSTEM)[0],
            "zvh": zvh,
            "referral_id": referral_id,
            "provider": task.party("owner"),
            "assessed_on": task.date("authoredOn"),
            "person": person_from_patient(patient.data),
            "decision": decision.code("valueCodeableConcept", AssessmentDecision),
            "criteria": tuple(_criterion(f) for f in impression.items("finding")),
            "reasons": reasons.string("valueString"),
            "alternative": code_in(alt_cc, AdvisedAlternative) if alt_cc else None,
            "alternative_note": alt_cc.opt_string("text") if alt_cc else None,
            "inclusion_date": inclusion,
            "episode_id": episode_id,
        },
        {
            "assessment_id": task.at("identifier"),
            "zvh": case_path,
            "referral_id": case_path,
            "person": "Patient.birthDate",
            "provider": task.at("owner"),
            "criteria": impression.at("finding"),
            "reasons": reasons.at("valueString"),
            "alternative": alternative.path if alternative else task.at("output"),
            "alternative_note": alt_cc.at("text") if alt_cc else task.at("output"),
            "inclusion_date": "EpisodeOfCare.period.start" if episode else "EpisodeOfCare",
            "episode_id": episode_path or "EpisodeOfCare",
        },
        "Task",
    )


def _case(task: Src) -> tuple[str, str, str]:
    based_on = task.items("basedOn")
    if len(based_on) != 1:
        raise task.error("basedOn", "required", "must name exactly one ZVH case", "case")
    return read_case(based_on[0])


class InclusionNotice(BaseModel):
    """What a payer reads from an inclusion decision minimised for it (identity and care
    episode): who is included, in which episode, from which date, by which provider."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    episode_id: IdValue
    inclusion_date: date
    provider: PartyId
    zvh: PartyId
    referral_id: IdValue
    bsn: str


def inclusion_notice_from_message(msg: ParsedMessage) -> InclusionNotice:
    """Read an inclusion notice: the Task's decision must be ``included``, and the
    EpisodeOfCare gives the episode and its start; no ClinicalImpression is needed (the router
    withholds it from a payer)."""
    task = one(msg, "Task")
    patient = one(msg, "Patient")
    decision = _outputs(task).get(TaskParameter.DECISION)
    if decision is None:
        raise task.error("output", "required", "output decision is missing", "required")
    if decision.code("valueCodeableConcept", AssessmentDecision) is not AssessmentDecision.INCLUDED:
        raise decision.error(
            "valueCodeableConcept", "value", "a notice is of an inclusion", "not-included"
        )
    episode = one(msg, "EpisodeOfCare")
    episode_id, episode_path = episode.identifier(EPISODE_SYSTEM)
    zvh, referral_id, case_path = _case(task)
    person = person_from_patient(patient.data)
    return build_model(
        InclusionNotice,
        {
            "episode_id": episode_id,
            "inclusion_date": episode.obj("period").date("start"),
            "provider": task.party("owner"),
            "zvh": zvh,
            "referral_id": referral_id,
            "bsn": person.bsn,
        },
        {"episode_id": episode_path, "zvh": case_path, "referral_id": case_path},
        "Task",
    )
