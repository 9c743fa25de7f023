"""``ketenbus erase`` and ``ketenbus prune`` as operators call them (Typer's runner, the real
app): wrong and hostile input gets a specific refusal and the BSN is never echoed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.apps.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        ([], None, "exactly one of --person and --case"),
        (["--person", "111222333", "--case", "X"], None, "exactly one of --person and --case"),
        (["--person", "123456789"], None, "not a valid BSN"),  # fails the eleven test
        (["--person", "-"], "12345678\u0000; rm -rf /\n", "not a valid BSN"),
        (["--person", "-"], "", "not a valid BSN"),
    ],
)
def test_erase_refuses_wrong_input_without_echoing_it(
    args: list[str], stdin: str | None, expected: str
) -> None:
    result = runner.invoke(app, ["erase", *args], input=stdin)
    assert result.exit_code == 2
    assert expected in result.output
    assert "123456789" not in result.output and "111222333" not in result.output


def test_erase_needs_a_kafka(tmp_path: Path) -> None:
    result = runner.invoke(app, ["erase", "--person", "111222333"])
    assert result.exit_code == 2
    assert "KETENBUS_BOOTSTRAP_SERVERS" in result.output
    assert "111222333" not in result.output


def test_prune_reports_counts_only(tmp_path: Path) -> None:
    old = tmp_path / "zvh" / "inbox" / "failed" / "Jansen-999990019.json"
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    then = time.time() - 40 * 86400
    os.utime(old, (then, then))
    result = runner.invoke(app, ["prune", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "inbox.failed: 1 removed, 0 kept" in result.output
    assert "Jansen" not in result.output and not old.exists()
