"""Payer formats: golden files for every declaration, the structure each follows, reading every
kind of answer, and refusing malformed answers per file or per item -- nothing else lost."""

from __future__ import annotations

from datetime import date
from xml.etree.ElementTree import fromstring

import pytest

from adapters.payer.formats import FORMATS, vektis, vws, wlz, wmo
from adapters.payer.formats.common import AnswerItem, FormatError, reference
from schemas.errors import MessageError
from schemas.vocab import ClaimOutcome, ClaimRejectionReason, PartyRole
from tests.unit.adapters import payer_samples as S


@pytest.mark.parametrize("name", sorted(S.GOLDEN_FILES))
def test_declarations_match_their_golden_files(name: str) -> None:
    write, claim = S.GOLDEN_FILES[name]
    assert write(claim) == (S.GOLDEN / name).read_bytes(), (
        f"{name} changed: review the format, then `python -m tests.unit.adapters.payer_samples`"
    )


def test_every_payer_role_has_a_format() -> None:
    assert set(FORMATS) == {
        PartyRole.MUNICIPALITY,
        PartyRole.HEALTH_INSURER,
        PartyRole.CARE_OFFICE,
        PartyRole.DJI,
        PartyRole.VWS,
    }


# --- structure ----------------------------------------------------------------------------------


def _children(xml: bytes, path: str, ns: dict[str, str]) -> list[str]:
    el = fromstring(xml).find(path, ns)
    assert el is not None, path
    return [c.tag.split("}")[1] for c in el if isinstance(c.tag, str)]


def test_wmo323_follows_the_xsd_sequence() -> None:
    xml = (S.GOLDEN / "wmo323-registration.xml").read_bytes()
    ns = wmo.NS
    assert _children(xml, "wmo323:Header", ns) == [
        "BerichtCode",
        "BerichtVersie",
        "BerichtSubversie",
        "Afzender",
        "Ontvanger",
        "BerichtIdentificatie",
        "XsdVersie",
    ]
    assert _children(xml, "wmo323:Declaratie", ns) == [
        "DeclaratieNummer",
        "DeclaratiePeriode",
        "DeclaratieDagtekening",
        "TotaalIngediendBedrag",
        "Clienten",
    ]
    assert _children(xml, ".//wmo323:Prestatie", ns) == [
        "ProductReferentie",
        "ToewijzingNummer",
        "ProductCategorie",
        "ProductCode",
        "ProductPeriode",
        "GeleverdVolume",
        "Eenheid",
        "ProductTarief",
        "IngediendBedrag",
    ]
    root = fromstring(xml)
    assert root.findtext("wmo323:Header/wmo323:BerichtCode", namespaces=ns) == "484"
    assert root.findtext("wmo323:Header/wmo323:Ontvanger", namespaces=ns) == "0344"
    assert root.findtext(".//wmo323:Bsn", namespaces=ns) == "999990019"
    assert root.findtext(".//iwmo:Bedrag", namespaces=ns) == "200000"  # eurocents
    assert b"Elsen" not in xml and b"Voorbeeld" not in xml, "a WMO323 client is its BSN only"


def test_vektis_layouts_are_contiguous_310_character_records() -> None:
    for kind, layout in vektis.LAYOUTS.items():
        pos = 1
        for f in layout:
            assert f.start == pos, (kind, f.name)
            pos += f.length
        assert pos - 1 == vektis.RECORD, kind


