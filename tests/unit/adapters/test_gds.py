"""GDS801 / GDS802, the XML declaration and answer of the Zorgprestatiemodel (since 2022; notes
§2.1), for insurers (Zvw GGZ) and DJI (forensic care, UZOVI 9992).

No GDS801 XSD was reachable; the structure and the rules checked here are VECOZO's own public
validation stylesheet for GDS801 (``gds801_573val_Vecozo_stap1``, "u18, augustus 2025", with its
``rcNNNN.xslt`` templates): each rule below is quoted by its VC number from that file and
re-implemented here independently of the writer, so a writer that breaks one fails.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from xml.etree.ElementTree import Element, fromstring

import pytest

from adapters.financing.rules import Product
from adapters.payer.formats import FORMATS, gds
from adapters.payer.formats.common import AnswerItem, FormatError
from schemas.errors import MessageError
from schemas.flows.claim import Claim, Payer
from schemas.vocab import ClaimOutcome, ClaimRejectionReason, ClaimService, PartyRole
from tests.unit.adapters import payer_samples as S

# an illustrative ZPM prestatie agreed in the rules file (the code is an example, not ours to give)
ZPM_PRODUCT = Product(
    format="gds", payer="any", service=ClaimService.TREATMENT, code="CO0042", codelist="071"
)
TREATMENT = S.COORDINATION_INSURER.model_copy(
    update={
        "claim_id": "T-2024-0100",
        "service": ClaimService.TREATMENT,
        "quantity": 1,
        "unit_price_cents": 15_675,
        "amount_cents": 15_675,
        "period_start": date(2024, 1, 9),
        "period_end": date(2024, 1, 9),
        "created": date(2024, 2, 1),
    }
)
TREATMENT_DJI = TREATMENT.model_copy(
    update={
        "payer": Payer(party_id="dji", role=PartyRole.DJI, identifier="00000001003214345000"),
        "allocation": "4711",  # the placement decision (FZ821) the claim is for
    }
)
N = {"g": gds.NS_801}


def _t(el: Element, path: str) -> str | None:
    found = el.find(path, N)
    return None if found is None else (found.text or "")


def vecozo_violations(raw: bytes) -> list[str]:
    """The rules of VECOZO's GDS801 stylesheet that a written declaration breaks."""
    b = fromstring(raw)
    out = []
    ontvanger, rol = _t(b, "g:Header/g:Ontvanger"), _t(b, "g:Header/g:OntvangerRol")
    sent = date.fromisoformat(_t(b, "g:Header/g:Verzenddatum") or "")
    if _t(b, "g:Header/g:Berichtcode") != "573":
        out.append("Berichtcode 573")
    if _t(b, "g:Header/g:VerzenderRol") not in ("1", "2"):
        out.append("VC002")
    if rol not in ("2", "3", "4", "5"):
        out.append("VC004")
    if date.fromisoformat(_t(b, "g:DeclaratieContext/g:Factuurdatum") or "") > sent:
        out.append("VC008")
    begin = date.fromisoformat(_t(b, "g:DeclaratieContext/g:BegindatumDeclaratieperiode") or "")
    end = date.fromisoformat(_t(b, "g:DeclaratieContext/g:EinddatumDeclaratieperiode") or "")
    if end > sent:
        out.append("VC014")
    if begin > end:
        out.append("VC015")
    total = Decimal(_t(b, "g:Overzicht/g:TotaalDeclaratiebedragInclBtw/g:Bedrag") or "")
    debets = b.findall("g:Verzekerde/g:Prestatie/g:DebetPrestatie", N)
    if total != sum(Decimal(_t(d, "g:DeclaratieBedragInclBtw") or "") for d in debets):
        out.append("VC016")
    for v in b.findall("g:Verzekerde", N):
        bsn, number = _t(v, "g:BSN"), _t(v, "g:Verzekerdennummer")
        if ontvanger == "9992" and bsn is not None:
            out.append("VC017")
        if number is None and ontvanger != "9992" and bsn is None:
            out.append("VC018")
        if rol != "2" and _t(v, "g:UzoviNummer") != ontvanger:
            out.append("VC019")
        if bsn is None and number is None:
            out.append("VC020")
        if ontvanger == "9992" and _t(v, "g:Geboortedatum") is not None:
            out.append("VC022")
        if ontvanger != "9992" and _t(v, "g:Geboortedatum") is None:
            out.append("VC023")
        if bsn is not None and number is not None:
            out.append("VC060")
    for d in debets:
        amounts = [
            Decimal(_t(d, f"g:{n}") or "")
            for n in ("TariefInclBtw", "BerekendBedragInclBtw", "DeclaratieBedragInclBtw")
        ]
        if any(a == 0 for a in amounts) and not all(a == 0 for a in amounts):
            out.append("VC030")
        start = date.fromisoformat(_t(d, "g:Begindatum") or "")
        if start > sent:
            out.append("VC032")
        if rol in ("3", "4", "5") and _t(d, "g:DoorsturenToegestaan") != gds.YES:
            out.append("VC038")
        codelist = _t(d, "g:PrestatieCodelijstCode")
        if codelist == "071" and d.find("g:AanvullendePrestatiegegevens/g:Zorgtraject", N) is None:
            out.append("VC040")
        if (
            ontvanger == "9992"
            and d.find("g:AanvullendePrestatiegegevens/g:Plaatsingsbesluit", N) is None
        ):
            out.append("VC041")
        traject_start = _t(
            d, "g:AanvullendePrestatiegegevens/g:Zorgtraject/g:ZorgtrajectStartdatum"
        )
        if traject_start and date.fromisoformat(traject_start) > start:
            out.append("VC049")
        if codelist != "071":
            out.append("VC069")
        if codelist == "071" and _t(d, "g:Aantal") != "1":
            out.append("VC093")
        if codelist == "071" and _t(d, "g:Einddatum") is not None:
            out.append("VC094")
        if rol != "2" and codelist == "999":
            out.append("VC116")
    return out


