"""``ketenbus kafka`` as operators run it: a real subprocess, stopped with SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.kafka import topic_partitions
from broker.kafka.embedded import free_port
from schemas.topics import catalogue, outbound
from tests.conftest import ROOT
from tests.helpers.cli import Cli, cli_env
from tests.helpers.kafka import port_open, processes_with_arg, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 15.0  # Tansu waits ~5 s for connected clients; our stop kills after 8 s


@pytest.fixture
def cli_factory() -> Iterator[type[Cli]]:
    started: list[Cli] = []

    class Tracked(Cli):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for cli in started:  # never leave a CLI (and its broker) behind, even when a test fails
        cli.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_kafka_command_serves_until_signalled(
    cli_factory: type[Cli], tmp_path: Path, sig: signal.Signals
) -> None:
    port = free_port()
    cli = cli_factory("kafka", "--port", str(port), "--state-dir", str(tmp_path), "--party", "p1")
    line = cli.wait_for_line("export KETENBUS_BOOTSTRAP_SERVERS=", STARTUP_TIMEOUT)
    assert line.strip() == f"export KETENBUS_BOOTSTRAP_SERVERS=127.0.0.1:{port}"
    assert port_open(port)
    actual = asyncio.run(topic_partitions(f"127.0.0.1:{port}"))
    for spec in (*catalogue(), outbound("p1")):
        assert actual.get(spec.name) == spec.partitions, spec.name
    broker_pids = processes_with_arg(f"tcp://127.0.0.1:{port}")
    assert len(broker_pids) == 1

    cli.proc.send_signal(sig)
    assert cli.proc.wait(EXIT_TIMEOUT) == 0, cli.text()
    assert "Stopped (status 0)." in cli.text()
    assert wait_until(lambda: processes_with_arg(f"tcp://127.0.0.1:{port}") == [], 5)
    assert not port_open(port)
    assert (tmp_path / "logs" / f"tansu-{port}.log").is_file()


def test_kafka_command_without_topics(cli_factory: type[Cli], tmp_path: Path) -> None:
    port = free_port()
    cli = cli_factory("kafka", "-p", str(port), "--state-dir", str(tmp_path), "--no-create-topics")
    cli.wait_for_line("export KETENBUS_BOOTSTRAP_SERVERS=", STARTUP_TIMEOUT)
    assert asyncio.run(topic_partitions(f"127.0.0.1:{port}")) == {}
    cli.proc.send_signal(signal.SIGINT)
    assert cli.proc.wait(EXIT_TIMEOUT) == 0, cli.text()


def test_kafka_command_port_in_use_fails_clearly(cli_factory: type[Cli], tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cli = cli_factory("kafka", "--port", str(port), "--state-dir", str(tmp_path))
        assert cli.proc.wait(STARTUP_TIMEOUT) == 1
    assert f"port {port} on 127.0.0.1 is already in use" in cli.text()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.apps.cli.main", *args],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_help_lists_the_kafka_command() -> None:
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert "kafka" in result.stdout.split()
    assert "Run a development Kafka" in result.stdout


def test_kafka_help_explains_the_options() -> None:
    result = _run("kafka", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--port", "--state-dir", "--create-topics", "--no-create-topics", "--config"):
        assert option in result.stdout
    assert "export KETENBUS_BOOTSTRAP_SERVERS=127.0.0.1:PORT" in result.stdout


def test_topics_command_creates_the_catalogue_on_a_configured_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    party = f"cli-{free_port()}"
    env = {**cli_env(), "KETENBUS_BOOTSTRAP_SERVERS": kafka_bootstrap}
    argv = [sys.executable, "-m", "broker.apps.cli.main", "topics", "--wait", "5", "--party", party]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    actual = asyncio.run(topic_partitions(kafka_bootstrap))
    assert actual[outbound(party).name] == outbound(party).partitions
    assert f"out.{party}" in result.stdout


def test_topics_command_without_bootstrap_explains() -> None:
    result = _run("topics", "--wait", "0")
    assert result.returncode == 2
    assert "KETENBUS_BOOTSTRAP_SERVERS is not set" in result.stdout + result.stderr


def test_invalid_configuration_exits_2_naming_the_setting() -> None:
    env = {**cli_env(), "KETENBUS_SECURITY_PROTOCOL": "TLS"}
    argv = [sys.executable, "-m", "broker.apps.cli.main", "kafka", "--no-create-topics"]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "KETENBUS_SECURITY_PROTOCOL (security_protocol): must be one of" in " ".join(
        (result.stdout + result.stderr).split()
    )
