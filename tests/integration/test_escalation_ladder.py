"""The escalation ladder end to end on the embedded broker (issue 15, points 1, 2 and 4): a ZVH
escalates "no bed at level 3" from its inbox; the regional step (the region's coordinating
provider) lets it age past ``escalation_regional_seconds``; the router's ladder moves it to the
national coordination point, which assigns and resolves it; the ZVH's outbox holds every step and
the audit trail records each. A referral left undecided past its watchdog threshold raises
exactly one escalation, closed once the decision arrives. Hostile input gets a specific refusal.
The ladder's times are seconds here (``Settings``), days in production.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.apps.deployment import LocalParty
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.apps.synthetic import synthetic_bsn
from broker.apps.web.answers import make_answer, send_answer
from broker.policy import default_policy
from broker.router import ladder_log
from broker.router.records import header
from schemas import topics
from schemas.vocab import EscalationAction, PartyRole
from tests.helpers.kafka import consume_all
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration

ZVH, STEP, NATIONAL = "zvh-midden-nederland", "fivoor", "landelijk-coordinatiepunt"
PARTIES = [
    *demo.PARTIES,
    LocalParty(NATIONAL, "Landelijk coördinatiepunt", PartyRole.NATIONAL_COORDINATION),
]
CATEGORIES = [
    "identity", "contact", "referral-signal", "risk-assessment", "legal-title", "process",
    "care-episode",
]  # fmt: skip
ASSESSMENT_CSV = (
    "assessment_id;zvh;case_id;assessed_on;bsn;family_name;given_names;birth_date;municipality;"
    "decision;dangerous_behaviour;multi_problem;structure_need;legal_title;reasons;alternative;"
    "inclusion_date;episode_id;insurer_uzovi\n"
    "BEO-{case};{zvh};{case};{today};{bsn};Testpersoon;Kees;1985-04-03;0344;not-included;"
    "met;not-met;met;met;Voorliggende zorg volstaat.;mental-health-care;;;\n"
)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    async with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("ladder"),
        PARTIES,
        escalation_regional_seconds=5.0,  # room for the decision on a slow machine
        escalation_tick_seconds=0.2,
        watchdog_undecided_seconds=3.0,
    ) as s:
        yield s


async def wait_for(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    for _ in range(int(timeout / 0.1)):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def docs(folder: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
        if folder.exists()
        else []
    )


def fhir_tasks(stack: LocalStack, party: str, event: str) -> list[dict[str, Any]]:
    """The Tasks of the ``event`` messages in a provider's outbox (FHIR JSON)."""
    out = []
    for d in docs(stack.outbox(party)):
        if d.get("resourceType") == "Bundle" and (
            d["entry"][0]["resource"]["eventCoding"]["code"] == event
        ):
            out.extend(e["resource"] for e in d["entry"] if e["resource"]["resourceType"] == "Task")
    return out


async def drop_and_wait(stack: LocalStack, party: str, name: str, content: bytes) -> dict[str, Any]:
    demo.drop(stack.inbox(party), name, content)
    done = stack.inbox(party) / "processed" / f"{name}.receipt.json"
    failed = stack.inbox(party) / "failed" / f"{name}.error.json"
    path = await wait_for(
        name, lambda: done if done.exists() else failed if failed.exists() else None
    )
    return dict(json.loads(path.read_text()))


async def referred_case(stack: LocalStack, rng: random.Random) -> tuple[str, str]:
    """A case the router has routed (consent given, referral delivered): (case id, BSN)."""
    zvh = stack.zvh[ZVH]
    bsn = synthetic_bsn(rng)
    consent = demo.consent(f"c-{rng.randrange(10**9)}", bsn, date.today())
    consent["recipient_roles"] = ["coordinating-provider", "zvh"]
    consent["categories"] = CATEGORIES
    accepted = await zvh.submit_json(consent)
    assert (await zvh.wait_response(accepted.message_id, 20) or {}).get("status") == "accepted"
    case = f"MN-{rng.randrange(10**9)}"
    person = {"bsn": bsn, "family_name": "Testpersoon", "given_names": ["Kees"],
              "birth_date": "1985-04-03", "municipality": "0344"}  # fmt: skip
    receipt = await drop_and_wait(
        stack, ZVH, f"{case}.json",
        demo.dump(demo.referral(case, "midden-nederland", person, date.today())),
    )  # fmt: skip
    mid = receipt["accepted"][0]["message_id"]
    assert (await zvh.wait_response(mid, 20) or {}).get("status") == "accepted"
    return case, bsn


