"""Municipality (Wmo): declarations modelled on iWmo 3.2 WMO323 (BerichtCode 484), answers on
WMO325 (BerichtCode 485). Element names, order and namespaces follow the published WMO323 XSD
and a WMO325 example; the deviations (no allocation number, product codes, a payment element,
the explanation as a comment) are listed in docs/adapters/payers.md.
"""

from __future__ import annotations

from xml.etree.ElementTree import Comment, Element, SubElement, register_namespace

from adapters.payer.formats.common import (
    PRODUCTS,
    UNITS,
    Answer,
    AnswerItem,
    FormatError,
    alnum_reference,
    child_text,
    collect,
    comment_text,
    explanation_lines,
    file_error,
    item_error,
    month_bounds,
    opt_child_text,
    outcome_for,
    parse_bsn,
    parse_cents,
    parse_date,
    parse_xml,
    reference,
    xml_bytes,
)
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome, ClaimRejectionReason

NS_IWMO = "http://www.istandaarden.nl/iwmo/3_2/basisschema/schema"
NS_323 = "http://www.istandaarden.nl/iwmo/3_2/wmo323/schema"
NS_325 = "http://www.istandaarden.nl/iwmo/3_2/wmo325/schema"
NS_KB = "https://ketenbus.nl/ns/payer-answer"  # our extension: payment (not in WMO325)
BERICHT_CODE_DECLARATION = "484"
BERICHT_CODE_ANSWER = "485"
ALLOCATION_UNKNOWN = "0"  # ketenbus has no WMO301 allocation; see docs/adapters/payers.md
SUFFIX = ".xml"
# WMO325 RetourCodes (iWmo WJ001) that reject a prestatie, and what they mean for a claim.
RETOUR_CODES: dict[str, ClaimRejectionReason] = {
    "0001": ClaimRejectionReason.INVALID,  # technically rejected
    "0611": ClaimRejectionReason.INVALID,  # tariff differs from the contract
    "8187": ClaimRejectionReason.INVALID,  # prestatie does not belong to this client
    "8021": ClaimRejectionReason.DUPLICATE,  # reference already delivered
    "9333": ClaimRejectionReason.DUPLICATE,  # declaration number not unique
    "9307": ClaimRejectionReason.NOT_COVERED,  # outside the allocation's period
    "9308": ClaimRejectionReason.NOT_COVERED,
    "9338": ClaimRejectionReason.NOT_COVERED,  # no allocation for the prestatie
    "9339": ClaimRejectionReason.NOT_COVERED,
    "9340": ClaimRejectionReason.NOT_COVERED,
    "9341": ClaimRejectionReason.NOT_COVERED,
    "9384": ClaimRejectionReason.NOT_COVERED,
}
NS = {"iwmo": NS_IWMO, "wmo323": NS_323, "wmo325": NS_325, "kb": NS_KB}

for _prefix, _uri in NS.items():
    register_namespace(_prefix, _uri)


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _add(parent: Element, ns: str, name: str, text: str | None = None) -> Element:
    el = SubElement(parent, _q(ns, name))
    if text is not None:
        el.text = text
    return el


def _period(parent: Element, ns: str, name: str, start: str, end: str) -> None:
    p = _add(parent, ns, name)
    _add(p, NS_IWMO, "Begindatum", start)
    _add(p, NS_IWMO, "Einddatum", end)


