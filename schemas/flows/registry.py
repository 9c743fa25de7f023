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
    rules: tuple[str, ...] = ()


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
        resources=(
            "ServiceRequest", "Patient", "Organization", "RiskAssessment", "Observation", "Basic",
            "Task",
        ),
        topics=(topics.IN_REFERRAL.name,),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONSENT,
        sender="ZVH (the policy also lets a municipality refer to the ZVH on its public task)",
        receivers="the region's coordinating provider, or the destination named (the ZVH for a "
        "municipality's referral); the municipality gets no copy",
        rules=(
            "A legal title's end is not before its start.",
            "Without a RiskAssessment the risk level reads as unknown; without Basic resources "
            "there are no legal titles.",
        ),
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
        receivers="the destinations named, as the policy allows: the ZVH (procesregie), the "
        "municipality and the executing provider; no paying party",
        rules=(
            "criteria judges each of the four inclusion criteria exactly once.",
            "included: all four criteria met, inclusion_date and episode_id given, no alternative.",
            "not-included: an alternative is given (possibly 'none'); no inclusion date or "
            "episode.",
        ),
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
        receivers="the destinations named, as the policy allows: the other providers in the "
        "episode, the ZVH, the municipality and DJI (Wfz); no paying party",
        rules=(
            "scale-up and scale-down name previous_level; scale-up goes to a higher security "
            "level, scale-down to a lower one or to ambulant.",
            "transfer names a previous_provider other than provider.",
            "A secure bed (level 2, 3 or 4) needs a location_id; location_name needs location_id.",
            "end: Encounter and EpisodeOfCare are finished; the date is the end of their period.",
            "Encounter and Location carry the same SecurityLevel tag; the EpisodeOfCare's "
            "managingOrganization is the Encounter's serviceProvider.",
        ),
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
        rules=(
            "No free text anywhere; ids may not contain 8 or more digits in a row; unknown "
            "fields are refused.",
            "Only security levels 2, 3 and 4, each once; occupied + available <= in_service.",
            "The message carries the MeasureReport labelled aggregate and nothing else.",
        ),
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
        sender="provider (coordinating or executing)",
        receivers="the payer (municipality, health insurer, care office, DJI or VWS)",
        rules=(
            "Amounts are integer eurocents (0 to 10^13); amount_cents = quantity x "
            "unit_price_cents; Claim.total equals Claim.item.net.",
            "period_end is not before period_start.",
            "registration: names its case (zvh and referral_id), quantity 1.",
            "coordination-day: names the episode; quantity = days in the period (inclusive).",
            "The payer's identifier fits its role: UZOVI (health insurer, care office), "
            "municipality code (municipality), OIN (DJI, VWS).",
        ),
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
        rules=(
            "rejected: a rejection_reason (with an optional note) and no approved amount.",
            "accepted, paid and advanced: an approved amount.",
            "paid and advanced: paid_cents and paid_on; the others: no payment.",
            "ClaimResponse.outcome is error exactly for a rejection.",
        ),
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
        topics=(topics.IN_CONSENT.name, topics.CONSENT.name),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONSENT,
        sender="the party that recorded the consent",
        receivers="the router (consent view); never forwarded to other parties",
        rules=(
            "At least one recipient or recipient role, at least one purpose and one category.",
            "period_end is not before period_start; recorded_at carries a time zone.",
            "A representative's consent names the representative; a person's consent does not.",
            "Revocation: the same consent_id with status inactive and a later recorded_at "
            "(revoke()); only permit provisions exist.",
        ),
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
        sender="a provider's claims desk (financing gaps, overdue payments); the policy also "
        "lets a ZVH, a municipality and the router send one, which none of them does yet",
        receivers="the national coordination point",
        rules=(
            "Reason other needs an explanation.",
            "stuck_since is not after the (UTC) date of raised_at.",
        ),
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
        rules=(
            "request_id is the request's message id (MessageHeader.id = Bundle.identifier UUID).",
            "An error response without issues carries a placeholder issue (reason no-details), "
            "which reading removes again; no-details is reserved.",
        ),
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
