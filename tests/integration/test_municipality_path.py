"""The municipality's part end to end on the embedded broker (issue 15 point 3): a ZVH referral
of a resident reaches the municipality's adapter as a minimised notice (never the risk assessment,
legal titles or clinical data: held to the policy's own rule), the municipality sends what it
knows back and it reaches the ZVH, it refers a case of its own to the ZVH on its public task,
and escalates a case it knows; information on a case it was never told of is refused per item.

Why it may know: the VNG letter (seed 000) makes the municipalities' paying for the registration
phase conditional on "dat zij betrokken worden bij de aanmeldfase ... inclusief de informatie die
al over een client bekend is uit eerder trajecten".
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from broker.apps.deployment import LocalParty
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.apps.synthetic import synthetic_bsn
from broker.policy import default_policy
from schemas.vocab import DataCategory, EventCode, PartyRole
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration

ZVH = "zvh-midden-nederland"
GEMEENTE = demo.MUNICIPALITY.id
NATIONAL = LocalParty("lcp", "Landelijk coördinatiepunt", PartyRole.NATIONAL_COORDINATION)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    parties = [*demo.PARTIES, demo.MUNICIPALITY, NATIONAL]
    async with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("state"), parties) as s:
        yield s


async def until(check: Any, timeout: float = 15) -> Any:
    for _ in range(int(timeout / 0.05)):
        found = check()
        if found:
            return found
        await asyncio.sleep(0.05)
    return None


def outbox_docs(stack: LocalStack, party: str) -> list[dict[str, Any]]:
    out = []
    for path in stack.outbox(party).glob("*.json"):
        try:
            out.append(json.loads(path.read_text()))
        except ValueError:
            continue  # being written
    return out


async def drop_and_settle(stack: LocalStack, party: str, name: str, doc: Any) -> dict[str, Any]:
    demo.drop(stack.inbox(party), name, demo.dump(doc))
    receipt = await until(
        lambda: next(
            (
                p
                for p in (
                    stack.inbox(party) / "processed" / f"{name}.receipt.json",
                    stack.inbox(party) / "failed" / f"{name}.error.json",
                )
                if p.exists()
            ),
            None,
        )
    )
    assert receipt is not None, f"{name} was never settled"
    return dict(json.loads(Path(receipt).read_text()))


def resident(rng: random.Random) -> dict[str, Any]:
    return {
        "bsn": synthetic_bsn(rng),
        "family_name": "Testpersoon",
        "birth_date": "1985-04-03",
        "municipality": "0344",
    }


async def test_the_municipality_takes_its_part(stack: LocalStack) -> None:
    rng = random.Random()
    case = f"CASE-{rng.randrange(10**9)}"
    p = resident(rng)
    doc = demo.referral(case, "midden-nederland", p, date.today())
    receipt = await drop_and_settle(stack, ZVH, f"{case}.json", doc)
    assert receipt["accepted"], receipt

    # 1. the notice reaches the municipality, minimised as the policy's rule says
    def notice() -> dict[str, Any] | None:
        return next(
            (
                d
                for d in outbox_docs(stack, GEMEENTE)
                if d.get("type") == "referral-notice" and d.get("case") == case
            ),
            None,
        )

    got = await until(notice)
    assert got is not None, "the municipality never received the referral notice"
    assert got["zvh"] == ZVH and got["region"] == "midden-nederland"
    assert got["person"]["bsn"] == p["bsn"]
    rule = default_policy().document.flows[EventCode.REFERRAL].recipients[PartyRole.MUNICIPALITY]
    allowed = {c.value for c in rule.categories}
    assert set(got["categories"]) <= allowed, got["categories"]
    for never in (DataCategory.RISK_ASSESSMENT, DataCategory.LEGAL_TITLE, DataCategory.CLINICAL):
        assert never.value not in got["categories"]
    assert DataCategory.REFERRAL_SIGNAL.value in got["categories"]

    # 2. what the municipality knows goes back to the ZVH
    info = {
        "kind": "information",
        "zvh": ZVH,
        "case": case,
        "information": "Bekend bij de Wmo: begeleid wonen 2023, schuldhulp loopt.",
    }
    receipt = await drop_and_settle(stack, GEMEENTE, f"info-{case}.json", info)
    [sent] = receipt["accepted"]
    path = await until(lambda: (stack.outbox(ZVH) / f"{sent['message_id']}.json").exists())
    assert path, "the ZVH never received the municipality's information"
    delivered = json.loads((stack.outbox(ZVH) / f"{sent['message_id']}.json").read_text())
    assert delivered["type"] == "referral" and delivered["from"] == GEMEENTE

    # 3. the municipality refers a case of its own on its public task
    own = {
        "kind": "referral",
        "zvh": ZVH,
        "reference": f"GEM-{case}",
        "region": "midden-nederland",
        "registered_on": date.today().isoformat(),
        "person": {"bsn": synthetic_bsn(rng), "family_name": "Anders", "birth_date": "1979-02-01"},
        "signal": "Meldingen van buren over dreigend gedrag; geen zorg in beeld.",
    }
    # 4. it escalates the case it knows; 5. information on a case it was never told of: refused
    esc = {
        "kind": "escalation",
        "zvh": ZVH,
        "case": case,
        "reason": "no-provider",
        "stuck_since": date.today().isoformat(),
        "reference": f"ESC-{case}",
    }
    stranger = {**info, "case": "NOT-A-CASE"}
    receipt = await drop_and_settle(stack, GEMEENTE, f"batch-{case}.json", [own, esc, stranger])
    assert [a["kind"] for a in receipt["accepted"]] == ["referral", "escalation"], receipt
    [refused] = receipt["refused"]
    assert refused["index"] == 2 and refused["reason"] == "unknown-case", refused
    ref_id, esc_id = (a["message_id"] for a in receipt["accepted"])
    assert await until(lambda: (stack.outbox(ZVH) / f"{ref_id}.json").exists()), "referral lost"

    # the router accepted the escalation (its response comes back to the municipality)
    def response_to(mid: str) -> dict[str, Any] | None:
        for d in outbox_docs(stack, GEMEENTE):
            header = d.get("entry", [{}])[0].get("resource", {}) if d.get("entry") else {}
            if header.get("response", {}).get("identifier") == mid:
                return header
        return None

    header = await until(lambda: response_to(esc_id))
    assert header is not None and header["response"]["code"] == "ok", header
