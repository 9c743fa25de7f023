"""Forensic care placement messages (FZ821-FZ826), between a placer (DJI) and the provider,
through VECOZO "Plaatsing en Uitvoering Forensische Zorg" -- mandatory since 1 January 2024
(notes §2.1: forensischezorg.nl "Overzicht van standaarden"; Nedap Ons; care-expert.nl).

What the chain needs of them:
- **FZ821** (aanmelding en plaatsing, placer -> provider) carries the **placement decision**
  (Plaatsingsbesluit). The provider's inbox reads it as a precondition, like a WMO301: the
  claims desk records its number, and a GDS801 to DJI cites it (VECOZO VC041: "Indien Ontvanger
  = 9992 (= DJI/FZ), dan moet Plaatsingsbesluit voorkomen").
- **FZ823** (melding aanvang zorg) and **FZ825** (melding einde zorg), provider -> DJI: when
  a forensic placement's care starts or ends (a care transition ``start`` or ``end`` of a
  person with a placement), the provider reports the date; DJI's business rule "Einde zorg
  melding in de FZ" (forensischezorg.nl, 2023-10-16, spelregel 5): "Zorgaanbieders [moeten] de
  werkelijke einddatum van de zorg aan DJI laten weten ... het sluitstuk van een
  plaatsingsverzoek".

No public XSD, element list or EI code of FZ821-FZ826 was reachable (only their names and roles
above). The XML here is **ketenbus's model** in the conventions of the Vektis XML messages we
could read (the GDS801 Header: Verzender/VerzenderRol, Ontvanger 9992/OntvangerRol 4,
Verzenddatum, Referentienummer), in ketenbus's own namespace so nothing passes for the national
message; FZ822/FZ824/FZ826 (their retour messages) are not modelled. docs/adapters/payers.md
lists the deviations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal
from xml.etree.ElementTree import Element, SubElement, register_namespace

from adapters.financing.desk import Allocation, Precondition
from adapters.financing.rules import dutch_date
from adapters.payer.formats.common import (
    alnum_reference,
    child_text,
    file_error,
    item_error,
    opt_child_text,
    parse_bsn,
    parse_date,
    parse_xml,
    xml_bytes,
)
from schemas.flows.transition import CareTransition
from schemas.vocab import TransitionKind

NS_FZ = "https://ketenbus.nl/ns/fz82x"  # ours: the national namespace is not public
DJI_UZOVI = "9992"
NS = {"fz": NS_FZ}
MESSAGES = {"start": "FZ823", "end": "FZ825"}
_NUMBER = re.compile(r"[0-9]{1,9}")
_AGB = re.compile(r"[0-9]{8}")

register_namespace("fz", NS_FZ)


@dataclass(frozen=True)
class Placement:
    """An FZ821 placement decision for one client at one provider."""

    number: str  # the Plaatsingsbesluit number (digits: it rides as Claim.allocation)
    bsn: str
    provider_agb: str
    start: date
    end: date | None = None


def _add(parent: Element, name: str, text: str | None = None) -> Element:
    el = SubElement(parent, f"{{{NS_FZ}}}{name}")
    if text is not None:
        el.text = text
    return el


def _header(root: Element, message: str, sender: str, sender_role: str, receiver: str,
            receiver_role: str, day: date, ident: str) -> None:  # fmt: skip
    h = _add(root, "Header")
    for name, text in (
        ("Bericht", message),
        ("Verzender", sender),
        ("VerzenderRol", sender_role),
        ("Ontvanger", receiver),
        ("OntvangerRol", receiver_role),
        ("Verzenddatum", day.isoformat()),
        ("Referentienummer", ident),
    ):
        _add(h, name, text)


def _root(raw: bytes, message: str) -> Element:
    root = parse_xml(raw)
    if root.tag != f"{{{NS_FZ}}}Bericht":
        raise file_error(f"root element must be fz:Bericht, not {root.tag}", "wrong-message")
    found = opt_child_text(root, "fz:Header/fz:Bericht", NS)
    if found != message:
        raise file_error(f"the message must be {message}, not {found}", "wrong-message")
    return root


def write_placement(p: Placement, ident: str, day: date) -> bytes:
    """An FZ821 placement by DJI (tests, demos, a placer's tooling)."""
    root = Element(f"{{{NS_FZ}}}Bericht")
    _header(root, "FZ821", DJI_UZOVI, "4", p.provider_agb, "1", day, ident)
    c = _add(root, "Client")
    _add(c, "BSN", p.bsn)
    pl = _add(root, "Plaatsingsbesluit")
    _add(pl, "Plaatsingsbesluitnummer", p.number)
    _add(pl, "Ingangsdatum", p.start.isoformat())
    if p.end is not None:
        _add(pl, "Einddatum", p.end.isoformat())
    return xml_bytes(root)


def read_placement(raw: bytes) -> list[Precondition]:
    """An FZ821 from the provider's inbox, as the precondition it is for a claim to DJI;
    ``MessageError`` when it is not one, or a value is outside its type."""
    root = _root(raw, "FZ821")
    sender = child_text(root, "fz:Header/fz:Verzender", NS, "Header")
    if sender != DJI_UZOVI:
        raise item_error("Header/Verzender", "a placement comes from DJI (9992)", "code")
    receiver = child_text(root, "fz:Header/fz:Ontvanger", NS, "Header")
    if not _AGB.fullmatch(receiver):
        raise item_error("Header/Ontvanger", "is not an AGB code (8 digits)", "code")
    bsn = parse_bsn(child_text(root, "fz:Client/fz:BSN", NS, "Client"), "Client/BSN")
    number = child_text(root, "fz:Plaatsingsbesluit/fz:Plaatsingsbesluitnummer", NS, "Plaatsing")
    if not _NUMBER.fullmatch(number):
        raise item_error("Plaatsingsbesluitnummer", "is not a number of 1-9 digits", "code")
    w = "Plaatsingsbesluit"
    start = parse_date(child_text(root, "fz:Plaatsingsbesluit/fz:Ingangsdatum", NS, w), w)
    end_text = opt_child_text(root, "fz:Plaatsingsbesluit/fz:Einddatum", NS)
    end = parse_date(end_text, w) if end_text else None
    if end is not None and end < start:
        raise item_error(f"{w}/Einddatum", "lies before the Ingangsdatum", "period")
    return [
        Precondition("FZ821", bsn, receiver, Allocation("fz821", number, DJI_UZOVI, start, end))
    ]


def write_care_notice(
    kind: Literal["start", "end"], placement: str, provider_agb: str, bsn: str, day: date,
    ident: str, sent: date,
) -> bytes:  # fmt: skip
    """FZ823 (care started on ``day``) or FZ825 (care ended on ``day``) to DJI, citing the
    placement decision ``placement``."""
    if not (_NUMBER.fullmatch(placement) and _AGB.fullmatch(provider_agb)):
        raise ValueError("an FZ notice cites a placement number and the provider's AGB code")
    root = Element(f"{{{NS_FZ}}}Bericht")
    _header(root, MESSAGES[kind], provider_agb, "1", DJI_UZOVI, "4", sent, ident)
    _add(_add(root, "Client"), "BSN", bsn)
    z = _add(root, "Zorg")
    _add(z, "Plaatsingsbesluitnummer", placement)
    _add(z, "Begindatum" if kind == "start" else "Einddatum", day.isoformat())
    return xml_bytes(root)


def care_notice(
    t: CareTransition, placement: Allocation, provider_agb: str, ref: str
) -> bytes | None:
    """The FZ823/FZ825 a care transition of a placed person needs (the provider adapter's
    ``care_notices``): a start or an end of care; None for a change of setting or a transfer
    (their FZ messages are not modelled)."""
    if t.kind is TransitionKind.START:
        kind: Literal["start", "end"] = "start"
    elif t.kind is TransitionKind.END:
        kind = "end"
    else:
        return None
    return write_care_notice(
        kind, placement.number, provider_agb, t.person.bsn, t.effective_on,
        alnum_reference(ref, 20), dutch_date(datetime.now(UTC)),
    )  # fmt: skip


@dataclass(frozen=True)
class CareNotice:
    message: str
    provider_agb: str
    bsn: str
    placement: str
    day: date


def read_care_notice(raw: bytes) -> CareNotice:
    """An FZ823 or FZ825 (DJI's side, and tests)."""
    root = parse_xml(raw)
    message = opt_child_text(root, "fz:Header/fz:Bericht", NS) or ""
    if message not in MESSAGES.values():
        raise file_error("not an FZ823 or FZ825", "wrong-message")
    _root(raw, message)
    tag = "Begindatum" if message == "FZ823" else "Einddatum"
    return CareNotice(
        message=message,
        provider_agb=child_text(root, "fz:Header/fz:Verzender", NS, "Header"),
        bsn=parse_bsn(child_text(root, "fz:Client/fz:BSN", NS, "Client"), "Client/BSN"),
        placement=child_text(root, "fz:Zorg/fz:Plaatsingsbesluitnummer", NS, "Zorg"),
        day=parse_date(child_text(root, f"fz:Zorg/fz:{tag}", NS, "Zorg"), f"Zorg/{tag}"),
    )
