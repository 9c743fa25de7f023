"""Care office (Wlz): declarations modelled on AW319 (declaratie), answers on AW320 (retour).

The real AW319/AW320 travel through VECOZO "Declareren" and are not in the public iWlz XSD
repository (iStandaarden/XSD-iWlz holds AW33..AW318 and the basisschema), so there is no XSD to
validate against. This XML follows the iWlz 2.2 conventions read from those XSDs: a ``Bericht``
root in a per-message namespace, the ``Header`` of AW35 (BerichtCode, BerichtVersie 5,
BerichtSubversie 2, Afzender AGB, Ontvanger zorgkantoor code, BerichtIdentificatie,
XsdVersie), basisschema types for dates (``YYYY-MM-DD``), periods and the birth date, and a
``Declaratie`` body shaped like iWmo's WMO323. Deviations: docs/adapters/payers.md.
"""

from __future__ import annotations

from xml.etree.ElementTree import Comment, Element, SubElement, register_namespace

from adapters.payer.formats.common import (
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
    product,
    reference,
    xml_bytes,
)
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome

NS_IWLZ = "http://www.istandaarden.nl/iwlz/2_2/basisschema/schema"
NS_319 = "http://www.istandaarden.nl/iwlz/2_2/aw319/schema"
NS_320 = "http://www.istandaarden.nl/iwlz/2_2/aw320/schema"
NS_KB = "https://ketenbus.nl/ns/payer-answer"
CODE_DECLARATION = "187"  # the EI code implementers use for AW319
CODE_ANSWER = "188"  # assumed: the retour's code follows the declaration's (like 416/417)
SUFFIX = ".xml"
NS = {"iwlz": NS_IWLZ, "aw319": NS_319, "aw320": NS_320, "kb": NS_KB}

for _prefix, _uri in NS.items():
    register_namespace(_prefix, _uri)


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _add(parent: Element, ns: str, name: str, text: str | None = None) -> Element:
    el = SubElement(parent, _q(ns, name))
    if text is not None:
        el.text = text
    return el


def _header(
    root: Element, ns: str, code: str, sender: str, receiver: str, ident: str, day: str
) -> None:
    header = _add(root, ns, "Header")
    _add(header, ns, "BerichtCode", code)
    _add(header, ns, "BerichtVersie", "5")
    _add(header, ns, "BerichtSubversie", "2")
    _add(header, ns, "Afzender", sender)
    _add(header, ns, "Ontvanger", receiver)
    bid = _add(header, ns, "BerichtIdentificatie")
    _add(bid, NS_IWLZ, "Identificatie", ident)
    _add(bid, NS_IWLZ, "Dagtekening", day)
    xsd = _add(header, ns, "XsdVersie")
    _add(xsd, NS_IWLZ, "BasisschemaXsdVersie", "1.0.0")
    _add(xsd, NS_IWLZ, "BerichtXsdVersie", "1.0.0")


def _amount(parent: Element, ns: str, name: str, cents: int) -> None:
    el = _add(parent, ns, name)
    _add(el, NS_IWLZ, "Bedrag", str(cents))
    _add(el, NS_IWLZ, "DebetCredit", "D")


def write_declaration(claim: Claim) -> bytes:
    """One claim as an AW319-style declaration to a care office (one client, one prestatie)."""
    if not claim.provider_agb:
        raise FormatError("AW319 needs the claimant's AGB code (Afzender)")
    root = Element(_q(NS_319, "Bericht"))
    ident = alnum_reference(claim.claim_id)
    _header(
        root,
        NS_319,
        CODE_DECLARATION,
        claim.provider_agb,
        claim.payer.identifier,
        ident,
        claim.created.isoformat(),
    )
    decl = _add(root, NS_319, "Declaratie")
    _add(decl, NS_319, "DeclaratieNummer", ident)
    first, last = month_bounds(claim.period_start, claim.period_end)
    period = _add(decl, NS_319, "DeclaratiePeriode")
    _add(period, NS_IWLZ, "Begindatum", first.isoformat())
    _add(period, NS_IWLZ, "Einddatum", last.isoformat())
    _amount(decl, NS_319, "TotaalIngediendBedrag", claim.amount_cents)
    client = _add(_add(decl, NS_319, "Clienten"), NS_319, "Client")
    _add(client, NS_319, "Bsn", claim.person.bsn)
    birth = _add(client, NS_319, "Geboortedatum")
    _add(birth, NS_IWLZ, "Datum", claim.person.birth_date.isoformat())
    p = _add(_add(client, NS_319, "Prestaties"), NS_319, "Prestatie")
    lines = explanation_lines(claim)
    if lines:
        p.append(Comment(comment_text(lines)))
    _add(p, NS_319, "ReferentieNummer", reference(claim.claim_id))
    _add(p, NS_319, "ProductCode", product("iwlz", claim)[1])
    served = _add(p, NS_319, "Periode")
    _add(served, NS_IWLZ, "Begindatum", claim.period_start.isoformat())
    _add(served, NS_IWLZ, "Einddatum", claim.period_end.isoformat())
    _add(p, NS_319, "Aantal", str(claim.quantity))
    _add(p, NS_319, "Tarief", str(claim.unit_price_cents))
    _amount(p, NS_319, "IngediendBedrag", claim.amount_cents)
    return xml_bytes(root)


