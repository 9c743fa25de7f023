"""The care office's declaration as the Vektis EI message it is: AW319 (EI code 187), answered
by AW320 (EI code 188), fixed-width through VECOZO -- not iWlz XML.

What this rests on (docs/adapters/payers.md, "Care office"): the public iWlz 2.2 schemas
(iStandaarden/XSD-iWlz, XSD/) hold AW33..AW318 and no AW319/AW320; the iWlz netwerkmodel text of
iStandaarden (Afsprakenstelsel iWlz) says "De berichten AW319 en AW320 zijn niet in scope van het
iWlz-netwerkmodel"; the record layouts of AW319 1.3 and AW320 1.3, field by field with their
Vektis data element codes, are those of the public repository olmeca/vektor (doctypes.nim,
commit b3901a251409cfe33969b87ec10d864d5dcb6f5f). No public AW319 example file was found; the
positions are checked here one by one against that layout.
"""

from __future__ import annotations

from datetime import date

import pytest

from adapters.payer.formats import wlz
from adapters.payer.formats.common import AnswerItem, FormatError
from schemas.errors import MessageError
from schemas.vocab import ClaimOutcome, ClaimRejectionReason
from tests.unit.adapters import payer_samples as S

GOLDEN = (S.GOLDEN / "aw319-treatment.asc").read_bytes()

# (record, data element code's field, 1-based start, length) as published for AW319/AW320 1.3
PUBLISHED = [
    ("01", "berichtcode", 3, 3),  # COD002
    ("01", "uzovi", 27, 4),  # COD061
    ("01", "instelling", 55, 8),  # COD031
    ("01", "factuurnummer", 81, 12),  # NUM029
    ("02", "bsn", 15, 9),  # NUM313
    ("02", "clientnummer_indicatieorgaan", 186, 20),  # NUM258
    ("04", "besluitnummer", 92, 9),  # NUM260 indicatiebesluitnummer
    ("04", "prestatiecode", 125, 5),  # COD388
    ("04", "declaratiebedrag", 186, 8),  # BED161
    ("04", "referentie", 195, 20),  # NUM362
    ("04", "referentie_vorige", 215, 20),  # NUM363
    ("99", "totaal", 34, 11),  # BED025
]
PUBLISHED_ANSWER = [
    ("01", "dagtekening_retour", 335, 8),  # DAT277
    ("01", "retourcode1", 343, 4),  # COD954
    ("02", "retourcode1", 311, 4),
    ("04", "toegekend", 320, 8),  # BED166
    ("04", "toegekend_dc", 328, 1),  # COD673
    ("04", "retourcode3", 337, 4),  # COD956
    ("99", "totaal_toegekend", 46, 11),  # BED167
]


def _field(layouts: dict[str, tuple[wlz.ei.Field, ...]], kind: str, name: str) -> wlz.ei.Field:
    return next(f for f in layouts[kind] if f.name == name)


@pytest.mark.parametrize(("kind", "name", "start", "length"), PUBLISHED)
def test_aw319_fields_sit_where_the_layout_has_them(
    kind: str, name: str, start: int, length: int
) -> None:
    f = _field(wlz.DECLARATION, kind, name)
    assert (f.start, f.length) == (start, length)
    for layouts, size in ((wlz.DECLARATION, wlz.RECORD), (wlz.ANSWER, wlz.ANSWER_RECORD)):
        last = layouts[kind][-1]
        assert last.start + last.length - 1 == size, kind


@pytest.mark.parametrize(("kind", "name", "start", "length"), PUBLISHED_ANSWER)
def test_aw320_answer_fields_sit_where_the_layout_has_them(
    kind: str, name: str, start: int, length: int
) -> None:
    f = _field(wlz.ANSWER, kind, name)
    assert (f.start, f.length) == (start, length)


def test_the_aw319_ketenbus_writes() -> None:
    lines = GOLDEN.decode("ascii").split("\r\n")
    assert lines[-1] == "" and all(len(ln) == 310 for ln in lines[:-1])
    kinds = [ln[:2] for ln in lines[:-1]]
    assert kinds[:3] == ["01", "02", "04"] and kinds[-1] == "99" and set(kinds[3:-1]) == {"98"}
    assert lines[0][:10] == "011870103P", "01, AW319 (187), version 1.3, production"
    head, person, prestatie, tail = (wlz.fields(lines[i]) for i in (0, 1, 2, -2))
    assert (head["uzovi"], head["instelling"]) == ("5507", S.AGB)
    assert (head["periode_begin"], head["periode_eind"]) == ("20240301", "20240331")
    assert (person["bsn"], person["uzovi"]) == ("999990019", "5507")
    assert (prestatie["begindatum"], prestatie["einddatum"]) == ("20240301", "20240331")
    assert prestatie["prestatiecode"] == "LLA03", "an agreement of the rules file, no national code"
    assert (prestatie["aantal"], prestatie["tarief"], prestatie["declaratiebedrag"]) == (
        "0004",
        "00012550",
        "00050200",
    )
    assert (prestatie["declaratie_dc"], prestatie["referentie"]) == ("D", "T-2024-0007")
    assert int(tail["totaal"]) == 50_200 and int(tail["aantal_detail"]) == len(lines) - 3
    assert any("treatment@1" in ln for ln in lines if ln.startswith("98")), "its explanation"