@pytest.mark.parametrize("name", ["vektis-coordination-insurer.asc", "vektis-coordination-dji.asc"])
def test_vektis_files_are_consistent(name: str) -> None:
    raw = (S.GOLDEN / name).read_bytes()
    lines = raw.decode("ascii").split("\r\n")
    assert lines[-1] == "" and all(len(ln) == 310 for ln in lines[:-1])
    kinds = [ln[:2] for ln in lines[:-1]]
    assert kinds[:3] == ["01", "02", "04"] and kinds[-1] == "99"
    assert set(kinds[3:-1]) == {"98"}
    head, tail = vektis.fields(lines[0]), vektis.fields(lines[-2])
    # UZOVI at 27-30: the insurer's, or DJI's 9992 (VECOZO)
    assert lines[0][26:30] == ("3311" if "insurer" in name else "9992")
    assert lines[0][54:62] == S.AGB  # instellingscode at 55-62
    assert head["dagtekening"] in ("20231201", "20240101")
    prestaties = [vektis.fields(ln) for ln in lines if ln.startswith("04")]
    assert int(tail["totaal"]) == sum(int(p["declaratiebedrag"]) for p in prestaties)
    assert int(tail["aantal_detail"]) == len(lines) - 3


def test_claims_a_format_cannot_carry_are_refused() -> None:
    no_agb = S.REGISTRATION.model_copy(update={"provider_agb": None})
    for write in (wmo.write_declaration, wlz.write_declaration, vektis.write_declaration):
        with pytest.raises(FormatError, match="AGB"):
            write(no_agb)
    huge = S.COORDINATION_INSURER.model_copy(
        update={"quantity": 10_000, "unit_price_cents": 1, "amount_cents": 10_000}
    )
    with pytest.raises(FormatError, match="9999"):
        vektis.write_declaration(huge)


def test_long_claim_ids_get_a_stable_short_reference() -> None:
    ref = reference(S.COORDINATION_INSURER.claim_id)
    assert (
        len(ref) == 20 and ref.startswith("K") and ref == reference(S.COORDINATION_INSURER.claim_id)
    )
    assert reference("REG-MN-2020-0042") == "REG-MN-2020-0042"


# --- answers ------------------------------------------------------------------------------------


def _ok(items: list[AnswerItem | MessageError]) -> list[AnswerItem]:
    assert all(isinstance(i, AnswerItem) for i in items), items
    return [i for i in items if isinstance(i, AnswerItem)]


def test_wmo325_answers() -> None:
    """iWmo WMO325 (modelled on its iJw 3.2 sister JW325): only rejected prestaties are listed;
    the declaration item approves the rest at TotaalToegekendBedrag."""
    c = S.REGISTRATION
    [whole] = _ok(wmo.read_answer(wmo.write_answer(c, "2020-12-01")))
    assert (whole.reference, whole.declaration, whole.outcome, whole.approved_cents) == (
        wmo.declaration_number(c.claim_id),
        True,
        ClaimOutcome.PAID,
        200_000,
    )
    assert whole.decided_on == date(2020, 12, 1) == whole.paid_on
    tariff, rest = _ok(wmo.read_answer(wmo.write_answer(c, "2020-12-01", codes=("0611",))))
    assert (tariff.reference, tariff.outcome, tariff.rejection_reason) == (
        "REG-MN-2020-0042",
        ClaimOutcome.REJECTED,
        ClaimRejectionReason.INVALID,
    )
    assert tariff.approved_cents is None and "0611" in (tariff.rejection_note or "")
    assert rest.declaration and rest.approved_cents == 0
    nothing, _ = _ok(wmo.read_answer(wmo.write_answer(c, "2020-12-01", codes=("9338",))))
    assert nothing.rejection_reason is ClaimRejectionReason.NOT_COVERED


def test_vektis_retour_answers() -> None:
    decl = vektis.write_declaration(S.COORDINATION_INSURER)
    [acc] = _ok(vektis.read_answer(vektis.write_answer(decl, date(2024, 1, 10))))
    assert (acc.reference, acc.outcome, acc.approved_cents) == (
        reference(S.COORDINATION_INSURER.claim_id),
        ClaimOutcome.ACCEPTED,
        32_000,
    )
    [paid] = _ok(
        vektis.read_answer(
            vektis.write_answer(
                decl, date(2024, 1, 10), approved_cents=30_000, paid_on=date(2024, 1, 20)
            )
        )
    )
    assert (paid.outcome, paid.approved_cents, paid.paid_cents, paid.paid_on) == (
        ClaimOutcome.PAID,
        30_000,
        30_000,
        date(2024, 1, 20),
    )
    [rej] = _ok(vektis.read_answer(vektis.write_answer(decl, date(2024, 1, 10), codes=("R001",))))
    assert rej.rejection_reason is ClaimRejectionReason.NO_PAYMENT_TITLE