def read_answer(raw: bytes) -> Answer:
    """An AW320-style answer: one item per Prestatie."""
    root = parse_xml(raw)
    if root.tag != _q(NS_320, "Bericht"):
        raise file_error(f"root element must be aw320:Bericht, not {root.tag}", "wrong-message")
    code = opt_child_text(root, "aw320:Header/aw320:BerichtCode", NS)
    if code != CODE_ANSWER:
        raise file_error(f"BerichtCode must be {CODE_ANSWER} (AW320), not {code}", "wrong-message")
    decided = parse_date(
        child_text(root, "aw320:Header/aw320:BerichtIdentificatie/iwlz:Dagtekening", NS, "Header"),
        "Header/BerichtIdentificatie/Dagtekening",
    )
    items: list[tuple[str, Element, Element]] = []
    for i, client in enumerate(root.findall("aw320:Antwoord/aw320:Clienten/aw320:Client", NS)):
        for j, p in enumerate(client.findall("aw320:Prestaties/aw320:Prestatie", NS)):
            items.append((f"Client[{i + 1}]/Prestatie[{j + 1}]", client, p))
    if not items:
        raise file_error("the answer holds no Prestatie", "empty")

    def read(item: tuple[str, Element, Element], _: int) -> AnswerItem:
        where, client, p = item
        bsn = parse_bsn(child_text(client, "aw320:Bsn", NS, where), f"{where}/Bsn")
        ref = child_text(p, "aw320:ReferentieNummer", NS, where)
        for name in ("IngediendBedrag", "ToegekendBedrag"):
            dc = opt_child_text(p, f"aw320:{name}/iwlz:DebetCredit", NS)
            if dc not in (None, "D"):
                raise item_error(f"{where}/{name}", "a credit (C) is refused", "negative-amount")
        codes = [
            (c.text or "").strip() for c in p.findall("aw320:RetourCodes/aw320:RetourCode", NS)
        ]
        paid_text = opt_child_text(p, "kb:Betaling/kb:Bedrag", NS)
        paid_day = opt_child_text(p, "kb:Betaling/kb:Datum", NS)
        if (paid_text is None) != (paid_day is None):
            raise item_error(f"{where}/Betaling", "a payment gives Datum and Bedrag", "payment")
        outcome, reason = outcome_for(codes, paid=paid_text is not None)
        rejected = outcome is ClaimOutcome.REJECTED
        approved_text = opt_child_text(p, "aw320:ToegekendBedrag/iwlz:Bedrag", NS)
        approved = None
        if not rejected:
            approved = parse_cents(
                approved_text or child_text(p, "aw320:IngediendBedrag/iwlz:Bedrag", NS, where),
                f"{where}/ToegekendBedrag",
            )
        return AnswerItem(
            reference=ref,
            bsn=bsn,
            decided_on=decided,
            outcome=outcome,
            approved_cents=approved,
            paid_cents=None
            if rejected or paid_text is None
            else parse_cents(paid_text, f"{where}/Betaling/Bedrag"),
            paid_on=None
            if rejected or paid_day is None
            else parse_date(paid_day, f"{where}/Betaling/Datum"),
            rejection_reason=reason,
            rejection_note=("RetourCodes " + " ".join(codes)) if rejected else None,
            where=where,
        )

    return collect(items, read)


def write_answer(
    claim: Claim,
    decided_on: str,
    codes: tuple[str, ...] = ("0200",),
    approved_cents: int | None = None,
    paid: tuple[str, int] | None = None,
) -> bytes:
    """An AW320-style answer to one claim (tests, demos, care-office tooling)."""
    root = Element(_q(NS_320, "Bericht"))
    _header(
        root,
        NS_320,
        CODE_ANSWER,
        claim.payer.identifier,
        claim.provider_agb or "00000000",
        "A" + alnum_reference(claim.claim_id, 11),
        decided_on,
    )
    answer = _add(root, NS_320, "Antwoord")
    _add(answer, NS_320, "DeclaratieNummer", alnum_reference(claim.claim_id))
    client = _add(_add(answer, NS_320, "Clienten"), NS_320, "Client")
    _add(client, NS_320, "Bsn", claim.person.bsn)
    p = _add(_add(client, NS_320, "Prestaties"), NS_320, "Prestatie")
    _add(p, NS_320, "ReferentieNummer", reference(claim.claim_id))
    _amount(p, NS_320, "IngediendBedrag", claim.amount_cents)
    _amount(
        p,
        NS_320,
        "ToegekendBedrag",
        claim.amount_cents if approved_cents is None else approved_cents,
    )
    rc = _add(p, NS_320, "RetourCodes")
    for c in codes:
        _add(rc, NS_320, "RetourCode", c)
    if paid is not None:
        pay = _add(p, NS_KB, "Betaling")
        _add(pay, NS_KB, "Datum", paid[0])
        _add(pay, NS_KB, "Bedrag", str(paid[1]))
    return xml_bytes(root)
