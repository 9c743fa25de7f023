"""Codes of care transitions (zorgtransities)."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class TransitionKind(Coded):
    """What changes in the care of an included person."""

    SYSTEM = nonmember(KETENBUS_CS + "transition-kind")

    START = (
        "start",
        "Start zorg",
        "Care starts after inclusion, at the given provider, setting and (if clinical) location.",
    )
    SCALE_UP = (
        "scale-up",
        "Opschaling",
        "Scaling up to a secure clinical bed, or to a higher security level (2, 3 or 4).",
    )
    SCALE_DOWN = (
        "scale-down",
        "Afschaling",
        "Scaling down to a lower security level or to ambulant care (forensic FACT team).",
    )
    TRANSFER = (
        "transfer",
        "Overdracht",
        "Care moves from one provider to another; the episode continues.",
    )
    END = (
        "end",
        "Einde zorg",
        "Care within the Levensloopaanpak ends (the episode is finished).",
    )
    DETENTION = (
        "detention",
        "Detentie",
        "The person is detained (police custody, remand or a prison sentence). The episode and "
        "the two-year follow-up continue; the Levensloop provider holds no bed; client-bound "
        "coordination is not claimed for the days in detention (docs/financing.md).",
    )
    DETENTION_END = (
        "detention-end",
        "Einde detentie",
        "The detention ends and Levensloop care resumes at the given setting.",
    )
    INTERRUPTION = (
        "interruption",
        "Onderbreking zorg",
        "Care is interrupted (the person is out of reach, refuses care, or is admitted "
        "elsewhere). The episode, the follow-up and client-bound coordination continue.",
    )
    INTERRUPTION_END = (
        "interruption-end",
        "Einde onderbreking",
        "The interruption ends and care resumes at the given setting.",
    )


ON_LEAVE = frozenset({TransitionKind.DETENTION, TransitionKind.INTERRUPTION})
"""Kinds after which the person is away from Levensloop care while the episode runs on (FHIR
Encounter.status ``onleave``)."""

FOLLOW_UP_YEARS = 2
"""The approach follows an included person "voor een periode van tenminste 2 jaar" (letter
VWS/JenV 6 Nov 2020, seed 004), counted from the inclusion date in calendar time: neither a
detention nor an interruption pauses or ends it; only ``end`` ends the episode."""
