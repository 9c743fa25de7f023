"""iWmo 3.2 WMO301 (Toewijzing, BerichtCode 414) read from a provider's inbox: the
precondition of a WMO323 declaration (a Prestatie cites its ToewijzingNummer, 1..1 in
WMO323.xsd). Checked against the vendored WMO301.xsd and the public example of
i-Sociaal-Lab/jaapjunior (packages/api/wmo/bronnen/berichten/WMO301.xml; tests/standards/iwmo/
SOURCE.md), and against hostile files: each is refused whole with a specific reason.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from adapters.financing.desk import Allocation
from adapters.payer.formats import wmo301
from adapters.payer.formats.common import MAX_ANSWER_BYTES
from adapters.payer.formats.preconditions import read_preconditions
from schemas.errors import MessageError

STANDARDS = Path(__file__).parents[2] / "standards" / "iwmo"
WMO301_XSD = etree.XMLSchema(etree.parse(str(STANDARDS / "wmo" / "WMO301.xsd")))
EXAMPLE = (STANDARDS / "example-WMO301.xml").read_bytes()
PROVIDER_AGB = "42420001"
ALLOCATION = wmo301.WmoAllocation(
    bsn="999990019",
    municipality="0344",
    number="20072",
    category="10",
    code="LLA01",
    start=date(2020, 10, 1),
    end=date(2021, 3, 31),
    receiver=PROVIDER_AGB,
)


def written(*allocations: wmo301.WmoAllocation) -> bytes:
    return wmo301.write_allocation(
        list(allocations or [ALLOCATION]), "WMO301A", date(2020, 9, 30), date(1985, 4, 3), "Test"
    )


def reason(raw: bytes) -> str:
    with pytest.raises(MessageError) as err:
        read_preconditions(raw)
    return err.value.reason


def test_the_public_example_validates_and_is_read_unchanged() -> None:
    assert WMO301_XSD.validate(etree.fromstring(EXAMPLE)), WMO301_XSD.error_log
    [p] = read_preconditions(EXAMPLE)
    assert (p.source, p.bsn, p.receiver) == ("WMO301", "999900006", "42420001")
    assert p.allocation == Allocation("wmo301", "101", "0384", date(2023, 1, 1), date(2023, 12, 31))


def test_what_ketenbus_writes_validates_against_the_national_xsd_and_round_trips() -> None:
    open_ended = replace(ALLOCATION, number="20073", end=None, category=None, code=None)
    raw = written(ALLOCATION, open_ended)
    assert WMO301_XSD.validate(etree.fromstring(raw)), WMO301_XSD.error_log
    assert wmo301.read_allocation(raw) == [ALLOCATION, open_ended]
    assert [p.allocation for p in read_preconditions(raw)] == [
        Allocation("wmo301", "20072", "0344", date(2020, 10, 1), date(2021, 3, 31)),
        Allocation("wmo301", "20073", "0344", date(2020, 10, 1), None),
    ]


def swap(raw: bytes, old: str, new: str) -> bytes:
    assert old.encode() in raw
    return raw.replace(old.encode(), new.encode(), 1)


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("<wmo301:BerichtCode>414<", "<wmo301:BerichtCode>416<", "wrong-message"),
        ("<wmo301:Afzender>0344<", "<wmo301:Afzender>03440<", "code"),  # LDT_Gemeente [0-9]{4}
        ("<wmo301:Ontvanger>42420001<", "<wmo301:Ontvanger>4242<", "code"),  # an AGB: 8 digits
        ("<wmo301:ToewijzingNummer>20072<", "<wmo301:ToewijzingNummer>20072A<", "code"),
        ("<wmo301:ToewijzingNummer>20072<", "<wmo301:ToewijzingNummer>1234567890<", "code"),
        ("<iwmo:Categorie>10<", "<iwmo:Categorie>99<", "code"),  # LDT_ProductCategorie 01-18
        ("<wmo301:Bsn>999990019<", "<wmo301:Bsn>999990018<", "bsn-check"),
        ("<wmo301:Ingangsdatum>2020-10-01<", "<wmo301:Ingangsdatum>2021-04-01<", "period"),
        ("<wmo301:Ingangsdatum>2020-10-01<", "<wmo301:Ingangsdatum>01-10-2020<", "date"),
        ("<wmo301:ToewijzingNummer>20072</wmo301:ToewijzingNummer>", "", "required"),
    ],
)
def test_a_wrong_code_or_value_refuses_the_file(old: str, new: str, why: str) -> None:
    assert reason(swap(written(), old, new)) == why


def test_hostile_files_are_refused_before_they_are_read() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<x>&b;</x>"
    )
    assert reason(bomb) == "xml-forbidden"
    external = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    )
    assert reason(external) == "xml-forbidden"
    assert reason(b"<wmo301:Bericht") == "not-xml"
    assert reason(b"\xff\xfe<x/>") == "encoding"
    big = written()[:-20] + b"<!--" + b"x" * MAX_ANSWER_BYTES + b"-->" + written()[-20:]
    assert reason(big) == "too-large"
    # a WMO323 or any other message in the allocation inbox is not an allocation
    assert reason(b'<?xml version="1.0"?><x/>') == "wrong-message"
    many = written(*[replace(ALLOCATION, number=str(n)) for n in range(1, 1002)])
    assert reason(many) == "too-large"
    empty = swap(
        written(),
        written()
        .decode()
        .split("<wmo301:ToegewezenProducten>")[1]
        .split("</wmo301:ToegewezenProducten>")[0],
        "",
    )
    assert reason(empty) == "empty"
