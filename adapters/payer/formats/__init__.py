"""One format per payer role; each lives in its own module, the one place to correct it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.payer.formats import vektis, vws, wlz, wmo
from adapters.payer.formats.common import Answer
from schemas.flows.claim import Claim
from schemas.vocab import PartyRole


@dataclass(frozen=True)
class PayerFormat:
    name: str
    suffix: str  # of the declaration files written to the outbox
    answer_patterns: tuple[str, ...]  # inbox files read as answers
    write: Callable[[Claim], bytes]
    read: Callable[[bytes], Answer]


FORMATS: dict[PartyRole, PayerFormat] = {
    PartyRole.MUNICIPALITY: PayerFormat(
        "iWmo WMO323/WMO325", wmo.SUFFIX, ("*.xml",), wmo.write_declaration, wmo.read_answer
    ),
    PartyRole.HEALTH_INSURER: PayerFormat(
        "Vektis EI fixed-width",
        vektis.SUFFIX,
        ("*.asc", "*.txt"),
        vektis.write_declaration,
        vektis.read_answer,
    ),
    PartyRole.DJI: PayerFormat(
        "Vektis EI fixed-width",
        vektis.SUFFIX,
        ("*.asc", "*.txt"),
        vektis.write_declaration,
        vektis.read_answer,
    ),
    PartyRole.CARE_OFFICE: PayerFormat(
        "Vektis EI AW319/AW320",
        wlz.SUFFIX,
        ("*.asc", "*.txt"),
        wlz.write_declaration,
        wlz.read_answer,
    ),
    PartyRole.VWS: PayerFormat(
        "VWS emergency-rule CSV", vws.SUFFIX, ("*.csv",), vws.write_declaration, vws.read_answer
    ),
}

__all__ = ["FORMATS", "PayerFormat"]