def write_declaration(claim: Claim) -> bytes:
    """One claim as a WMO323 declaration (one client, one prestatie)."""
    if not claim.provider_agb:
        raise FormatError("WMO323 needs the claimant's AGB code (Afzender)")
    category, product = PRODUCTS[claim.service]
    root = Element(_q(NS_323, "Bericht"))
    header = _add(root, NS_323, "Header")
    _add(header, NS_323, "BerichtCode", BERICHT_CODE_DECLARATION)
    _add(header, NS_323, "BerichtVersie", "3")
    _add(header, NS_323, "BerichtSubversie", "2")
    _add(header, NS_323, "Afzender", claim.provider_agb)
    _add(header, NS_323, "Ontvanger", claim.payer.identifier)
    ident = _add(header, NS_323, "BerichtIdentificatie")
    _add(ident, NS_IWMO, "Identificatie", alnum_reference(claim.claim_id))
    _add(ident, NS_IWMO, "Dagtekening", claim.created.isoformat())
    xsd = _add(header, NS_323, "XsdVersie")
    _add(xsd, NS_IWMO, "BasisschemaXsdVersie", "1.0.0")
    _add(xsd, NS_IWMO, "BerichtXsdVersie", "1.0.0")
    decl = _add(root, NS_323, "Declaratie")
    _add(decl, NS_323, "DeclaratieNummer", alnum_reference(claim.claim_id))
    first, last = month_bounds(claim.period_start, claim.period_end)
    _period(decl, NS_323, "DeclaratiePeriode", first.isoformat(), last.isoformat())
    _add(decl, NS_323, "DeclaratieDagtekening", claim.created.isoformat())
    total = _add(decl, NS_323, "TotaalIngediendBedrag")
    _add(total, NS_IWMO, "TotaalBedrag", str(claim.amount_cents))
    _add(total, NS_IWMO, "DebetCredit", "D")
    client = _add(_add(decl, NS_323, "Clienten"), NS_323, "Client")
    _add(client, NS_323, "Bsn", claim.person.bsn)
    prestatie = _add(_add(client, NS_323, "Prestaties"), NS_323, "Prestatie")
    lines = explanation_lines(claim)
    if lines:
        prestatie.append(Comment(comment_text(lines)))
    ref = _add(prestatie, NS_323, "ProductReferentie")
    _add(ref, NS_IWMO, "ReferentieNummer", reference(claim.claim_id))
    _add(prestatie, NS_323, "ToewijzingNummer", ALLOCATION_UNKNOWN)
    _add(prestatie, NS_323, "ProductCategorie", category)
    _add(prestatie, NS_323, "ProductCode", product)
    _period(
        prestatie,
        NS_323,
        "ProductPeriode",
        claim.period_start.isoformat(),
        claim.period_end.isoformat(),
    )
    _add(prestatie, NS_323, "GeleverdVolume", str(claim.quantity))
    _add(prestatie, NS_323, "Eenheid", UNITS[claim.service])
    _add(prestatie, NS_323, "ProductTarief", str(claim.unit_price_cents))
    amount = _add(prestatie, NS_323, "IngediendBedrag")
    _add(amount, NS_IWMO, "Bedrag", str(claim.amount_cents))
    _add(amount, NS_IWMO, "DebetCredit", "D")
    return xml_bytes(root)


def _codes(el: Element) -> list[str]:
    return [(c.text or "").strip() for c in el.findall("wmo325:RetourCodes/wmo325:RetourCode", NS)]