def outbox_answers(stack: LocalStack, escalation_id: str) -> list[dict[str, Any]]:
    return [
        d for d in docs(stack.outbox(ZVH))
        if d.get("type") == "escalation-answer" and d.get("escalation_id") == escalation_id
    ]  # fmt: skip


async def test_no_bed_climbs_the_ladder_and_comes_back_resolved(stack: LocalStack) -> None:
    rng = random.Random()
    case, bsn = await referred_case(stack, rng)
    esc_id = f"ESC-{case}"
    escalation = {
        "type": "escalation", "escalation_id": esc_id, "case_id": case, "reason": "no-bed",
        "security_level": "3", "stuck_since": date.today().isoformat(),
        "explanation": "Geen bed op niveau 3 in de regio.",
    }  # fmt: skip
    receipt = await drop_and_wait(stack, ZVH, "escalatie.json", json.dumps(escalation).encode())
    raised = receipt["accepted"][0]["message_id"]
    response = await stack.zvh[ZVH].wait_response(raised, 20)
    assert response is not None and response["status"] == "accepted", response
    # 1. the regional step (the region's coordinating provider) has it, without the person
    [task] = await wait_for(
        "the regional step's copy", lambda: fhir_tasks(stack, STEP, "escalation")
    )
    assert bsn not in json.dumps(task)
    # 2. not resolved within 2 s: moved to national, and the ZVH hears so
    [moved] = await wait_for("move-national", lambda: outbox_answers(stack, esc_id))
    assert (moved["action"], moved["level"], moved["answered_by"]) == (
        "move-national",
        "national",
        "router",
    )
    # hostile: the regional step answers once the escalation stands at the national step
    step = stack.deployment.party_client(STEP)
    _, meddling = make_answer(step, escalation_id=esc_id, raised_by=ZVH, zvh=ZVH, case_id=case,
                              action=EscalationAction.ACKNOWLEDGE)  # fmt: skip
    nosy = await send_answer(stack.settings, step, meddling)
    # 3. the national point assigns and resolves; each answer comes back to the ZVH
    national = stack.deployment.party_client(NATIONAL)
    sent = [raised]
    for action, extra in (
        (EscalationAction.ASSIGN, {"assignee": "transfore", "note": "Bed bij Transfore."}),
        (EscalationAction.RESOLVE, {"note": "Geplaatst op niveau 3."}),
    ):
        _, bundle = make_answer(
            national, escalation_id=esc_id, raised_by=ZVH, zvh=ZVH, case_id=case,
            action=action, **extra,
        )  # fmt: skip
        sent.append(await send_answer(stack.settings, national, bundle))
        await wait_for(action.value, lambda a=action: [  # type: ignore[misc]
            d for d in outbox_answers(stack, esc_id) if d["action"] == a.value
        ])  # fmt: skip
    steps = [
        d["action"] for d in sorted(outbox_answers(stack, esc_id), key=lambda d: d["answered_at"])
    ]
    assert steps == ["move-national", "assign", "resolve"]
    state = stack.router.state.ladder.escalations[(ZVH, esc_id)] if stack.router else None
    assert state is not None and state.status.value == "resolved"
    # 4. hostile: an answer to the resolved escalation
    _, again = make_answer(national, escalation_id=esc_id, raised_by=ZVH, zvh=ZVH, case_id=case,
                           action=EscalationAction.RESOLVE)  # fmt: skip
    late = await send_answer(stack.settings, national, again)
    # ... and, through the ZVH's HTTP endpoint, an escalation for a case the router never
    # routed (the router refuses it), an unknown reason and a no-bed without its level (the
    # adapter refuses them: 422 with the field)
    unknown = {**escalation, "escalation_id": "ESC-X", "case_id": "MN-NEVER-REFERRED"}
    async with httpx.AsyncClient(
        base_url=stack.http_url or "", timeout=10, headers=stack.http_headers
    ) as http:
        r = await http.post("/escalations", json=unknown)
        assert r.status_code == 202, r.text
        stray = r.json()["message_id"]
        bad = await http.post("/escalations", json={**escalation, "reason": "geen-zin"})
        assert bad.status_code == 422 and bad.json()["issues"][0]["path"] == "reason"
        no_level = {k: v for k, v in escalation.items() if k != "security_level"}
        bad = await http.post("/escalations", json=no_level)
        assert bad.status_code == 422
        assert bad.json()["issues"][0]["code"] == "security-level"
    refusal = await stack.zvh[ZVH].wait_response(stray, 20)
    assert refusal is not None and [r["code"] for r in refusal["reasons"]] == ["unknown-case"]

    bootstrap = stack.settings.bootstrap_servers or ""

    async def rejected() -> dict[str, str]:
        recs = await consume_all(bootstrap, topics.REJECTED.name)
        return {
            header(list(r.headers), "kb-id") or "": header(list(r.headers), "kb-reason") or ""
            for r in recs
        }

    for _ in range(100):
        found = await rejected()
        if late in found and nosy in found:
            break
        await asyncio.sleep(0.2)
    assert found.get(late) == "escalation-resolved"
    assert found.get(nosy) == "not-asked"
    assert found.get(stray) == "unknown-case"
    # 5. the audit trail records every step (the router's forward and move included)
    audit = [json.loads(r.value)["event"] for r in await consume_all(bootstrap, topics.AUDIT.name)]
    audited = json.dumps(audit)
    moved_ids = [m["message_id"] for m in outbox_answers(stack, esc_id)]
    for mid in [*sent, *moved_ids, late, nosy, stray]:
        assert mid in audited, f"message {mid} is not in the audit trail"
    assert bsn not in audited