@pytest.mark.parametrize("claim", [TREATMENT, TREATMENT_DJI], ids=["insurer", "dji"])
def test_a_gds801_keeps_vecozos_rules(claim: Claim) -> None:
    raw = gds.write_declaration(claim, ZPM_PRODUCT)
    assert vecozo_violations(raw) == []
    b = fromstring(raw)
    if claim.payer.role is PartyRole.DJI:
        assert _t(b, "g:Header/g:Ontvanger") == "9992", "DJI declares under UZOVI 9992"
        assert claim.person.bsn.encode() not in raw, "no BSN to DJI (VC017)"
        assert b"Elsen" not in raw
    else:
        assert _t(b, "g:Verzekerde/g:BSN") == claim.person.bsn
    assert _t(b, "g:Verzekerde/g:Prestatie/g:DebetPrestatie/g:DeclaratieBedragInclBtw") == "156.75"


def test_the_checker_catches_what_the_writer_must_not_do() -> None:
    """The rules above can fail: a BSN to DJI, a second unit, a codelist of our own."""
    raw = gds.write_declaration(TREATMENT_DJI, ZPM_PRODUCT).decode()
    assert "VC017" in vecozo_violations(
        raw.replace(
            "<gds801:Verzekerdennummer>4711</gds801:Verzekerdennummer>",
            "<gds801:BSN>999990019</gds801:BSN>",
        ).encode()
    )
    assert "VC093" in vecozo_violations(
        raw.replace("<gds801:Aantal>1<", "<gds801:Aantal>2<").encode()
    )
    assert {"VC069", "VC116"} <= set(vecozo_violations(raw.replace(">071<", ">999<").encode()))


def test_what_a_gds801_cannot_carry_is_refused() -> None:
    own = Product(
        format="gds", payer="any", service=ClaimService.TREATMENT, code="LLA03", codelist="999"
    )
    with pytest.raises(FormatError, match="VC069"):
        gds.write_declaration(TREATMENT, own)
    with pytest.raises(FormatError, match="VC093"):
        gds.write_declaration(
            TREATMENT.model_copy(update={"quantity": 2, "amount_cents": 31_350}), ZPM_PRODUCT
        )
    with pytest.raises(FormatError, match="VC041"):
        gds.write_declaration(TREATMENT_DJI.model_copy(update={"allocation": None}), ZPM_PRODUCT)
    with pytest.raises(FormatError, match="AGB"):
        gds.write_declaration(TREATMENT.model_copy(update={"provider_agb": None}), ZPM_PRODUCT)


def test_the_levensloopaanpak_services_stay_in_the_ei_form() -> None:
    """The shipped rules file agrees no ZPM prestatie (the coordination day is none): the
    registry writes the Vektis EI file for insurers and DJI, a GDS801 only for a ZPM one."""
    for role in (PartyRole.HEALTH_INSURER, PartyRole.DJI):
        fmt = FORMATS[role]
        doc = fmt.write(
            S.COORDINATION_INSURER if role is PartyRole.HEALTH_INSURER else S.COORDINATION_DJI
        )
        assert doc.startswith(b"01") and fmt.suffix_for(doc) == ".asc"
    with pytest.raises(FormatError, match="no gds product"):
        gds.zpm_product(TREATMENT)


