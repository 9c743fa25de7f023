"""The skeleton every adapter service is built on, so each adapter holds only what is specific
to its counterpart system: what a delivery becomes in its outbox, and what an inbox file becomes
on the bus.

The skeleton owns the wiring they all share: the :class:`AdapterRuntime` (producer, consumer
group, broker watch), the outbox that de-duplicates deliveries, the optional inbox with its poll
loop, starting and stopping, and how a file is settled -- a file refused outright moves to
``inbox/failed/`` with its ``.error.json`` and is dead-lettered (sealed), a file with refused items
gets a receipt and a report of those items.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypedDict, Unpack

from adapters.common.inbox import Inbox
from adapters.common.limits import InputLimits, refusal, safe_detail, too_large
from adapters.common.outbox import Outbox
from adapters.common.runtime import AdapterEvent, AdapterRuntime, error_document, new_reference
from broker.config import Settings
from broker.trust import Opened
from broker.trust.party import PartyClient
from schemas.errors import Issue, MessageError
from schemas.messaging import ParsedMessage

__all__ = ["AdapterService", "ServiceOptions", "item_error"]


def item_error(where: str, message: str, reason: str) -> MessageError:
    """One item of a file refused (a row, an entry, an answer), with where it stood."""
    return MessageError([Issue(where, "value", message, reason)])


class ServiceOptions(TypedDict, total=False):
    """The options every adapter takes, passed through to the skeleton (defaults there)."""

    on_event: Callable[[AdapterEvent], None] | None
    poll_interval: float
    session_timeout_ms: int | None


class AdapterService:
    """One adapter process for one party. Subclasses implement :meth:`_delivered` and, when they
    have an inbox, :meth:`process_file`; they extend :meth:`start` to rebuild their state before
    consuming, or to run loops of their own (:meth:`spawn`)."""

    poll_task = "inbox"
    """The name of the inbox poll task (``<poll_task>-<party>``), for task dumps."""

    def __init__(
        self,
        settings: Settings,
        client: PartyClient,
        outbox_dir: Path,
        inbox: Inbox | None,
        **options: Unpack[ServiceOptions],
    ) -> None:
        self.settings = settings
        self.client = client
        self.outbox = Outbox(outbox_dir)
        self.inbox = inbox
        self.poll_interval = options.get("poll_interval", 0.5)
        self.runtime = AdapterRuntime(
            settings,
            client,
            self.outbox,
            self._delivered,
            on_event=options.get("on_event"),
            session_timeout_ms=options.get("session_timeout_ms"),
            after_batch=self._after_batch,
        )
        self.limits = InputLimits.of(settings)
        self.refused = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def party_id(self) -> str:
        return self.client.party_id

    # --- the hooks ---------------------------------------------------------------------------

    async def _delivered(self, opened: Opened, msg: ParsedMessage) -> None:
        """A verified, de-duplicated delivery from the router: hand it to the party's system."""
        raise NotImplementedError

    async def process_file(self, path: Path) -> dict[str, Any]:
        """Process one claimed inbox file; returns the receipt or the file's error report."""
        raise NotImplementedError

    async def _after_batch(self) -> None:
        """Once per settled batch of deliveries whose handling asked for it
        (``DeliveryBatch.follow_up``): work that need not run per delivery."""

    # --- settling inbox files ----------------------------------------------------------------

    def _claimed_inbox(self) -> Inbox:
        assert self.inbox is not None, "this adapter has no inbox"
        return self.inbox

    async def refuse_file(self, path: Path, raw: bytes, err: MessageError) -> dict[str, Any]:
        """The whole file is unreadable: dead-letter it (sealed) and audit the refusal on the
        adapter's chain (``AdapterRuntime.dead_letter``), move it to ``failed/`` with its error
        report beside it; returns the report. The dead letter names the file only by an opaque
        reference, which the report repeats."""
        return await self._refuse(path, raw, err)

    async def _refuse(
        self,
        path: Path,
        raw: bytes,
        err: MessageError,
        digest: str | None = None,
        inbox: Inbox | None = None,
    ) -> dict[str, Any]:
        self.refused += 1
        ref = await self.runtime.dead_letter(
            raw, None, err.reason, safe_detail(err), source=new_reference(), digest=digest
        )
        report = {**error_document(err, path.name), "reference": ref}
        (inbox or self._claimed_inbox()).fail(path, report)
        self.runtime.event("invalid", None, f"inbox file {ref} refused: {err.reason}")
        return report

    async def intake(self, path: Path) -> dict[str, Any]:
        """One claimed inbox entry: refused unread when it is a symbolic link, of a type this
        inbox does not read, or over ``max_input_bytes`` (its size from the directory entry,
        its digest streamed: a 50 MB file never enters memory); else :meth:`process_file`."""
        inbox = self._claimed_inbox()
        why = inbox.unreadable(path)
        if why is not None:
            return await self._refuse(path, b"", refusal(*why), digest=_digest_of_link(path))
        size = path.stat().st_size
        limit = (
            self.settings.max_xml_bytes if path.suffix.lower() == ".xml" else self.limits.max_bytes
        )
        if size > limit:
            return await self._refuse(
                path, b"", too_large(size, limit), digest=_digest_of_file(path)
            )
        return await self.process_file(path)

    async def quarantine(
        self, inbox: Inbox, path: Path, err: BaseException, attempts: int
    ) -> dict[str, Any]:
        """A file that failed ``attempts`` times for reasons of its own: refused as
        ``quarantined`` (dead letter, audit, ``failed/`` with its report), so it never loops
        and never holds up the files after it."""
        problem = refusal(
            "quarantined",
            f"processing failed {attempts} times ({type(err).__name__}); set aside",
            code="exception",
        )
        size = path.stat().st_size if path.exists() else 0
        raw = path.read_bytes() if size <= self.limits.max_bytes else b""
        return await self._refuse(
            path, raw, problem, digest=None if raw else _digest_of_file(path), inbox=inbox
        )

    async def settle_file(
        self,
        path: Path,
        raw: bytes,
        accepted: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        *,
        items_refused: str | None = None,
    ) -> dict[str, Any]:
        """Write the receipt of a read file. With ``items_refused`` the file is also
        dead-lettered under that reason when any item was refused; a file of which nothing was
        accepted goes to ``failed/``. Returns the receipt."""
        if errors and items_refused is not None:
            await self.runtime.dead_letter(
                raw,
                None,
                items_refused,
                f"{len(errors)} item(s) refused",
                source=new_reference(),
            )
        receipt = {"file": path.name, "accepted": accepted, "refused": errors}
        settled = self._claimed_inbox().finish(
            path, receipt, accepted=len(accepted), refused=len(errors)
        )
        if not settled:
            # never the file name in an event or a log line: names have held a BSN and a name
            tag = hashlib.sha256(path.name.encode()).hexdigest()[:12]
            self.runtime.event("invalid", None, f"inbox file #{tag} refused ({len(errors)} errors)")
        return receipt

    # --- the inbox loop and the lifecycle ----------------------------------------------------

    async def poll_once(self) -> int:
        if self.inbox is None:
            return 0
        return await self.runtime.poll(self.inbox, self.intake, self.quarantine)

    async def _poll(self) -> None:
        await self.runtime.poll_forever(
            self._claimed_inbox(), self.intake, self.poll_interval, self.quarantine
        )

    def spawn(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``loop`` until :meth:`stop`, as task ``<name>-<party>``."""
        self._tasks.append(asyncio.create_task(loop, name=f"{name}-{self.party_id}"))

    async def start(self) -> None:
        await self.runtime.start()
        if self.inbox is not None:
            self.spawn(self._poll(), self.poll_task)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.runtime.stop()


def _digest_of_file(path: Path) -> str:
    """SHA-256 of a file read in 1 MB pieces (memory stays flat whatever its size); a file
    that vanished or cannot be read is named by the digest of nothing."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        pass
    return h.hexdigest()


def _digest_of_link(path: Path) -> str:
    """A link or a file not read is named by the digest of its link text, or of nothing."""
    try:
        return (
            hashlib.sha256(os.readlink(path).encode()).hexdigest()
            if path.is_symlink()
            else (_digest_of_file(path))
        )
    except OSError:
        return hashlib.sha256(b"").hexdigest()
