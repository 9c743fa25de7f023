"""An outbox folder: one file per delivered message, written atomically, named by message id.

The file name doubles as the de-duplication record: a message id already in the outbox is not
written twice, so redelivery after a crash (at-least-once) is exactly-once at this edge.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SAFE = re.compile(r"^[A-Za-z0-9\-\._]+$")


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._seen = {p.name.split(".", 1)[0] for p in directory.iterdir() if p.is_file()}

    def seen(self, message_id: str) -> bool:
        return message_id in self._seen

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
