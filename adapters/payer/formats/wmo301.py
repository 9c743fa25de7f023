"""iWmo 3.2 WMO301 (Toewijzing Wmo-ondersteuning, BerichtCode 414): the municipality's
allocation that a provider must have before it declares (a WMO323 prestatie cites its
``ToewijzingNummer``, 1..1 in WMO323.xsd).

Read from the provider's inbox (``adapters/payer/formats/preconditions.py``); written here only
for tests, demos and a municipality's own tooling. Both follow the published WMO301.xsd
(vendored in tests/standards/iwmo/wmo/; the public example of i-Sociaal-Lab/jaapjunior
``packages/api/wmo/bronnen/berichten/WMO301.xml`` is read unchanged in a test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from xml.etree.ElementTree import Element, SubElement, register_namespace

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

NS_IWMO = "http://www.istandaarden.nl/iwmo/3_2/basisschema/schema"
NS_301 = "http://www.istandaarden.nl/iwmo/3_2/wmo301/schema"
BERICHT_CODE = "414"
NS = {"iwmo": NS_IWMO, "wmo301": NS_301}
MAX_PRODUCTS = 1_000  # a WMO301 is about one client; more is not an allocation but an attack

for _prefix, _uri in NS.items():
    register_namespace(_prefix, _uri)

# basisschema.xsd: LDT_Gemeente [0-9]{4}; LDT_AgbCode 1..8 characters (an AGB code: 8 digits);
# LDT_Nummer an integer 0..999999999; LDT_ProductCategorie 01-18 (iWmo code list)
_GEMEENTE = re.compile(r"[0-9]{4}")
_AGB = re.compile(r"[0-9]{8}")
_NUMMER = re.compile(r"[0-9]{1,9}")
_CATEGORIE = re.compile(r"0[1-8]|1[0-8]")


@dataclass(frozen=True)
class WmoAllocation:
    """One product allocated in a WMO301 (the provider's precondition for a WMO323)."""

    bsn: str
    municipality: str
    number: str
    category: str | None
    code: str | None
    start: date
    end: date | None
    receiver: str = ""  # the provider's AGB code the allocation is addressed to (Ontvanger)


def _q(name: str, ns: str = NS_301) -> str:
    return f"{{{ns}}}{name}"


def read_allocation(raw: bytes) -> list[WmoAllocation]:
    """The allocated products of a WMO301. ``MessageError`` names the first problem: the file
    is refused whole (an allocation read half is a claim cited wrongly)."""
    root = parse_xml(raw)
    if root.tag != _q("Bericht"):
        raise file_error(f"root element must be wmo301:Bericht, not {root.tag}", "wrong-message")
    code = opt_child_text(root, "wmo301:Header/wmo301:BerichtCode", NS)
    if code != BERICHT_CODE:
        raise file_error(f"BerichtCode must be 414 (WMO301), not {code}", "wrong-message")
    municipality = child_text(root, "wmo301:Header/wmo301:Afzender", NS, "Header")
    if not _GEMEENTE.fullmatch(municipality):
        raise item_error("Header/Afzender", "is not a municipality code (4 digits)", "code")
    receiver = child_text(root, "wmo301:Header/wmo301:Ontvanger", NS, "Header")
    if not _AGB.fullmatch(receiver):
        raise item_error("Header/Ontvanger", "is not an AGB code (8 digits)", "code")
    client = root.find("wmo301:Client", NS)
    if client is None:
        raise file_error("Client is missing", "required", "Client")
    bsn = parse_bsn(child_text(client, "wmo301:Bsn", NS, "Client"), "Client/Bsn")
    products = client.findall("wmo301:ToegewezenProducten/wmo301:ToegewezenProduct", NS)
    if len(products) > MAX_PRODUCTS:
        raise file_error(f"more than {MAX_PRODUCTS} ToegewezenProduct", "too-large")
    out = []
    for i, t in enumerate(products):
        w = f"ToegewezenProduct[{i + 1}]"
        number = child_text(t, "wmo301:ToewijzingNummer", NS, w)
        if not _NUMMER.fullmatch(number):
            raise item_error(f"{w}/ToewijzingNummer", "is not a number of 1-9 digits", "code")
        category = opt_child_text(t, "wmo301:Product/iwmo:Categorie", NS)
        if category is not None and not _CATEGORIE.fullmatch(category):
            raise item_error(f"{w}/Product/Categorie", "is not an iWmo category 01-18", "code")
        start = parse_date(child_text(t, "wmo301:Ingangsdatum", NS, w), f"{w}/Ingangsdatum")
        end_text = opt_child_text(t, "wmo301:Einddatum", NS)
        end = parse_date(end_text, f"{w}/Einddatum") if end_text else None
        if end is not None and end < start:
            raise item_error(f"{w}/Einddatum", "lies before the Ingangsdatum", "period")
        out.append(
            WmoAllocation(
                bsn=bsn,
                municipality=municipality,
                number=number,
                category=category,
                code=opt_child_text(t, "wmo301:Product/iwmo:Code", NS),
                start=start,
                end=end,
                receiver=receiver,
            )
        )
    if not out:
        raise file_error("the allocation holds no ToegewezenProduct", "empty")
    return out


def _add(parent: Element, name: str, text: str | None = None, ns: str = NS_301) -> Element:
    el = SubElement(parent, _q(name, ns))
    if text is not None:
        el.text = text
    return el


def write_allocation(
    allocations: list[WmoAllocation],
    ident: str,
    day: date,
    birth_date: date,
    family_name: str,
) -> bytes:
    """A WMO301 of one client (tests, demos, a municipality's tooling): the header, the client
    (Bsn, Geboortedatum, Geslacht 0, Naam, one Contact of Soort 01) and one
    ToegewezenProduct per allocation, in the element order of WMO301.xsd."""
    first = allocations[0]
    if any(
        (a.bsn, a.municipality, a.receiver) != (first.bsn, first.municipality, first.receiver)
        for a in allocations
    ):
        raise ValueError("one WMO301 is for one client, from one municipality, to one provider")
    root = Element(_q("Bericht"))
    header = _add(root, "Header")
    for name, text in (
        ("BerichtCode", BERICHT_CODE),
        ("BerichtVersie", "3"),
        ("BerichtSubversie", "2"),
        ("Afzender", first.municipality),
        ("Ontvanger", first.receiver),
    ):
        _add(header, name, text)
    bid = _add(header, "BerichtIdentificatie")
    _add(bid, "Identificatie", ident, NS_IWMO)
    _add(bid, "Dagtekening", day.isoformat(), NS_IWMO)
    xsd = _add(header, "XsdVersie")
    _add(xsd, "BasisschemaXsdVersie", "1.0.0", NS_IWMO)
    _add(xsd, "BerichtXsdVersie", "1.0.0", NS_IWMO)
    client = _add(root, "Client")
    _add(client, "Bsn", first.bsn)
    _add(_add(client, "Geboortedatum"), "Datum", birth_date.isoformat(), NS_IWMO)
    _add(client, "Geslacht", "0")
    naam = _add(client, "Naam")
    _add(_add(naam, "Geslachtsnaam", ns=NS_IWMO), "Achternaam", family_name, NS_IWMO)
    _add(naam, "NaamGebruik", "1", NS_IWMO)  # LDT_NaamGebruik 1: the own name
    _add(_add(_add(client, "Contactgegevens"), "Contact"), "Soort", "01")
    products = _add(client, "ToegewezenProducten")
    for a in allocations:
        t = _add(products, "ToegewezenProduct")
        _add(t, "ToewijzingNummer", a.number)
        if a.category is not None:
            product = _add(t, "Product")
            _add(product, "Categorie", a.category, NS_IWMO)
            if a.code is not None:
                _add(product, "Code", a.code, NS_IWMO)
        _add(t, "Toewijzingsdatum", day.isoformat())
        _add(t, "Toewijzingstijd", "12:00:00")
        _add(t, "Ingangsdatum", a.start.isoformat())
        if a.end is not None:
            _add(t, "Einddatum", a.end.isoformat())
    return xml_bytes(root)
