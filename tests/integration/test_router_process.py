"""``ketenbus router`` as its own process, as in production: its metrics endpoint comes from the
validated setting ``KETENBUS_METRICS_PORT`` and carries the component counters and the monitor's
figures (docs/operations.md, "Prometheus metrics"); a wrong port stops it at start, naming the
setting, instead of being ignored."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.kafka.embedded import EmbeddedBroker, free_port
from tests.conftest import ROOT
from tests.helpers.cli import cli_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    b = EmbeddedBroker(state_dir=tmp_path / "broker")
    await b.astart()
    yield b
    await b.astop()


def router_env(bootstrap: str, state: Path, port: str) -> dict[str, str]:
    return {
        **cli_env(),
        "KETENBUS_BOOTSTRAP_SERVERS": bootstrap,
        "KETENBUS_STATE_DIR": str(state),
        "KETENBUS_METRICS_PORT": port,
    }


def scrape(url: str, want: str, seconds: float = 60) -> str:
    deadline, text = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
            if want in text:
                return text
        except OSError:
            pass
        time.sleep(0.5)
    return text


async def test_the_router_process_serves_counters_and_figures_on_its_port(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    create_local(state, demo.PARTIES)
    port = free_port()
    log = tmp_path / "router.log"
    router = subprocess.Popen(
        [sys.executable, "-m", "broker.apps.cli.main", "router"],
        cwd=ROOT, env=router_env(broker.bootstrap, state, str(port)),
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        text = scrape(f"http://127.0.0.1:{port}/metrics", "ketenbus_monitor_snapshot_timestamp")
        assert "ketenbus_router_route_seconds" in text, log.read_text()
        assert "ketenbus_monitor_snapshot_timestamp_seconds" in text, log.read_text()
    finally:
        router.terminate()
        assert router.wait(timeout=60) == 0, log.read_text()


@pytest.mark.parametrize("port", ["not-a-port", "70000"])
async def test_a_wrong_metrics_port_stops_the_router_naming_the_setting(
    broker: EmbeddedBroker, tmp_path: Path, port: str
) -> None:
    state = tmp_path / "state"
    create_local(state, demo.PARTIES)
    done = subprocess.run(
        [sys.executable, "-m", "broker.apps.cli.main", "router"],
        cwd=ROOT, env=router_env(broker.bootstrap, state, port),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "KETENBUS_METRICS_PORT" in done.stderr
