"""``ketenbus monitor --once`` against a running ``ketenbus up --scenario demo``, found through
its run file (no settings), and the same figures on ``ketenbus up``'s metrics endpoint."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers.cli import Cli, cli_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_monitor_shows_the_demo_figures_of_a_running_up(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = Cli("up", "--scenario", "demo", "--http-port", "0", "--web-port", "0",
             "--metrics-port", "0", env={"KETENBUS_STATE_DIR": str(state)})
    try:
        up.wait_for_line("running — press Ctrl-C to stop", 150)
        info = json.loads((state / "run" / "up.json").read_text())
        assert info["web_url"].startswith("http://127.0.0.1:")
        text = up.text()
        assert info["web_url"] in text and "sign in as operations" in text
        creds = json.loads((state / "web" / "demo-credentials.json").read_text())
        assert creds["compliance"] in text, "the generated demo password is printed"
        # the monitor after the sample traffic is routed: bounded retries, not a fixed wait
        for _ in range(20):
            done = subprocess.run(
                [sys.executable, "-m", "broker.apps.cli.main", "monitor", "--once"], cwd=ROOT,
                env={**cli_env(), "KETENBUS_STATE_DIR": str(state), "COLUMNS": "180"},
                capture_output=True, text=True, timeout=90)
            assert done.returncode == 0, done.stdout + done.stderr
            out = done.stdout
            if re.search(r"│ answered\s+│\s+1 │", out):
                break
        with urllib.request.urlopen(info["metrics_url"], timeout=10) as resp:
            scraped = resp.read().decode()
    finally:
        if up.proc.poll() is None:
            up.proc.send_signal(signal.SIGINT)
            up.proc.wait(60)
        up.kill()
    # the demo: referrals for three people delivered (2 to fivoor, 1 to transfore), plus the
    # monitoring sample's case that it refers before escalating it (to fivoor), one refused
    # without consent, one after a revocation, one malformed file
    assert re.search(r"│\s+(3|4) │\s+\S+ (s|min) │ fivoor (2|3), transfore 1\s+│\s+0 │", out), out
    assert re.search(r"│ rejected\s+│ no-consent\s+│\s+1 │", out), out
    assert re.search(r"│ rejected\s+│ consent-revoked\s+│\s+1 │", out), out
    assert re.search(r"│ dead-letter\s+│ missing\s+│\s+1 │", out), out
    assert re.search(r"│ awaiting-answer\s+│\s+1 │", out)
    assert re.search(r"│ answered\s+│\s+1 │", out)
    assert "ketenbus-router" in out and "in.referral" in out
    assert re.search(r"│ midden-nederland\s+│\s+\d+ / 16 │\s+\d+ / 12 │\s+\d+ / 6 │", out), out
    assert not re.search(r"p-[a-z2-7]{26}", out), "no pseudonyms on this screen"
    # the demo's three, and the sample's case once its referral was routed
    assert re.search(r"^ketenbus_referrals_waiting [34]\.0$", scraped, re.M), scraped
    assert 'ketenbus_refused_messages_total{reason="no-consent",topic="rejected"} 1.0' in scraped
    assert "stopped cleanly" in up.text()
    assert not (state / "run" / "up.json").exists(), "the run file goes with the run"
