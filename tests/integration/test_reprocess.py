"""Issue 17, "Done when" 1: a referral refused for lack of consent, the consent recorded, the
refusal re-processed from the CLI: delivered exactly once; the audit trail shows the refusal,
the re-process (with the operator: NEN 7513 7.3, the user is the person) and the delivery; a
second re-process delivers nothing. Bad requests (unknown id, a role that may not) change
nothing; a plain replay of the parked record is still stopped by the replay guard."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import secrets
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.apps.deployment import LocalParty
from broker.apps.operations.parked import read_parked
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.apps.web.auth import USERS_FILE, Role, UserStore
from broker.audit import decode_rows, read_audit_topic
from broker.router.reprocess import PARKED_HEADERS, new_request, request_headers
from broker.trust.datakeys import open_layer
from schemas import topics
from schemas.vocab import PartyRole
from tests.helpers.kafka import consume_all
from tests.helpers.stack import running_stack
from tests.integration.test_referral_path import PROVIDER, ZVH, delivered_to, person, post

pytestmark = pytest.mark.integration
CONSOLE = LocalParty("console", "ketenbus console", PartyRole.CAPACITY_DASHBOARD)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    state = tmp_path_factory.mktemp("state")
    async with running_stack(kafka_bootstrap, state, [*demo.PARTIES, CONSOLE]) as s:
        yield s


def cli(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(stack.settings.state_dir))
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", stack.settings.bootstrap_servers or "")
    command = list(args) if args[0] == "trace" else ["reprocess", *args]
    result = CliRunner().invoke(app, command)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


async def run_cli(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str]:
    return await asyncio.to_thread(cli, stack, monkeypatch, *args)


async def out_records(stack: LocalStack, mid: str) -> int:
    out = await consume_all(stack.settings.bootstrap_servers or "", f"out.{PROVIDER}")
    return sum(1 for r in out if dict(r.headers).get("kb-id") == mid.encode())


async def test_refused_referral_reprocessed_once_consent_is_recorded(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random()
    state = Path(stack.settings.state_dir)
    store = UserStore(state / USERS_FILE)
    store.set("ops.anna", Role.OPERATIONS, secrets.token_urlsafe(16))
    store.set("officer.bert", Role.COMPLIANCE, secrets.token_urlsafe(16))
    p = person(rng)
    case = f"CASE-{rng.randrange(10**9)}"
    r = await post(stack, "/referrals", demo.referral(case, "midden-nederland", p, date.today()))
    mid = r.json()["message_id"]
    answer = await stack.zvh[ZVH].wait_response(mid, 20)
    assert answer is not None and answer["status"] == "refused"
    # before the consent: the dry run says it would still be refused
    code, text = await run_cli(stack, monkeypatch, "--operator", "ops.anna", "--id", mid)
    assert code == 0, text
    assert "still refused for fivoor: no-consent" in text and "nothing was sent" in text
    r = await post(stack, "/consents", demo.consent(f"c-{rng.randrange(10**9)}", p["bsn"],
                                                    date.today()))
    assert (await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20) or {}).get(
        "status") == "accepted"
    # bad requests: a role that may not, an unknown operator, an unknown id -> nothing changes
    code, text = await run_cli(stack, monkeypatch, "--operator", "officer.bert", "--id", mid,
                               "--send")
    assert code == 2 and "may not re-process" in text, text
    code, text = await run_cli(stack, monkeypatch, "--operator", "nobody", "--id", mid, "--send")
    assert code == 2 and "not a console user" in text, text
    code, text = await run_cli(stack, monkeypatch, "--operator", "ops.anna", "--id",
                               "no-such-message", "--send")
    assert code == 1 and "no longer on the broker" in text, text
    assert await delivered_to(stack, PROVIDER, mid, timeout=0.5) is None
    parked = [x for x in await read_parked(stack.settings) if x.message_id == mid]
    assert len(parked) == 1 and parked[0].reason == "no-consent"
    assert parked[0].source_topic == topics.IN_REFERRAL.name
    # now: dry run, then send
    code, text = await run_cli(stack, monkeypatch, "--operator", "ops.anna", "--id", mid)
    assert code == 0 and "would deliver to fivoor" in text, text
    code, text = await run_cli(stack, monkeypatch, "--operator", "ops.anna", "--id", mid, "--send")
    assert code == 0 and "sent 1 of 1" in text, text
    path = await delivered_to(stack, PROVIDER, mid, timeout=15)
    assert path is not None, "the re-processed referral never reached the provider"
    # a plain replay of the parked record is still a duplicate; a request signed with another
    # valid key (the ZVH's) is refused as not authorised
    rec = parked[0]
    # the router parks a refused record under the person's data key (docs/erasure.md): an
    # attacker with the record replays it as the router first received it
    assert stack.router is not None and stack.router.state.datakeys is not None
    rec = dataclasses.replace(
        rec, value=open_layer(stack.router.state.datakeys.store, rec.value, rec.topic)
    )
    zvh_keys = stack.deployment.keyring(ZVH).current
    forged = new_request(rec.value, rec.place, "forged", zvh_keys)
    plain = [(k, v) for k, v in rec.headers if k not in PARKED_HEADERS]
    bootstrap = stack.settings.bootstrap_servers or ""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for headers in (plain, request_headers(rec.headers, forged, zvh_keys)):
            await producer.send_and_wait(topics.IN_REFERRAL.name, rec.value, key=rec.original_key,
                                         headers=headers)
    finally:
        await producer.stop()
    # the second re-process: the audit trail shows the delivery, the router skips it too
    for _ in range(100):
        rows, _ = decode_rows(await read_audit_topic(stack.settings))
        if any(x.kind == "delivery" and x.message_id == mid for x in rows):
            break
        await asyncio.sleep(0.1)
    code, text = await run_cli(stack, monkeypatch, "--operator", "ops.anna", "--id", mid, "--send")
    assert code == 0 and "delivered before to: fivoor" in text and "sent 1 of 1" in text, text
    for _ in range(100):
        refused = [x for x in await read_parked(stack.settings) if x.message_id == mid]
        if refused[-1].reason == "reprocess-not-authorised":
            break
        await asyncio.sleep(0.1)
    assert refused[-1].reason == "reprocess-not-authorised", refused
    assert await out_records(stack, mid) == 1, "delivered more than once"
    rows = []
    for _ in range(100):
        rows, _ = decode_rows(await read_audit_topic(stack.settings))
        mine = [x for x in rows if x.message_id == mid]
        if sum(x.kind == "reprocess" for x in mine) >= 4:
            break
        await asyncio.sleep(0.1)
    kinds = [x.kind for x in mine]
    assert kinds.index("decision-deny") < kinds.index("reprocess") < kinds.index("delivery")
    assert mine[kinds.index("decision-deny")].reason == "no-consent"
    assert kinds.count("delivery") == 1, kinds
    console = [x for x in mine if x.kind == "reprocess" and x.chain.endswith("-cli")]
    assert len(console) == 2 and all("ops.anna" in x.detail for x in console), console
    assert all(x.professional in (None, "ops.anna") for x in console)
    router_side = [x for x in mine if x.kind == "reprocess" and not x.chain.endswith("-cli")]
    assert len(router_side) == 2 and console[0].event_id in router_side[0].detail
    skipped = [x for x in mine if x.reason == "already-delivered"]
    assert skipped and skipped[0].recipient == PROVIDER
    assert json.loads(path.read_text())["type"] == "message"

    # Done when 2: `ketenbus trace` prints every hop in order
    code, text = await run_cli(stack, monkeypatch, "trace", mid)
    assert code == 2 and "every trace is audited" in text, text
    code, text = await run_cli(stack, monkeypatch, "trace", mid, "--user", "ops.anna")
    assert code == 0, text
    order = [
        "received zvh-midden-nederland @in.referral",
        "denied fivoor [no-consent]",
        "parked on rejected zvh-midden-nederland [no-consent]",
        "re-process requested console [reprocess-requested]",
        "received (re-process) zvh-midden-nederland @in.referral",
        "re-processed zvh-midden-nederland [reprocess]",
        "permitted fivoor",
        "delivered fivoor [delivered]",
        "not sent again fivoor [already-delivered]",
    ]
    at = [text.find(step) for step in order]
    assert -1 not in at and at == sorted(at), (at, text)
    assert p["bsn"] not in text and p["family_name"] not in text
    code, text = await run_cli(stack, monkeypatch, "trace", "no-such-message", "--user", "ops.anna")
    assert code == 1 and "unknown id" in text, text
    rows, _ = decode_rows(await read_audit_topic(stack.settings))
    traced = [x for x in rows if x.reason == "traced" and x.message_id == mid]
    assert traced and "ops.anna" in traced[-1].detail, "the trace itself is audited"
    # for a person (compliance): by BSN, pseudonymised, the search audited; the BSN is not shown
    code, text = await run_cli(stack, monkeypatch, "trace", "--bsn", p["bsn"], "--officer",
                               "officer.bert")
    assert code == 0, text
    assert f"message {mid}" in text and "this search is audited" in text
    assert p["bsn"] not in text and "denied fivoor [no-consent]" in text
