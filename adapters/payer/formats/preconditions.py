"""The payers' own messages that a provider must have before a claim can go: the preconditions
of the national standards, read from the provider's inbox as the payer sent them.

- iWmo **WMO301** (Toewijzing): a WMO323 prestatie cites its ``ToewijzingNummer``
  (``wmo301.py``).
- DJI's **FZ821** (plaatsing): a GDS801 to DJI cites its Plaatsingsbesluit (``fz.py``).
- iWlz **AW33** (the care office's allocation) and **AW35** (the start of care the provider
  reported): a care office pays only after both (``iwlz.py``).

The provider adapter does not import the payer package (adapters/ layer contract): the
application that composes the adapters hands :func:`read_preconditions` to it.
"""

from __future__ import annotations

from adapters.financing.desk import Allocation, Precondition
from adapters.payer.formats import fz, iwlz, wmo301
from adapters.payer.formats.common import file_error, parse_xml

ROOTS = {
    f"{{{wmo301.NS_301}}}Bericht": "WMO301",
    f"{{{fz.NS_FZ}}}Bericht": "FZ821",
    f"{{{iwlz.NS_33}}}Bericht": "AW33",
    f"{{{iwlz.NS_35}}}Bericht": "AW35",
}


def read_preconditions(raw: bytes) -> list[Precondition]:
    """Every allocation in one payer message; ``MessageError`` (a file error) when the file is
    not one of the messages above or is not valid as one."""
    root = parse_xml(raw)  # size, encoding, entities: refused here before anything else
    source = ROOTS.get(root.tag)
    if source is None:
        raise file_error(
            "not a payer's allocation message (WMO301, FZ821, AW33 or AW35)", "wrong-message"
        )
    if source == "FZ821":
        return fz.read_placement(raw)
    if source == "AW33":
        return iwlz.read_aw33(raw)
    if source == "AW35":
        return iwlz.read_aw35(raw)
    return [
        Precondition(
            "WMO301",
            a.bsn,
            a.receiver,
            Allocation("wmo301", a.number, a.municipality, a.start, a.end),
        )
        for a in wmo301.read_allocation(raw)
    ]