def test_aw320_and_vws_answers() -> None:
    [acc] = _ok(
        wlz.read_answer(wlz.write_answer(S.TREATMENT_WLZ, "2024-04-20", approved_cents=40_000))
    )
    # an AW320 grant is the care office's commitment to pay: paid on the retour's date
    assert (acc.outcome, acc.approved_cents, acc.paid_on) == (
        ClaimOutcome.PAID,
        40_000,
        date(2024, 4, 20),
    )
    [rej] = _ok(wlz.read_answer(wlz.write_answer(S.TREATMENT_WLZ, "2024-04-20", codes=("R002",))))
    assert rej.rejection_reason is ClaimRejectionReason.WRONG_PAYER
    rows = vws.read_answer(
        vws.write_answer(
            [
                {
                    "reference": "T-2020-0099",
                    "bsn": "999990019",
                    "decided_on": "2021-01-05",
                    "outcome": "advanced",
                    "approved_cents": "30000",
                    "paid_cents": "30000",
                    "paid_on": "2021-01-06",
                },
                {
                    "reference": "T-2020-0100",
                    "bsn": "999990019",
                    "decided_on": "2021-01-05",
                    "outcome": "rejected",
                    "rejection_reason": "wrong-payer",
                    "note": "Zvw",
                },
            ]
        )
    )
    adv, rejected = _ok(rows)
    assert (adv.outcome, adv.paid_cents) == (ClaimOutcome.ADVANCED, 30_000)
    assert (rejected.rejection_reason, rejected.rejection_note) == (
        ClaimRejectionReason.WRONG_PAYER,
        "Zvw",
    )


