"""The router publishes its audit chain's signed head on ``audit-checkpoint`` at the configured
cadence and at a clean stop (docs/audit-format.md, checkpoints), over the embedded broker: the
last checkpoint names exactly the last record of the router's chain, it verifies under the key
the registry declares for that chain, and ``ketenbus audit checkpoint export`` keeps it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest

from broker.apps.scenarios import demo
from broker.audit.chain import ChainRecord
from broker.audit.checkpoint import Checkpoint, latest, read_checkpoints, verify_checkpoint
from broker.audit.signers import signers_from_registry
from schemas import topics
from tests.conftest import ROOT
from tests.helpers.cli import cli_env
from tests.helpers.kafka import consume_all
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration


async def test_the_router_publishes_signed_heads_at_its_cadence_and_at_stop(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with running_stack(
        kafka_bootstrap, tmp_path / "state", demo.PARTIES, audit_checkpoint_seconds=0.1
    ) as stack:
        assert stack.http_url
        async with httpx.AsyncClient(
            base_url=stack.http_url, timeout=10, headers=stack.http_headers
        ) as http:
            for i in range(3):
                doc = demo.consent(f"c-cp-{i}", "999990019", date.today())
                r = await http.post("/consents", json=doc)
                await stack.zvh["zvh-midden-nederland"].wait_response(r.json()["message_id"], 20)
                await asyncio.sleep(0.2)  # past the cadence: a checkpoint per batch
    deployment = stack.deployment

    signers = signers_from_registry(deployment.registry)
    records = [ChainRecord.decode(r.value) for r in await consume_all(
        kafka_bootstrap, topics.AUDIT.name) if r.value]
    chain = deployment.registry.audit_chain_of("router")
    assert chain is not None
    router = [r for r in records if r.chain == chain.chain]
    assert router, "the router wrote its decisions"
    raw = [r.value for r in await consume_all(kafka_bootstrap, topics.AUDIT_CHECKPOINT.name)]
    cps = [Checkpoint.decode(v) for v in raw if v]
    ours = [cp for cp in cps if cp.chain == chain.chain]
    assert len(ours) >= 2, "at the cadence while running, and once more at the stop"
    for cp in ours:
        verify_checkpoint(cp, signers)
    head = max(router, key=lambda r: r.seq)
    assert (latest(ours)[chain.chain].seq, latest(ours)[chain.chain].hash) == (head.seq, head.hash)

    out = tmp_path / "checkpoints.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "broker.apps.cli.main", "audit", "checkpoint", "export",
         "--bootstrap", kafka_bootstrap, "--out", str(out)],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kept = {Checkpoint.decode(line).chain: Checkpoint.decode(line) for line in
            read_checkpoints(out)}
    assert kept[chain.chain] == latest(ours)[chain.chain]


async def test_a_clean_stop_publishes_the_head_even_before_the_cadence(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With an hour's cadence nothing is due while running; the stop itself publishes."""
    async with running_stack(
        kafka_bootstrap, tmp_path / "state", demo.PARTIES, audit_checkpoint_seconds=3600
    ) as stack:
        assert stack.http_url
        async with httpx.AsyncClient(
            base_url=stack.http_url, timeout=10, headers=stack.http_headers
        ) as http:
            r = await http.post("/consents", json=demo.consent("c-stop", "999990019",
                                                               date.today()))
            await stack.zvh["zvh-midden-nederland"].wait_response(r.json()["message_id"], 20)
    chain = stack.deployment.registry.audit_chain_of("router")
    assert chain is not None
    records = [ChainRecord.decode(r.value) for r in await consume_all(
        kafka_bootstrap, topics.AUDIT.name) if r.value]
    head = max((r for r in records if r.chain == chain.chain), key=lambda r: r.seq)
    cps = [Checkpoint.decode(r.value) for r in await consume_all(
        kafka_bootstrap, topics.AUDIT_CHECKPOINT.name) if r.value]
    ours = [cp for cp in cps if cp.chain == chain.chain]
    assert [(cp.seq, cp.hash) for cp in ours] == [(head.seq, head.hash)]
    verify_checkpoint(ours[0], signers_from_registry(stack.deployment.registry))
