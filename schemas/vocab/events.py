"""Message event codes (``MessageHeader.eventCoding``); the event drives routing and policy."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class EventCode(Coded):
    """Message events (MessageHeader.eventCoding); the event drives routing and policy."""

    SYSTEM = nonmember(KETENBUS_CS + "message-event")

    REFERRAL = ("referral", "Aanmelding", "A person is registered at a ZVH aanmeldtafel.")
    ASSESSMENT_OUTCOME = (
        "assessment-outcome",
        "Inclusiebesluit",
        "The provider's assessment: included or not, with reasons.",
    )
    CARE_TRANSITION = (
        "care-transition",
        "Zorgtransitie",
        "Start, scale up, scale down, transfer or end of care.",
    )
    CAPACITY_REPORT = (
        "capacity-report",
        "Capaciteitsmelding",
        "Secure-bed capacity per location and security level; no personal data.",
    )
    CLAIM = ("claim", "Declaratie", "A claim to a payer.")
    CLAIM_RESPONSE = ("claim-response", "Declaratie-antwoord", "A payer's answer to a claim.")
    CONSENT = ("consent", "Toestemming", "A consent, or its revocation.")
    ESCALATION = (
        "escalation",
        "Escalatie",
        "A stuck case reported to the national coordination point.",
    )
    ESCALATION_ANSWER = (
        "escalation-answer",
        "Antwoord op escalatie",
        "The regional step's or the national coordination point's answer to an escalation: "
        "acknowledged, assigned, information asked, moved to national, resolved.",
    )
    WITHDRAWAL = (
        "withdrawal",
        "Intrekking",
        "The sender withdraws a message it sent (entered in error); AVG art. 17 and 19.",
    )
    RESPONSE = ("response", "Antwoord", "Response to a message: ok, transient-error, fatal-error.")