def test_a_claim_the_aw319_cannot_carry_is_refused() -> None:
    for update, match in (
        ({"provider_agb": None}, "AGB"),
        ({"quantity": 10_000, "amount_cents": 10_000 * 12_550}, "9999"),
        ({"amount_cents": 100_000_000}, "999,999.99"),
    ):
        with pytest.raises(FormatError, match=match):
            wlz.write_declaration(S.TREATMENT_WLZ.model_copy(update=update))
    other = S.TREATMENT_WLZ.payer.model_copy(update={"identifier": "ZK-UTRECHT"})
    with pytest.raises(FormatError, match="UZOVI"):
        wlz.write_declaration(S.TREATMENT_WLZ.model_copy(update={"payer": other}))


def _one(raw: bytes) -> AnswerItem:
    [item] = wlz.read_answer(raw)
    assert isinstance(item, AnswerItem), item
    return item


def test_an_aw320_round_trips_grants_and_rejections() -> None:
    granted = wlz.write_answer(S.TREATMENT_WLZ, "2024-04-20", approved_cents=40_000)
    lines = granted.decode("ascii").split("\r\n")[:-1]
    assert all(len(ln) == 370 for ln in lines) and lines[0][2:5] == "188"
    assert [ln[:310] for ln in lines[1:-1]] == GOLDEN.decode("ascii").split("\r\n")[1:-2], (
        "an AW320 returns the AW319's records, extended (its 99 record has its own layout)"
    )
    item = _one(granted)
    assert (item.reference, item.bsn, item.outcome) == (
        "T-2024-0007",
        "999990019",
        ClaimOutcome.PAID,
    )
    assert (item.approved_cents, item.paid_cents, item.paid_on) == (
        40_000,
        40_000,
        date(2024, 4, 20),
    )
    rejected = _one(wlz.write_answer(S.TREATMENT_WLZ, "2024-04-20", codes=("R003",)))
    assert (rejected.outcome, rejected.rejection_reason) == (
        ClaimOutcome.REJECTED,
        ClaimRejectionReason.NOT_COVERED,
    )
    assert rejected.approved_cents is None and rejected.rejection_note == "retourcodes R003"


def _swap(raw: bytes, kind: str, start: int, text: str) -> bytes:
    lines = raw.decode("ascii").split("\r\n")
    i = next(n for n, ln in enumerate(lines) if ln.startswith(kind))
    ln = lines[i]
    lines[i] = ln[: start - 1] + text + ln[start - 1 + len(text) :]
    return "\r\n".join(lines).encode("ascii")


def test_retourcodes_on_the_client_or_the_file_reject_its_prestaties() -> None:
    ok = wlz.write_answer(S.TREATMENT_WLZ, "2024-04-20")
    client = _one(_swap(ok, "02", 311, "R002"))
    assert client.rejection_reason is ClaimRejectionReason.WRONG_PAYER
    whole = _one(_swap(ok, "01", 343, "R001"))
    assert whole.rejection_reason is ClaimRejectionReason.NO_PAYMENT_TITLE
    unknown = _one(_swap(ok, "04", 329, "X123"))
    assert unknown.rejection_reason is ClaimRejectionReason.OTHER, "an unknown code is no grant"


def _reason(raw: bytes) -> str:
    with pytest.raises(MessageError) as err:
        wlz.read_answer(raw)
    return err.value.reason


def test_hostile_and_wrong_aw320_files_are_refused_with_their_reason() -> None:
    ok = wlz.write_answer(S.TREATMENT_WLZ, "2024-04-20")
    assert _reason(GOLDEN) == "record-length", "an AW319 is no answer"
    assert _reason(_swap(ok, "01", 3, "187")) == "wrong-message"
    assert _reason(_swap(ok, "99", 15, "000002")) == "count"
    assert _reason(_swap(ok, "01", 335, "20241340")) == "date"
    assert _reason("01é".encode()) == "encoding"
    assert _reason(b"") == "structure"
    assert _reason(b"x" * 5_000_001) == "too-large"
    assert _reason(b"01\r\n" * 20_001) == "too-large"
    assert _reason(ok.replace(b"\r\n99", b"\r\n98", 1)) == "structure"


def test_a_bad_prestatierecord_is_refused_alone() -> None:
    ok = wlz.write_answer(S.TREATMENT_WLZ, "2024-04-20")
    for text, start, why in (
        ("-0040000", 320, "negative-amount"),
        ("C", 328, "negative-amount"),
        ("12AB", 15, "bsn"),
    ):
        [err] = wlz.read_answer(_swap(ok, "04", start, text))
        assert isinstance(err, MessageError) and err.reason.startswith(why), (text, err)
    lines = ok.decode("ascii").split("\r\n")
    lines[2] = lines[2][:300]
    [err] = wlz.read_answer("\r\n".join(lines).encode("ascii"))
    assert isinstance(err, MessageError) and err.reason == "record-length"
