"""Roles a party plays; policy is written per role, not per party."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class PartyRole(Coded):
    """Roles a party plays; policy is written per role, not per party."""

    SYSTEM = nonmember(KETENBUS_CS + "party-role")

    ZVH = ("zvh", "Zorg- en Veiligheidshuis", "Aanmeldtafel and procesregie.")
    COORDINATING_PROVIDER = (
        "coordinating-provider",
        "Coördinerend levensloopaanbieder",
        "The region's coordinating provider; assesses referrals.",
    )
    EXECUTING_PROVIDER = (
        "executing-provider",
        "Uitvoerend levensloopaanbieder",
        "A provider delivering care within the region.",
    )
    MUNICIPALITY = ("municipality", "Gemeente", "Wmo and social domain; casusregie.")
    HEALTH_INSURER = ("health-insurer", "Zorgverzekeraar", "Zvw payer.")
    CARE_OFFICE = ("care-office", "Zorgkantoor", "Wlz payer.")
    DJI = ("dji", "Dienst Justitiële Inrichtingen", "Forensic care payer.")
    VWS = ("vws", "Ministerie van VWS", "Emergency-rule payer.")
    NATIONAL_COORDINATION = (
        "national-coordination",
        "Landelijk coördinatiepunt",
        "National coordination point for stuck cases.",
    )
    CAPACITY_DASHBOARD = (
        "capacity-dashboard",
        "Landelijk dashboard beveiligde zorg",
        "National real-time dashboard of available secure care; counts only.",
    )
    ROUTER = ("router", "ketenbus router", "The broker itself.")
