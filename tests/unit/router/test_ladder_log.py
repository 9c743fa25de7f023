"""A restarted router folds the same escalation ladder from its ladder log (the ``escalation``
topic): cases it routed, escalations and answers -- so an escalation for a case referred before
the restart is not refused as unknown, and a resolved one stays resolved. No Kafka: the records
the pipeline produced are applied to a fresh state, as ``ladder_log.rebuild`` does at start."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.generate.examples import examples
from broker.policy import default_policy
from broker.router.ladder_log import apply_record
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from schemas.examples import EXAMPLES_DIR
from schemas.messaging import dumps, parse_message
from schemas.vocab import PartyRole


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    from broker.apps.generate.examples import PARTY_ROLES, REGION, ROUTER

    regional = {PartyRole.ZVH, PartyRole.COORDINATING_PROVIDER, PartyRole.EXECUTING_PROVIDER}
    return create_local(tmp_path_factory.mktemp("ladderlog"), [
        LocalParty(pid, pid, role, REGION if role in regional else None)
        for pid, role in PARTY_ROLES.items() if pid != ROUTER
    ])  # fmt: skip


def _send(pipe: Pipeline, dep: Deployment, name: str, now: datetime) -> list[Incoming]:
    bundle = json.loads((EXAMPLES_DIR / f"{name}.json").read_text("utf-8"))
    bundle["timestamp"] = now.isoformat()
    msg = parse_message(dumps(bundle))
    key, value, headers = dep.party_client(msg.meta.sender).seal_message(
        bundle, msg.subject_bsn(), now=now
    )
    result = pipe.route(Incoming("in.example", key, value, headers), now)
    return [Incoming(r.topic, r.key, r.value, r.headers) for r in result.records
            if r.topic == "escalation"]  # fmt: skip


def test_a_restarted_router_folds_the_same_ladder_from_its_log(deployment: Deployment) -> None:
    assert {e.name for e in examples()} >= {"referral", "escalation", "escalation-answer"}
    now = datetime.now(UTC).replace(microsecond=0)
    pipe = Pipeline(deployment.router_state(default_policy()))
    log = []
    for name in ("referral", "escalation", "escalation-answer"):
        log += _send(pipe, deployment, name, now)
    assert log, "the pipeline logs what changed in the ladder"
    for rec in log:  # no case number, party or person in clear in the record
        assert b"ZVH-2024-0042" not in rec.value and b"ZVH-2024-0042" not in (rec.key or b"")
    before = pipe.state.ladder
    fresh = deployment.router_state(default_policy())
    applied = sum(apply_record(fresh, r.key, r.value, r.headers) for r in log)
    assert applied >= 3
    after = fresh.ladder
    assert set(after.cases) == set(before.cases)
    assert {k: (s.status, s.level, s.assignee) for k, s in after.escalations.items()} == {
        k: (s.status, s.level, s.assignee) for k, s in before.escalations.items()
    }
    # a well-formed record forged by another party (sealed for the router, signed with its own
    # valid key) is skipped, not folded: only the router writes its log
    zvh = deployment.party_client("zvh-voorbeeld")
    event = (
        b'[{"k": "referral", "zvh": "zvh-voorbeeld", "case": "FORGED",'
        b' "at": "2026-01-01T00:00:00+00:00"}]'
    )
    k, v, h = zvh.seal_for_router(event, "ladder-log", "forged-1")
    other = deployment.router_state(default_policy())
    assert apply_record(other, k, v, h) == 0
    assert other.ladder.cases == {}
