"""iWlz 2.2 XML messages that a care office's claim waits for (the AW319 itself is a Vektis EI
file: ``wlz.py``): **AW33** (Opdracht tot zorglevering, BerichtCode 352, care office -> provider),
the care office's allocation, and **AW35** (Melding aanvang zorg, 354, provider -> care office),
the start of care. A care office pays only after both; the claims desk holds a care-office claim
until it has an AW33 and an AW35 on or before the claim's first day (docs/adapters/payers.md).

Both are read from the provider's inbox (the EPD drops the AW33 it received and the AW35 it
sent) through ``preconditions.py``. Checked against the public iWlz 2.2 XSDs (vendored in
tests/standards/iwlz/ from iStandaarden/XSD-iWlz). Only what the desk needs is read -- the BSN,
the decision number, the care office and the dates -- never the AW33's indication contents
(disorders, limitations: clinical data ketenbus does not keep).
"""

from __future__ import annotations

import re
from datetime import date
from xml.etree.ElementTree import Element, SubElement, register_namespace

from adapters.financing.desk import Allocation, Precondition
from adapters.payer.formats.common import (
    child_text,
    file_error,
    item_error,
    opt_child_text,
    parse_bsn,
    parse_date,
    parse_xml,
    xml_bytes,
)

NS_IWLZ = "http://www.istandaarden.nl/iwlz/2_2/basisschema/schema"
NS_33 = "http://www.istandaarden.nl/iwlz/2_2/aw33/schema"
NS_35 = "http://www.istandaarden.nl/iwlz/2_2/aw35/schema"
CODE = {"aw33": "352", "aw35": "354"}
NS = {"iwlz": NS_IWLZ, "aw33": NS_33, "aw35": NS_35}
MAX_CLIENTS = 1_000
_AGB = re.compile(r"[0-9]{8}")  # LDT_iWlzAgbCode
_ZORGKANTOOR = re.compile(r"[0-9]{4}")  # LDT_ZorgkantoorCode (an enumeration of 4 digits)
_NUMBER = re.compile(r"[0-9]{1,9}")  # LDT_Besluitnummer / LDT_Nummer

for _prefix, _uri in NS.items():
    register_namespace(_prefix, _uri)


def _header(root: Element, p: str) -> tuple[str, str]:
    tag = root.tag
    if tag != f"{{{NS[p]}}}Bericht":
        raise file_error(f"root element must be {p}:Bericht, not {tag}", "wrong-message")
    code = opt_child_text(root, f"{p}:Header/{p}:BerichtCode", NS)
    if code != CODE[p]:
        raise file_error(
            f"BerichtCode must be {CODE[p]} ({p.upper()}), not {code}", "wrong-message"
        )
    sender = child_text(root, f"{p}:Header/{p}:Afzender", NS, "Header")
    receiver = child_text(root, f"{p}:Header/{p}:Ontvanger", NS, "Header")
    return sender, receiver


def _clients(root: Element, p: str) -> list[Element]:
    clients = root.findall(f"{p}:Clienten/{p}:Client", NS)
    if len(clients) > MAX_CLIENTS:
        raise file_error(f"more than {MAX_CLIENTS} clients", "too-large")
    if not clients:
        raise file_error("the message holds no Client", "empty")
    return clients


