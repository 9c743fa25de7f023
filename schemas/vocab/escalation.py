"""Codes of escalations of stuck cases: why a case is stuck, where on the ladder it stands, and
what the regional step or the national coordination point answered.

The ladder follows the ministers' letter (a national coordination point for cases that get
stuck) and the VNG letter's "heldere escalatieladder": the region first, national after a
configurable time or on request (``docs/flows/escalation.md``).
"""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class EscalationReason(Coded):
    """Why a case is stuck (a closed list: free text only under ``other``)."""

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
        "No secure bed of the needed security level (2, 3 or 4; the escalation names it) is "
        "available.",
    )
    NO_PROVIDER = (
        "no-provider",
        "Geen aanbieder",
        "No provider is willing or able to take on the person's care.",
    )
    NO_DECISION = (
        "no-decision",
        "Geen inclusiebesluit",
        "A referral waits for an inclusion decision longer than it should.",
    )
    NO_CARE_START = (
        "no-care-start",
        "Geen start zorg",
        "An included person has no start of care longer than it should.",
    )
    EARLY_END = (
        "early-end",
        "Vroegtijdig einde",
        "Care ended before the two years of follow-up the approach promises.",
    )
    STUCK = (
        "stuck",
        "Vastgelopen",
        "The case is stuck between parties; the explanation says where.",
    )
    OTHER = ("other", "Anders", "Another reason, described in the explanation.")


class EscalationLevel(Coded):
    """The step of the escalation ladder an escalation stands on."""

    SYSTEM = nonmember(KETENBUS_CS + "escalation-level")

    REGIONAL = (
        "regional",
        "Regionaal",
        "The region's escalation step (its ZVH or coordinating provider, configured per region).",
    )
    NATIONAL = (
        "national",
        "Landelijk",
        "The national coordination point: on request, or after the regional step let it age.",
    )


class EscalationAction(Coded):
    """What an answer to an escalation does (``Task.businessStatus``)."""

    SYSTEM = nonmember(KETENBUS_CS + "escalation-action")

    ACKNOWLEDGE = ("acknowledge", "Ontvangen", "The step has taken the escalation up.")
    ASSIGN = ("assign", "Toegewezen", "The step assigns the case to a party that will act.")
    REQUEST_INFO = (
        "request-info",
        "Informatie gevraagd",
        "The step needs more information from the escalating party (the text says what).",
    )
    MOVE_NATIONAL = (
        "move-national",
        "Naar landelijk",
        "The regional step let the escalation age past its time: it moved to the national "
        "coordination point.",
    )
    RESOLVE = ("resolve", "Opgelost", "The case is no longer stuck; the escalation is closed.")
