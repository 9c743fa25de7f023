"""Example messages: one or more valid FHIR message Bundles per flow (``<name>.json``) and invalid
ones under ``invalid/`` with the error each must produce (``invalid/expected.yaml``).

Everything here is synthetic: BSNs from the 9999xxxxx range that pass the 11-check, the family
name "Voorbeeld" ("example"), UZOVI and municipality code 9999, parties named ``*-voorbeeld``.
Ids are deterministic (``deterministic_ids``), so regenerating gives the same files:
``python -m broker.apps.generate.examples`` (the test suite fails when the committed files are
stale).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from schemas.errors import Issue
from schemas.examples import EXAMPLES_DIR, INVALID_DIR
from schemas.flows.assessment import AssessmentOutcome, CriterionAssessment
from schemas.flows.capacity import CapacityReport, LevelCapacity
from schemas.flows.claim import Claim, ClaimExplanation, ClaimResponse, ExplanationInput, Payer
from schemas.flows.common import Gender, Person
from schemas.flows.consent import ConsentRecord, Grantor, revoke
from schemas.flows.escalation import Escalation
from schemas.flows.escalation_answer import EscalationAnswer
from schemas.flows.referral import LegalTitle, Referral
from schemas.flows.registry import BY_NAME, FlowSpec
from schemas.flows.response import MessageResponse
from schemas.flows.transition import CareTransition
from schemas.flows.withdrawal import Withdrawal
from schemas.messaging import BasisDetail, MessageMeta, ResponseCode, deterministic_ids, new_id
from schemas.vocab import (
    AdvisedAlternative,
    AssessmentDecision,
    ClaimOutcome,
    ClaimRejectionReason,
    ClaimService,
    CriterionResult,
    DataCategory,
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    FinancingRegime,
    InclusionCriterion,
    LegalBasis,
    LegalTitleKind,
    PartyRole,
    PurposeOfUse,
    RiskLevel,
    SecurityLevel,
    SignalSource,
    SpecialException,
    TransitionKind,
)

CET = timezone(timedelta(hours=1), "CET")

ZVH = "zvh-voorbeeld"
PROVIDER = "aanbieder-voorbeeld"
PROVIDER_B = "aanbieder-b-voorbeeld"
MUNICIPALITY = "gemeente-voorbeeld"
INSURER = "zorgverzekeraar-voorbeeld"
VWS = "vws"
NATIONAL = "landelijk-coordinatiepunt"
DASHBOARD = "capaciteitsdashboard"
ROUTER = "router"
REGION = "regio-voorbeeld"

# The example parties and their roles (the registry the documented-flow test routes them with).
PARTY_ROLES: dict[str, PartyRole] = {
    ZVH: PartyRole.ZVH,
    PROVIDER: PartyRole.COORDINATING_PROVIDER,  # of REGION
    PROVIDER_B: PartyRole.EXECUTING_PROVIDER,
    MUNICIPALITY: PartyRole.MUNICIPALITY,
    INSURER: PartyRole.HEALTH_INSURER,
    VWS: PartyRole.VWS,
    NATIONAL: PartyRole.NATIONAL_COORDINATION,
    DASHBOARD: PartyRole.CAPACITY_DASHBOARD,
    ROUTER: PartyRole.ROUTER,
}

PERSON = Person(
    bsn="999990019",
    family_name="Voorbeeld",
    given_names=("Jan",),
    birth_date=date(1990, 1, 1),
    gender=Gender.MALE,
    residence_municipality="9999",
    homeless=True,
)
PAYER_MUNICIPALITY = Payer(party_id=MUNICIPALITY, role=PartyRole.MUNICIPALITY, identifier="9999")
PAYER_INSURER = Payer(party_id=INSURER, role=PartyRole.HEALTH_INSURER, identifier="9999")
PAYER_VWS = Payer(party_id=VWS, role=PartyRole.VWS, identifier="00000099999999999999")


@dataclass(frozen=True)
class Routed:
    """What the router does with an example under the shipped policy, as its flow page states it
    ("Who receives it") and ``tests/unit/router/test_documented_flows.py`` checks: the roles it
    delivers to with the categories each gets, the roles it denies with the policy's reason, or
    the reason it refuses the whole message; for a consent, the change to the consent view."""

    receives: tuple[tuple[PartyRole, tuple[DataCategory, ...]], ...] = ()
    denied: tuple[tuple[PartyRole, str], ...] = ()
    refused: str | None = None
    consent: str | None = None  # granted, revoked, ...: a consent is logged, forwarded to nobody


@dataclass(frozen=True)
class Example:
    """One valid example: the file stem, its flow, the model, who sends it to whom, and what the
    router does with it (``routed``). ``purpose`` and ``legal_basis`` override the flow's."""

    name: str
    flow: FlowSpec
    model: Any
    sender: str
    destinations: tuple[str, ...]
    basis_detail: BasisDetail | None = None
    description: str = ""
    routed: Routed = Routed()
    purpose: PurposeOfUse | None = None
    legal_basis: LegalBasis | None = None


