"""Prune what ketenbus itself keeps in files by the catalogue's terms (``docs/retention.md``).

An adapter keeps the counterpart's input files it has processed (``inbox/processed/``) and
refused (``inbox/failed/`` with their ``.error.json``); nothing else deletes them, so without
this they would stay for ever (AVG art. 5(1)(e)). A recipient's outbox is *not* pruned: it is
that party's record under its own duties (e.g. Wgbo art. 7:454). Topics are pruned by the broker
(``retention.ms``, set by ``ketenbus topics``); on the embedded broker, which honours no
retention, by its memory storage and by crypto-shredding (``docs/erasure.md``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from schemas.topics import DAY_MS, FILE_RETENTION, retention_override

__all__ = ["PruneReport", "prune_files"]

_FOLDERS = {"inbox.processed": ("inbox", "processed"), "inbox.failed": ("inbox", "failed")}


@dataclass
class PruneReport:
    """What one pass removed, by kind of data (counts only: file names may carry input text)."""

    removed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)


def prune_files(
    data_dir: Path,
    *,
    retention_days: Mapping[str, float] | None = None,
    now: float | None = None,
) -> PruneReport:
    """Delete files older than their kind's term under every ``<party>/inbox/{processed,failed}``
    below ``data_dir`` (by modification time: when the adapter settled the file)."""
    clock = time.time() if now is None else now
    report = PruneReport()
    for kind, (parent, child) in _FOLDERS.items():
        term = retention_override(kind, retention_days)
        days = FILE_RETENTION[kind].days if term is None else term
        if days is None or days < 0:
            continue
        cutoff = clock - days * DAY_MS / 1000
        for folder in sorted(data_dir.glob(f"**/{parent}/{child}")):
            if not folder.is_dir() or folder.is_symlink():
                continue
            for path in folder.iterdir():
                if not path.is_file() or path.is_symlink():
                    continue
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    report.removed[kind] = report.removed.get(kind, 0) + 1
                else:
                    report.kept[kind] = report.kept.get(kind, 0) + 1
    return report
