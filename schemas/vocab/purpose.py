"""Purposes of use: HL7 v3 ActReason (PurposeOfUse) where a code fits, our own otherwise."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded

V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
KETENBUS_PURPOSE = KETENBUS_CS + "purpose"


class PurposeOfUse(Coded):
    """Purposes of use (Bundle.meta.security): HL7 v3 PurposeOfUse, plus our own codes."""

    SYSTEM = nonmember(V3_ACT_REASON)

    TREAT = ("TREAT", "treatment", "Operations on information for provision of health care.")
    COC = (
        "COC",
        "coordination of care",
        "Organising care and case management for one person across parties.",
    )
    HPAYMT = ("HPAYMT", "healthcare payment", "Activities related to payment for care.")
    HOPERAT = ("HOPERAT", "healthcare operations", "Operations, e.g. capacity planning.")
    # Our own, where no v3 PurposeOfUse code fits:
    SAFETY = (
        "safety",
        "Veiligheid",
        "Preventing serious harm to others (ZVH case work under conflict of duties).",
        KETENBUS_PURPOSE,
    )
    ESCALATION = (
        "escalation",
        "Landelijke escalatie",
        "Resolving a stuck case at the national coordination point.",
        KETENBUS_PURPOSE,
    )
