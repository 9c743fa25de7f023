"""Run ``python -m broker.apps.cli.main ARGS`` as operators do: a real subprocess, output read
line by line in a thread so tests can wait for a line without blocking."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

from tests.conftest import ROOT


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETENBUS_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


class Cli:
    """``python -m broker.apps.cli.main ARGS`` with its stdout read line by line in a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "broker.apps.cli.main", *args],
            cwd=ROOT,
            env={**cli_env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_line(self, fragment: str, timeout: float) -> str:
        try:
            while True:
                line = self.lines.get(timeout=timeout)
                self.output.append(line)
                if fragment in line:
                    return line
        except queue.Empty:
            raise AssertionError(
                f"no line with {fragment!r} within {timeout} s; output:\n" + "".join(self.output)
            ) from None

    def text(self) -> str:
        while not self.lines.empty():
            self.output.append(self.lines.get_nowait())
        return "".join(self.output)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
