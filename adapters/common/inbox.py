"""An inbox folder that a counterpart system drops files into.

A file is claimed by renaming it into ``processing/`` (so a half-written file is never read:
writers should write ``*.tmp`` and rename, and we skip dot-files and ``*.tmp``), then moved to
``processed/`` on success or ``failed/`` with an ``<name>.error.json`` beside it on refusal.
Files left in ``processing/`` by a crash are taken up again at start.

Every other entry is claimed too, so that it is answered rather than left lying: a file whose
type the adapter does not read and a symbolic link (never followed: it could point anywhere on
the machine) are refused by the adapter (:meth:`Inbox.unreadable`). A file that keeps failing
is counted (:meth:`Inbox.failed_attempt`) so that it can be quarantined after a bounded number
of attempts instead of being retried for ever.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME_MAX = 255
"""Longest file name most file systems take, in bytes: a report's name must fit too."""


def report_name(name: str, suffix: str) -> str:
    """``<name><suffix>``, shortened (with a digest of the full name) when it would not fit a
    file name: a 243-character name must still get its receipt."""
    full = f"{name}{suffix}"
    if len(full.encode()) <= NAME_MAX:
        return full
    tag = hashlib.sha256(name.encode()).hexdigest()[:12]
    keep = name.encode()[: NAME_MAX - len(suffix.encode()) - 14].decode("utf-8", "ignore")
    return f"{keep}~{tag}{suffix}"


class Inbox:
    def __init__(self, directory: Path, patterns: tuple[str, ...] = ("*.json",)) -> None:
        self.directory = directory
        self.patterns = patterns
        self.processing = directory / "processing"
        self.processed = directory / "processed"
        self.failed = directory / "failed"
        for d in (directory, self.processing, self.processed, self.failed):
            d.mkdir(parents=True, exist_ok=True)

    def claim(self) -> Iterator[Path]:
        """Yield claimed entries: leftovers of a crash first, then new ones in name order.
        Files of any type and symbolic links are claimed (see :meth:`unreadable`); folders,
        dot-files and ``*.tmp`` are not."""
        yield from sorted(
            p
            for p in self.processing.iterdir()
            if not p.name.startswith(".") and (p.is_symlink() or p.is_file())
        )
        for p in sorted(self.directory.iterdir()):
            if p.name.startswith(".") or p.name.endswith(".tmp"):
                continue
            if not (p.is_symlink() or p.is_file()):
                continue  # processing/, processed/, failed/ and other folders
            target = self.processing / p.name
            try:
                os.replace(p, target)
            except FileNotFoundError:
                continue  # another worker took it
            yield target

    def unreadable(self, path: Path) -> tuple[str, str] | None:
        """Why a claimed entry is not read at all: ``(reason, message)``, or None. A symbolic
        link is judged as a link (``lstat``), never by what it points to."""
        if path.is_symlink():
            return "symlink", "symbolic links are not followed; drop the file itself"
        if not any(fnmatch.fnmatch(path.name.lower(), p) for p in self.patterns):
            return "file-type", "this inbox reads " + ", ".join(self.patterns)
        return None

    def done(self, path: Path) -> Path:
        target = self.processed / path.name
        os.replace(path, target)
        self.forget_attempts(path)
        return target

    def finish(self, path: Path, receipt: dict[str, Any], *, accepted: int, refused: int) -> bool:
        """Settle a processed file: refused outright (nothing accepted) it moves to ``failed/``
        with its report; otherwise to ``processed/`` with a receipt, and any refused items are
        also reported in ``failed/``. Returns False when the whole file was refused."""
        report = json.dumps(receipt, indent=2, ensure_ascii=False) + "\n"
        if refused and not accepted:
            self.fail(path, receipt)
            return False
        done = self.done(path)
        (self.processed / report_name(done.name, ".receipt.json")).write_text(report)
        if refused:
            (self.failed / report_name(path.name, ".error.json")).write_text(report)
        return True

    def fail(self, path: Path, error: dict[str, Any]) -> Path:
        """Move a refused file aside and write the reason next to it."""
        target = self.failed / path.name
        os.replace(path, target)
        self.forget_attempts(path)
        report = self.failed / report_name(path.name, ".error.json")
        report.write_text(json.dumps(error, indent=2, ensure_ascii=False) + "\n")
        return report

    def error_report(self, name: str) -> Path:
        """Where the ``.error.json`` of the file called ``name`` is."""
        return self.failed / report_name(name, ".error.json")

    # --- attempts: a file that keeps failing is quarantined, not retried for ever ------------

    def _attempts_file(self, path: Path) -> Path:
        tag = hashlib.sha256(path.name.encode()).hexdigest()[:24]
        return self.processing / f".{tag}.attempts"

    def failed_attempt(self, path: Path) -> int:
        """Count one more failed attempt at ``path`` (kept on disk, so a restart does not
        reset it); returns the count."""
        marker = self._attempts_file(path)
        try:
            n = int(marker.read_text() or 0) + 1
        except (FileNotFoundError, ValueError):
            n = 1
        marker.write_text(str(n))
        return n

    def forget_attempts(self, path: Path) -> None:
        self._attempts_file(path).unlink(missing_ok=True)
