"""Vocabularies as code systems: each enum member is a code with a documented meaning.

Every code system has a canonical URI (``SYSTEM``) under ``https://ketenbus.nl/fhir/CodeSystem/``
unless a national or HL7 code system fits, in which case that one is used (see ``purpose``).
"""

from schemas.vocab.base import Coded, CodeSystem
from schemas.vocab.categories import DataCategory
from schemas.vocab.events import EventCode
from schemas.vocab.legal import LegalBasis
from schemas.vocab.purpose import PurposeOfUse
from schemas.vocab.regimes import FinancingRegime
from schemas.vocab.roles import PartyRole
from schemas.vocab.security import SecurityLevel

__all__ = [
    "CodeSystem",
    "Coded",
    "DataCategory",
    "EventCode",
    "FinancingRegime",
    "LegalBasis",
    "PartyRole",
    "PurposeOfUse",
    "SecurityLevel",
]
