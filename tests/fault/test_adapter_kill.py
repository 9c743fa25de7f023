"""An adapter killed in the middle of a batch file: after restart the file is processed
completely, and every referral in it reaches the provider exactly once. Inbox documents get
message ids derived from the file, so what was sent before the crash is re-sent as the *same*
messages, which the router de-duplicates."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.apps.synthetic import synthetic_bsn
from broker.config import Settings
from broker.kafka import EmbeddedBroker, make_producer
from broker.policy import default_policy
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.messaging import MessageMeta
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse
from tests.conftest import ROOT
from tests.helpers.cli import cli_env
from tests.helpers.kafka import consume_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]
ZVH, PROVIDER, DOCS = "zvh-midden-nederland", "fivoor", 300


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    b = EmbeddedBroker(state_dir=tmp_path / "broker")
    await b.astart()
    yield b
    await b.astop()


class Adapter:
    """``ketenbus adapter zvh`` in its own process, its log lines collected in a thread."""

    def __init__(self, bootstrap: str, state: Path, data: Path) -> None:
        env = {
            **cli_env(),
            "KETENBUS_BOOTSTRAP_SERVERS": bootstrap,
            "KETENBUS_STATE_DIR": str(state),
            "KETENBUS_SESSION_TIMEOUT_MS": "2000",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broker.apps.cli.main",
                "adapter",
                "zvh",
                "--party",
                ZVH,
                "--data-dir",
                str(data),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.sent = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def count_sent(self) -> int:
        while not self.lines.empty():
            if " sent " in self.lines.get_nowait():
                self.sent += 1
        return self.sent


async def test_adapter_killed_mid_batch_processes_the_file_completely_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    dep = create_local(state, demo.PARTIES)
    settings = Settings(bootstrap_servers=broker.bootstrap, state_dir=state)
    stack = LocalStack(
        settings,
        dep,
        default_policy(),
        StackOptions(data_dir=tmp_path / "data", session_timeout_ms=2000, adapters=[PROVIDER]),
    )
    await stack.start()
    zvh_data = tmp_path / "zvh"
    first: Adapter | None = None
    second: Adapter | None = None
    try:
        rng = random.Random(11)
        persons = [synthetic_bsn(rng) for _ in range(10)]
        zvh = dep.party_client(ZVH)
        producer = make_producer(settings)
        await producer.start()
        for i, bsn in enumerate(persons):
            rec = demo.consent(f"c-{i}", bsn, date.today())
            from adapters.zvh.format import parse_document

            record = parse_document(rec).to_record(ZVH)  # type: ignore[union-attr]
            meta = MessageMeta.new(EventCode.CONSENT, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT)
            key, value, headers = zvh.seal_message(consent_message(record, meta), bsn)
            await producer.send_and_wait(
                topics.IN_CONSENT.name, value=value, key=key, headers=headers
            )
        await producer.stop()
        for _ in range(200):
            if len(await consume_all(broker.bootstrap, topics.CONSENT.name)) >= len(persons):
                break
            await asyncio.sleep(0.1)

        batch = [
            demo.referral(
                f"BATCH-{n}",
                "midden-nederland",
                {"bsn": persons[n % len(persons)], "family_name": "T", "birth_date": "1980-01-01"},
                date.today(),
            )
            for n in range(DOCS)
        ]
        first = Adapter(broker.bootstrap, state, zvh_data)
        await asyncio.sleep(0.5)
        demo.drop(zvh_data / "inbox", "batch.json", json.dumps(batch).encode())
        deadline = time.monotonic() + 120
        while first.count_sent() < 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        killed_after = first.count_sent()
        assert 0 < killed_after < DOCS, "the kill must land in the middle of the batch"
        assert (zvh_data / "inbox" / "processing" / "batch.json").exists()

        second = Adapter(broker.bootstrap, state, zvh_data)
        receipt = zvh_data / "inbox" / "processed" / "batch.json.receipt.json"
        outbox = stack.outbox(PROVIDER)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (
            receipt.exists() and len(list(outbox.glob("*.json"))) >= DOCS
        ):
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # let any duplicate arrive
        assert receipt.exists(), "the file was not completed after the restart"
        assert len(json.loads(receipt.read_text())["accepted"]) == DOCS
        cases = []
        for f in outbox.glob("*.json"):
            bundle = json.loads(f.read_text())
            for e in bundle["entry"]:
                if e["resource"]["resourceType"] == "ServiceRequest":
                    cases.append(e["resource"]["identifier"][0]["value"])
        assert len(cases) == DOCS and set(cases) == {f"BATCH-{n}" for n in range(DOCS)}
        print(f"\nkilled after {killed_after} sent; {DOCS} delivered once")
    finally:
        for a in (first, second):
            if a is not None and a.proc.poll() is None:
                a.proc.send_signal(signal.SIGTERM)
                try:
                    a.proc.wait(20)
                except subprocess.TimeoutExpired:
                    a.proc.kill()
        await stack.stop()