R, C = PartyRole, DataCategory


def _gets(*receives: tuple[PartyRole, tuple[DataCategory, ...]]) -> Routed:
    return Routed(receives=receives)


IDENTITY_EPISODE = (C.IDENTITY, C.CARE_EPISODE)
IDENTITY_FINANCIAL = (C.IDENTITY, C.FINANCIAL)


def _criteria(result: CriterionResult = CriterionResult.MET) -> tuple[CriterionAssessment, ...]:
    return tuple(
        CriterionAssessment(criterion=c, result=result, note=None) for c in InclusionCriterion
    )


def examples() -> list[Example]:
    """The valid examples, in a fixed order."""
    referral = Referral(
        referral_id="ZVH-2024-0042",
        zvh=ZVH,
        region=REGION,
        registered_on=date(2024, 3, 4),
        person=PERSON,
        signaller_name="Gemeente Voorbeeld, team Veiligheid",
        signaller_source=SignalSource.MUNICIPALITY,
        signaller_party=MUNICIPALITY,
        signal="Herhaald dreigend gedrag naar buren; zorg wordt geweigerd.",
        police_facts="Drie registraties bedreiging in de basisvoorziening handhaving (BVH).",
        risk_level=RiskLevel.HIGH,
        risk_summary="Risicotaxatie wijst op hoog risico op geweld tegen anderen.",
        legal_titles=(
            LegalTitle(kind=LegalTitleKind.WVGGZ, start=date(2022, 6, 1), end=date(2023, 6, 1)),
        ),
        care_avoider=True,
        assessor=PROVIDER,
    )
    included = AssessmentOutcome(
        assessment_id="BEO-2024-0007",
        zvh=ZVH,
        referral_id="ZVH-2024-0042",
        provider=PROVIDER,
        assessed_on=date(2024, 4, 2),
        person=PERSON,
        decision=AssessmentDecision.INCLUDED,
        criteria=(
            CriterionAssessment(
                criterion=InclusionCriterion.DANGEROUS_BEHAVIOUR,
                result=CriterionResult.MET,
                note="Risicotaxatie (HKT-R) hoog.",
            ),
            *_criteria()[1:],
        ),
        reasons="Alle vier criteria zijn vervuld.",
        inclusion_date=date(2024, 4, 2),
        episode_id="LLA-2024-0007",
    )
    not_included = AssessmentOutcome(
        assessment_id="BEO-2024-0008",
        zvh=ZVH,
        referral_id="ZVH-2024-0043",
        provider=PROVIDER,
        assessed_on=date(2024, 4, 3),
        person=PERSON.model_copy(update={"bsn": "999990020", "homeless": False}),
        decision=AssessmentDecision.NOT_INCLUDED,
        criteria=(
            CriterionAssessment(
                criterion=InclusionCriterion.DANGEROUS_BEHAVIOUR, result=CriterionResult.MET
            ),
            CriterionAssessment(
                criterion=InclusionCriterion.MULTI_PROBLEM,
                result=CriterionResult.NOT_MET,
                note="De huidige ggz-behandeling houdt de problematiek in stand.",
            ),
            CriterionAssessment(
                criterion=InclusionCriterion.STRUCTURE_NEED, result=CriterionResult.NOT_ASSESSED
            ),
            CriterionAssessment(
                criterion=InclusionCriterion.LEGAL_TITLE, result=CriterionResult.MET
            ),
        ),
        reasons="Het bestaande zorgstelsel kan de problematiek dragen.",
        alternative=AdvisedAlternative.MENTAL_HEALTH,
        alternative_note="Voortzetten FACT-behandeling bij de huidige aanbieder.",
    )
    scale_up = CareTransition(
        transition_id="TR-2024-0101",
        episode_id="LLA-2024-0007",
        kind=TransitionKind.SCALE_UP,
        effective_on=date(2024, 9, 15),
        person=PERSON,
        provider=PROVIDER,
        security_level=SecurityLevel.LEVEL_3,
        previous_level=SecurityLevel.AMBULANT,
        location_id="kliniek-voorbeeld-unit-3",
        location_name="Kliniek Voorbeeld, afdeling 3",
        reason="Toename van dreiging; ambulant niet meer te hanteren.",
    )
    transfer = CareTransition(
        transition_id="TR-2025-0007",
        episode_id="LLA-2024-0007",
        kind=TransitionKind.TRANSFER,
        effective_on=date(2025, 2, 1),
        person=PERSON,
        provider=PROVIDER_B,
        previous_provider=PROVIDER,
        security_level=SecurityLevel.AMBULANT,
    )
    capacity_report = CapacityReport(
        report_id="CAP-2024-09-15T0800",
        provider=PROVIDER,
        location_id="kliniek-voorbeeld-unit-3",
        region=REGION,
        measured_at=datetime(2024, 9, 15, 8, 0, tzinfo=CET),
        levels=(
            LevelCapacity(
                security_level=SecurityLevel.LEVEL_3, in_service=12, occupied=11, available=1
            ),
            LevelCapacity(
                security_level=SecurityLevel.LEVEL_4, in_service=4, occupied=4, available=0
            ),
        ),
    )
    claim_registration = Claim(
        claim_id="DEC-2024-0042",
        provider=PROVIDER,
        created=date(2024, 4, 10),
        person=PERSON,
        service=ClaimService.REGISTRATION,
        period_start=date(2024, 3, 4),
        period_end=date(2024, 4, 2),
        quantity=1,
        unit_price_cents=200_000,
        amount_cents=200_000,
        regime=FinancingRegime.WMO,
        payer=PAYER_MUNICIPALITY,
        zvh=ZVH,
        referral_id="ZVH-2024-0042",
    )
    claim_coordination = Claim(
        claim_id="DEC-2024-0107",
        provider=PROVIDER,
        provider_agb="99999999",
        created=date(2024, 5, 1),
        person=PERSON,
        service=ClaimService.COORDINATION_DAY,
        period_start=date(2024, 4, 2),
        period_end=date(2024, 4, 30),
        quantity=29,
        unit_price_cents=2_000,
        amount_cents=58_000,
        regime=FinancingRegime.ZVW,
        payer=PAYER_INSURER,
        episode_id="LLA-2024-0007",
        explanation=ClaimExplanation(
            rule="coordination-temporary-2022-2023",
            version="1",
            inputs=(
                ExplanationInput(name="criminal-law-title", value="none"),
                ExplanationInput(name="health-insurer", value=PAYER_INSURER.identifier),
            ),
            text="EUR 20.00 per day from inclusion; no criminal-law title: the health insurer.",
        ),
    )
    paid = ClaimResponse(
        response_id="ANT-2024-0042",
        claim_id="DEC-2024-0042",
        provider=PROVIDER,
        payer=PAYER_MUNICIPALITY,
        person_bsn=PERSON.bsn,
        decided_on=date(2024, 4, 24),
        outcome=ClaimOutcome.PAID,
        approved_cents=200_000,
        paid_cents=200_000,
        paid_on=date(2024, 4, 30),
    )
    rejected = ClaimResponse(
        response_id="ANT-2024-0107",
        claim_id="DEC-2024-0107",
        provider=PROVIDER,
        payer=PAYER_INSURER,
        person_bsn=PERSON.bsn,
        decided_on=date(2024, 5, 20),
        outcome=ClaimOutcome.REJECTED,
        rejection_reason=ClaimRejectionReason.NO_PAYMENT_TITLE,
        rejection_note="Coördinatie voor de start van de behandeling valt niet onder de Zvw.",
    )
    consent = ConsentRecord(
        consent_id="TOE-2024-0042",
        person_bsn=PERSON.bsn,
        grantor=Grantor.REPRESENTATIVE,
        representative_name="M. Voorbeeld (mentor)",
        recipients=(PROVIDER_B,),
        recipient_roles=(PartyRole.ZVH, PartyRole.MUNICIPALITY),
        purposes=(PurposeOfUse.COC,),
        categories=(DataCategory.IDENTITY, DataCategory.CARE_EPISODE, DataCategory.PROCESS),
        period_start=date(2024, 4, 2),
        period_end=date(2026, 4, 1),
        recorded_at=datetime(2024, 4, 2, 14, 30, tzinfo=CET),
        recorded_by=PROVIDER,
    )
    escalation = Escalation(
        escalation_id="ESC-2024-0003",
        raised_by=PROVIDER,
        raised_at=datetime(2024, 6, 5, 9, 0, tzinfo=CET),
        zvh=ZVH,
        referral_id="ZVH-2024-0042",
        reason=EscalationReason.PAYMENT_OVERDUE,
        stuck_since=date(2024, 5, 1),
        explanation="Declaratie coördinatie april staat ruim vier weken open.",
        episode_id="LLA-2024-0007",
        claim_id="DEC-2024-0107",
        level=EscalationLevel.NATIONAL,
    )
    no_bed = Escalation(
        escalation_id="ZVH-ESC-2024-0011",
        raised_by=ZVH,
        raised_at=datetime(2024, 3, 4, 10, 0, tzinfo=CET),
        zvh=ZVH,
        referral_id="ZVH-2024-0042",
        reason=EscalationReason.NO_BED,
        stuck_since=date(2024, 2, 26),
        security_level=SecurityLevel.LEVEL_3,
        explanation="Geen bed op beveiligingsniveau 3 in de regio; wachtlijst vier weken.",
    )
    answer = EscalationAnswer(
        answer_id="LCP-2024-0005",
        escalation_id="ESC-2024-0003",
        raised_by=PROVIDER,
        answered_by=NATIONAL,
        answered_at=datetime(2024, 6, 6, 11, 0, tzinfo=CET),
        zvh=ZVH,
        referral_id="ZVH-2024-0042",
        action=EscalationAction.ASSIGN,
        level=EscalationLevel.NATIONAL,
        assignee=VWS,
        note="Noodregeling: VWS schiet de declaratie voor.",
    )
    fatal = MessageResponse(
        request_id="7d3f3c1e-2a9b-4c61-9e0f-3b1f0a5c2d11",
        code=ResponseCode.FATAL_ERROR,
        issues=(
            Issue(
                "Patient.identifier[0].value",
                "value",
                "bsn: fails the BSN 11-check (elfproef)",
                "bsn-check",
            ),
        ),
    )
    flows = BY_NAME
    return [
        Example(
            "referral",
            flows["referral"],
            referral,
            ZVH,
            (),
            BasisDetail(
                justification="Ernstig gevaar voor derden; zonder deling geen beoordeling.",
                decided_by="procesregisseur ZVH Voorbeeld",
            ),
            "A municipality's signal registered at the ZVH, with police facts (Wpg) apart from the "
            "signal, a risk indication and a past Wvggz title, sent for the purpose safety on the "
            "professional's conflict of duties "
            "(without consent); no destination: the router sends it to the coordinating "
            "provider of the referral's region.",
            purpose=PurposeOfUse.SAFETY,
            legal_basis=LegalBasis.CONFLICT_OF_DUTIES,
            routed=_gets(
                (
                    R.COORDINATING_PROVIDER,
                    (
                        C.IDENTITY,
                        C.REFERRAL_SIGNAL,
                        C.RISK_ASSESSMENT,
                        C.POLICE_DATA,
                        C.LEGAL_TITLE,
                    ),
                )
            ),
        ),
        Example(
            "referral-municipality-notice",
            flows["referral"],
            referral,
            ZVH,
            (MUNICIPALITY,),
            BasisDetail(citation="Wmo 2015"),
            "The referral notice the ZVH adapter sends the municipality of residence (issue 15 "
            "point 3), on the municipality's public task (Wmo 2015): it learns who is "
            "registered, the case number and region, and the signal; the risk assessment, the "
            "legal title and the ZVH's workflow are withheld.",
            purpose=PurposeOfUse.COC,
            legal_basis=LegalBasis.PUBLIC_TASK,
            routed=_gets((R.MUNICIPALITY, (C.IDENTITY, C.REFERRAL_SIGNAL))),
        ),
        Example(
            "referral-from-municipality",
            flows["referral"],
            referral.model_copy(
                update={
                    "referral_id": "GEM-2024-0011",
                    "risk_level": RiskLevel.UNKNOWN,
                    "risk_summary": None,
                    "legal_titles": (),
                    "assessor": None,
                }
            ),
            MUNICIPALITY,
            (ZVH,),
            BasisDetail(citation="Wmo 2015"),
            "A municipality brings a case to the ZVH's aanmeldtafel on its public task (the "
            "municipality adapter's `referral` document; its `information` on a case the ZVH "
            "told it of travels the same way, on the ZVH's case number).",
            purpose=PurposeOfUse.COC,
            legal_basis=LegalBasis.PUBLIC_TASK,
            routed=_gets((R.ZVH, (C.IDENTITY, C.REFERRAL_SIGNAL))),
        ),
        Example(
            "assessment-outcome",
            flows["assessment-outcome"],
            included,
            PROVIDER,
            (ZVH, MUNICIPALITY, PROVIDER_B),
            description="An inclusion: all four criteria met, episode starts on the decision date.",
            routed=_gets(
                (R.ZVH, IDENTITY_EPISODE),
                (R.MUNICIPALITY, IDENTITY_EPISODE),
                (R.EXECUTING_PROVIDER, IDENTITY_EPISODE),
            ),
        ),
        Example(
            "assessment-outcome-payer-notice",
            flows["assessment-outcome"],
            included.model_copy(
                update={
                    "reasons": "Inclusion in the Levensloopaanpak: notice to the payer of "
                    "coordination.",
                    "criteria": tuple(
                        c.model_copy(update={"note": None}) for c in included.criteria
                    ),
                }
            ),
            PROVIDER,
            (INSURER,),
            BasisDetail(citation="Zorgverzekeringswet", exceptions=(SpecialException.CARE,)),
            "The inclusion notice the provider's claims desk sends the payer of client-bound "
            "coordination (issue 15 point 7): for payment, on the payer's financing law, with "
            "the exception of UAVG art. 30(3) stated; the insurer gets who is included and the "
            "episode with its start date, never the criteria or the risk assessment.",
            purpose=PurposeOfUse.HPAYMT,
            legal_basis=LegalBasis.LEGAL_OBLIGATION,
            routed=_gets((R.HEALTH_INSURER, IDENTITY_EPISODE)),
        ),
        Example(
            "assessment-outcome-not-included",
            flows["assessment-outcome"],
            not_included,
            PROVIDER,
            (ZVH,),
            description="A non-inclusion with reasons and the advised alternative, about a "
            "person without a consent on record.",
            routed=Routed(denied=((R.ZVH, "no-consent"),)),
        ),
        Example(
            "care-transition",
            flows["care-transition"],
            scale_up,
            PROVIDER,
            (PROVIDER_B,),
            BasisDetail(citation="Wet verplichte ggz"),
            "Scaling up from ambulant FACT care to a security level 3 bed.",
            routed=_gets((R.EXECUTING_PROVIDER, IDENTITY_EPISODE)),
        ),
        Example(
            "care-transition-transfer",
            flows["care-transition"],
            transfer,
            PROVIDER_B,
            (PROVIDER,),
            BasisDetail(citation="Wet verplichte ggz"),
            "A transfer of ambulant care to another provider.",
            routed=_gets((R.COORDINATING_PROVIDER, IDENTITY_EPISODE)),
        ),
        Example(
            "capacity-report",
            flows["capacity-report"],
            capacity_report,
            PROVIDER,
            (),
            description="Beds at one location, levels 3 and 4; counts only.",
            routed=_gets(
                (R.CAPACITY_DASHBOARD, (C.AGGREGATE,)), (R.NATIONAL_COORDINATION, (C.AGGREGATE,))
            ),
        ),
        Example(
            "claim",
            flows["claim"],
            claim_registration,
            PROVIDER,
            (MUNICIPALITY,),
            BasisDetail(citation="Wmo 2015"),
            "The flat registration-phase fee (EUR 2,000) to the municipality of residence, "
            "claimed by the coordinating provider.",
            routed=_gets((R.MUNICIPALITY, IDENTITY_FINANCIAL)),
        ),
        Example(
            "claim-coordination",
            flows["claim"],
            claim_coordination,
            PROVIDER,
            (INSURER,),
            BasisDetail(citation="Zorgverzekeringswet"),
            "29 days of client-bound coordination at EUR 20 to the health insurer.",
            routed=_gets((R.HEALTH_INSURER, IDENTITY_FINANCIAL)),
        ),
        Example(
            "claim-response",
            flows["claim-response"],
            paid,
            MUNICIPALITY,
            (PROVIDER,),
            BasisDetail(citation="Wmo 2015"),
            "The municipality paid the registration-phase claim.",
            routed=_gets((R.COORDINATING_PROVIDER, IDENTITY_FINANCIAL)),
        ),
        Example(
            "claim-response-rejected",
            flows["claim-response"],
            rejected,
            INSURER,
            (PROVIDER,),
            BasisDetail(citation="Zorgverzekeringswet"),
            "A rejection for lack of a payment title: a financing gap made visible.",
            routed=_gets((R.COORDINATING_PROVIDER, IDENTITY_FINANCIAL)),
        ),
        Example(
            "consent",
            flows["consent"],
            consent,
            PROVIDER,
            (ROUTER,),
            description="A representative's consent for the executing provider and the roles "
            "ZVH and municipality, recorded by the coordinating provider.",
            routed=Routed(consent="granted"),
        ),
        Example(
            "consent-revocation",
            flows["consent"],
            revoke(consent, datetime(2024, 11, 1, 10, 0, tzinfo=CET)),
            PROVIDER,
            (ROUTER,),
            description="The same consent revoked: same id, status inactive, recorded later.",
            routed=Routed(consent="revoked"),
        ),
        Example(
            "escalation",
            flows["escalation"],
            escalation,
            PROVIDER,
            (),
            BasisDetail(citation="task-lcp-levensloopaanpak"),
            description="A claim unpaid for more than four weeks, raised to the national point "
            "on its public task, without consent: it sees the case status, not the person.",
            routed=_gets((R.NATIONAL_COORDINATION, (C.PROCESS,))),
        ),
        Example(
            "escalation-no-bed",
            flows["escalation"],
            no_bed,
            ZVH,
            (),
            BasisDetail(citation="task-lcp-levensloopaanpak"),
            description="The ZVH finds no bed at security level 3: the escalation goes to the "
            "regional step first (by default the region's coordinating provider), with the case "
            "status only. Routed after the referral of the case.",
            routed=_gets((R.COORDINATING_PROVIDER, (C.PROCESS,))),
        ),
        Example(
            "escalation-answer",
            flows["escalation-answer"],
            answer,
            NATIONAL,
            (),
            BasisDetail(citation="task-lcp-levensloopaanpak"),
            description="The national coordination point assigns the overdue claim of the "
            "`escalation` example to VWS (emergency rule); the answer goes back to the "
            "escalating provider. Routed after the referral and that escalation.",
            routed=_gets((R.COORDINATING_PROVIDER, (C.PROCESS,))),
        ),
        Example(
            "withdrawal",
            flows["withdrawal"],
            Withdrawal(
                original_id=_first_id("assessment-outcome"),
                withdrawn_by=PROVIDER,
                withdrawn_at=datetime(2024, 1, 2, 9, 0, tzinfo=CET),
            ),
            PROVIDER,
            (),
            description="The coordinating provider withdraws its assessment outcome (the "
            "`assessment-outcome` example), entered in error. Routed on its own, as here, the "
            "router has delivered no such message and refuses it; after the original it goes to "
            "every recipient of the original (docs/flows/correction.md).",
            routed=Routed(refused="unknown-original"),
        ),
        Example(
            "response",
            flows["response"],
            fatal,
            ROUTER,
            (ZVH,),
            description="A fatal-error response to a referral whose BSN fails the 11-check. The "
            "router makes responses; one sent to it by a party is refused.",
            routed=Routed(refused="sender-not-authorised"),
        ),
    ]