# --- malformed answers --------------------------------------------------------------------------

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<wmo325:Bericht xmlns:wmo325="http://www.istandaarden.nl/iwmo/3_2/wmo325/schema">&lol3;</wmo325:Bericht>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<wmo325:Bericht xmlns:wmo325="http://www.istandaarden.nl/iwmo/3_2/wmo325/schema">&e;</wmo325:Bericht>
"""


@pytest.mark.parametrize(
    ("read", "raw", "reason"),
    [
        (wmo.read_answer, BOMB, "xml-forbidden"),
        (wmo.read_answer, XXE, "xml-forbidden"),
        (wlz.read_answer, XXE, "structure"),  # an AW320 is a flat file, never parsed as XML
        (wmo.read_answer, b"<not-closed>", "not-xml"),
        (wmo.read_answer, "<a>é</a>".encode("latin-1"), "encoding"),
        (wmo.read_answer, (S.GOLDEN / "wmo323-registration.xml").read_bytes(), "wrong-message"),
        (wlz.read_answer, (S.GOLDEN / "aw319-treatment.asc").read_bytes(), "record-length"),
        (vektis.read_answer, "01é".encode(), "encoding"),
        (vektis.read_answer, b"02" + b" " * 308 + b"\r\n", "structure"),
        (vws.read_answer, b"reference;bsn;outcome\r\nX;999990019;paid\r\n", "missing-column"),
        (vws.read_answer, "reference;bsn;decided_on;outcome\r\n".encode("utf-16"), "encoding"),
        (vws.read_answer, b"reference;bsn;decided_on;outcome;colour\r\n", "unknown-column"),
        (wmo.read_answer, b"x" * 5_000_001, "too-large"),
    ],
)
def test_a_malformed_answer_file_is_refused_with_its_reason(read, raw: bytes, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MessageError) as err:
        read(raw)
    assert err.value.reason == reason, err.value


def _replace(raw: bytes, old: str, new: str, count: int = 1) -> bytes:
    text = raw.decode("utf-8")
    assert old in text, old
    return text.replace(old, new, count).encode("utf-8")


def test_bad_items_are_reported_and_the_good_ones_kept_wmo325() -> None:
    one = wmo.write_answer(S.REGISTRATION, "2020-12-01", codes=("0611",))
    text = one.decode()
    start = text.index("<wmo325:Client>")
    end = text.index("</wmo325:Client>") + len("</wmo325:Client>")
    client = text[start:end]
    approved = client.replace("<wmo325:RetourCode>0611</wmo325:RetourCode>", "")
    negative = client.replace(
        "<iwmo:Bedrag>200000</iwmo:Bedrag>", "<iwmo:Bedrag>-500</iwmo:Bedrag>"
    )
    bad_bsn = client.replace("999990019", "123456789")
    no_ref = client.replace("<iwmo:ReferentieNummer>REG-MN-2020-0042</iwmo:ReferentieNummer>", "")
    raw = (text[:start] + client + approved + negative + bad_bsn + no_ref + text[end:]).encode()
    items = wmo.read_answer(raw)
    assert len(items) == 6
    assert isinstance(items[0], AnswerItem) and items[0].outcome is ClaimOutcome.REJECTED
    reasons = [i.reason for i in items[1:5] if isinstance(i, MessageError)]
    assert reasons == ["not-rejected", "negative-amount", "bsn-check", "required"]
    assert "Client[2]" in items[1].issues[0].path  # type: ignore[union-attr]
    assert isinstance(items[5], AnswerItem) and items[5].declaration


def test_bad_items_are_reported_and_the_good_ones_kept_vektis() -> None:
    decl = vektis.write_declaration(S.COORDINATION_INSURER)
    answer = vektis.write_answer(decl, date(2024, 1, 10), paid_on=date(2024, 1, 20)).decode("ascii")
    lines = answer.split("\r\n")
    good = lines[2]
    bad_date = good[:192] + "20241341" + good[200:]
    negative = good[:171] + "-0000500" + good[179:]
    short = good[:200]
    extra = [bad_date, negative, short]
    lines = lines[:3] + extra + lines[3:]
    lines[-2] = lines[-2][:14] + "000004" + lines[-2][20:]  # the sluitrecord counts 4 prestaties
    items = vektis.read_answer("\r\n".join(lines).encode("ascii"))
    assert len(items) == 4
    assert isinstance(items[0], AnswerItem) and items[0].outcome is ClaimOutcome.PAID
    assert [i.reason for i in items[1:] if isinstance(i, MessageError)] == [
        "date",
        "negative-amount",
        "record-length",
    ]


def test_bad_rows_are_reported_and_the_good_ones_kept_vws() -> None:
    raw = (
        b"reference;bsn;decided_on;outcome;approved_cents;paid_cents;paid_on\r\n"
        b"T-1;999990019;2021-01-05;accepted;100;;\r\n"
        b"T-2;999990019;05-01-2021;accepted;100;;\r\n"
        b"T-3;999990019;2021-01-05;paid;-100;-100;2021-01-06\r\n"
        b"T-4;999990019;2021-01-05;lost;;;\r\n"
        b"T-5;999990019;2021-01-05\r\n"
        b"T-6;999990019;2021-01-05;paid;100;100;2021-02-30\r\n"
    )
    items = vws.read_answer(raw)
    assert isinstance(items[0], AnswerItem) and items[0].reference == "T-1"
    errors = [i for i in items[1:] if isinstance(i, MessageError)]
    assert [e.reason for e in errors] == ["date", "negative-amount", "outcome", "fields", "date"]
    assert [e.issues[0].path.split(":")[0] for e in errors] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
    ]
