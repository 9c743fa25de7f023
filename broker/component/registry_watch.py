"""A running component follows the signed registry file: rotations and revocations take effect
within ``registry_poll_seconds`` without a restart (issue 21).

The file is re-read when its size, modification time or inode changes (an atomic replace changes
the inode), verified against the pinned anchor, and handed to every subscriber only when it is
validly signed and its serial is newer than the one in use. A registry that fails is logged with
its reason and changes nothing: the component keeps the last good one, so a broken or forged file
never opens the door, and an older signed registry (a rollback that would bring a revoked key
back) is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from broker.trust import PartyRegistry, TrustConfigError
from broker.trust.registry_signing import RegistryAnchor, load_anchor, load_signed_registry

log = logging.getLogger(__name__)

Subscriber = Callable[[PartyRegistry], None]


class RegistryWatch:
    """Polls one registry file; ``subscribe`` the components of this process to it."""

    def __init__(
        self,
        path: Path,
        anchor: RegistryAnchor | Path,
        current: PartyRegistry,
        *,
        interval: float = 2.0,
    ) -> None:
        self.path = Path(path)
        self.anchor = anchor if isinstance(anchor, RegistryAnchor) else load_anchor(anchor)
        self.current = current
        self.interval = interval
        self.applied = 0  # registries handed over since start
        self.refused = 0  # changed files that were not applied
        self.last_problem: str | None = None
        self._subscribers: list[Subscriber] = []
        self._seen = self._stamp()
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, apply: Subscriber) -> None:
        self._subscribers.append(apply)

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def check(self) -> bool:
        """Look once; True when a newer signed registry was applied."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return False
        self._seen = stamp
        try:
            registry = load_signed_registry(self.path, self.anchor, min_serial=self.current.serial)
        except TrustConfigError as err:
            self.refused += 1
            self.last_problem = str(err)
            log.error("registry %s not applied, keeping serial %d: %s", self.path,
                      self.current.serial, err)
            return False
        if registry.serial == self.current.serial:
            # co-signed or rewritten; a change always raises the serial, so nothing new
            log.info("registry %s rewritten at serial %d: nothing new", self.path, registry.serial)
            return False
        self.current = registry
        self.last_problem = None
        for apply in self._subscribers:
            apply(registry)
        self.applied += 1
        log.info("registry serial %d applied from %s", registry.serial, self.path)
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except Exception as err:  # a subscriber's bug must not end the watch
                log.error("registry watch: %s", type(err).__name__)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="registry-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