def _first_id(name: str) -> str:
    """The message id the example ``name`` gets (the first id drawn for it)."""
    with deterministic_ids(name):
        return new_id()


def example_meta(ex: Example) -> MessageMeta:
    """The message metadata of an example (call inside ``deterministic_ids``)."""
    return MessageMeta(
        message_id=new_id(),
        event=ex.flow.event,
        sender=ex.sender,
        timestamp=datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
        purpose=ex.purpose or ex.flow.purpose,
        legal_basis=ex.legal_basis or ex.flow.legal_basis,
        destinations=ex.destinations,
        basis_detail=ex.basis_detail,
        refers_to=ex.model.original_id if isinstance(ex.model, Withdrawal) else None,
    )


def example_bundle(ex: Example) -> dict[str, Any]:
    """The example's message Bundle, with reproducible ids."""
    with deterministic_ids(ex.name):
        return ex.flow.to_message(ex.model, example_meta(ex))


def render(bundle: dict[str, Any]) -> str:
    """Committed form: indented JSON, UTF-8, newline at the end."""
    return json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"


# --- invalid examples ----------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Invalid:
    """An invalid example: built from a valid one by a mutation; must fail with this issue."""

    name: str
    base: str
    mutate: Mutation
    path: str
    reason: str
    code: str
    description: str


