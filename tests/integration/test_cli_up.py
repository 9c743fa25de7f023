"""``ketenbus up`` as a person runs it: a real subprocess on the embedded broker."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers.cli import Cli
from tests.helpers.kafka import processes_with_arg, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_up_runs_the_demo_and_reports_each_outcome(tmp_path: Path) -> None:
    env = {"KETENBUS_STATE_DIR": str(tmp_path / "state")}
    cli = Cli(
        "up",
        "--scenario",
        "demo",
        "--exit-when-done",
        "--http-port",
        "0",
        "--web-port",
        "0",
        "--metrics-port",
        "0",
        env=env,
    )
    try:
        code = cli.proc.wait(150)
    finally:
        cli.kill()
    out = cli.text()
    assert code == 0, out
    assert "decision-permit" in out and "decision-deny" in out
    assert "no-consent" in out and "consent-revoked" in out
    # the refusal is reported by reference: a file name can hold a BSN or a name (issue 20)
    assert "inbox file ref-" in out
    table = out.split("Demo referrals")[-1]
    assert table.count("as expected") == 5 and "UNEXPECTED" not in table, out
    assert "stopped cleanly" in out
    failed = tmp_path / "state" / "data" / "zvh-midden-nederland" / "inbox" / "failed"
    assert (failed / "aanmelding-kapot.json.error.json").exists()
    # the ZVH's intake token: made at run time, 0600, its use printed but never the token
    token = tmp_path / "state" / "secrets" / "zvh-midden-nederland.intake-token"
    assert token.stat().st_mode & 0o777 == 0o600
    squeezed = "".join(out.split())  # however the console wrapped it
    assert "".join(f"Authorization: Bearer $(cat {token})".split()) in squeezed
    assert token.read_text().strip() not in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_runs_until_signalled_and_stops_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    cli = Cli(
        "up",
        "--http-port",
        "0",
        "--web-port",
        "0",
        "--metrics-port",
        "0",
        env={"KETENBUS_STATE_DIR": str(tmp_path / "s")},
    )
    try:
        cli.wait_for_line("running — press Ctrl-C to stop", 90)
        cli.proc.send_signal(sig)
        code = cli.proc.wait(60)
    finally:
        cli.kill()
    assert code == 0, cli.text()
    assert "stopped cleanly" in cli.text()
    assert wait_until(lambda: not processes_with_arg(str(cli.proc.pid)), 5)


def test_up_refuses_a_bad_setting_by_name() -> None:
    cli = Cli("up", env={"KETENBUS_SECURITY_PROTOCOL": "CARRIER-PIGEON"})
    code = cli.proc.wait(60)
    assert code == 2
    assert "KETENBUS_SECURITY_PROTOCOL" in cli.text()


def test_up_says_so_when_its_http_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cli = Cli(
            "up",
            "--http-port",
            str(port),
            "--web-port",
            "0",
            "--metrics-port",
            "0",
            env={"KETENBUS_STATE_DIR": str(tmp_path)},
        )
        code = cli.proc.wait(90)
    assert code == 2, cli.text()
    assert f"port {port} on 127.0.0.1 is in use" in cli.text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_national_scenario_stops_when_signalled_before_its_end(
    sig: signal.Signals, tmp_path: Path
) -> None:
    """`make up` runs a year; an operator's Ctrl-C (or `docker stop`) must not wait for it."""
    cli = Cli(
        "up",
        "--scenario",
        "national",
        "--exit-when-done",
        "--http-port",
        "0",
        env={"KETENBUS_STATE_DIR": str(tmp_path / "s")},
    )
    try:
        cli.wait_for_line("simulating 12 month(s)", 120)
        cli.proc.send_signal(sig)
        code = cli.proc.wait(60)
    finally:
        cli.kill()
    out = cli.text()
    assert code == 130, out
    assert "interrupted before the end of the scenario" in out
    assert "stopped cleanly" in out
    assert wait_until(lambda: not processes_with_arg(str(cli.proc.pid)), 5)
