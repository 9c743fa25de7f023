"""An inbox folder that a counterpart system drops files into.

A file is claimed by renaming it into ``processing/`` (so a half-written file is never read:
writers should write ``*.tmp`` and rename, and we skip dot-files and ``*.tmp``), then moved to
``processed/`` on success or ``failed/`` with an ``<name>.error.json`` beside it on refusal.
Files left in ``processing/`` by a crash are taken up again at start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
        """Yield claimed files: leftovers of a crash first, then new files in name order."""
        yield from sorted(p for p in self.processing.iterdir() if p.is_file())
        for pattern in self.patterns:
            for p in sorted(self.directory.glob(pattern)):
                if p.name.startswith(".") or p.name.endswith(".tmp") or not p.is_file():
                    continue
                target = self.processing / p.name
                try:
                    os.replace(p, target)
                except FileNotFoundError:
                    continue  # another worker took it
                yield target

    def done(self, path: Path) -> Path:
        target = self.processed / path.name
        os.replace(path, target)
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
        done.with_name(done.name + ".receipt.json").write_text(report)
        if refused:
            (self.failed / f"{path.name}.error.json").write_text(report)
        return True

    def fail(self, path: Path, error: dict[str, Any]) -> Path:
        """Move a refused file aside and write the reason next to it."""
        target = self.failed / path.name
        os.replace(path, target)
        report = self.failed / f"{path.name}.error.json"
        report.write_text(json.dumps(error, indent=2, ensure_ascii=False) + "\n")
        return report
