"""Where a running ``ketenbus up`` can be found: ``<state dir>/run/up.json`` holds the Kafka
bootstrap and the URLs of the web app and the metrics endpoint (never a secret), so
``ketenbus monitor`` on the same machine needs no settings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RUN_FILE = Path("run") / "up.json"


def path(state_dir: Path) -> Path:
    return Path(state_dir) / RUN_FILE


def write(state_dir: Path, info: dict[str, Any]) -> Path:
    """Write the run file atomically (mode 0600)."""
    target = path(state_dir)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({**info, "pid": os.getpid()}, f, indent=2)
    os.replace(tmp, target)
    return target


def read(state_dir: Path) -> dict[str, Any] | None:
    """The run file of a ``ketenbus up`` that is still running, else None."""
    try:
        info = json.loads(path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = info.get("pid") if isinstance(info, dict) else None
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)  # is it still running?
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # running, as another user
    return dict(info)


def remove(state_dir: Path) -> None:
    path(state_dir).unlink(missing_ok=True)
