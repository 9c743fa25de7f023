"""Codes of claims (declaraties) and claim responses."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class ClaimService(Coded):
    """What is claimed (Claim.item.productOrService)."""

    SYSTEM = nonmember(KETENBUS_CS + "claim-service")

    REGISTRATION = (
        "registration",
        "Aanmeldtraject",
        "The registration and investigation phase: a flat fee per aanmeldtraject (EUR 2,000 in "
        "the pilots), also when it does not lead to inclusion; quantity 1.",
    )
    COORDINATION_DAY = (
        "coordination-day",
        "Cliëntgebonden coördinatie (dag)",
        "Client-bound coordination from the inclusion date, per day (EUR 20 in the pilots); "
        "quantity = days in the period.",
    )
    TREATMENT = (
        "treatment",
        "Behandeling",
        "Treatment (Zvw, Wlz or forensic care), priced per the payer's agreement.",
    )
    SUPPORT = (
        "support",
        "Ondersteuning",
        "Social support under the Wmo 2015, priced per the municipality's agreement.",
    )


class ClaimOutcome(Coded):
    """A payer's answer to a claim (ClaimResponse extension ``claim-outcome``)."""

    SYSTEM = nonmember(KETENBUS_CS + "claim-outcome")

    ACCEPTED = ("accepted", "Toegekend", "The claim is accepted for the approved amount.")
    REJECTED = ("rejected", "Afgewezen", "The claim is rejected; the response gives the reason.")
    PAID = ("paid", "Betaald", "The approved amount has been paid, on the payment date.")
    ADVANCED = (
        "advanced",
        "Voorgeschoten",
        "Paid in advance by VWS under the emergency rule because payment stayed out for more "
        "than four weeks; the regular payer still owes it.",
    )


class ClaimRejectionReason(Coded):
    """Why a payer rejects a claim."""

    SYSTEM = nonmember(KETENBUS_CS + "claim-rejection-reason")

    NO_PAYMENT_TITLE = (
        "no-payment-title",
        "Geen betaaltitel",
        "The regime has no payment title for this service (e.g. coordination before care "
        "starts, under the Zvw): a financing gap the broker makes visible.",
    )
    WRONG_PAYER = (
        "wrong-payer",
        "Andere betaler",
        "Another regime or payer must pay this claim.",
    )
    NOT_COVERED = (
        "not-covered",
        "Niet verzekerd",
        "The person is not covered by this payer on the service date.",
    )
    NOT_INCLUDED = (
        "not-included",
        "Geen inclusie",
        "The person was not included on the service date (coordination days).",
    )
    DUPLICATE = ("duplicate", "Dubbel", "The service was already claimed.")
    INVALID = ("invalid", "Onjuist", "The claim is incomplete or incorrect.")
    OTHER = ("other", "Anders", "Another reason, described in the note.")
