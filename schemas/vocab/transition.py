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
