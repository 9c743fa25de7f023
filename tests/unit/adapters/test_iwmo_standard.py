"""The iWmo files ketenbus writes, checked against the national schemas and public examples.

Vendored in tests/standards/iwmo/ (see its SOURCE.md): the iWmo 3.2 WMO301/WMO323 XSDs and
basisschema, the iJw 3.2 JW325 XSD and basisschema (the public repository has no WMO325.xsd;
JW325 is the same declaration answer of the sister standard iJw 3.2), and the example messages
of i-Sociaal-Lab/jaapjunior (packages/api/wmo/bronnen/berichten/WMO301.xml, WMO323.xml;
packages/api/jw/bronnen/berichten/JW325.xml), read here unchanged.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from adapters.payer.formats import wmo
from adapters.payer.formats.common import AnswerItem, FormatError, reference
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome, ClaimRejectionReason, ClaimService
from tests.unit.adapters import payer_samples as S

STANDARDS = Path(__file__).parents[2] / "standards" / "iwmo"


def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


WMO323 = _schema(STANDARDS / "wmo" / "WMO323.xsd")
JW325 = _schema(STANDARDS / "jw" / "JW325.xsd")


def assert_valid(schema: etree.XMLSchema, raw: bytes) -> None:
    doc = etree.fromstring(raw)
    assert schema.validate(doc), "\n".join(str(e) for e in schema.error_log)


def as_jw325(raw: bytes) -> bytes:
    """A WMO325 in the iJw namespaces (and BerichtCode 491), to validate against JW325.xsd."""
    text = raw.decode()
    for old, new in (
        ("iwmo/3_2/basisschema", "ijw/3_2/basisschema"),
        ("iwmo/3_2/wmo325", "ijw/3_2/jw325"),
        ("wmo325:", "jw325:"),
        ("xmlns:wmo325", "xmlns:jw325"),
        ("iwmo:", "ijw:"),
        ("xmlns:iwmo", "xmlns:ijw"),
        ("<jw325:BerichtCode>485<", "<jw325:BerichtCode>491<"),
    ):
        text = text.replace(old, new)
    # the structure is what is checked: iJw has its own product categories (31-55)
    text = re.sub(r"<jw325:ProductCategorie>[0-9]+<", "<jw325:ProductCategorie>45<", text)
    return text.encode()


def as_wmo325(raw: bytes) -> bytes:
    """The reverse: the public JW325 example in the iWmo namespaces, as a WMO325."""
    text = raw.decode()
    for old, new in (
        ("ijw/3_2/basisschema", "iwmo/3_2/basisschema"),
        ("ijw/3_2/jw325", "iwmo/3_2/wmo325"),
        ("jw325:", "wmo325:"),
        ("xmlns:jw325", "xmlns:wmo325"),
        ("ijw:", "iwmo:"),
        ("xmlns:ijw", "xmlns:iwmo"),
        ("<wmo325:BerichtCode>491<", "<wmo325:BerichtCode>485<"),
    ):
        text = text.replace(old, new)
    return text.encode()


def test_the_vendored_examples_validate_as_published() -> None:
    """The examples are as the source has them: they validate against their own XSDs."""
    assert_valid(WMO323, (STANDARDS / "example-WMO323.xml").read_bytes())
    assert_valid(JW325, (STANDARDS / "example-JW325.xml").read_bytes())


@pytest.mark.parametrize("name", ["wmo323-registration.xml"])
def test_every_wmo323_ketenbus_writes_validates_against_the_national_xsd(name: str) -> None:
    assert_valid(WMO323, (Path(__file__).with_name("golden") / name).read_bytes())
    assert_valid(WMO323, wmo.write_declaration(S.REGISTRATION))
    for service in ClaimService:
        claim = replace_service(service)
        assert_valid(WMO323, wmo.write_declaration(claim))


def replace_service(service: ClaimService) -> Claim:
    c = S.REGISTRATION
    if service is ClaimService.COORDINATION_DAY:
        return c.model_copy(
            update={
                "service": service,
                "quantity": 51,
                "unit_price_cents": 2_000,
                "amount_cents": 102_000,
                "episode_id": "EP-1",
            }
        )
    return c.model_copy(update={"service": service})


def test_the_product_category_is_in_the_iwmo_code_list() -> None:
    """iWmo LDT_ProductCategorie is 01-18; 99 is not in it. The product codes are agreements
    in the rules file: category 10 "Overige maatwerk arrangementen" for the registration."""
    doc = etree.fromstring(wmo.write_declaration(S.REGISTRATION))
    ns = {"w": wmo.NS_323}
    assert doc.findtext(".//w:ProductCategorie", namespaces=ns) == "10"
    assert doc.findtext(".//w:ProductCode", namespaces=ns) == "LLA01"
    assert doc.findtext(".//w:ToewijzingNummer", namespaces=ns) == "20072"


def test_a_wmo323_without_an_allocation_is_refused() -> None:
    """A WMO323 prestatie cites the WMO301 ToewijzingNummer (1..1 in the XSD)."""
    with pytest.raises(FormatError, match="WMO301"):
        wmo.write_declaration(S.REGISTRATION.model_copy(update={"allocation": None}))


def test_the_public_wmo323_example_is_read_unchanged() -> None:
    """i-Sociaal-Lab/jaapjunior packages/api/wmo/bronnen/berichten/WMO323.xml."""
    d = wmo.read_declaration((STANDARDS / "example-WMO323.xml").read_bytes())
    assert (d.number, d.sender, d.receiver, d.total_cents) == ("DN001", "65656055", "0384", 58_000)
    assert [ln.reference for ln in d.lines] == ["RN001", "RN002", "RN003", "RN004"]
    first = d.lines[0]
    assert (first.bsn, first.allocation, first.category, first.code, first.cents) == (
        "999900006",
        "20072",
        "01",
        "01A03",
        5_000,
    )


def test_the_public_wmo301_example_gives_the_allocation_numbers() -> None:
    """i-Sociaal-Lab/jaapjunior packages/api/wmo/bronnen/berichten/WMO301.xml."""
    allocations = wmo.read_allocation((STANDARDS / "example-WMO301.xml").read_bytes())
    first = allocations[0]
    assert (first.municipality, first.bsn, first.number, first.category, first.code) == (
        "0384",
        "999900006",
        "101",
        "01",
        "01A01",
    )
    assert (first.start, first.end) == (date(2023, 1, 1), date(2023, 12, 31))


def test_the_public_jw325_example_lists_only_rejected_lines() -> None:
    """i-Sociaal-Lab/jaapjunior packages/api/jw/bronnen/berichten/JW325.xml, in the iWmo
    namespaces: three rejected prestaties (0611, 9339/9340/9341, 9307), the fourth (RN004)
    not listed and so approved; TotaalToegekendBedrag 34000."""
    items = wmo.read_answer(as_wmo325((STANDARDS / "example-JW325.xml").read_bytes()))
    ok = [i for i in items if isinstance(i, AnswerItem)]
    assert len(ok) == len(items) == 4
    rejected = [i for i in ok if not i.declaration]
    assert [(i.reference, i.rejection_reason) for i in rejected] == [
        ("RN001", ClaimRejectionReason.INVALID),
        ("RN002", ClaimRejectionReason.NOT_COVERED),
        ("RN003", ClaimRejectionReason.NOT_COVERED),
    ]
    [whole] = [i for i in ok if i.declaration]
    assert (whole.reference, whole.approved_cents) == ("DN001", -34_000)  # the example's C


def test_every_wmo325_ketenbus_writes_validates_against_jw325() -> None:
    for codes in (("0200",), ("0611",), ("9338", "9339")):
        assert_valid(JW325, as_jw325(wmo.write_answer(S.REGISTRATION, "2020-12-01", codes)))


def test_a_correction_round_trips_as_credit_and_debit() -> None:
    """iWmo 3.1+: a correction credits the original prestatie (VorigReferentieNummer) and
    declares the corrected one as a new debit; the file validates against WMO323.xsd and reads
    back line for line."""
    original = S.REGISTRATION
    corrected = original.model_copy(
        update={
            "claim_id": "REG-MN-2020-0042-B",
            "unit_price_cents": 150_000,
            "amount_cents": 150_000,
        }
    )
    raw = wmo.write_correction(original, corrected, "COR-MN-2020-0042", date(2020, 12, 20))
    assert_valid(WMO323, raw)
    d = wmo.read_declaration(raw)
    credit, debit = d.lines
    assert (credit.cents, credit.previous) == (-200_000, reference(original.claim_id))
    assert (debit.cents, debit.previous, debit.reference) == (
        150_000,
        None,
        reference(corrected.claim_id),
    )
    assert d.total_cents == -50_000
    assert d.number == wmo.declaration_number("COR-MN-2020-0042")
    only_credit = wmo.read_declaration(
        wmo.write_correction(original, None, "COR2", date(2020, 12, 20))
    )
    assert [ln.cents for ln in only_credit.lines] == [-200_000]
    assert only_credit.total_cents == -200_000


def test_a_partly_rejected_answer_names_exactly_the_rejected_lines() -> None:
    raw = wmo.write_answer(S.REGISTRATION, "2020-12-01", codes=("9307",))
    items = [i for i in wmo.read_answer(raw) if isinstance(i, AnswerItem)]
    assert [(i.reference, i.outcome) for i in items if not i.declaration] == [
        (reference(S.REGISTRATION.claim_id), ClaimOutcome.REJECTED)
    ]
