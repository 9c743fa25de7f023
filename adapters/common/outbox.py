"""An outbox folder: one file per delivered message, written atomically, named by message id.

The file name doubles as the de-duplication record: a message id already in the outbox is not
written twice, so redelivery after a crash (at-least-once) is exactly-once at this edge.

Per fetched batch of deliveries (:meth:`Outbox.hold`) each file is written and synced as a
hidden temporary file by a small pool of writer threads while the adapter opens the next
deliveries, and the batch is made durable together (:meth:`Outbox.make_durable`: every write
awaited, each file renamed into place, the folder synced once) before the batch's offsets are
committed: the same guarantee (a delivery is acknowledged to Kafka only once it is durably in the
outbox, issue 19). Creating a file and ``fsync`` release the GIL, and several syncs at once share
the file system's journal commits: on this project's ext4 one file after another cost about
2.2 ms each, eight at a time 0.1-0.3 ms (docs/performance.md, issue 19).

A correction or withdrawal of a delivered message (docs/flows/correction.md) is written like any
delivery, under its own id, and the original gets a status file beside it,
``<original id>.status.json``: ``{"message_id", "status": "corrected" | "withdrawn",
"corrections": [ids, oldest first], "withdrawn_by": id | null}``. The original itself is never
changed or removed: it is the recipient's record (it is a controller with its own duties, e.g.
under the Wgbo); the status file tells its system that the sender corrected or withdrew it
(AVG art. 19).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"^[A-Za-z0-9\-\._]+$")

WRITERS = 8
"""Threads that write and sync a held batch's files (their syncs share journal commits)."""


@dataclass(frozen=True)
class _Held:
    """A file of the batch being handled: written and synced as ``tmp`` by a writer thread,
    renamed to ``path`` only in :meth:`Outbox.make_durable`."""

    message_id: str
    tmp: Path
    path: Path
    written: Future[None]


def _write_synced(tmp: Path, content: bytes) -> None:
    """Create (or truncate: a redelivery after a crash) the hidden file, write it whole, sync."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    def __init__(self, directory: Path, *, writers: int = WRITERS) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._seen = {
            p.name.split(".", 1)[0]
            for p in directory.iterdir()
            if p.is_file() and not p.name.startswith(".")  # a temporary file is no delivery
        }
        self._held: list[_Held] | None = None
        self._writers = max(1, writers)
        self._pool: ThreadPoolExecutor | None = None  # started at the first held write

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
        if self._held and any(h.message_id == original_id for h in self._held):
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
        While held (:meth:`hold`) a writer thread writes and syncs the file under a hidden
        temporary name, and it gets its name only in :meth:`make_durable`."""
        if not _SAFE.match(message_id):
            raise ValueError("message id is not safe as a file name")
        if message_id in self._seen:
            return None
        path = self.directory / f"{message_id}{suffix}"
        tmp = self.directory / f".{message_id}{suffix}.tmp"
        if self._held is None:
            _write_synced(tmp, content)
            os.replace(tmp, path)
        else:
            written = self._executor().submit(_write_synced, tmp, content)
            self._held.append(_Held(message_id, tmp, path, written))
        self._seen.add(message_id)
        return path

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._writers, thread_name_prefix="outbox-writer")
        return self._pool

    def close(self) -> None:
        """Stop the writer threads (a held batch not made durable stays undelivered)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

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
        """Wait until every held file is written and synced, give each its name, sync the
        folder once (so the names survive a power loss too); returns how many. Until then a
        crash leaves only temporary files, which are no delivery: the batch is redelivered and
        written again. A file that could not be written (a full disk) raises, after the held
        files not yet named are forgotten as in :meth:`discard`: the redelivery writes them."""
        held, self._held = self._held or [], None
        if not held:
            return 0
        named = 0
        try:
            concurrent.futures.wait([h.written for h in held])
            for h in held:
                h.written.result()  # the first failure, once every write has finished
            for h in held:
                os.replace(h.tmp, h.path)
                named += 1
        except BaseException:
            self._forget(held[named:])
            raise
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
        self._forget(held)
        return len(held)

    def _forget(self, held: list[_Held]) -> None:
        concurrent.futures.wait([h.written for h in held])  # no write may land after the unlink
        for h in held:
            self._seen.discard(h.message_id)
            with contextlib.suppress(OSError):  # a leftover temporary file is no delivery
                h.tmp.unlink(missing_ok=True)
