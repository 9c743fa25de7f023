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
    ESCALATION_ANSWER = (
        "escalation-answer",
        "Antwoord op escalatie",
        "The answer of the regional step or the national coordination point to an escalation.",
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
    SECURITY_LEVEL = (
        "security-level",
        "Beveiligingsniveau",
        "Input: the security level of the bed that is not available (no-bed).",
    )
    LADDER_LEVEL = (
        "ladder-level",
        "Escalatieniveau",
        "Input: the step of the escalation ladder (regional or national).",
    )
    ASSIGNEE = (
        "assignee",
        "Toegewezen aan",
        "Input: the party an escalation is assigned to (by party id).",
    )
    EPISODE = (
        "episode",
        "Zorgtraject",
        "Input: the EpisodeOfCare of the case (logical reference by identifier).",
    )
