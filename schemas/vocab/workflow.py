"""Codes that structure our resources: service/task codes and Task input/output types."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class ServiceCode(Coded):
    """What a ServiceRequest, Task or ClinicalImpression is about."""

    SYSTEM = nonmember(KETENBUS_CS + "service")

    ASSESSMENT = (
        "levensloop-assessment",
        "Beoordeling Levensloopaanpak",
        "Assessment of a referred person against the Levensloopaanpak inclusion criteria.",
    )
    NATIONAL_ESCALATION = (
        "national-escalation",
        "Landelijke escalatie",
        "Resolving a stuck case at the national coordination point.",
    )
    LEVENSLOOP_CARE = (
        "levensloop-care",
        "Levensloopaanpak",
        "The care and coordination of an included person (EpisodeOfCare.type).",
    )


class TaskParameter(Coded):
    """Types of Task inputs and outputs (Task.input.type, Task.output.type)."""

    SYSTEM = nonmember(KETENBUS_CS + "task-parameter")

    DECISION = (
        "decision",
        "Besluit",
        "Output: the coded assessment outcome (included or not included).",
    )
    REASONS = ("reasons", "Motivering", "Output: the reasons for the decision (text).")
    ADVISED_ALTERNATIVE = (
        "advised-alternative",
        "Geadviseerd alternatief",
        "Output: the alternative advised when not included (code, with an optional note).",
    )
    CRITERIA = (
        "criteria",
        "Toetsing criteria",
        "Output: reference to the ClinicalImpression with the judgement per criterion.",
    )
    STUCK_SINCE = ("stuck-since", "Vast sinds", "Input: the date since when the case is stuck.")
    OVERDUE_CLAIM = (
        "overdue-claim",
        "Openstaande declaratie",
        "Input: the claim that stays unpaid (logical reference by identifier).",
    )
    EPISODE = (
        "episode",
        "Zorgtraject",
        "Input: the EpisodeOfCare of the case (logical reference by identifier).",
    )
