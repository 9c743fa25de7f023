"""Forensic placement messages where the chain needs them (notes §2.1: FZ821-FZ826 through
VECOZO "Plaatsing en Uitvoering Forensische Zorg", mandatory since 1 January 2024):

- FZ821, DJI's placement decision, read from the provider's inbox as a precondition and cited by
  the claims to DJI (VECOZO's GDS801 check VC041: "Indien Ontvanger = 9992 (= DJI/FZ), dan moet
  Plaatsingsbesluit voorkomen");
- FZ823 / FZ825, the provider's notice of the start and the end of care; DJI's business rule
  "Einde zorg melding in de FZ" (forensischezorg.nl, 2023-10-16): "Zorgaanbieders [moeten] de
  werkelijke einddatum van de zorg aan DJI laten weten".

No public layout of these messages was reachable: the XML is ketenbus's model, in its own
namespace (docs/adapters/payers.md), so the tests check its round trip and its refusals.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapters.financing.desk import Allocation
from adapters.payer.formats import fz
from adapters.payer.formats.common import MAX_ANSWER_BYTES
from adapters.payer.formats.preconditions import read_preconditions
from adapters.provider.service import ProviderAdapter
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.config import Settings
from schemas.errors import MessageError
from schemas.flows.transition import CareTransition
from schemas.vocab import SecurityLevel, TransitionKind
from tests.unit.adapters import payer_samples as S

PLACEMENT = fz.Placement("4711", "999990019", "73730101", date(2024, 1, 1), date(2024, 12, 31))
RAW = fz.write_placement(PLACEMENT, "PL1", date(2023, 12, 20))


def reason(raw: bytes) -> str:
    with pytest.raises(MessageError) as err:
        read_preconditions(raw)
    return err.value.reason


def test_an_fz821_round_trips_as_the_precondition_of_a_claim_to_dji() -> None:
    [p] = read_preconditions(RAW)
    assert (p.source, p.bsn, p.receiver) == ("FZ821", "999990019", "73730101")
    assert p.allocation == Allocation("fz821", "4711", "9992", date(2024, 1, 1), date(2024, 12, 31))


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("<fz:Bericht>FZ821<", "<fz:Bericht>FZ823<", "wrong-message"),
        ("<fz:Verzender>9992<", "<fz:Verzender>3311<", "code"),  # only DJI places
        ("<fz:Ontvanger>73730101<", "<fz:Ontvanger>7373<", "code"),
        ("<fz:Plaatsingsbesluitnummer>4711<", "<fz:Plaatsingsbesluitnummer>47-11<", "code"),
        ("<fz:BSN>999990019<", "<fz:BSN>999990018<", "bsn-check"),
        ("<fz:Einddatum>2024-12-31<", "<fz:Einddatum>2023-12-31<", "period"),
        ("<fz:Ingangsdatum>2024-01-01<", "<fz:Ingangsdatum>1-1-2024<", "date"),
    ],
)
def test_a_wrong_fz821_is_refused_whole(old: str, new: str, why: str) -> None:
    assert old.encode() in RAW
    assert reason(RAW.replace(old.encode(), new.encode(), 1)) == why


def test_hostile_fz821_files_are_refused() -> None:
    assert reason(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>') == (
        "xml-forbidden"
    )
    assert reason(RAW[:-30]) == "not-xml"
    assert reason(RAW.replace(b"-->", b"") + b"<!--" + b"x" * MAX_ANSWER_BYTES + b"-->") in (
        "too-large",
        "not-xml",
    )
    assert reason(b"x" * (MAX_ANSWER_BYTES + 1)) == "too-large"


def test_care_notices_round_trip() -> None:
    for kind, message in (("start", "FZ823"), ("end", "FZ825")):
        raw = fz.write_care_notice(
            kind, "4711", "73730101", "999990019", date(2024, 3, 1), "N1", date(2024, 3, 2)
        )
        n = fz.read_care_notice(raw)
        assert (n.message, n.provider_agb, n.bsn, n.placement, n.day) == (
            message, "73730101", "999990019", "4711", date(2024, 3, 1)
        )  # fmt: skip
    with pytest.raises(MessageError):
        fz.read_care_notice(RAW)  # an FZ821 is no care notice
    with pytest.raises(ValueError):
        fz.write_care_notice(
            "end", "x", "73730101", "999990019", date(2024, 3, 1), "N", date.today()
        )


def transition(kind: TransitionKind, day: date) -> CareTransition:
    return CareTransition(
        transition_id=f"TR-{kind.value}",
        episode_id="EP-1",
        kind=kind,
        effective_on=day,
        person=S.PERSON,
        provider="fivoor",
        security_level=SecurityLevel.LEVEL_2
        if kind is TransitionKind.SCALE_UP
        else SecurityLevel.AMBULANT,
        previous_level=SecurityLevel.AMBULANT if kind is TransitionKind.SCALE_UP else None,
        location_id="LOC-1" if kind is TransitionKind.SCALE_UP else None,
    )


def test_the_provider_notifies_dji_of_the_start_and_end_of_a_placed_persons_care(
    tmp_path: Path,
) -> None:
    """A care transition the provider sends for a person DJI placed (FZ821 received) gives an
    FZ823 (start) or FZ825 (end) in its outbox; none without a placement covering the day."""
    dep = create_local(tmp_path, demo.PARTIES)
    provider = ProviderAdapter(
        Settings(state_dir=tmp_path),
        dep.party_client("fivoor"),
        tmp_path / "out",
        care_notices=fz.care_notice,
    )
    assert provider.desk.claimant_agb
    start = transition(TransitionKind.START, date(2024, 2, 1))
    provider._care_notice(start, "m1")
    assert not list((tmp_path / "out").glob("fz-*")), "no placement, no notice"
    [p] = read_preconditions(
        fz.write_placement(
            fz.Placement("4711", S.PERSON.bsn, provider.desk.claimant_agb, date(2024, 1, 1)),
            "PL1",
            date(2023, 12, 20),
        )
    )
    provider.desk.received_allocation(p.bsn, p.allocation)
    provider._care_notice(start, "m1")
    provider._care_notice(transition(TransitionKind.END, date(2024, 6, 30)), "m2")
    provider._care_notice(transition(TransitionKind.SCALE_UP, date(2024, 3, 1)), "m3")
    sent = {
        n.message: n
        for n in (fz.read_care_notice(f.read_bytes()) for f in (tmp_path / "out").glob("fz-*"))
    }
    assert set(sent) == {"FZ823", "FZ825"}
    assert (sent["FZ823"].day, sent["FZ825"].day) == (date(2024, 2, 1), date(2024, 6, 30))
    assert sent["FZ825"].placement == "4711"