def read_answer(raw: bytes) -> Answer:
    """A WMO325 answer: one item per Prestatie; file errors raise ``MessageError``."""
    root = parse_xml(raw)
    if root.tag != _q(NS_325, "Bericht"):
        raise file_error(f"root element must be wmo325:Bericht, not {root.tag}", "wrong-message")
    header = root.find("wmo325:Header", NS)
    if header is None:
        raise file_error("Header is missing", "required", "Header")
    code = opt_child_text(header, "wmo325:BerichtCode", NS)
    if code != BERICHT_CODE_ANSWER:
        raise file_error(f"BerichtCode must be 485 (WMO325), not {code}", "wrong-message")
    decided = parse_date(
        child_text(header, "wmo325:BerichtIdentificatie/iwmo:Dagtekening", NS, "Header"),
        "Header/BerichtIdentificatie/Dagtekening",
    )
    header_codes = _codes(header)
    answer = root.find("wmo325:DeclaratieAntwoord", NS)
    if answer is None:
        raise file_error("DeclaratieAntwoord is missing", "required", "DeclaratieAntwoord")
    items: list[tuple[str, Element, Element]] = []
    for i, client in enumerate(answer.findall("wmo325:Clienten/wmo325:Client", NS)):
        for j, p in enumerate(client.findall("wmo325:Prestaties/wmo325:Prestatie", NS)):
            items.append((f"Client[{i + 1}]/Prestatie[{j + 1}]", client, p))
    if not items:
        raise file_error("the answer holds no Prestatie", "empty")

    def read(item: tuple[str, Element, Element], _: int) -> AnswerItem:
        where, client, p = item
        bsn = parse_bsn(child_text(client, "wmo325:Bsn", NS, where), f"{where}/Bsn")
        ref = child_text(p, "wmo325:ProductReferentie/iwmo:ReferentieNummer", NS, where)
        claimed = parse_cents(
            child_text(p, "wmo325:IngediendBedrag/iwmo:Bedrag", NS, where),
            f"{where}/IngediendBedrag",
        )
        dc = opt_child_text(p, "wmo325:IngediendBedrag/iwmo:DebetCredit", NS)
        if dc not in (None, "D"):
            raise item_error(f"{where}/IngediendBedrag", "a credit (C) is not a claim", "credit")
        paid_text = opt_child_text(p, "kb:Betaling/kb:Bedrag", NS)
        paid_on_text = opt_child_text(p, "kb:Betaling/kb:Datum", NS)
        if (paid_text is None) != (paid_on_text is None):
            raise item_error(f"{where}/Betaling", "a payment gives Datum and Bedrag", "payment")
        codes = header_codes + _codes(p)
        outcome, reason = outcome_for(codes, paid=paid_text is not None, table=RETOUR_CODES)
        rejected = outcome is ClaimOutcome.REJECTED
        return AnswerItem(
            reference=ref,
            bsn=bsn,
            decided_on=decided,
            outcome=outcome,
            approved_cents=None if rejected else claimed,
            paid_cents=None
            if rejected or paid_text is None
            else parse_cents(paid_text, f"{where}/Betaling/Bedrag"),
            paid_on=None
            if rejected or paid_on_text is None
            else parse_date(paid_on_text, f"{where}/Betaling/Datum"),
            rejection_reason=reason,
            rejection_note=("RetourCodes " + " ".join(c for c in codes if c != "0200"))
            if rejected
            else None,
            where=where,
        )

    return collect(items, read)


def write_answer(
    claim: Claim,
    decided_on: str,
    codes: tuple[str, ...] = ("0200",),
    paid: tuple[str, int] | None = None,
) -> bytes:
    """A WMO325 answer to one claim (for tests, demos and the municipality's own tooling)."""
    root = Element(_q(NS_325, "Bericht"))
    header = _add(root, NS_325, "Header")
    _add(header, NS_325, "BerichtCode", BERICHT_CODE_ANSWER)
    _add(header, NS_325, "BerichtVersie", "3")
    _add(header, NS_325, "BerichtSubversie", "2")
    _add(header, NS_325, "Afzender", claim.payer.identifier)
    _add(header, NS_325, "Ontvanger", claim.provider_agb or "00000000")
    ident = _add(header, NS_325, "BerichtIdentificatie")
    _add(ident, NS_IWMO, "Identificatie", "A" + alnum_reference(claim.claim_id, 11))
    _add(ident, NS_IWMO, "Dagtekening", decided_on)
    answer = _add(root, NS_325, "DeclaratieAntwoord")
    _add(answer, NS_325, "DeclaratieNummer", alnum_reference(claim.claim_id))
    client = _add(_add(answer, NS_325, "Clienten"), NS_325, "Client")
    _add(client, NS_325, "Bsn", claim.person.bsn)
    p = _add(_add(client, NS_325, "Prestaties"), NS_325, "Prestatie")
    ref = _add(p, NS_325, "ProductReferentie")
    _add(ref, NS_IWMO, "ReferentieNummer", reference(claim.claim_id))
    amount = _add(p, NS_325, "IngediendBedrag")
    _add(amount, NS_IWMO, "Bedrag", str(claim.amount_cents))
    _add(amount, NS_IWMO, "DebetCredit", "D")
    rc = _add(p, NS_325, "RetourCodes")
    for c in codes:
        _add(rc, NS_325, "RetourCode", c)
    if paid is not None:
        pay = _add(p, NS_KB, "Betaling")
        _add(pay, NS_KB, "Datum", paid[0])
        _add(pay, NS_KB, "Bedrag", str(paid[1]))
    return xml_bytes(root)
