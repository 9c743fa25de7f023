"""The municipality's part at the edges (issue 15 point 3): which municipality the ZVH notifies,
and the municipality's inbox documents refused per field when they are hostile or wrong."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from adapters.municipality.documents import (
    Information,
    MunicipalityEscalation,
    MunicipalityReferral,
    parse_bytes,
)
from adapters.zvh.format import parse_document
from adapters.zvh.service import ZvhAdapter
from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.scenarios import demo
from broker.config import Settings
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from schemas import topics
from schemas.errors import MessageError
from schemas.vocab import PartyRole

ZVH = "zvh-midden-nederland"  # no municipality identifier of its own
ZVH_UTRECHT = LocalParty(
    "zvh-utrecht", "ZVH Utrecht", PartyRole.ZVH, "midden-nederland", {"municipality": "0344"}
)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    parties = [*demo.PARTIES, demo.MUNICIPALITY, ZVH_UTRECHT]
    return create_local(tmp_path_factory.mktemp("dep"), parties)


def _doc(municipality: str | None, homeless: bool = False) -> object:
    person: dict[str, object] = {
        "bsn": "999990019",
        "family_name": "Test",
        "birth_date": "1980-01-01",
        "homeless": homeless,
    }
    if municipality:
        person["municipality"] = municipality
    return parse_document(demo.referral("CASE-1", "midden-nederland", person, date.today()))


@pytest.mark.parametrize(
    ("zvh", "municipality", "homeless", "expected"),
    [
        (ZVH, "0344", False, demo.MUNICIPALITY.id),  # resident of Utrecht
        (ZVH, "0363", False, None),  # Amsterdam is no party here: no notice
        (ZVH_UTRECHT.id, None, True, demo.MUNICIPALITY.id),  # homeless: the ZVH's centre
        (ZVH, None, True, None),  # homeless, and the ZVH names no central municipality
        (ZVH_UTRECHT.id, None, False, None),  # no address known, not homeless: nobody
    ],
)
def test_the_notice_goes_to_the_municipality_of_residence(
    deployment: Deployment,
    tmp_path: Path,
    zvh: str,
    municipality: str | None,
    homeless: bool,
    expected: str | None,
) -> None:
    adapter = ZvhAdapter(Settings(), deployment.party_client(zvh), tmp_path / "i", tmp_path / "o")
    doc = _doc(municipality, homeless)
    ref = doc.to_referral(zvh)  # type: ignore[union-attr]
    assert adapter._municipality_of(ref) == expected


def test_the_notice_routes_to_the_municipality_without_the_risk_assessment(
    deployment: Deployment, tmp_path: Path
) -> None:
    client = deployment.party_client(ZVH)
    adapter = ZvhAdapter(Settings(), client, tmp_path / "i", tmp_path / "o")
    notice = adapter._notice(_doc("0344"), "m-1")  # type: ignore[arg-type]
    assert notice is not None
    key, value, headers = client.seal_message(notice.bundle, notice.bsn)
    pipeline = Pipeline(deployment.router_state(default_policy()))
    result = pipeline.route(Incoming(topics.IN_REFERRAL.name, key, value, headers))
    assert [f.kind for f in result.facts] == [FactKind.PERMIT, FactKind.DELIVERY]
    [permit] = [f for f in result.facts if f.kind is FactKind.PERMIT]
    assert permit.recipient == demo.MUNICIPALITY.id
    text = json.dumps(notice.bundle)
    assert "RiskAssessment" in text, "the ZVH's own message carries it; the router withholds it"
    assert permit.withheld and "risk-assessment" in {c.value for c in permit.withheld}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not json", "not-json"),
        (b"{", "not-json"),
        (b'"a string"', "not-object"),
        (b'{"kind": "gossip"}', "kind"),
        (
            b'{"kind": "information", "zvh": "z", "case": "c", "information": "x", "bsn": "1"}',
            "extra_forbidden",
        ),
        (
            b'{"kind": "information", "zvh": "../../etc", "case": "c", "information": "x"}',
            "string_pattern_mismatch",
        ),
        (
            b'{"kind": "escalation", "zvh": "z", "case": "c", "reason": "ik wil het niet",'
            b' "stuck_since": "2026-01-01", "reference": "E1"}',
            "enum",
        ),
        (
            b'{"kind": "referral", "zvh": "z", "reference": "R1", "region": "r",'
            b' "registered_on": "2026-01-01", "signal": "s",'
            b' "person": {"bsn": "123456789", "family_name": "X", "birth_date": "1980-01-01"}}',
            "bsn-check",
        ),
    ],
)
def test_hostile_documents_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    try:
        items = parse_bytes(raw)
    except MessageError as err:
        assert err.reason == reason, err
        return
    [(_, item)] = items
    assert isinstance(item, MessageError), item
    assert item.reason == reason, item


def test_a_batch_keeps_the_good_documents() -> None:
    raw = json.dumps(
        [
            {"kind": "information", "zvh": "z", "case": "C1", "information": "Wmo: begeleiding."},
            {"kind": "nonsense"},
            {
                "kind": "escalation",
                "zvh": "z",
                "case": "C1",
                "reason": "no-provider",
                "stuck_since": "2026-01-01",
                "reference": "E1",
            },
            {
                "kind": "referral",
                "zvh": "z",
                "reference": "R1",
                "region": "midden-nederland",
                "registered_on": "2026-01-01",
                "signal": "Zorgen over dreigend gedrag.",
                "person": {"bsn": "999990019", "family_name": "X", "birth_date": "1980-01-01"},
            },
        ]
    ).encode()
    kinds = [type(item) for _, item in parse_bytes(raw)]
    assert kinds == [Information, MessageError, MunicipalityEscalation, MunicipalityReferral]
