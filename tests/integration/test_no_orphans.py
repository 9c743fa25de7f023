"""A broker nobody stopped must not outlive the Python process that started it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers.kafka import processes_with_arg, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SCRIPT = """
import sys
from pathlib import Path
from broker.kafka.embedded import EmbeddedBroker
broker = EmbeddedBroker(state_dir=Path(sys.argv[1]))
broker.start()
print(broker.port, flush=True)
if sys.argv[2] == "raise":
    raise SystemExit("leaving with an error, broker still running")
"""


@pytest.mark.parametrize("how", ["normal", "raise"])
def test_interpreter_exit_stops_the_broker(tmp_path: Path, how: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), how],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == (0 if how == "normal" else 1), result.stderr
    port = int(result.stdout.strip())
    assert wait_until(lambda: processes_with_arg(f"tcp://127.0.0.1:{port}") == [], 5)
