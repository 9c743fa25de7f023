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
    escalation_answer,
    referral,
    response,
    transition,
    withdrawal,
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
        "municipality's referral or information); the municipality of residence gets a "
        "separate notice from the ZVH adapter (public task, Wmo 2015: identity and referral "
        "signal only, never the risk assessment or legal title)",
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
        "municipality and the executing provider; and, as a separate inclusion notice for "
        "payment (HPAYMT, on the financing law), the payer of client-bound coordination on the "
        "inclusion date (health insurer, DJI or care office), which the provider's claims desk "
        "sends once per episode",
        rules=(
            "criteria judges each of the four inclusion criteria exactly once.",
            "included: all four criteria met, inclusion_date and episode_id given, no alternative.",
            "included: the person is 18 or older on the decision date (assessed_on; the 18th "
            "birthday counts), else age-of-majority; a referral is not refused for age "
            '(implementation plan 2022, 2.1: "Personen (18+)").',
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
        "episode, the ZVH, the municipality and DJI (Wfz); no paying party (a payer learns of "
        "an inclusion from its inclusion notice, an assessment-outcome; a detention stops "
        "the coordination claims at the provider's desk)",
        rules=(
            "scale-up and scale-down name previous_level; scale-up goes to a higher security "
            "level, scale-down to a lower one or to ambulant.",
            "transfer names a previous_provider other than provider.",
            "A secure bed (level 2, 3 or 4) needs a location_id; location_name needs location_id.",
            "end: Encounter and EpisodeOfCare are finished; the date is the end of their period.",
            "detention and interruption: Encounter.status onleave, setting ambulant without a "
            "location (the provider holds no bed); detention-end and interruption-end resume "
            "care at the given setting. Neither pauses the two-year follow-up; a detention "
            "pauses the EUR 20/day coordination claim (docs/financing.md).",
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
        title="Escalation of a stuck case (the escalation ladder)",
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
        topics=(topics.IN_ESCALATION.name,),
        purpose=PurposeOfUse.ESCALATION,
        legal_basis=LegalBasis.PUBLIC_TASK,
        sender="a ZVH (JSON, CSV, HTTP), a provider's EPD inbox (JSON, CSV) and its claims desk "
        "(financing gaps, overdue payments, always national), a municipality, and the router "
        "(its watchdogs, and the ladder moving an escalation to national)",
        receivers="regional: the region's escalation step (`KETENBUS_ESCALATION_REGIONAL_STEPS`, "
        "default the region's coordinating provider); national: the national coordination point",
        rules=(
            "Reason other needs an explanation.",
            "Reason no-bed needs a security level 2, 3 or 4.",
            "stuck_since is not after the (UTC) date of raised_at.",
            "The router refuses an escalation for a case it never routed a referral of "
            "(`unknown-case`), one raised in another party's name (`raised-by-mismatch`) and a "
            "second open escalation with the same id (`escalation-open`).",
        ),
    ),
    FlowSpec(
        name="escalation-answer",
        title="Answer to an escalation",
        event=EventCode.ESCALATION_ANSWER,
        model=escalation_answer.EscalationAnswer,
        module=escalation_answer,
        entries=escalation_answer.answer_entries,
        to_message=escalation_answer.answer_message,
        from_message=escalation_answer.answer_from_message,
        functions=("answer_entries", "answer_message", "answer_from_message"),
        mapping=escalation_answer.MAPPING,
        focus="Task",
        resources=("Task",),
        topics=(topics.IN_ESCALATION.name,),
        purpose=PurposeOfUse.ESCALATION,
        legal_basis=LegalBasis.PUBLIC_TASK,
        sender="the step the escalation stands on (the region's step, or the national "
        "coordination point through the web app or `ketenbus escalation answer`); the router "
        "(move to national; a watchdog closing its own escalation); the escalating party may "
        "resolve its own",
        receivers="the escalating party, and the steps of the ladder (regional step; national "
        "coordination point once national)",
        rules=(
            "Action assign needs an assignee; request-info needs a note.",
            "The router refuses an answer to an escalation it does not know "
            "(`unknown-escalation`), from a party that was not asked (`not-asked`), to an "
            "escalation already resolved (`escalation-resolved`), or for another case or "
            "escalating party than the escalation's (`answer-mismatch`).",
        ),
    ),
    FlowSpec(
        name="withdrawal",
        title="Withdrawal (intrekking) of a message entered in error",
        event=EventCode.WITHDRAWAL,
        model=withdrawal.Withdrawal,
        module=withdrawal,
        entries=withdrawal.withdrawal_entries,
        to_message=withdrawal.withdrawal_message,
        from_message=withdrawal.withdrawal_from_message,
        functions=("withdrawal_entries", "withdrawal_message", "withdrawal_from_message"),
        mapping=withdrawal.MAPPING,
        focus="Provenance",
        resources=("Provenance",),
        topics=(topics.IN_WITHDRAWAL.name, topics.DELIVERIES.name),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        sender="the original's sender, and no one else (docs/flows/correction.md)",
        receivers="every party that received the original, and only those (AVG art. 19), "
        "whatever the policy or the consents say now",
        rules=(
            "The Provenance's target is the MessageHeader's follow-up-of; activity NULLIFY.",
            "Refused: an unknown original (unknown-original), another party's message "
            "(not-original-sender), a second withdrawal (already-withdrawn).",
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
