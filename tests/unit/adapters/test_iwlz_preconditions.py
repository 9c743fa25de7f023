"""iWlz 2.2 AW33 (the care office's allocation, BerichtCode 352) and AW35 (the start of care,
354) read from the provider's inbox: a care office pays only after both, and the claims desk
holds a care-office claim until it has them (docs/adapters/payers.md). Checked against the
public iWlz 2.2 XSDs vendored in tests/standards/iwlz/ (iStandaarden/XSD-iWlz, SOURCE.md); no
public example message exists there, so the AW33 below is built here and validated first.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from adapters.financing.desk import Allocation
from adapters.payer.formats import iwlz
from adapters.payer.formats.preconditions import read_preconditions
from schemas.errors import MessageError

STANDARDS = Path(__file__).parents[2] / "standards" / "iwlz"
AW33_XSD = etree.XMLSchema(etree.parse(str(STANDARDS / "AW33.xsd")))
AW35_XSD = etree.XMLSchema(etree.parse(str(STANDARDS / "AW35.xsd")))
PROVIDER = "73730101"

AW33 = f"""<?xml version="1.0" encoding="UTF-8"?>
<aw33:Bericht xmlns:aw33="{iwlz.NS_33}" xmlns:iwlz="{iwlz.NS_IWLZ}">
  <aw33:Header>
    <aw33:BerichtCode>352</aw33:BerichtCode><aw33:BerichtVersie>5</aw33:BerichtVersie>
    <aw33:BerichtSubversie>2</aw33:BerichtSubversie><aw33:Afzender>5507</aw33:Afzender>
    <aw33:Ontvanger>{PROVIDER}</aw33:Ontvanger>
    <aw33:BerichtIdentificatie><iwlz:Identificatie>AW33A</iwlz:Identificatie>
      <iwlz:Dagtekening>2024-01-20</iwlz:Dagtekening></aw33:BerichtIdentificatie>
    <aw33:XsdVersie><iwlz:BasisschemaXsdVersie>1.0.0</iwlz:BasisschemaXsdVersie>
      <iwlz:BerichtXsdVersie>1.0.0</iwlz:BerichtXsdVersie></aw33:XsdVersie>
  </aw33:Header>
  <aw33:Clienten><aw33:Client>
    <aw33:Bsn>999990019</aw33:Bsn><aw33:GeheimeClient>2</aw33:GeheimeClient>
    <aw33:Geboortedatum><iwlz:Datum>1985-04-03</iwlz:Datum></aw33:Geboortedatum>
    <aw33:Geslacht>0</aw33:Geslacht>
    <aw33:Naam><iwlz:Geslachtsnaam><iwlz:Achternaam>Test</iwlz:Achternaam></iwlz:Geslachtsnaam>
      <iwlz:NaamGebruik>1</iwlz:NaamGebruik></aw33:Naam>
    <aw33:Leefeenheid>1</aw33:Leefeenheid><aw33:Partneropname>2</aw33:Partneropname>
    <aw33:Contactgegevens><aw33:Contact><aw33:Soort>01</aw33:Soort></aw33:Contact></aw33:Contactgegevens>
    <aw33:Indicatie>
      <aw33:Besluitnummer>123456</aw33:Besluitnummer><aw33:Soort>1</aw33:Soort>
      <aw33:Afgiftedatum>2024-01-02</aw33:Afgiftedatum><aw33:Ingangsdatum>2024-01-02</aw33:Ingangsdatum>
      <aw33:ToegewezenZorgzwaartepakketten><aw33:ToegewezenZorgzwaartepakket>
        <aw33:ZzpCode>750</aw33:ZzpCode><aw33:Instelling>{PROVIDER}</aw33:Instelling>
        <aw33:Zorgkantoor>5507</aw33:Zorgkantoor><aw33:Soort>1</aw33:Soort>
        <aw33:Toewijzingsdatum>2024-01-20</aw33:Toewijzingsdatum>
        <aw33:Toewijzingstijd>12:00:00</aw33:Toewijzingstijd>
        <aw33:Ingangsdatum>2024-02-01</aw33:Ingangsdatum>
        <aw33:Leveringsvorm>2</aw33:Leveringsvorm>
      </aw33:ToegewezenZorgzwaartepakket></aw33:ToegewezenZorgzwaartepakketten>
    </aw33:Indicatie>
  </aw33:Client></aw33:Clienten>
</aw33:Bericht>
""".encode()
AW35 = iwlz.write_aw35(
    PROVIDER, "5507", "999990019", date(1985, 4, 3), "Test", "123456", date(2024, 2, 5), "AW35A",
    date(2024, 2, 6),
)  # fmt: skip


def reason(raw: bytes) -> str:
    with pytest.raises(MessageError) as err:
        read_preconditions(raw)
    return err.value.reason


def test_an_aw33_valid_against_the_national_xsd_gives_the_care_offices_allocation() -> None:
    assert AW33_XSD.validate(etree.fromstring(AW33)), AW33_XSD.error_log
    [p] = read_preconditions(AW33)
    assert (p.source, p.bsn, p.receiver) == ("AW33", "999990019", PROVIDER)
    assert p.allocation == Allocation("aw33", "123456", "5507", date(2024, 2, 1))


def test_an_aw35_ketenbus_writes_validates_and_gives_the_start_of_care() -> None:
    assert AW35_XSD.validate(etree.fromstring(AW35)), AW35_XSD.error_log
    [p] = read_preconditions(AW35)
    assert (p.source, p.bsn, p.receiver) == ("AW35", "999990019", PROVIDER)
    assert p.allocation == Allocation("aw35", "123456", "5507", date(2024, 2, 5))


@pytest.mark.parametrize(
    ("raw", "old", "new", "why"),
    [
        (AW33, "<aw33:BerichtCode>352<", "<aw33:BerichtCode>353<", "wrong-message"),
        (AW33, "<aw33:Afzender>5507<", "<aw33:Afzender>ZK-UTRECHT<", "code"),
        (AW33, f"<aw33:Ontvanger>{PROVIDER}<", "<aw33:Ontvanger>7373<", "code"),
        (AW33, "<aw33:Besluitnummer>123456<", "<aw33:Besluitnummer>12A<", "code"),
        (AW33, "<aw33:Bsn>999990019<", "<aw33:Bsn>999990018<", "bsn-check"),
        (AW35, "<aw35:BerichtCode>354<", "<aw35:BerichtCode>352<", "wrong-message"),
        (AW35, "<aw35:Begindatum>2024-02-05<", "<aw35:Begindatum>5-2-2024<", "date"),
        (AW35, "<aw35:Ontvanger>5507<", "<aw35:Ontvanger>55077<", "code"),
    ],
)
def test_a_wrong_code_refuses_the_file(raw: bytes, old: str, new: str, why: str) -> None:
    assert old.encode() in raw
    assert reason(raw.replace(old.encode(), new.encode(), 1)) == why


def test_hostile_iwlz_files_are_refused() -> None:
    assert reason(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>') == "xml-forbidden"
    assert reason(AW33[:-20]) == "not-xml"
    assert reason(b"x" * 5_000_001) == "too-large"
    no_clients = AW35.split(b"<aw35:Clienten>")[0] + b"</aw35:Bericht>\n"
    assert reason(no_clients) == "empty"
