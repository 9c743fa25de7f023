"""The ZVH CSV batch: one referral per row, the same rules as the JSON document, errors per line
and column; file-level problems refuse the file."""

from __future__ import annotations

import pytest

from adapters.zvh.csvbatch import parse_csv
from adapters.zvh.format import ZvhReferral
from schemas.errors import MessageError
from schemas.vocab import LegalBasis, LegalTitleKind

HEADER = (
    "case_id;region;registered_on;bsn;family_name;given_names;birth_date;municipality;homeless;"
    "signaller_name;signaller_sector;signal;legal_titles;care_avoider;basis;basis_justification;"
    "basis_decided_by"
)
GOOD = (
    "MN-1;midden-nederland;2024-03-04;999990019;Jansen;Piet|Jan;1990-01-02;0344;nee;"
    "Politie;police;Dreiging.;strafrechtelijk/2023-12-10|wvggz-zorgmachtiging/2023-01-01/2023-06-30;"
    "ja;;;"
)


def rows(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def test_a_good_row_becomes_a_referral() -> None:
    [(line, item)] = parse_csv(rows(GOOD))
    assert line == 2 and isinstance(item, ZvhReferral)
    assert item.person.given_names == ["Piet", "Jan"]
    assert item.care_avoider and not item.person.homeless
    kinds = [(t.kind, t.end) for t in item.legal_titles]
    assert kinds[0] == (LegalTitleKind.CRIMINAL, None)
    assert kinds[1][0] is LegalTitleKind.WVGGZ and kinds[1][1] is not None
    ref = item.to_referral("zvh-mn")
    assert ref.referral_id == "MN-1" and ref.person.residence_municipality == "0344"


def test_commas_work_too_and_a_bom_is_tolerated() -> None:
    raw = (
        "\ufeffcase_id,region,registered_on,bsn,family_name,birth_date,signaller_name,"
        "signaller_sector,signal\nMN-2,oost-nederland,2024-03-04,999990019,Jansen,1990-01-02,"
        '"Politie, eenheid Oost",police,"Dreiging, herhaald."\n'
    ).encode()
    [(_, item)] = parse_csv(raw)
    assert isinstance(item, ZvhReferral) and item.signaller.name == "Politie, eenheid Oost"


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (("2024-03-04", "04-03-2024"), "line 2: registered_on", None),
        (("2024-03-04", "2024-02-30"), "line 2: registered_on", None),
        (("999990019", "123456789"), "line 2: bsn", "bsn-check"),
        ((";nee;", ";misschien;"), "line 2: homeless", "value"),
        (("strafrechtelijk/2023-12-10|", "strafrechtelijk|"), "line 2: legal_titles", "value"),
        ((";police;", ";martians;"), "line 2: signaller_sector", None),
        (("ja;;;", "ja;conflict-of-duties;;"), "line 2: basis", "justification"),
    ],
)
def test_a_bad_row_names_its_line_and_column_and_the_others_survive(
    change: tuple[str, str], path: str, reason: str | None
) -> None:
    bad = GOOD.replace(*change, 1)
    assert bad != GOOD
    items = parse_csv(rows(bad, GOOD.replace("MN-1", "MN-9")))
    (_, err), (line2, ok) = items
    assert isinstance(err, MessageError), err
    assert err.issues[0].path == path, err
    if reason:
        assert err.reason == reason
    assert line2 == 3 and isinstance(ok, ZvhReferral) and ok.case_id == "MN-9"


def test_a_row_with_too_few_fields_is_refused_alone() -> None:
    items = parse_csv(rows("MN-3;midden-nederland", GOOD))
    assert isinstance(items[0][1], MessageError) and items[0][1].reason == "fields"
    assert isinstance(items[1][1], ZvhReferral)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"case_id;region\nMN-1;x\n", "missing-column"),
        (rows(GOOD, header=HEADER + ";colour"), "unknown-column"),
        (rows(GOOD).decode().replace("Jansen", "Jänsen").encode("latin-1"), "encoding"),
        (b"", "empty"),
        (b"\n  \n", "empty"),
        ("case_id;region\n".encode("utf-16"), "encoding"),
        (b"\x00\x01binary\x00", "encoding"),
        ((HEADER + "\n").encode(), "empty"),
        (rows(GOOD, header=HEADER.replace("region", "case_id")), "missing-column"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(raw: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_csv(raw)
    assert err.value.reason == reason


def test_conflict_of_duties_travels_as_its_basis() -> None:
    row = GOOD.replace("ja;;;", "ja;conflict-of-duties;Acuut gevaar voor derden.;procesregisseur")
    [(_, item)] = parse_csv(rows(row))
    assert isinstance(item, ZvhReferral) and item.basis.kind is LegalBasis.CONFLICT_OF_DUTIES


def test_errors_never_echo_the_input() -> None:
    """Error details travel in dead-letter headers, which are not encrypted: no values in them."""
    bad = (
        GOOD.replace("999990019", "123456789")
        .replace("1990-01-02", "1990-13-02")
        .replace("strafrechtelijk/2023-12-10|", "strafrechtelijk-2023-12-10|")
        .replace(";nee;", ";Jansen;")
    )
    [(_, err)] = parse_csv(rows(bad))
    assert isinstance(err, MessageError)
    text = str(err) + repr(err.outcome())
    for secret in ("123456789", "1990-13-02", "2023-12-10", "Jansen"):
        assert secret not in text, secret
