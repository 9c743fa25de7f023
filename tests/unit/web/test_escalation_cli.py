"""``ketenbus escalation answer`` refuses bad input before anything is sent: an action that is
not an answer (``move-national`` is the router's), an assignment without an assignee, a question
without a note, an unknown party -- each with exit code 2 and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.apps.deployment import LocalParty, create_local
from schemas.vocab import PartyRole

ARGS = ["escalation", "answer", "--party", "national", "--escalation", "E-1", "--raised-by",
        "zvh-a", "--zvh", "zvh-a", "--case", "C-1"]  # fmt: skip


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    create_local(tmp_path, [LocalParty("national", "LCP", PartyRole.NATIONAL_COORDINATION),
                            LocalParty("zvh-a", "ZVH", PartyRole.ZVH, "r")])  # fmt: skip
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--action", "move-national"], "unknown action"),
        (["--action", "assign"], "assignee"),
        (["--action", "request-info"], "note"),
        (["--action", "resolve", "--level", "planetary"], "--level"),
        (["--action", "resolve", "--party", "nobody"], "nobody"),
    ],
)
def test_bad_answers_are_refused_before_sending(state: Path, extra: list[str], says: str) -> None:
    result = CliRunner().invoke(app, [*ARGS, *extra])
    assert result.exit_code == 2, result.output
    assert says in result.output