def _res(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def _set_bsn(b: dict[str, Any]) -> None:
    _res(b, "Patient")["identifier"][0]["value"] = "123456789"


def _not_message(b: dict[str, Any]) -> None:
    b["type"] = "collection"


def _header_second(b: dict[str, Any]) -> None:
    b["entry"][0], b["entry"][1] = b["entry"][1], b["entry"][0]


def _focus_outside(b: dict[str, Any]) -> None:
    b["entry"][0]["resource"]["focus"][0]["reference"] = (
        "urn:uuid:00000000-0000-4000-8000-000000000000"
    )


def _unknown_event(b: dict[str, Any]) -> None:
    b["entry"][0]["resource"]["eventCoding"]["code"] = "gossip"


def _untagged(b: dict[str, Any]) -> None:
    del b["entry"][1]["resource"]["meta"]


def _not_uuid(b: dict[str, Any]) -> None:
    b["identifier"]["value"] = "urn:uuid:not-a-uuid"


def _extra_element(b: dict[str, Any]) -> None:
    _res(b, "Patient")["shoeSize"] = 44


def _smuggled_patient(b: dict[str, Any]) -> None:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "6f1c2b7e-0000-4000-8000-000000000001",
        "meta": {"security": [DataCategory.AGGREGATE.coding()]},
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999990019"}],
    }
    b["entry"].append({"fullUrl": "urn:uuid:" + patient["id"], "resource": patient})


