"""Financing regimes ("stelsels")."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class FinancingRegime(Coded):
    """Financing regimes ("stelsels") that pay for a service (Coverage.type)."""

    SYSTEM = nonmember(KETENBUS_CS + "financing-regime")

    WMO = ("wmo", "Wmo 2015", "Social support, paid by the municipality of residence.")
    ZVW = ("zvw", "Zvw", "Curative care, paid by the health insurer.")
    WLZ = ("wlz", "Wlz", "Long-term care, paid by the care office (zorgkantoor).")
    JUSTICE = ("justice", "Forensische zorg", "Forensic care under a criminal-law title, DJI.")
    VWS_EMERGENCY = (
        "vws-emergency",
        "Noodregeling VWS",
        "Emergency rule: unclear regime, billed to VWS (until 2021-03-31).",
    )
    MINISTRIES = (
        "ministries",
        "Tijdelijke regeling ministeries VWS en JenV",
        "Temporary arrangement 2022-2023: the ministries VWS and JenV cover the coordinator's "
        "work before a care trajectory (implementation plan 2022, 2.2).",
    )