async def test_an_undecided_referral_raises_one_escalation_closed_by_the_decision(
    stack: LocalStack,
) -> None:
    rng = random.Random()
    case, bsn = await referred_case(stack, rng)
    esc_id = f"WD-undecided-{case}"

    def raised() -> list[dict[str, Any]]:
        return [t for t in fhir_tasks(stack, STEP, "escalation")
                if t["identifier"][0]["value"] == esc_id]  # fmt: skip

    await wait_for("the watchdog's escalation", raised)
    await asyncio.sleep(1.0)  # five more ticks: still one
    assert len(raised()) == 1
    [task] = raised()
    assert task["reasonCode"]["coding"][0]["code"] == "no-decision"
    csv = ASSESSMENT_CSV.format(case=case, zvh=ZVH, today=date.today().isoformat(), bsn=bsn)
    receipt = await drop_and_wait(stack, STEP, f"besluit-{case}.csv", csv.encode())
    assert receipt["accepted"], receipt

    def closed() -> list[dict[str, Any]]:
        # on a slow machine the escalation may have moved to national first (a move-national
        # answer): what matters is that the decision closes it, once
        return [
            t for t in fhir_tasks(stack, STEP, "escalation-answer")
            if t["partOf"][0]["identifier"]["value"] == esc_id
            and t["businessStatus"]["coding"][0]["code"] == "resolve"
        ]  # fmt: skip

    [answer] = await wait_for("the watchdog's resolution", closed)
    assert answer["businessStatus"]["coding"][0]["code"] == "resolve"
    assert stack.router is not None
    assert stack.router.state.ladder.escalations[("router", esc_id)].status.value == "resolved"
    await asyncio.sleep(0.6)
    assert len(raised()) == 1, "a closed watchdog escalation is not raised again"
    # a restarted router folds the same ladder from its log on the `escalation` topic
    fresh = stack.deployment.router_state(default_policy())
    assert await ladder_log.rebuild(stack.settings, fresh) > 0
    live = stack.router.state.ladder
    assert set(fresh.ladder.cases) == set(live.cases)
    assert {k: s.status for k, s in fresh.ladder.escalations.items()} == {
        k: s.status for k, s in live.escalations.items()
    }