def _check(value: str, pattern: re.Pattern[str], where: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise item_error(where, f"is not {what}", "code")
    return value


def read_aw33(raw: bytes) -> list[Precondition]:
    """An AW33: per client, the allocation of the care office (its Besluitnummer), from the
    earliest Ingangsdatum of what it allocated to this provider (ToegewezenZorgzwaartepakket or
    ToegewezenFunctie with Instelling = the Ontvanger), else the indication's."""
    root = parse_xml(raw)
    sender, receiver = _header(root, "aw33")
    _check(sender, _ZORGKANTOOR, "Header/Afzender", "a care office code (4 digits)")
    _check(receiver, _AGB, "Header/Ontvanger", "an AGB code (8 digits)")
    out = []
    for i, c in enumerate(_clients(root, "aw33")):
        w = f"Client[{i + 1}]"
        bsn = parse_bsn(child_text(c, "aw33:Bsn", NS, w), f"{w}/Bsn")
        number = child_text(c, "aw33:Indicatie/aw33:Besluitnummer", NS, w)
        _check(number, _NUMBER, f"{w}/Indicatie/Besluitnummer", "a number of 1-9 digits")
        allocated = [
            t
            for path in (
                "ToegewezenZorgzwaartepakketten/aw33:ToegewezenZorgzwaartepakket",
                "ToegewezenFuncties/aw33:ToegewezenFunctie",
            )
            for t in c.findall(f"aw33:Indicatie/aw33:{path}", NS)
            if opt_child_text(t, "aw33:Instelling", NS) in (None, receiver)
        ]
        starts = [
            parse_date(child_text(t, "aw33:Ingangsdatum", NS, w), f"{w}/Ingangsdatum")
            for t in allocated
        ] or [parse_date(child_text(c, "aw33:Indicatie/aw33:Ingangsdatum", NS, w), w)]
        out.append(
            Precondition("AW33", bsn, receiver, Allocation("aw33", number, sender, min(starts)))
        )
    return out


def read_aw35(raw: bytes) -> list[Precondition]:
    """An AW35 the provider sent: per client, the start of care (the earliest Begindatum of
    its GeleverdeFuncties / GeleverdeZorgzwaartepakketten). The provider is the Afzender."""
    root = parse_xml(raw)
    sender, receiver = _header(root, "aw35")
    _check(sender, _AGB, "Header/Afzender", "an AGB code (8 digits)")
    _check(receiver, _ZORGKANTOOR, "Header/Ontvanger", "a care office code (4 digits)")
    out = []
    for i, c in enumerate(_clients(root, "aw35")):
        w = f"Client[{i + 1}]"
        bsn = parse_bsn(child_text(c, "aw35:Bsn", NS, w), f"{w}/Bsn")
        delivered = c.findall(
            "aw35:GeleverdeZorgzwaartepakketten/aw35:GeleverdZorgzwaartepakket", NS
        )
        delivered += c.findall("aw35:GeleverdeFuncties/aw35:GeleverdeFunctie", NS)
        if not delivered:
            raise item_error(w, "names no delivered care (and so no start)", "required")
        dated = [
            (parse_date(child_text(d, "aw35:Begindatum", NS, w), f"{w}/Begindatum"), d)
            for d in delivered
        ]
        first = min(dated, key=lambda pair: pair[0])
        number = child_text(first[1], "aw35:Besluitnummer", NS, w)
        _check(number, _NUMBER, f"{w}/Besluitnummer", "a number of 1-9 digits")
        out.append(
            Precondition("AW35", bsn, sender, Allocation("aw35", number, receiver, first[0]))
        )
    return out


def _add(parent: Element, ns: str, name: str, text: str | None = None) -> Element:
    el = SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        el.text = text
    return el


def write_aw35(
    provider_agb: str, care_office: str, bsn: str, birth: date, family_name: str,
    number: str, start: date, ident: str, sent: date,
) -> bytes:  # fmt: skip
    """An AW35 (Melding aanvang zorg) of one client and one delivered ZZP (tests, demos, the
    provider's tooling), in the element order of AW35.xsd."""
    ns = NS_35
    root = Element(f"{{{ns}}}Bericht")
    h = _add(root, ns, "Header")
    for name, text in (
        ("BerichtCode", CODE["aw35"]),
        ("BerichtVersie", "5"),
        ("BerichtSubversie", "2"),
        ("Afzender", provider_agb),
        ("Ontvanger", care_office),
    ):
        _add(h, ns, name, text)
    bid = _add(h, ns, "BerichtIdentificatie")
    _add(bid, NS_IWLZ, "Identificatie", ident)
    _add(bid, NS_IWLZ, "Dagtekening", sent.isoformat())
    xsd = _add(h, ns, "XsdVersie")
    _add(xsd, NS_IWLZ, "BasisschemaXsdVersie", "1.0.0")
    _add(xsd, NS_IWLZ, "BerichtXsdVersie", "1.0.0")
    c = _add(_add(root, ns, "Clienten"), ns, "Client")
    _add(c, ns, "Bsn", bsn)
    _add(_add(c, ns, "Geboortedatum"), NS_IWLZ, "Datum", birth.isoformat())
    _add(c, ns, "Geslacht", "0")
    naam = _add(c, ns, "Naam")
    _add(_add(naam, NS_IWLZ, "Geslachtsnaam"), NS_IWLZ, "Achternaam", family_name)
    z = _add(_add(c, ns, "GeleverdeZorgzwaartepakketten"), ns, "GeleverdZorgzwaartepakket")
    for name, text in (
        ("Besluitnummer", number),
        ("ZzpCode", "750"),  # an LDT_ZzpCode of the list; the Levensloopaanpak has none
        ("ToewijzingIngangsdatum", start.isoformat()),
        ("Begindatum", start.isoformat()),
        ("Instelling", provider_agb),
        ("Leveringsstatus", "1"),
        ("Leveringsvorm", "2"),
        ("StatusAanlevering", "1"),
    ):
        _add(z, ns, name, text)
    return xml_bytes(root)
