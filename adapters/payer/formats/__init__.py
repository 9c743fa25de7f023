"""One format per payer role; each lives in its own module, the one place to correct it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.payer.formats import gds, vektis, vws, wlz, wmo
from adapters.payer.formats.common import Answer, FormatError
from schemas.flows.claim import Claim
from schemas.vocab import PartyRole


@dataclass(frozen=True)
class PayerFormat:
    name: str
    suffix: str  # of the declaration files written to the outbox
    answer_patterns: tuple[str, ...]  # inbox files read as answers
    write: Callable[[Claim], bytes]
    read: Callable[[bytes], Answer]

    def suffix_for(self, document: bytes) -> str:
        """The outbox suffix of a written declaration: ``.xml`` for an XML document (a GDS801
        next to the EI files of the same payer), else the format's own."""
        return ".xml" if document.startswith(b"<?xml") else self.suffix


def zvw_fz_write(claim: Claim) -> bytes:
    """To an insurer or DJI: a GDS801 for a prestatie the rules file agrees as a ZPM prestatie
    (codelist 071), else the Vektis EI file -- the Levensloopaanpak's own services lie outside
    the Zorgprestatiemodel (as FZ303 stays for what the ZPM does not cover)."""
    try:
        product = gds.zpm_product(claim)
    except FormatError:
        return vektis.write_declaration(claim)
    return gds.write_declaration(claim, product)


def zvw_fz_read(raw: bytes) -> Answer:
    """A GDS802 (XML) or a Vektis EI retour, by its first character."""
    return gds.read_answer(raw) if raw.lstrip()[:1] == b"<" else vektis.read_answer(raw)


FORMATS: dict[PartyRole, PayerFormat] = {
    PartyRole.MUNICIPALITY: PayerFormat(
        "iWmo WMO323/WMO325", wmo.SUFFIX, ("*.xml",), wmo.write_declaration, wmo.read_answer
    ),
    PartyRole.HEALTH_INSURER: PayerFormat(
        "GDS801/GDS802 (ZPM) or Vektis EI",
        vektis.SUFFIX,
        ("*.asc", "*.txt", "*.xml"),
        zvw_fz_write,
        zvw_fz_read,
    ),
    PartyRole.DJI: PayerFormat(
        "GDS801/GDS802 (ZPM) or Vektis EI",
        vektis.SUFFIX,
        ("*.asc", "*.txt", "*.xml"),
        zvw_fz_write,
        zvw_fz_read,
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

__all__ = ["FORMATS", "PayerFormat", "zvw_fz_read", "zvw_fz_write"]
