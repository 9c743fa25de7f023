"""Browser tests: Playwright (the Python package) drives the Debian ``chromium`` binary headless
against a real ``ketenbus up --scenario demo`` on the embedded broker. Playwright's own browser
download is not used (it cannot be fetched here); ``make test`` installs ``chromium`` when it is
missing and sets KETENBUS_TEST_REQUIRE_BROWSER=1, so there a missing browser fails instead of
skipping. Screenshots and the CSV download go to ``tests/artifacts/browser/``."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.helpers.cli import Cli

ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
REQUIRE_ENV = "KETENBUS_TEST_REQUIRE_BROWSER"
REQUIRED = os.environ.get(REQUIRE_ENV) == "1"  # read at import: test fixtures clear KETENBUS_*
# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _missing(why: str) -> None:
    if REQUIRED:
        pytest.fail(f"{why} ({REQUIRE_ENV}=1)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Playwright's sync API marks the thread's event loop as running while it is open, which
    would stop every asyncio test after it: it lives for one module only."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed: pip install -e '.[test]'")
    path = chromium_path()
    if path is None:
        _missing("no chromium binary: apt-get install chromium (make test does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Running:
    """A running ``ketenbus up`` as a person would start it."""

    cli: Cli
    state: Path
    info: dict[str, Any]
    credentials: dict[str, str]

    @property
    def url(self) -> str:
        return str(self.info["web_url"])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = tmp_path_factory.mktemp("up")
    cli = Cli("up", "--scenario", "demo", "--http-port", "0", "--web-port", "0",
              "--metrics-port", "0", env={"KETENBUS_STATE_DIR": str(state)})
    try:
        cli.wait_for_line("running — press Ctrl-C to stop", 150)
        info = json.loads((state / "run" / "up.json").read_text())
        creds = json.loads((state / "web" / "demo-credentials.json").read_text())
        yield Running(cli, state, info, creds)
    finally:
        if cli.proc.poll() is None:
            cli.proc.send_signal(signal.SIGINT)
            try:
                cli.proc.wait(60)
            finally:
                cli.kill()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    # a Dutch user's browser (Accept-Language nl-NL); a test may switch to English (issue 17)
    context = browser.new_context(viewport={"width": 1280, "height": 860},
                                  accept_downloads=True, locale="nl-NL",
                                  timezone_id="Europe/Amsterdam")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture(scope="module")
def rng() -> random.Random:
    return random.Random()
