"""Codes of escalations to the national coordination point."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class EscalationReason(Coded):
    """Why a case is stuck."""

    SYSTEM = nonmember(KETENBUS_CS + "escalation-reason")

    NO_PAYER = (
        "no-payer",
        "Geen betaler",
        "No regime or payer accepts the costs of the case.",
    )
    PAYMENT_OVERDUE = (
        "payment-overdue",
        "Betaling uitgebleven",
        "A claim has stayed unpaid for more than four weeks (the emergency rule lets VWS "
        "advance it).",
    )
    NO_BED = (
        "no-bed",
        "Geen bed",
        "No secure bed of the needed security level is available.",
    )
    NO_PROVIDER = (
        "no-provider",
        "Geen aanbieder",
        "No provider is willing or able to take on the person's care.",
    )
    OTHER = ("other", "Anders", "Another reason, described in the explanation.")
