"""Legal bases on which data may be shared (AVG art. 6/9, professional-secrecy exceptions)."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class LegalBasis(Coded):
    """Legal bases on which data may be shared (Bundle.meta.security, Consent.policyRule)."""

    SYSTEM = nonmember(KETENBUS_CS + "legal-basis")

    CONSENT = ("consent", "Toestemming", "Explicit consent of the person or representative.")
    LEGAL_OBLIGATION = (
        "legal-obligation",
        "Wettelijke verplichting",
        "A statutory obligation or provision (Wvggz, Wzd, criminal law, financing law); "
        "the statute must be cited.",
    )
    PUBLIC_TASK = (
        "public-task",
        "Publieke taak",
        "A public task of the recipient, e.g. the municipality's Wmo 2015 task.",
    )
    CONFLICT_OF_DUTIES = (
        "conflict-of-duties",
        "Conflict van plichten",
        "The professional's conflict of duties (ZVH covenant); needs a recorded justification "
        "and the name of the professional who decided.",
    )
