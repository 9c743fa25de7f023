"""Codes of the secure-bed capacity report."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded

MEASURE_URL = "https://ketenbus.nl/fhir/Measure/secure-bed-capacity"


class CapacityPopulation(Coded):
    """The bed counts a capacity report carries per security level (MeasureReport populations)."""

    SYSTEM = nonmember(KETENBUS_CS + "capacity-population")

    IN_SERVICE = (
        "in-service",
        "Beschikbaar gesteld",
        "Beds in service: staffed and usable at the reported moment.",
    )
    OCCUPIED = ("occupied", "Bezet", "Beds in service that are occupied (or held for a client).")
    AVAILABLE = (
        "available",
        "Vrij",
        "Beds in service that can take a new admission now; at most in-service minus occupied.",
    )
