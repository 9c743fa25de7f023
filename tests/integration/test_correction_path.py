"""Correction and withdrawal end to end over the embedded broker (issue 16 point 5; AVG art. 16,
17 and 19): a referral delivered to the two coordinating providers of its region is corrected
and then withdrawn by the ZVH over HTTP; each provider receives the correction once and the
withdrawal once (its outbox marks the original), the provider of another region receives
nothing, another ZVH with its own valid key cannot withdraw it, the same withdrawal posted
again is recognised as a repeat (nothing is sent twice), and the audit trail links both
follow-ups to the original and verifies."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.zvh.format import parse_document
from broker.apps.deployment import LocalParty
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.apps.synthetic import synthetic_bsn
from broker.audit import ChainRecord, verify
from broker.audit.signers import signers_from_registry
from schemas import topics
from schemas.vocab import PartyRole
from tests.helpers.kafka import consume_all
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration

ZVH, OTHER_ZVH = "zvh-midden-nederland", "zvh-ijsselland"
PROVIDERS = ("fivoor", "fivoor-noord")  # both coordinate midden-nederland: N = 2
BYSTANDER = "transfore"  # oost-nederland: never received the original


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    second = LocalParty(
        PROVIDERS[1],
        "Fivoor Noord (tweede coördinerend aanbieder)",
        PartyRole.COORDINATING_PROVIDER,
        "midden-nederland",
        {"agb": "73730103"},
    )
    state = tmp_path_factory.mktemp("state")
    async with running_stack(kafka_bootstrap, state, [*demo.PARTIES, second]) as s:
        yield s


async def post(stack: LocalStack, path: str, doc: dict[str, Any]) -> str:
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        r = await c.post(path, json=doc)
    assert r.status_code == 202, r.text
    return str(r.json()["message_id"])


async def answer(stack: LocalStack, zvh: str, mid: str) -> tuple[str, list[str]]:
    got = await stack.zvh[zvh].wait_response(mid, 20)
    assert got is not None, f"no response to {mid}"
    return got["status"], [r["code"] for r in got["reasons"]]


async def appears(path: Path, timeout: float = 15) -> bool:
    for _ in range(int(timeout / 0.05)):
        if path.exists():
            return True
        await asyncio.sleep(0.05)
    return False


def on_topic(records: list[Any], mid: str) -> int:
    return sum(1 for r in records if dict(r.headers).get("kb-id") == mid.encode())


async def test_correction_and_withdrawal_reach_every_original_recipient_once(
    stack: LocalStack,
) -> None:
    rng = random.Random()
    bsn = synthetic_bsn(rng)
    p = {"bsn": bsn, "family_name": "Testpersoon", "birth_date": "1985-04-03"}
    today = date.today()
    cid = f"c-{rng.randrange(10**9)}"
    consent = await post(stack, "/consents", demo.consent(cid, bsn, today))
    assert await answer(stack, ZVH, consent) == ("accepted", [])
    case = f"CASE-{rng.randrange(10**9)}"
    referral = demo.referral(case, "midden-nederland", p, today)
    original = await post(stack, "/referrals", referral)
    assert await answer(stack, ZVH, original) == ("accepted", [])
    for party in PROVIDERS:
        assert await appears(stack.outbox(party) / f"{original}.json"), party

    corrected = {**referral, "signal": "Gecorrigeerd signaal.", "corrects": original}
    correction = await post(stack, "/referrals", corrected)
    assert await answer(stack, ZVH, correction) == ("accepted", [])
    withdrawal = await post(stack, "/withdrawals", {"type": "withdrawal", "message_id": original})
    assert await answer(stack, ZVH, withdrawal) == ("accepted", [])
    for party in PROVIDERS:
        box = stack.outbox(party)
        assert await appears(box / f"{correction}.json") and await appears(
            box / f"{withdrawal}.json"
        )
        status = json.loads((box / f"{original}.status.json").read_text())
        assert status == {
            "message_id": original,
            "status": "withdrawn",
            "corrections": [correction],
            "withdrawn_by": withdrawal,
        }, party
        header = json.loads((box / f"{correction}.json").read_text())["entry"][0]["resource"]
        assert {"url": "https://ketenbus.nl/fhir/StructureDefinition/follow-up-of",
                "valueId": original} in header["extension"]  # fmt: skip

    # hostile: another ZVH, with its own valid key, names the same message id
    other = stack.zvh[OTHER_ZVH]
    doc = parse_document({"type": "withdrawal", "message_id": original})
    forged = (await other.submit(doc)).message_id
    assert await answer(stack, OTHER_ZVH, forged) == ("refused", ["not-original-sender"])
    # the same withdrawal posted again is the same document (issue 20: named by its content):
    # the adapter answers with the first one's id and outcome and sends nothing; a second
    # withdrawal that does reach the router is refused already-withdrawn (unit: test_follow_ups)
    again = await post(stack, "/withdrawals", {"type": "withdrawal", "message_id": original})
    assert again == withdrawal
    assert await answer(stack, ZVH, again) == ("accepted", [])

    bootstrap = stack.settings.bootstrap_servers or ""
    for party in PROVIDERS:  # exactly once on each recipient's topic
        out = await consume_all(bootstrap, topics.outbound(party).name)
        # the repeat is the withdrawal itself (same id): still once
        assert [on_topic(out, m) for m in (original, correction, withdrawal, forged)] == [
            1, 1, 1, 0,
        ], party  # fmt: skip
    out = await consume_all(bootstrap, topics.outbound(BYSTANDER).name)
    assert [on_topic(out, m) for m in (original, correction, withdrawal)] == [0, 0, 0]
    assert not list(stack.outbox(BYSTANDER).glob(f"{original}*"))

    # the audit trail links each follow-up to the original, per recipient, and still verifies
    records = await consume_all(bootstrap, topics.AUDIT.name)
    signers = signers_from_registry(stack.deployment.registry)  # this deployment's chains:
    values = [r.value for r in records if r.key and r.key.decode() in signers]  # shared broker
    assert verify(values, signers).ok
    linked: dict[tuple[str, str], set[str]] = {}
    for v in values:
        event = ChainRecord.decode(v).event
        for entity in event.get("entity", []):
            details = {d["type"]: d.get("valueString") for d in entity.get("detail", [])}
            if details.get("refers-to") == original:
                who = [a["who"]["identifier"]["value"] for a in event["agent"] if "who" in a]
                linked.setdefault((event["type"]["code"], entity["what"]["identifier"]["value"]),
                                  set()).update(who[1:])  # fmt: skip
    assert linked[("correction", correction)] == set(PROVIDERS)
    assert linked[("withdrawal", withdrawal)] == set(PROVIDERS)
    assert ("refusal", forged) in linked  # the repeat reached no router: no refusal of it
    for v in values:
        assert bsn.encode() not in v


async def test_a_correction_and_a_withdrawal_in_one_inbox_file_arrive_in_order(
    stack: LocalStack,
) -> None:
    """The withdrawal travels on another topic than the correction before it in the file; the
    adapter waits for the correction's answer, so the router never finds it withdrawn first."""
    rng = random.Random()
    bsn = synthetic_bsn(rng)
    p = {"bsn": bsn, "family_name": "Testpersoon", "birth_date": "1985-04-03"}
    today = date.today()
    consent = await post(stack, "/consents", demo.consent(f"c-{rng.randrange(10**9)}", bsn, today))
    assert await answer(stack, ZVH, consent) == ("accepted", [])
    referral = demo.referral(f"CASE-{rng.randrange(10**9)}", "midden-nederland", p, today)
    original = await post(stack, "/referrals", referral)
    assert await answer(stack, ZVH, original) == ("accepted", [])
    name = f"followups-{rng.randrange(10**9)}.json"
    batch = [
        {**referral, "signal": "Gecorrigeerd.", "corrects": original},
        {"type": "withdrawal", "message_id": original},
    ]
    demo.drop(stack.inbox(ZVH), name, json.dumps(batch).encode())
    receipt = stack.inbox(ZVH) / "processed" / f"{name}.receipt.json"
    assert await appears(receipt, 40)
    correction, withdrawal = (a["message_id"] for a in json.loads(receipt.read_text())["accepted"])
    assert await answer(stack, ZVH, correction) == ("accepted", [])
    assert await answer(stack, ZVH, withdrawal) == ("accepted", [])
    for party in PROVIDERS:
        status = stack.outbox(party) / f"{original}.status.json"
        assert await appears(status) and json.loads(status.read_text())["corrections"] == [
            correction
        ]