def _items(raw: bytes) -> list[AnswerItem]:
    items = FORMATS[PartyRole.HEALTH_INSURER].read(raw)  # the registry dispatches XML to GDS802
    assert all(isinstance(i, AnswerItem) for i in items), items
    return [i for i in items if isinstance(i, AnswerItem)]


def test_a_gds802_round_trips() -> None:
    decl = gds.write_declaration(TREATMENT, ZPM_PRODUCT)
    [granted] = _items(gds.write_answer(decl, "2024-02-20", granted_cents=15_000))
    assert (granted.reference, granted.bsn, granted.outcome) == (
        "T-2024-0100",
        "999990019",
        ClaimOutcome.PAID,
    )
    assert (granted.approved_cents, granted.paid_on) == (15_000, date(2024, 2, 20))
    [rejected] = _items(gds.write_answer(decl, "2024-02-20", codes=("9284",)))
    assert (rejected.outcome, rejected.rejection_reason) == (
        ClaimOutcome.REJECTED,
        ClaimRejectionReason.INVALID,
    )
    [other] = _items(gds.write_answer(decl, "2024-02-20", codes=("9999",)))
    assert other.rejection_reason is ClaimRejectionReason.OTHER, "an unknown Retourcode is no grant"
    dji = gds.write_answer(gds.write_declaration(TREATMENT_DJI, ZPM_PRODUCT), "2024-02-20")
    [item] = _items(dji)
    assert item.bsn == "" and item.outcome is ClaimOutcome.PAID, "DJI answers carry no BSN"


def test_header_feedback_rejects_every_prestatie() -> None:
    ok = gds.write_answer(gds.write_declaration(TREATMENT, ZPM_PRODUCT), "2024-02-20").decode()
    bad = ok.replace(
        "</gds802:Referentienummer>\n  </gds802:Header>",
        "</gds802:Referentienummer>\n    <gds802:Feedback>"
        "<gds802:Retourcode>8986</gds802:Retourcode></gds802:Feedback>\n  </gds802:Header>",
    )
    assert bad != ok
    [item] = _items(bad.encode())
    assert item.outcome is ClaimOutcome.REJECTED and item.rejection_note == "Retourcodes 8986"


def _reason(raw: bytes) -> str:
    with pytest.raises(MessageError) as err:
        gds.read_answer(raw)
    return err.value.reason


def test_hostile_and_wrong_gds802_files_are_refused() -> None:
    decl = gds.write_declaration(TREATMENT, ZPM_PRODUCT)
    ok = gds.write_answer(decl, "2024-02-20").decode()
    assert _reason(decl) == "wrong-message", "a GDS801 is no answer"
    assert _reason(ok.replace(">574<", ">573<").encode()) == "wrong-message"
    assert (
        _reason(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>') == "xml-forbidden"
    )
    assert _reason(b"<gds802:Bericht") == "not-xml"
    assert _reason(b"x" * 5_000_001) == "too-large"
    empty = ok.split("<gds802:Verzekerde>")[0] + "</gds802:Bericht>\n"
    assert _reason(empty.encode()) == "empty"
    for amount, why in (
        ("-1.00", "negative-amount"),
        ("1e5", "amount"),
        ("NaN", "amount"),
        ("1.005", "amount"),
    ):
        [err] = gds.read_answer(
            ok.replace(
                "<gds802:ToegekendBedragInclBtwFinancieel>156.75<",
                f"<gds802:ToegekendBedragInclBtwFinancieel>{amount}<",
            ).encode()
        )
        assert isinstance(err, MessageError) and err.reason == why, amount


def test_the_rules_file_names_a_zpm_prestatie_only_as_a_gds_product() -> None:
    """docs/financing.md: format ``gds`` with its codelist; a codelist on another format, a gds
    product without one, or an iWmo/iWlz code over 5 characters is refused by the loader."""
    from pydantic import ValidationError

    for bad in (
        {"format": "gds", "code": "CO0042"},
        {"format": "vektis", "code": "LLA02", "codelist": "071"},
        {"format": "iwlz", "code": "LLA003"},
    ):
        with pytest.raises(ValidationError):
            Product.model_validate({"payer": "any", "service": "treatment", **bad})
