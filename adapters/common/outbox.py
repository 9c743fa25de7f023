"""An outbox folder: one file per delivered message, written atomically, named by message id.

The file name doubles as the de-duplication record: a message id already in the outbox is not
written twice, so redelivery after a crash (at-least-once) is exactly-once at this edge.

A correction or withdrawal of a delivered message (docs/flows/correction.md) is written like any
delivery, under its own id, and the original gets a status file beside it,
``<original id>.status.json``: ``{"message_id", "status": "corrected" | "withdrawn",
"corrections": [ids, oldest first], "withdrawn_by": id | null}``. The original itself is never
changed or removed: it is the recipient's record (it is a controller with its own duties, e.g.
under the Wgbo); the status file tells its system that the sender corrected or withdrew it
(AVG art. 19).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"^[A-Za-z0-9\-\._]+$")


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._seen = {p.name.split(".", 1)[0] for p in directory.iterdir() if p.is_file()}

    def seen(self, message_id: str) -> bool:
        return message_id in self._seen

    def status_path(self, message_id: str) -> Path:
        if not _SAFE.match(message_id):
            raise ValueError("message id is not safe as a file name")
        return self.directory / f"{message_id}.status.json"

    def status(self, message_id: str) -> dict[str, Any] | None:
        """The status file of a delivered message, or None when it was neither corrected nor
        withdrawn."""
        path = self.status_path(message_id)
        if not path.exists():
            return None
        found: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return found

    def follow_up(self, original_id: str, follow_up_id: str, *, withdrawal: bool) -> Path:
        """Mark ``original_id`` corrected or withdrawn by ``follow_up_id`` in its status file
        (written atomically; applying the same follow-up again changes nothing)."""
        if not _SAFE.match(follow_up_id):
            raise ValueError("message id is not safe as a file name")
        status = self.status(original_id) or {
            "message_id": original_id,
            "status": "corrected",
            "corrections": [],
            "withdrawn_by": None,
        }
        if withdrawal:
            status["withdrawn_by"] = status["withdrawn_by"] or follow_up_id
        elif follow_up_id not in status["corrections"]:
            status["corrections"].append(follow_up_id)
        status["status"] = "withdrawn" if status["withdrawn_by"] else "corrected"
        path = self.status_path(original_id)
        self._atomic(path, (json.dumps(status, indent=2) + "\n").encode())
        self._seen.add(original_id)
        return path

    def _atomic(self, path: Path, content: bytes) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def write(self, message_id: str, content: bytes, suffix: str = ".json") -> Path | None:
        """Write once; returns the path, or None when this message id was already written."""
        if not _SAFE.match(message_id):
            raise ValueError("message id is not safe as a file name")
        if message_id in self._seen:
            return None
        path = self.directory / f"{message_id}{suffix}"
        tmp = self.directory / f".{message_id}{suffix}.tmp"
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._seen.add(message_id)
        return path
