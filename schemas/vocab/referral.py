"""Codes of the referral (aanmelding): who signalled, the assessed risk, the legal title."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class SignalSource(Coded):
    """Who brought the signal to the aanmeldtafel (the aanbrenger's sector)."""

    SYSTEM = nonmember(KETENBUS_CS + "signal-source")

    MUNICIPALITY = ("municipality", "Gemeente", "Municipality, often via the social domain.")
    POLICE = ("police", "Politie", "Police.")
    JUSTICE = ("justice", "Justitie", "OM, probation or DJI.")
    CARE = ("care", "Zorg", "A care provider (GGZ, VG, addiction care).")
    HOUSING = ("housing", "Woningcorporatie", "Housing corporation.")
    OTHER = ("other", "Anders", "Another convenant partner.")


class RiskLevel(Coded):
    """Outcome of the risk assessment (risicotaxatie) at registration."""

    SYSTEM = nonmember(KETENBUS_CS + "risk-level")

    LOW = ("low", "Laag", "Low risk of dangerous behaviour.")
    MODERATE = ("moderate", "Matig", "Moderate risk.")
    HIGH = ("high", "Hoog", "High risk of dangerous behaviour towards others.")
    UNKNOWN = ("unknown", "Onbekend", "Not yet assessed.")


class LegalTitleKind(Coded):
    """The legal title that is or was in place because of dangerous behaviour."""

    SYSTEM = nonmember(KETENBUS_CS + "legal-title")

    WVGGZ = (
        "wvggz-zorgmachtiging",
        "Zorgmachtiging Wvggz",
        "Care authorisation (zorgmachtiging) under the Wvggz.",
    )
    WZD = (
        "wzd-rechterlijke-machtiging",
        "Rechterlijke machtiging Wzd",
        "Court authorisation (rechterlijke machtiging) under the Wzd.",
    )
    CRIMINAL = ("strafrechtelijk", "Strafrechtelijke titel", "A criminal-law title.")
