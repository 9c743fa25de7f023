"""Health insurer (Zvw GGZ) and DJI (forensic care): the XML **GDS801** declaration (Berichtcode
573) of the Zorgprestatiemodel and its answer **GDS802** (574), for prestaties of the NZa ZPM
code list (071) -- since 2022 the successor of GZ321/FZ301 (notes §2.1).

No GDS801 XSD was reachable. The structure here is read from VECOZO's public validation
stylesheets for GDS801 (``gds801_573val_Vecozo_stap1``, "u18, augustus 2025", and its
``rcNNNN.xslt`` templates), which name every class and element they check, the namespaces
(``http://ei.vektis.nl/declaratiebericht573`` / ``…574``), the retour's ``Feedback`` with its
``Retourcode`` and the rules ``VCnnn`` quoted in the code below. Element order within a class,
the Plaatsingsbesluit's number and the Zorgtraject's content are ours: docs/adapters/payers.md
lists every deviation.

A GDS801 carries ZPM prestaties only (VC069: codelist 071); the Levensloopaanpak's own services
have no ZPM code, so they stay in the Vektis EI form (``vektis.py``), as FZ303 stays for what
lies outside the ZPM. ``write_declaration`` is used when the rules file agrees a ZPM prestatie
(``products``, format ``gds``, codelist ``071``) for the service.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Comment, Element, SubElement, register_namespace

from adapters.financing.rules import Product, RulesError, default_rules
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
    parse_date,
    parse_xml,
    reference,
    xml_bytes,
)
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome, ClaimRejectionReason, PartyRole

NS_801 = "http://ei.vektis.nl/declaratiebericht573"
NS_802 = "http://ei.vektis.nl/declaratiebericht574"
CODE_DECLARATION = "573"
CODE_ANSWER = "574"
ZPM = "071"  # COD367: Prestatiecodelijst ggz en fz volgens ZPM (VC069)
DJI_UZOVI = "9992"  # Ontvanger DJI/FZ (VC017, VC022, VC041)
ROLE = {PartyRole.HEALTH_INSURER: "3", PartyRole.DJI: "4"}  # OntvangerRol (VC004)
YES = "1"  # "1 (= Ja)" as the stylesheet's VC007 reads BetalingAanServicebureau
MAX_PRESTATIES = 10_000
NS = {"gds801": NS_801, "gds802": NS_802}

for _prefix, _uri in NS.items():
    register_namespace(_prefix, _uri)


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _add(parent: Element, name: str, text: str | None = None, ns: str = NS_801) -> Element:
    el = SubElement(parent, _q(ns, name))
    if text is not None:
        el.text = text
    return el


def euros(cents: int) -> str:
    """GDS amounts are euros with two decimals (``502.00``), not eurocents."""
    return f"{cents // 100}.{cents % 100:02d}"


def cents_of(text: str, where: str) -> int:
    """A GDS amount (``0.00``) in eurocents; ``MessageError`` for anything else."""
    value = text.strip()
    if value.startswith("-"):
        raise item_error(where, "is a negative amount", "negative-amount")
    if not re.fullmatch(r"[0-9]{1,13}\.[0-9]{2}", value):
        raise item_error(where, "is not an amount (0.00)", "amount")
    whole, part = value.split(".")
    return int(whole) * 100 + int(part)


def zpm_product(claim: Claim) -> Product:
    """The ZPM prestatie the rules file agrees for the claim's service and payer (``products``,
    format ``gds``); ``FormatError`` when there is none (the service is not a ZPM prestatie)."""
    try:
        return default_rules().product("gds", claim.service, claim.payer.identifier)
    except RulesError as err:
        raise FormatError(str(err)) from None


def _check(claim: Claim, p: Product) -> str:
    if claim.payer.role not in ROLE:
        raise FormatError("a GDS801 goes to a health insurer or DJI")
    if not claim.provider_agb:
        raise FormatError("a GDS801 needs the claimant's AGB code (Zorgaanbiedercode)")
    if p.codelist != ZPM:
        raise FormatError("a GDS801 carries ZPM prestaties only (VC069: codelist 071)")
    if claim.quantity != 1:
        raise FormatError("a ZPM prestatie has Aantal 1 (VC093): one claim per prestatie")
    if claim.payer.role is PartyRole.DJI and claim.allocation is None:
        raise FormatError(
            "a GDS801 to DJI needs the placement decision (Plaatsingsbesluit, VC041; FZ821)"
        )
    ontvanger = DJI_UZOVI if claim.payer.role is PartyRole.DJI else claim.payer.identifier
    if not (len(ontvanger) == 4 and ontvanger.isdigit()):
        raise FormatError("a GDS801 names the insurer by its UZOVI code (4 digits)")
    return ontvanger


def write_declaration(claim: Claim, product: Product | None = None) -> bytes:
    """One ZPM prestatie as a GDS801 to the insurer (its UZOVI) or DJI (9992). ``product``:
    the agreed ZPM prestatie (default: the rules file's)."""
    p = product or zpm_product(claim)
    ontvanger = _check(claim, p)
    dji = claim.payer.role is PartyRole.DJI
    root = Element(_q(NS_801, "Bericht"))
    h = _add(root, "Header")
    for name, text in (
        ("Berichtcode", CODE_DECLARATION),
        ("Berichtversie", "1"),
        ("Berichtsubversie", "0"),
        ("Berichtsoort", "P"),
        ("Verzender", claim.provider_agb or ""),
        ("VerzenderRol", "1"),  # zorgaanbieder (VC002)
        ("Ontvanger", ontvanger),
        ("OntvangerRol", ROLE[claim.payer.role]),
        ("Verzenddatum", claim.created.isoformat()),
        ("Referentienummer", alnum_reference(claim.claim_id, 20)),
    ):
        _add(h, name, text)
    ctx = _add(root, "DeclaratieContext")
    declarant = _add(ctx, "Declarant")
    _add(declarant, "Zorgaanbiedercode", claim.provider_agb)
    _add(declarant, "ZorgaanbiederSoort", "1")  # instelling (CL0015)
    first, last = month_bounds(claim.period_start, claim.period_end)
    last = min(last, claim.created)  # VC014: the period ends on or before the Verzenddatum
    for name, text in (
        ("Factuurnummer", reference(claim.claim_id, 12)),
        ("Factuurdatum", claim.created.isoformat()),
        ("Valutacode", "EUR"),
        ("BegindatumDeclaratieperiode", first.isoformat()),
        ("EinddatumDeclaratieperiode", last.isoformat()),
    ):
        _add(ctx, name, text)
    total = _add(_add(root, "Overzicht"), "TotaalDeclaratiebedragInclBtw")
    _add(total, "Bedrag", euros(claim.amount_cents))
    _add(total, "DebetCreditCode", "D")
    v = _add(root, "Verzekerde")
    if dji:  # VC017, VC022: no BSN and no birth date to DJI; VC020: Verzekerdennummer then
        _add(v, "Verzekerdennummer", claim.allocation)
    else:
        _add(v, "BSN", claim.person.bsn)
    _add(v, "UzoviNummer", ontvanger)  # VC019: equal to the Ontvanger
    if not dji:
        _add(v, "Geboortedatum", claim.person.birth_date.isoformat())  # VC023
    debet = _add(_add(v, "Prestatie"), "DebetPrestatie")
    lines = explanation_lines(claim)
    if lines:
        debet.append(Comment(comment_text(lines)))
    for name, text in (
        ("Referentienummer", reference(claim.claim_id)),
        ("PrestatieCodelijstCode", ZPM),
        ("Prestatiecode", p.code),
        ("Begindatum", claim.period_start.isoformat()),  # VC094: no Einddatum with 071
        ("Aantal", "1"),
        ("DoorsturenToegestaan", YES),  # VC038
        ("TariefInclBtw", euros(claim.unit_price_cents)),
        ("BerekendBedragInclBtw", euros(claim.amount_cents)),
        ("DeclaratieBedragInclBtw", euros(claim.amount_cents)),
    ):
        _add(debet, name, text)
    provider = _add(debet, "Zorgaanbieder")
    _add(provider, "Zorgaanbiedercode", claim.provider_agb)
    _add(provider, "ZorgaanbiederSoort", "1")
    _add(provider, "ZorgaanbiederRol", "01")  # behandelaar (CL0014)
    extra = _add(debet, "AanvullendePrestatiegegevens")
    traject = _add(extra, "Zorgtraject")  # VC040: required with 071
    _add(traject, "Zorgtrajectnummer", reference(claim.episode_id or claim.claim_id))
    _add(traject, "ZorgtrajectStartdatum", claim.period_start.isoformat())  # VC049
    if dji:
        besluit = _add(extra, "Plaatsingsbesluit")  # VC041
        _add(besluit, "Plaatsingsbesluitnummer", claim.allocation)
        _add(besluit, "BegindatumForensischeZorgtitel", claim.period_start.isoformat())
    return xml_bytes(root)


def _feedback(el: Element) -> list[str]:
    return [(c.text or "").strip() for c in el.findall("gds802:Feedback/gds802:Retourcode", NS)]


def read_answer(raw: bytes) -> Answer:
    """A GDS802: one item per DebetPrestatie, granted at ``ToegekendBedragInclBtwFinancieel``
    (the amount to be paid) unless a Retourcode rejects it; Feedback on the Header,
    DeclaratieContext, Overzicht or Verzekerde rejects every prestatie under it. A grant is the
    payer's commitment and is read as paid on the Verzenddatum (GDS802 has no payment fields)."""
    root = parse_xml(raw)
    if root.tag != _q(NS_802, "Bericht"):
        raise file_error(f"root element must be gds802:Bericht, not {root.tag}", "wrong-message")
    header = root.find("gds802:Header", NS)
    if header is None:
        raise file_error("Header is missing", "required", "Header")
    code = opt_child_text(header, "gds802:Berichtcode", NS)
    if code != CODE_ANSWER:
        raise file_error(f"Berichtcode must be 574 (GDS802), not {code}", "wrong-message")
    decided = parse_date(child_text(header, "gds802:Verzenddatum", NS, "Header"), "Verzenddatum")
    top = _feedback(header)
    for path in ("gds802:DeclaratieContext", "gds802:Overzicht"):
        el = root.find(path, NS)
        if el is not None:
            top += _feedback(el)
    items: list[tuple[str, Element, Element]] = []
    for i, v in enumerate(root.findall("gds802:Verzekerde", NS)):
        for j, d in enumerate(v.findall("gds802:Prestatie/gds802:DebetPrestatie", NS)):
            items.append((f"Verzekerde[{i + 1}]/DebetPrestatie[{j + 1}]", v, d))
    if len(items) > MAX_PRESTATIES:
        raise file_error(f"more than {MAX_PRESTATIES} prestaties", "too-large")
    if not items:
        raise file_error("the answer holds no DebetPrestatie", "empty")

    def read(item: tuple[str, Element, Element], _: int) -> AnswerItem:
        where, v, d = item
        bsn_text = opt_child_text(v, "gds802:BSN", NS)
        bsn = parse_bsn(bsn_text, f"{where}/BSN") if bsn_text else ""
        codes = top + _feedback(v) + _feedback(d)
        outcome, reason = outcome_for(codes, paid=True, table=RETOUR_CODES)
        rejected = outcome is ClaimOutcome.REJECTED
        granted = None
        if not rejected:
            granted = cents_of(
                child_text(d, "gds802:ToegekendBedragInclBtwFinancieel", NS, where),
                f"{where}/ToegekendBedragInclBtwFinancieel",
            )
        return AnswerItem(
            reference=child_text(d, "gds802:Referentienummer", NS, where),
            bsn=bsn,
            decided_on=decided,
            outcome=outcome,
            approved_cents=granted,
            paid_cents=granted,
            paid_on=None if rejected else decided,
            rejection_reason=reason,
            rejection_note=("Retourcodes " + " ".join(codes)) if rejected else None,
            where=where,
        )

    return collect(items, read)


# GDS802 Retourcodes: any code in a Feedback rejects (the VECOZO checks add Feedback only for an
# error); 8001 "declaratieregel is toegekend" accepts. Codes we can name a reason for:
RETOUR_CODES: dict[str, ClaimRejectionReason] = {
    "9425": ClaimRejectionReason.INVALID,  # VC069: codelist is not 071
    "9544": ClaimRejectionReason.INVALID,  # VC116: codelist 999 to an insurer or DJI
    "9268": ClaimRejectionReason.INVALID,  # VC017: a BSN to DJI
    "9284": ClaimRejectionReason.INVALID,  # VC041: no Plaatsingsbesluit to DJI
    "R001": ClaimRejectionReason.NO_PAYMENT_TITLE,  # ketenbus agreements, as elsewhere
    "R002": ClaimRejectionReason.WRONG_PAYER,
    "R003": ClaimRejectionReason.NOT_COVERED,
    "R004": ClaimRejectionReason.NOT_INCLUDED,
    "R005": ClaimRejectionReason.DUPLICATE,
    "R006": ClaimRejectionReason.INVALID,
}


def write_answer(
    declaration: bytes,
    decided_on: str,
    codes: tuple[str, ...] = (),
    granted_cents: int | None = None,
) -> bytes:
    """The payer's GDS802 to a GDS801 this module wrote (tests, demos, payer tooling): the
    Header and identifying data returned, each DebetPrestatie with its granted amount and, for
    ``codes``, a Feedback per Retourcode."""
    src = parse_xml(declaration)
    root = Element(_q(NS_802, "Bericht"))
    sh = src.find("gds801:Header", NS)
    assert sh is not None
    h = _add(root, "Header", ns=NS_802)
    for name, text in (
        ("Berichtcode", CODE_ANSWER),
        ("Berichtversie", "1"),
        ("Berichtsubversie", "0"),
        ("Berichtsoort", sh.findtext("gds801:Berichtsoort", "P", NS)),
        ("Verzender", sh.findtext("gds801:Ontvanger", "", NS)),
        ("VerzenderRol", sh.findtext("gds801:OntvangerRol", "", NS)),
        ("Ontvanger", sh.findtext("gds801:Verzender", "", NS)),
        ("OntvangerRol", sh.findtext("gds801:VerzenderRol", "", NS)),
        ("Verzenddatum", decided_on),
        ("Referentienummer", sh.findtext("gds801:Referentienummer", "", NS)),
    ):
        _add(h, name, text, NS_802)
    for sv in src.findall("gds801:Verzekerde", NS):
        v = _add(root, "Verzekerde", ns=NS_802)
        for name in ("BSN", "UzoviNummer", "Verzekerdennummer"):
            found = sv.findtext(f"gds801:{name}", None, NS)
            if found is not None:
                _add(v, name, found, NS_802)
        for sd in sv.findall("gds801:Prestatie/gds801:DebetPrestatie", NS):
            d = _add(_add(v, "Prestatie", ns=NS_802), "DebetPrestatie", ns=NS_802)
            _add(d, "Referentienummer", sd.findtext("gds801:Referentienummer", "", NS), NS_802)
            declared = sd.findtext("gds801:DeclaratieBedragInclBtw", "0.00", NS)
            grant = (
                "0.00" if codes else (declared if granted_cents is None else euros(granted_cents))
            )
            _add(d, "BerekendBedragVerzekeraarInclBtw", declared, NS_802)
            _add(d, "ToegekendBedragInclBtwFinancieel", grant, NS_802)
            _add(d, "ToegekendBedragInclBtwNietFinancieel", "0.00", NS_802)
            for c in codes:
                _add(_add(d, "Feedback", ns=NS_802), "Retourcode", c, NS_802)
    return xml_bytes(root)
