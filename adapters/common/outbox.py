"""An outbox folder: one file per delivered message, written atomically, named by message id.

The file name doubles as the de-duplication record: a message id already in the outbox is not
written twice, so redelivery after a crash (at-least-once) is exactly-once at this edge.

Per fetched batch of deliveries (:meth:`Outbox.hold`) the files are written first and made
durable together (:meth:`Outbox.make_durable`: each file synced, renamed into place, the folder
synced once), before the batch's offsets are committed: one durability step per batch instead of
per message, the same guarantee (a delivery is acknowledged to Kafka only once it is durably in
the outbox, issue 19).

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
        self._seen = {
            p.name.split(".", 1)[0]
            for p in directory.iterdir()
            if p.is_file() and not p.name.startswith(".")  # a temporary file is no delivery
        }
        self._held: list[tuple[str, Path, Path]] | None = None  # (id, temporary, final)

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
        if self._held and any(mid == original_id for mid, _, _ in self._held):
            # the original came in the same batch: durable first, as its status file makes
            # its id count as delivered after a restart
            self.make_durable()
            self.hold()
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
        """Write once; returns the path, or None when this message id was already written.
        While held (:meth:`hold`) the file gets its name only in :meth:`make_durable`."""
        if not _SAFE.match(message_id):
            raise ValueError("message id is not safe as a file name")
        if message_id in self._seen:
            return None
        path = self.directory / f"{message_id}{suffix}"
        tmp = self.directory / f".{message_id}{suffix}.tmp"
        with open(tmp, "wb") as f:
            f.write(content)
            if self._held is None:
                f.flush()
                os.fsync(f.fileno())
        if self._held is None:
            os.replace(tmp, path)
        else:
            self._held.append((message_id, tmp, path))
        self._seen.add(message_id)
        return path

    # --- one durability step per batch -------------------------------------------------------

    def hold(self) -> None:
        """Hold the files written from now on until :meth:`make_durable` (or :meth:`discard`)."""
        if self._held is None:
            self._held = []

    @property
    def holding(self) -> int:
        """How many written files wait for :meth:`make_durable`."""
        return len(self._held or ())

    def make_durable(self) -> int:
        """Sync every held file, give it its name, sync the folder once (so the names survive a
        power loss too); returns how many. Until then a crash leaves only temporary files,
        which are no delivery: the batch is redelivered and written again."""
        held, self._held = self._held or [], None
        if not held:
            return 0
        for _, tmp, _ in held:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for _, tmp, path in held:
            os.replace(tmp, path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(held)

    def discard(self) -> int:
        """Forget the held files (their batch failed before it was settled): they are removed
        and their message ids count as not delivered, so the redelivery writes them."""
        held, self._held = self._held or [], None
        for message_id, tmp, _ in held:
            tmp.unlink(missing_ok=True)
            self._seen.discard(message_id)
        return len(held)
