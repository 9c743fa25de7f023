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
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypedDict, Unpack

from adapters.common.inbox import Inbox
from adapters.common.outbox import Outbox
from adapters.common.runtime import AdapterEvent, AdapterRuntime, error_document
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
    session_timeout_ms: int


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
            session_timeout_ms=options.get("session_timeout_ms", 6000),
        )
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

    # --- settling inbox files ----------------------------------------------------------------

    def _claimed_inbox(self) -> Inbox:
        assert self.inbox is not None, "this adapter has no inbox"
        return self.inbox

    async def refuse_file(self, path: Path, raw: bytes, err: MessageError) -> dict[str, Any]:
        """The whole file is unreadable: dead-letter it (sealed) and audit the refusal on the
        adapter's chain (``AdapterRuntime.dead_letter``), move it to ``failed/`` with its error
        report beside it; returns the report."""
        self.refused += 1
        await self.runtime.dead_letter(raw, None, err.reason, str(err), source=path.name)
        report = error_document(err, path.name)
        self._claimed_inbox().fail(path, report)
        self.runtime.event("invalid", None, f"{path.name} refused: {err.reason}")
        return report

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
                raw, None, items_refused, f"{len(errors)} item(s) refused", source=path.name
            )
        receipt = {"file": path.name, "accepted": accepted, "refused": errors}
        settled = self._claimed_inbox().finish(
            path, receipt, accepted=len(accepted), refused=len(errors)
        )
        if not settled:
            self.runtime.event("invalid", None, f"{path.name} refused ({len(errors)} errors)")
        return receipt

    # --- the inbox loop and the lifecycle ----------------------------------------------------

    async def poll_once(self) -> int:
        if self.inbox is None:
            return 0
        return await self.runtime.poll(self.inbox, self.process_file)

    async def _poll(self) -> None:
        await self.runtime.poll_forever(
            self._claimed_inbox(), self.process_file, self.poll_interval
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
