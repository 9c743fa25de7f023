"""The payer adapter records the inclusion notice and holds coordination claims to it (issue 15
point 7): days before the notified inclusion date are refused at once with ``not-included``
(implementation plan 2022, seed 002: the EUR 20 a day runs "vanaf moment van includeren");
a claim from that date on is written in the payer's format as before."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.payer.service import PayerAdapter
from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.generate.examples import INSURER, PROVIDER, example_meta, examples
from broker.config import Settings
from schemas.examples import EXAMPLES_DIR
from schemas.flows.claim import Claim, claim_message
from schemas.messaging import dumps, parse_message
from schemas.vocab import ClaimRejectionReason, PartyRole


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    parties = [
        LocalParty(INSURER, "Verzekeraar", PartyRole.HEALTH_INSURER, None, {"uzovi": "9999"}),
        LocalParty(
            PROVIDER, "Aanbieder", PartyRole.COORDINATING_PROVIDER, "regio", {"agb": "99999999"}
        ),
    ]
    return create_local(tmp_path_factory.mktemp("dep"), parties)


class _Opened:
    payload = b"{}"


def _claim(start: date) -> Any:
    base: Claim = next(ex.model for ex in examples() if ex.name == "claim-coordination")
    days = (base.period_end - start).days + 1
    claim = Claim.model_validate(
        {
            **base.model_dump(),
            "claim_id": f"DEC-{start:%Y%m%d}",
            "period_start": start,
            "quantity": days,
            "amount_cents": days * base.unit_price_cents,
        }
    )
    ex = next(ex for ex in examples() if ex.name == "claim-coordination")
    return parse_message(dumps(claim_message(claim, example_meta(ex))), full=False)


async def test_coordination_before_the_notified_inclusion_is_refused(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = PayerAdapter(
        Settings(), deployment.party_client(INSURER), tmp_path / "in", tmp_path / "out"
    )
    answers: list[Any] = []

    async def send_answers(batch: list[Any]) -> None:
        answers.extend(batch)

    monkeypatch.setattr(adapter, "_send_answers", send_answers)
    notice = parse_message(
        (EXAMPLES_DIR / "assessment-outcome-payer-notice.json").read_bytes(), full=False
    )
    await adapter._delivered(_Opened(), notice)  # type: ignore[arg-type]
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert record["kind"] == "inclusion-notice" and record["regime"] == "zvw"
    inclusion = date.fromisoformat(record["inclusion_date"])
    assert adapter.inclusions[record["episode"]].inclusion_date == inclusion

    # a day before the inclusion: refused at once, nothing written in the payer's format
    await adapter._delivered(_Opened(), _claim(inclusion - timedelta(days=1)))  # type: ignore[arg-type]
    [answer] = answers
    text = json.dumps(answer.bundle)
    assert ClaimRejectionReason.NOT_INCLUDED.value in text
    assert not list((tmp_path / "out").glob("*.asc"))
    # from the inclusion date on: written as a declaration
    await adapter._delivered(_Opened(), _claim(inclusion))  # type: ignore[arg-type]
    assert len(answers) == 1 and len(list((tmp_path / "out").glob("*.asc"))) == 1