def _fractional_cent(b: dict[str, Any]) -> None:
    claim = _res(b, "Claim")
    claim["total"]["value"] = 2000.005
    claim["item"][0]["net"]["value"] = 2000.005


def _amount_mismatch(b: dict[str, Any]) -> None:
    _res(b, "Claim")["item"][0]["net"]["value"] = 1999


def _criterion_not_met(b: dict[str, Any]) -> None:
    finding = _res(b, "ClinicalImpression")["finding"][1]
    finding["extension"][0]["valueCoding"] = CriterionResult.NOT_MET.coding()


def _included_at_17(b: dict[str, Any]) -> None:
    # the decision (2024-04-02) falls the day before the 18th birthday
    _res(b, "Patient")["birthDate"] = "2006-04-03"


def _detention_with_a_bed(b: dict[str, Any]) -> None:
    enc = _res(b, "Encounter")
    enc["type"] = [{"coding": [TransitionKind.DETENTION.coding()]}]
    enc["status"] = "onleave"
    enc.pop("extension", None)


def _scale_up_to_ambulant(b: dict[str, Any]) -> None:
    enc = _res(b, "Encounter")
    enc["meta"]["tag"] = [SecurityLevel.AMBULANT.coding()]
    enc["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "Location"]
    del enc["location"]


def _bad_uzovi(b: dict[str, Any]) -> None:
    org = next(
        e["resource"]
        for e in b["entry"]
        if e["resource"]["resourceType"] == "Organization" and "type" in e["resource"]
    )
    org["identifier"][1]["value"] = "12AB"


def _deny(b: dict[str, Any]) -> None:
    _res(b, "Consent")["provision"]["type"] = "deny"


def _other_without_explanation(b: dict[str, Any]) -> None:
    task = _res(b, "Task")
    task["reasonCode"] = {"coding": [EscalationReason.OTHER.coding()]}


def _response_without_request(b: dict[str, Any]) -> None:
    del b["entry"][0]["resource"]["response"]["identifier"]


def invalid_examples() -> list[Invalid]:
    """The invalid examples with the issue (path, reason, FHIR issue code) each must produce."""
    return [
        Invalid(
            "bad-bsn",
            "referral",
            _set_bsn,
            "Patient.identifier[0].value",
            "bsn-check",
            "value",
            "The person's BSN fails the 11-check.",
        ),
        Invalid(
            "not-a-message",
            "referral",
            _not_message,
            "Bundle.type",
            "bundle-type",
            "value",
            "A collection Bundle is not a message.",
        ),
        Invalid(
            "header-not-first",
            "referral",
            _header_second,
            "Bundle.entry[0]",
            "header",
            "structure",
            "The MessageHeader must be the first entry.",
        ),
        Invalid(
            "focus-outside-bundle",
            "referral",
            _focus_outside,
            "MessageHeader.focus[0]",
            "focus",
            "not-found",
            "MessageHeader.focus points at a resource that is not in the Bundle.",
        ),
        Invalid(
            "unknown-event",
            "referral",
            _unknown_event,
            "MessageHeader.eventCoding",
            "missing-code",
            "required",
            "The event code is not one of ours.",
        ),
        Invalid(
            "untagged-resource",
            "referral",
            _untagged,
            "Bundle.entry[1].resource.meta.security",
            "category",
            "security",
            "A content resource without its data category.",
        ),
        Invalid(
            "identifier-not-uuid",
            "consent",
            _not_uuid,
            "Bundle.identifier",
            "bundle-identifier",
            "value",
            "Bundle.identifier must be urn:uuid:<uuid> (the de-duplication key).",
        ),
        Invalid(
            "not-fhir",
            "referral",
            _extra_element,
            "Bundle.entry[2].resource.(unknown field)",
            "extra_forbidden",
            "invalid",
            "An element FHIR R4 does not define (full validation with fhir.resources).",
        ),
        Invalid(
            "capacity-with-patient",
            "capacity-report",
            _smuggled_patient,
            "Bundle.entry[2].resource",
            "personal-data",
            "security",
            "A Patient smuggled into a capacity report, even labelled aggregate.",
        ),
        Invalid(
            "claim-fractional-cent",
            "claim",
            _fractional_cent,
            "Claim.total.value",
            "money-precision",
            "value",
            "An amount with a fraction of a cent.",
        ),
        Invalid(
            "claim-amount-mismatch",
            "claim",
            _amount_mismatch,
            "Claim.item[0].net",
            "amount",
            "invariant",
            "The item's net amount differs from the claim total.",
        ),
        Invalid(
            "inclusion-criterion-not-met",
            "assessment-outcome",
            _criterion_not_met,
            "ClinicalImpression.finding",
            "inclusion-criteria",
            "value",
            "An inclusion although a criterion is not met.",
        ),
        Invalid(
            "inclusion-under-18",
            "assessment-outcome",
            _included_at_17,
            "Patient.birthDate",
            "age-of-majority",
            "value",
            "An inclusion of a person who is 17 on the decision date (implementation plan "
            "2022, 2.1: \"Personen (18+)\"); the 18th birthday itself would do.",
        ),
        Invalid(
            "detention-with-a-bed",
            "care-transition",
            _detention_with_a_bed,
            "Encounter.meta.tag",
            "on-leave",
            "value",
            "A detention that keeps a level 3 bed: away from care the provider holds no bed.",
        ),
        Invalid(
            "scale-up-to-ambulant",
            "care-transition",
            _scale_up_to_ambulant,
            "Encounter.meta.tag",
            "scale-up",
            "value",
            "Scaling up to ambulant care is not scaling up.",
        ),
        Invalid(
            "payer-bad-uzovi",
            "claim-coordination",
            _bad_uzovi,
            "Organization.identifier[1].value",
            "uzovi-format",
            "value",
            "The insurer's UZOVI code is not 4 digits.",
        ),
        Invalid(
            "consent-deny",
            "consent",
            _deny,
            "Consent.provision.type",
            "deny",
            "not-supported",
            "Only permit provisions are supported.",
        ),
        Invalid(
            "escalation-other-without-explanation",
            "escalation",
            _other_without_explanation,
            "Task.reasonCode.text",
            "explanation",
            "value",
            "Reason 'other' needs an explanation.",
        ),
        Invalid(
            "response-without-request-id",
            "response",
            _response_without_request,
            "MessageHeader.response.identifier",
            "response-identifier",
            "required",
            "A response must name the request's message id.",
        ),
    ]


def expected_yaml(items: list[Invalid]) -> str:
    data: dict[str, dict[str, str]] = {
        f"{i.name}.json": {
            "based_on": f"{i.base}.json",
            "description": i.description,
            "path": i.path,
            "reason": i.reason,
            "code": i.code,
        }
        for i in items
    }
    header = (
        "# Invalid examples and the issue each must produce (an OperationOutcome issue with this\n"
        "# expression, this details code from https://ketenbus.nl/fhir/CodeSystem/issue, and this\n"
        "# FHIR issue type). Generated by `python -m broker.apps.generate.examples`; checked by\n"
        "# the tests.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def generated_files() -> dict[Path, str]:
    """Every file this module writes, with its content."""
    files: dict[Path, str] = {}
    bundles = {}
    for ex in examples():
        bundles[ex.name] = example_bundle(ex)
        files[EXAMPLES_DIR / f"{ex.name}.json"] = render(bundles[ex.name])
    items = invalid_examples()
    for inv in items:
        bundle = copy.deepcopy(bundles[inv.base])
        inv.mutate(bundle)
        files[INVALID_DIR / f"{inv.name}.json"] = render(bundle)
    files[INVALID_DIR / "expected.yaml"] = expected_yaml(items)
    return files


def write() -> list[Path]:
    """Write the examples; returns the paths written."""
    INVALID_DIR.mkdir(parents=True, exist_ok=True)
    files = generated_files()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def main() -> None:
    for path in write():
        print(path)


if __name__ == "__main__":
    main()
