"""The flow catalogue: one :class:`FlowSpec` per message event, tying together its business model,
its FHIR mapping functions, its topics and its documentation. Docs, examples, the AsyncAPI
document and the tests are generated from it, so a new flow is added here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from schemas import topics
from schemas.flows import (
    assessment,
    capacity,
    claim,
    consent,
    escalation,
    referral,
    response,
    transition,
)
from schemas.flows.common import FieldMap
from schemas.messaging import MessageMeta, ParsedMessage
from schemas.vocab import DataCategory, EventCode, LegalBasis, PurposeOfUse

Entries = list[tuple[dict[str, Any], DataCategory]]


@dataclass(frozen=True)
class FlowSpec:
    """One kind of message: event, model, mapping functions, topics and docs."""

    name: str
    title: str
    event: EventCode
    model: type
    module: ModuleType
    entries: Callable[[Any], Entries]
    to_message: Callable[[Any, MessageMeta], dict[str, Any]]
    from_message: Callable[[ParsedMessage], Any]
    functions: tuple[str, ...]
    mapping: tuple[FieldMap, ...]
    focus: str
    resources: tuple[str, ...]
    topics: tuple[str, ...]
    purpose: PurposeOfUse
    legal_basis: LegalBasis
    sender: str
    receivers: str


FLOWS: tuple[FlowSpec, ...] = (
    FlowSpec(
        name="referral",
        title="Referral (aanmelding)",
        event=EventCode.REFERRAL,
        model=referral.Referral,
        module=referral,
        entries=referral.referral_entries,
        to_message=referral.referral_message,
        from_message=referral.referral_from_message,
        functions=("referral_entries", "referral_message", "referral_from_message"),
        mapping=referral.MAPPING,
        focus="ServiceRequest",
        resources=("ServiceRequest", "Patient", "Organization", "RiskAssessment", "Basic", "Task"),
        topics=(topics.IN_REFERRAL.name,),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONFLICT_OF_DUTIES,
        sender="ZVH",
        receivers="the region's coordinating provider (and, minimised, the municipality)",
    ),
    FlowSpec(
        name="assessment-outcome",
        title="Assessment outcome (inclusiebesluit)",
        event=EventCode.ASSESSMENT_OUTCOME,
        model=assessment.AssessmentOutcome,
        module=assessment,
        entries=assessment.assessment_entries,
        to_message=assessment.assessment_message,
        from_message=assessment.assessment_from_message,
        functions=("assessment_entries", "assessment_message", "assessment_from_message"),
        mapping=assessment.MAPPING,
        focus="Task",
        resources=("Task", "Patient", "ClinicalImpression", "EpisodeOfCare"),
        topics=(topics.IN_ASSESSMENT.name,),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONSENT,
        sender="coordinating provider",
        receivers="the ZVH (procesregie), the municipality and payers that must act",
    ),
    FlowSpec(
        name="care-transition",
        title="Care transition (zorgtransitie)",
        event=EventCode.CARE_TRANSITION,
        model=transition.CareTransition,
        module=transition,
        entries=transition.transition_entries,
        to_message=transition.transition_message,
        from_message=transition.transition_from_message,
        functions=("transition_entries", "transition_message", "transition_from_message"),
        mapping=transition.MAPPING,
        focus="Encounter",
        resources=("Encounter", "Patient", "EpisodeOfCare", "Location"),
        topics=(topics.IN_TRANSITION.name,),
        purpose=PurposeOfUse.TREAT,
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        sender="provider",
        receivers="the ZVH, the other providers in the episode and the paying parties",
    ),
    FlowSpec(
        name="capacity-report",
        title="Secure-bed capacity report (capaciteitsmelding)",
        event=EventCode.CAPACITY_REPORT,
        model=capacity.CapacityReport,
        module=capacity,
        entries=capacity.capacity_entries,
        to_message=capacity.capacity_message,
        from_message=capacity.capacity_from_message,
        functions=("capacity_entries", "capacity_message", "capacity_from_message"),
        mapping=capacity.MAPPING,
        focus="MeasureReport",
        resources=("MeasureReport",),
        topics=(topics.CAPACITY.name,),
        purpose=PurposeOfUse.HOPERAT,
        legal_basis=LegalBasis.PUBLIC_TASK,
        sender="provider",
        receivers="the national capacity dashboard and the national coordination point",
    ),
    FlowSpec(
        name="claim",
        title="Claim (declaratie)",
        event=EventCode.CLAIM,
        model=claim.Claim,
        module=claim,
        entries=claim.claim_entries,
        to_message=claim.claim_message,
        from_message=claim.claim_from_message,
        functions=("claim_entries", "claim_message", "claim_from_message"),
        mapping=claim.CLAIM_MAPPING,
        focus="Claim",
        resources=("Claim", "Patient", "Coverage", "Organization"),
        topics=(topics.IN_CLAIM.name,),
        purpose=PurposeOfUse.HPAYMT,
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        sender="provider or ZVH",
        receivers="the payer (municipality, health insurer, care office, DJI or VWS)",
    ),
    FlowSpec(
        name="claim-response",
        title="Claim response (declaratie-antwoord)",
        event=EventCode.CLAIM_RESPONSE,
        model=claim.ClaimResponse,
        module=claim,
        entries=claim.claim_response_entries,
        to_message=claim.claim_response_message,
        from_message=claim.claim_response_from_message,
        functions=(
            "claim_response_entries",
            "claim_response_message",
            "claim_response_from_message",
        ),
        mapping=claim.RESPONSE_MAPPING,
        focus="ClaimResponse",
        resources=("ClaimResponse", "Patient", "Organization"),
        topics=(topics.IN_CLAIM.name,),
        purpose=PurposeOfUse.HPAYMT,
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        sender="payer",
        receivers="the claimant",
    ),
    FlowSpec(
        name="consent",
        title="Consent (toestemming) and revocation",
        event=EventCode.CONSENT,
        model=consent.ConsentRecord,
        module=consent,
        entries=consent.consent_entries,
        to_message=consent.consent_message,
        from_message=consent.consent_from_message,
        functions=("consent_entries", "consent_message", "consent_from_message", "revoke"),
        mapping=consent.MAPPING,
        focus="Consent",
        resources=("Consent", "Patient"),
        topics=(topics.CONSENT.name,),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONSENT,
        sender="the party that recorded the consent",
        receivers="the router (consent view); never forwarded to other parties",
    ),
    FlowSpec(
        name="escalation",
        title="Escalation to the national coordination point",
        event=EventCode.ESCALATION,
        model=escalation.Escalation,
        module=escalation,
        entries=escalation.escalation_entries,
        to_message=escalation.escalation_message,
        from_message=escalation.escalation_from_message,
        functions=("escalation_entries", "escalation_message", "escalation_from_message"),
        mapping=escalation.MAPPING,
        focus="Task",
        resources=("Task", "Patient"),
        topics=(topics.IN_ESCALATION.name, topics.ESCALATION.name),
        purpose=PurposeOfUse.ESCALATION,
        legal_basis=LegalBasis.PUBLIC_TASK,
        sender="ZVH, provider or the router (financing gaps)",
        receivers="the national coordination point",
    ),
    FlowSpec(
        name="response",
        title="Message response (ok / transient-error / fatal-error)",
        event=EventCode.RESPONSE,
        model=response.MessageResponse,
        module=response,
        entries=response.response_entries,
        to_message=response.response_bundle,
        from_message=response.response_from_message,
        functions=(
            "response_entries",
            "response_bundle",
            "response_message",
            "response_from_message",
        ),
        mapping=response.MAPPING,
        focus="OperationOutcome",
        resources=("OperationOutcome",),
        topics=(),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        sender="the router (or any receiver)",
        receivers="the sender of the request, on its out.<party> topic",
    ),
)

BY_NAME = {f.name: f for f in FLOWS}
BY_EVENT = {f.event: f for f in FLOWS}


def flow_for(event: EventCode) -> FlowSpec:
    """The flow of a message event."""
    return BY_EVENT[event]


def read_flow(msg: ParsedMessage) -> Any:
    """The business model of any parsed message, chosen by its event."""
    return flow_for(msg.meta.event).from_message(msg)
