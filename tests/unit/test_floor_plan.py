"""The floor plan (``docs/architecture.md``): packages import only downward.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and ``make test`` runs
``lint-imports``. These tests show the check is real: the tree as it is keeps every contract,
and a copy of the tree with one deliberate upward import — at module level, inside a function
(the old way to dodge a cycle) or under ``TYPE_CHECKING`` — breaks it, naming the import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [*LINT, "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ("broker", "adapters", "schemas"):
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.json")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


UPWARD = [
    # (file that gains the import, the import, what must be named)
    ("adapters/zvh/format.py", "from broker.router import pipeline", "adapters.zvh.format"),
    ("adapters/common/inbox.py", "from broker.apps import deployment", "adapters.common.inbox"),
    ("broker/router/recipients.py", "def _dodge() -> None:\n    from broker.apps.web import app",
     "broker.router.recipients"),
    ("broker/component/health.py",
     "from typing import TYPE_CHECKING\n"
     "if TYPE_CHECKING:\n    from broker.router.facts import Fact",
     "broker.component.health"),
    ("schemas/topics.py", "import broker.config", "schemas.topics"),
    ("broker/policy/decision.py", "from broker.audit import chain", "broker.policy.decision"),
    ("adapters/zvh/translate.py", "from adapters.provider import journal", "adapters.zvh"),
    ("broker/apps/monitoring/state.py", "from broker.apps.web import views",
     "broker.apps.monitoring.state"),
    ("broker/router/pipeline.py", "from broker.router import service", "broker.router.pipeline"),
]


@pytest.mark.parametrize(("path", "statement", "named"), UPWARD, ids=[u[0] for u in UPWARD])
def test_a_deliberate_upward_import_breaks_the_plan(
    tree: Path, path: str, statement: str, named: str
) -> None:
    target = tree / path
    target.write_text(target.read_text(encoding="utf-8") + "\n" + statement + "\n")
    result = lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout.upper() and named in result.stdout
