"""Vocabularies as code systems: each enum member is a code with a documented meaning.

Every code system has a canonical URI (``SYSTEM``) under ``https://ketenbus.nl/fhir/CodeSystem/``
unless a national or HL7 code system fits, in which case that one is used (see ``purpose``).
``CODE_SYSTEMS`` lists them all; ``python -m broker.apps.generate.flowdocs`` renders them into
``docs/vocabularies.md``, with the closed list of legal citations (``schemas.vocab.citations``),
which is a versioned list rather than a code system.
"""

from schemas.vocab.assessment import (
    AdvisedAlternative,
    AssessmentDecision,
    CriterionResult,
    InclusionCriterion,
)
from schemas.vocab.base import Coded, CodeSystem
from schemas.vocab.capacity import CapacityPopulation
from schemas.vocab.categories import DataCategory
from schemas.vocab.claims import ClaimOutcome, ClaimRejectionReason, ClaimService
from schemas.vocab.escalation import EscalationAction, EscalationLevel, EscalationReason
from schemas.vocab.events import EventCode
from schemas.vocab.grounds import GdprBasis, SecrecyGround, SpecialException
from schemas.vocab.legal import LegalBasis
from schemas.vocab.purpose import PurposeOfUse
from schemas.vocab.referral import LegalTitleKind, RiskLevel, SignalSource
from schemas.vocab.regimes import FinancingRegime
from schemas.vocab.roles import PartyRole
from schemas.vocab.security import SecurityLevel
from schemas.vocab.transition import TransitionKind
from schemas.vocab.workflow import ServiceCode, TaskParameter

# Every code system, in the order of the docs: messaging and policy first, then per flow.
CODE_SYSTEMS: tuple[type[Coded], ...] = (
    EventCode,
    DataCategory,
    PurposeOfUse,
    LegalBasis,
    GdprBasis,
    SpecialException,
    SecrecyGround,
    PartyRole,
    SignalSource,
    RiskLevel,
    LegalTitleKind,
    AssessmentDecision,
    InclusionCriterion,
    CriterionResult,
    AdvisedAlternative,
    TransitionKind,
    SecurityLevel,
    CapacityPopulation,
    ClaimService,
    FinancingRegime,
    ClaimOutcome,
    ClaimRejectionReason,
    EscalationReason,
    EscalationLevel,
    EscalationAction,
    ServiceCode,
    TaskParameter,
)

__all__ = [
    "CODE_SYSTEMS",
    "AdvisedAlternative",
    "AssessmentDecision",
    "CapacityPopulation",
    "ClaimOutcome",
    "ClaimRejectionReason",
    "ClaimService",
    "CodeSystem",
    "Coded",
    "CriterionResult",
    "DataCategory",
    "EscalationAction",
    "EscalationLevel",
    "EscalationReason",
    "EventCode",
    "FinancingRegime",
    "GdprBasis",
    "InclusionCriterion",
    "LegalBasis",
    "LegalTitleKind",
    "PartyRole",
    "PurposeOfUse",
    "RiskLevel",
    "SecrecyGround",
    "SecurityLevel",
    "ServiceCode",
    "SignalSource",
    "SpecialException",
    "TaskParameter",
    "TransitionKind",
]
