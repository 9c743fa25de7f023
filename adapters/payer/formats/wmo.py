"""Municipality (Wmo): declarations as iWmo 3.2 WMO323 (BerichtCode 484), answers as WMO325
(BerichtCode 485), allocations read from WMO301 (BerichtCode 414).

WMO323 follows the published WMO323.xsd (vendored in tests/standards/iwmo/, every file written
here validates against it). WMO325 follows its iJw 3.2 sister JW325.xsd (the public repository
has no WMO325.xsd): the answer lists **only the rejected prestaties**, each with its RetourCodes;
every prestatie of the declaration it does not list is approved, and ``TotaalToegekendBedrag``
is the declaration's total less the rejected lines. A correction (iWmo 3.1 and later) is a
*credit* line that cancels the earlier debit (``VorigReferentieNummer``) and, when there is a
corrected amount, a new *debit* line. Deviations: docs/adapters/payers.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
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
from adapters.payer.formats.wmo301 import WmoAllocation as WmoAllocation  # re-exported
from adapters.payer.formats.wmo301 import read_allocation as read_allocation  # re-exported
from schemas.errors import MessageError
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome, ClaimRejectionReason

NS_IWMO = "http://www.istandaarden.nl/iwmo/3_2/basisschema/schema"
NS_301 = "http://www.istandaarden.nl/iwmo/3_2/wmo301/schema"
NS_323 = "http://www.istandaarden.nl/iwmo/3_2/wmo323/schema"
NS_325 = "http://www.istandaarden.nl/iwmo/3_2/wmo325/schema"
BERICHT_CODE_DECLARATION = "484"
BERICHT_CODE_ANSWER = "485"
SUFFIX = ".xml"
# WMO325 RetourCodes (iWmo WJ001) that reject a prestatie, and what they mean for a claim.
# 0200 = "Bericht is inhoudelijk goedgekeurd" (accepted); anything else listed rejects.
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
    # ketenbus agreements for the Levensloopaanpak (no iWmo code says "another regime pays")
    "R001": ClaimRejectionReason.NO_PAYMENT_TITLE,
    "R002": ClaimRejectionReason.WRONG_PAYER,
}
NS = {"iwmo": NS_IWMO, "wmo301": NS_301, "wmo323": NS_323, "wmo325": NS_325}

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


def _amount(parent: Element, ns: str, name: str, cents: int, total: bool = False) -> None:
    el = _add(parent, ns, name)
    _add(el, NS_IWMO, "TotaalBedrag" if total else "Bedrag", str(abs(cents)))
    _add(el, NS_IWMO, "DebetCredit", "D" if cents >= 0 else "C")


def _header(
    root: Element, ns: str, code: str, sender: str, receiver: str, ident: str, day: str
) -> Element:
    header = _add(root, ns, "Header")
    _add(header, ns, "BerichtCode", code)
    _add(header, ns, "BerichtVersie", "3")
    _add(header, ns, "BerichtSubversie", "2")
    _add(header, ns, "Afzender", sender)
    _add(header, ns, "Ontvanger", receiver)
    bid = _add(header, ns, "BerichtIdentificatie")
    _add(bid, NS_IWMO, "Identificatie", ident)
    _add(bid, NS_IWMO, "Dagtekening", day)
    xsd = _add(header, ns, "XsdVersie")
    _add(xsd, NS_IWMO, "BasisschemaXsdVersie", "1.0.0")
    _add(xsd, NS_IWMO, "BerichtXsdVersie", "1.0.0")
    return header


def declaration_number(claim_id: str) -> str:
    """The DeclaratieNummer (and BerichtIdentificatie) of the declaration of ``claim_id``."""
    return alnum_reference(claim_id)


def _prestatie(
    parent: Element,
    claim: Claim,
    ref: str,
    sign: int,
    previous: str | None = None,
    comment: bool = True,
) -> None:
    category, code, unit = product("iwmo", claim)
    assert category is not None and unit is not None  # the rules file checks iwmo products
    p = _add(parent, NS_323, "Prestatie")
    lines = explanation_lines(claim)
    if lines and comment:
        p.append(Comment(comment_text(lines)))
    r = _add(p, NS_323, "ProductReferentie")
    _add(r, NS_IWMO, "ReferentieNummer", ref)
    if previous is not None:
        _add(r, NS_IWMO, "VorigReferentieNummer", previous)
    _add(p, NS_323, "ToewijzingNummer", claim.allocation)
    _add(p, NS_323, "ProductCategorie", category)
    _add(p, NS_323, "ProductCode", code)
    _period(
        p, NS_323, "ProductPeriode", claim.period_start.isoformat(), claim.period_end.isoformat()
    )
    _add(p, NS_323, "GeleverdVolume", str(claim.quantity))
    _add(p, NS_323, "Eenheid", unit)
    _add(p, NS_323, "ProductTarief", str(claim.unit_price_cents))
    _amount(p, NS_323, "IngediendBedrag", sign * claim.amount_cents)


def _check(claim: Claim) -> None:
    if not claim.provider_agb:
        raise FormatError("WMO323 needs the claimant's AGB code (Afzender)")
    if claim.allocation is None:
        raise FormatError(
            "a WMO323 prestatie cites the municipality's allocation (WMO301 ToewijzingNummer); "
            "the claim has none"
        )
    if max(claim.amount_cents, claim.unit_price_cents) > 99_999_999:
        raise FormatError("an amount above EUR 999,999.99 does not fit a WMO323 Bedrag")


def _declaration(
    claims: list[tuple[Claim, str, int, str | None]], number: str, created: date
) -> bytes:
    first_claim = claims[0][0]
    root = Element(_q(NS_323, "Bericht"))
    _header(
        root,
        NS_323,
        BERICHT_CODE_DECLARATION,
        first_claim.provider_agb or "",
        first_claim.payer.identifier,
        number,
        created.isoformat(),
    )
    decl = _add(root, NS_323, "Declaratie")
    _add(decl, NS_323, "DeclaratieNummer", number)
    first, last = month_bounds(
        min(c.period_start for c, *_ in claims), max(c.period_end for c, *_ in claims)
    )
    _period(decl, NS_323, "DeclaratiePeriode", first.isoformat(), last.isoformat())
    _add(decl, NS_323, "DeclaratieDagtekening", created.isoformat())
    _amount(
        decl,
        NS_323,
        "TotaalIngediendBedrag",
        sum(s * c.amount_cents for c, _, s, _ in claims),
        True,
    )
    client = _add(_add(decl, NS_323, "Clienten"), NS_323, "Client")
    _add(client, NS_323, "Bsn", first_claim.person.bsn)
    prestaties = _add(client, NS_323, "Prestaties")
    for c, ref, sign, previous in claims:
        _prestatie(prestaties, c, ref, sign, previous)
    return xml_bytes(root)


def write_declaration(claim: Claim) -> bytes:
    """One claim as a WMO323 declaration (one client, one debit prestatie)."""
    _check(claim)
    number = declaration_number(claim.claim_id)
    return _declaration([(claim, reference(claim.claim_id), 1, None)], number, claim.created)


def write_correction(
    original: Claim, corrected: Claim | None, correction_id: str, created: date
) -> bytes:
    """A correction of ``original`` as iWmo 3.1+ has it: a credit prestatie that cancels the
    original debit (``VorigReferentieNummer`` = its ReferentieNummer) and, when ``corrected``
    is given, a new debit prestatie with the corrected figures, in one declaration
    ``correction_id``. The same client and municipality."""
    _check(original)
    lines: list[tuple[Claim, str, int, str | None]] = [
        (original, reference(correction_id + "-C"), -1, reference(original.claim_id))
    ]
    if corrected is not None:
        _check(corrected)
        if (corrected.person.bsn, corrected.payer.identifier) != (
            original.person.bsn,
            original.payer.identifier,
        ):
            raise FormatError("a correction is for the same client and municipality")
        lines.append((corrected, reference(corrected.claim_id), 1, None))
    return _declaration(lines, declaration_number(correction_id), created)


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclarationLine:
    """One prestatie of a WMO323 declaration; ``cents`` is negative for a credit line."""

    bsn: str
    reference: str
    previous: str | None
    allocation: str
    category: str
    code: str
    start: date
    end: date
    volume: int
    unit: str
    tariff_cents: int | None
    cents: int


@dataclass(frozen=True)
class Declaration:
    number: str
    sender: str
    receiver: str
    created: date
    total_cents: int
    lines: tuple[DeclarationLine, ...]


def _signed(el: Element, path: str, where: str, total: bool = False) -> int:
    name = "TotaalBedrag" if total else "Bedrag"
    cents = parse_cents(child_text(el, f"{path}/iwmo:{name}", NS, where), f"{where}/{path}")
    dc = child_text(el, f"{path}/iwmo:DebetCredit", NS, where)
    if dc not in ("D", "C"):
        raise item_error(f"{where}/{path}", "DebetCredit is D or C", "debet-credit")
    return cents if dc == "D" else -cents


def read_declaration(raw: bytes) -> Declaration:
    """A WMO323 declaration (the municipality's side, and tests): every prestatie, credit
    lines negative. ``MessageError`` names the first problem."""
    root = parse_xml(raw)
    if root.tag != _q(NS_323, "Bericht"):
        raise file_error(f"root element must be wmo323:Bericht, not {root.tag}", "wrong-message")
    code = opt_child_text(root, "wmo323:Header/wmo323:BerichtCode", NS)
    if code != BERICHT_CODE_DECLARATION:
        raise file_error(f"BerichtCode must be 484 (WMO323), not {code}", "wrong-message")
    decl = root.find("wmo323:Declaratie", NS)
    if decl is None:
        raise file_error("Declaratie is missing", "required", "Declaratie")
    lines = []
    for i, client in enumerate(decl.findall("wmo323:Clienten/wmo323:Client", NS)):
        where_c = f"Client[{i + 1}]"
        bsn = parse_bsn(child_text(client, "wmo323:Bsn", NS, where_c), f"{where_c}/Bsn")
        for j, p in enumerate(client.findall("wmo323:Prestaties/wmo323:Prestatie", NS)):
            w = f"{where_c}/Prestatie[{j + 1}]"
            tariff = opt_child_text(p, "wmo323:ProductTarief", NS)
            lines.append(
                DeclarationLine(
                    bsn=bsn,
                    reference=child_text(
                        p, "wmo323:ProductReferentie/iwmo:ReferentieNummer", NS, w
                    ),
                    previous=opt_child_text(
                        p, "wmo323:ProductReferentie/iwmo:VorigReferentieNummer", NS
                    ),
                    allocation=child_text(p, "wmo323:ToewijzingNummer", NS, w),
                    category=child_text(p, "wmo323:ProductCategorie", NS, w),
                    code=child_text(p, "wmo323:ProductCode", NS, w),
                    start=parse_date(
                        child_text(p, "wmo323:ProductPeriode/iwmo:Begindatum", NS, w), w
                    ),
                    end=parse_date(child_text(p, "wmo323:ProductPeriode/iwmo:Einddatum", NS, w), w),
                    volume=int(parse_cents(child_text(p, "wmo323:GeleverdVolume", NS, w), w)),
                    unit=child_text(p, "wmo323:Eenheid", NS, w),
                    tariff_cents=parse_cents(tariff, w) if tariff else None,
                    cents=_signed(p, "wmo323:IngediendBedrag", w),
                )
            )
    total = _signed(decl, "wmo323:TotaalIngediendBedrag", "Declaratie", total=True)
    if total != sum(ln.cents for ln in lines):
        raise file_error("TotaalIngediendBedrag is not the sum of the prestaties", "total")
    return Declaration(
        number=child_text(decl, "wmo323:DeclaratieNummer", NS, "Declaratie"),
        sender=child_text(root, "wmo323:Header/wmo323:Afzender", NS, "Header"),
        receiver=child_text(root, "wmo323:Header/wmo323:Ontvanger", NS, "Header"),
        created=parse_date(
            child_text(decl, "wmo323:DeclaratieDagtekening", NS, "Declaratie"), "Declaratie"
        ),
        total_cents=total,
        lines=tuple(lines),
    )


def _codes(el: Element) -> list[str]:
    return [(c.text or "").strip() for c in el.findall("wmo325:RetourCodes/wmo325:RetourCode", NS)]


def read_answer(raw: bytes) -> Answer:
    """A WMO325 answer: one rejected item per listed Prestatie, and one declaration item that
    approves every other prestatie of the declaration (``AnswerItem.declaration``), its
    ``approved_cents`` the TotaalToegekendBedrag. Header RetourCodes other than 0200 reject the
    whole declaration. File errors raise ``MessageError``."""
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
    declared = opt_child_text(header, "wmo325:DeclaratieIdentificatie/iwmo:Identificatie", NS)
    header_outcome, header_reason = outcome_for(header_codes, paid=True, table=RETOUR_CODES)
    if header_outcome is ClaimOutcome.REJECTED or answer is None:
        if declared is None:
            raise file_error("DeclaratieIdentificatie is missing", "required", "Header")
        if header_outcome is not ClaimOutcome.REJECTED:
            raise file_error("DeclaratieAntwoord is missing", "required", "DeclaratieAntwoord")
        return [
            AnswerItem(
                reference=declared,
                bsn="",
                decided_on=decided,
                outcome=ClaimOutcome.REJECTED,
                approved_cents=None,
                rejection_reason=header_reason,
                rejection_note="RetourCodes " + " ".join(header_codes),
                where="Header",
                declaration=True,
            )
        ]
    number = child_text(answer, "wmo325:DeclaratieNummer", NS, "DeclaratieAntwoord")
    items: list[tuple[str, Element, Element]] = []
    for i, client in enumerate(answer.findall("wmo325:Clienten/wmo325:Client", NS)):
        for j, p in enumerate(client.findall("wmo325:Prestaties/wmo325:Prestatie", NS)):
            items.append((f"Client[{i + 1}]/Prestatie[{j + 1}]", client, p))

    def read(item: tuple[str, Element, Element], _: int) -> AnswerItem:
        where, client, p = item
        bsn = parse_bsn(child_text(client, "wmo325:Bsn", NS, where), f"{where}/Bsn")
        ref = child_text(p, "wmo325:ProductReferentie/iwmo:ReferentieNummer", NS, where)
        _signed(p, "wmo325:IngediendBedrag", where)
        codes = _codes(p)
        outcome, reason = outcome_for(codes, paid=False, table=RETOUR_CODES)
        if outcome is not ClaimOutcome.REJECTED:
            raise item_error(
                where,
                "a WMO325 lists only rejected prestaties (RetourCode other than 0200)",
                "not-rejected",
            )
        return AnswerItem(
            reference=ref,
            bsn=bsn,
            decided_on=decided,
            outcome=ClaimOutcome.REJECTED,
            approved_cents=None,
            rejection_reason=reason,
            rejection_note="RetourCodes " + " ".join(codes),
            where=where,
        )

    out = collect(items, read)
    try:
        approved = _signed(answer, "wmo325:TotaalToegekendBedrag", "DeclaratieAntwoord", True)
        out.append(
            AnswerItem(
                reference=number,
                bsn="",
                decided_on=decided,
                outcome=ClaimOutcome.PAID,
                approved_cents=approved,
                paid_cents=approved,
                paid_on=decided,
                where="DeclaratieAntwoord",
                declaration=True,
            )
        )
    except MessageError as err:
        out.append(err)
    return out


def write_answer(
    claim: Claim,
    decided_on: str,
    codes: tuple[str, ...] = ("0200",),
    paid: tuple[str, int] | None = None,
) -> bytes:
    """A WMO325 answer to the declaration of one claim (tests, demos, the municipality's own
    tooling): ``codes`` other than 0200 reject its prestatie, which is then listed; else the
    answer lists nothing and approves the total. ``paid`` is accepted for the callers of the
    older signature and ignored: a WMO325 approval is the municipality's commitment to pay."""
    del paid
    rejected = [c for c in codes if c != "0200"]
    number = declaration_number(claim.claim_id)
    root = Element(_q(NS_325, "Bericht"))
    header = _header(
        root,
        NS_325,
        BERICHT_CODE_ANSWER,
        claim.payer.identifier,
        claim.provider_agb or "00000000",
        "A" + alnum_reference(claim.claim_id, 11),
        decided_on,
    )
    did = _add(header, NS_325, "DeclaratieIdentificatie")
    _add(did, NS_IWMO, "Identificatie", number)
    _add(did, NS_IWMO, "Dagtekening", claim.created.isoformat())
    xsd = _add(header, NS_325, "XsdVersieDeclaratie")
    _add(xsd, NS_IWMO, "BasisschemaXsdVersie", "1.0.0")
    _add(xsd, NS_IWMO, "BerichtXsdVersie", "1.0.0")
    _add(_add(header, NS_325, "RetourCodes"), NS_325, "RetourCode", "0200")
    answer = _add(root, NS_325, "DeclaratieAntwoord")
    _add(answer, NS_325, "DeclaratieNummer", number)
    _amount(answer, NS_325, "TotaalIngediendBedrag", claim.amount_cents, True)
    _amount(answer, NS_325, "TotaalToegekendBedrag", 0 if rejected else claim.amount_cents, True)
    if rejected:
        category, code, unit = product("iwmo", claim)
        client = _add(_add(answer, NS_325, "Clienten"), NS_325, "Client")
        _add(client, NS_325, "Bsn", claim.person.bsn)
        p = _add(_add(client, NS_325, "Prestaties"), NS_325, "Prestatie")
        ref = _add(p, NS_325, "ProductReferentie")
        _add(ref, NS_IWMO, "ReferentieNummer", reference(claim.claim_id))
        _add(p, NS_325, "ToewijzingNummer", claim.allocation or "0")
        _add(p, NS_325, "ProductCategorie", category)
        _add(p, NS_325, "ProductCode", code)
        _period(
            p,
            NS_325,
            "ProductPeriode",
            claim.period_start.isoformat(),
            claim.period_end.isoformat(),
        )
        _add(p, NS_325, "GeleverdVolume", str(claim.quantity))
        _add(p, NS_325, "Eenheid", unit)
        _add(p, NS_325, "ProductTarief", str(claim.unit_price_cents))
        _amount(p, NS_325, "IngediendBedrag", claim.amount_cents)
        rc = _add(p, NS_325, "RetourCodes")
        for c in rejected:
            _add(rc, NS_325, "RetourCode", c)
        _add(_add(client, NS_325, "RetourCodes"), NS_325, "RetourCode", "0200")
    _add(_add(answer, NS_325, "RetourCodes"), NS_325, "RetourCode", "0200")
    return xml_bytes(root)
