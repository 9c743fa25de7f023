"""The key store on its topic: per-person data keys rebuilt from ``keystore`` at start, new keys
queued to be published with the data they seal (``docs/erasure.md``).

:class:`broker.trust.datakeys.DataKeyStore` is the logic; this module is its Kafka side, used by
the router (consent log, audit sealed detail, parked records) and by ``ketenbus erase``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from broker.config import Settings
from broker.kafka.clients import make_consumer
from broker.kafka.replay import read_topic
from broker.trust.datakeys import DataKeyStore, KekRing, KeyRecord, seal_carried
from broker.trust.keys import PartyKeys
from broker.trust.pseudonym import load_or_create_secret
from broker.trust.registry import PartyRegistry
from schemas.topics import KEY_STORE

log = logging.getLogger(__name__)

__all__ = [
    "KEK_DIR",
    "OWNER_SECRET_FILE",
    "TopicKeyStore",
    "kek_dir",
    "open_key_store",
]

KEK_DIR = "kek"
"""Below the keys directory: ``<keys_dir>/kek/<writer>/kek-<g>.key``, the KEK files (0600)."""
OWNER_SECRET_FILE = "keystore-{writer}.secret"  # noqa: S105 (a file name)
"""Below the secrets directory: the secret that turns a pseudonym into a key-store owner."""


class TopicKeyStore:
    """A :class:`DataKeyStore` with its topic: ``pending`` holds the records of keys made since
    the last :meth:`drain`; they must reach the topic before anything sealed under them."""

    def __init__(
        self, settings: Settings, store: DataKeyStore, topic: str = KEY_STORE.name
    ) -> None:
        self.settings = settings
        self.store = store
        self.topic = topic
        self.pending: list[KeyRecord] = []
        # told the owner of every tombstone applied (a person erased): the router drops what it
        # holds in memory about them (its consent view) before anything could re-seal it
        self.on_erased: Callable[[str], None] | None = None
        # where :meth:`follow` publishes what :meth:`settle` queued; None: the owner drains
        # ``pending`` with its own batches (the router, whose key records must be acknowledged
        # with the data they open)
        self.publish: Callable[[list[tuple[bytes, bytes]]], Awaitable[None]] | None = None
        self._next_offset = 0  # where load() stopped, so follow() need not read it all again

    async def load(self) -> int:
        """Rebuild the keys from the whole topic; returns the number of records read."""

        def one(r: Any) -> None:
            self._apply(r.key, r.value)
            self._next_offset = max(self._next_offset, r.offset + 1)

        return await read_topic(self.settings, self.topic, one)

    async def follow(self, poll_ms: int = 500) -> None:
        """Keep applying the topic's records until cancelled, from where :meth:`load` stopped
        (from the beginning when the broker lost the topic; applying a record twice changes
        nothing): a running router learns of an erasure within a poll, and of keys another
        router instance made, instead of at its next restart."""
        consumer = make_consumer(self.settings, group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, self._next_offset)  # out of range: reset to the earliest
            while True:
                try:
                    batch = await consumer.getmany(tp, timeout_ms=poll_ms, max_records=5000)
                except Exception as err:  # keep following; the broker may be restarting
                    log.warning("key store follow: %s", type(err).__name__)
                    await asyncio.sleep(1.0)
                    continue
                got = batch.get(tp, [])
                for r in got:
                    self._apply(r.key, r.value)
                if not got:  # caught up: every re-wrap an erasure published is applied
                    self.settle()
                    if self.pending and self.publish is not None:
                        try:
                            await self.publish(self.drain())
                        except Exception as err:  # the next settle cannot redo it: logged
                            log.warning("re-wrapped keys not published: %s", type(err).__name__)
        finally:
            await consumer.stop()

    def settle(self) -> None:
        """Settle keys left under a destroyed KEK (:meth:`DataKeyStore.settle`): erased ones
        are forgotten (and their owners told to :attr:`on_erased`), survivors re-wrapped and
        queued in :attr:`pending`. Called once caught up with the topic (a key this router made
        under the old generation after ``erase`` read the store is re-wrapped instead of lost at
        the next restart) and before writing the store back to a broker that lost it."""
        owners, records = self.store.settle()
        self.pending.extend(records)
        if self.on_erased is not None:
            for owner in owners:
                self.on_erased(owner)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        erased = self.store.apply(key, value)
        if erased is not None and self.on_erased is not None:
            self.on_erased(erased)

    def for_person(self, pseudonym: str) -> tuple[str, bytes]:
        """The data key of the person with this router-domain pseudonym (made when needed)."""
        return self._for(self.store.owner(pseudonym))

    def seal_for_person(self, pseudonym: str, payload: bytes, *, context: bytes) -> bytes:
        """``payload`` under the person's data key, with the key's record carried in front
        (:func:`seal_carried`): another router instance that follows the consent log opens it
        even before its key-store follower has read the key (two topics, two consumers; before,
        it counted such a consent as erased and its view missed it until a restart)."""
        sealed, made = seal_carried(
            self.store, self.store.owner(pseudonym), payload, context=context
        )
        if made is not None:
            self.pending.append(made)
        return sealed

    def for_case(self, case_id: str) -> tuple[str, bytes]:
        return self._for(self.store.owner("case:" + case_id))

    def _for(self, owner: str) -> tuple[str, bytes]:
        dkid, dk, record = self.store.key_for(owner)
        if record is not None:
            self.pending.append(record)
        return dkid, dk

    def drain(self) -> list[tuple[bytes, bytes]]:
        """The pending records as Kafka ``(key, value)``, oldest first; the queue is emptied."""
        out = [(r.dkid.encode("ascii"), r.value()) for r in self.pending]
        self.pending.clear()
        return out


def open_key_store(
    settings: Settings,
    registry: PartyRegistry,
    keys_dir: Path,
    secrets_dir: Path,
    *,
    writer: str,
    keys: PartyKeys | None = None,
    topic: str = KEY_STORE.name,
    co_writers: tuple[str, ...] = (),
) -> TopicKeyStore:
    """The key store of ``writer`` (the router's on ``keystore``, a party's on
    ``keystore.<party>``): KEK files under ``keys_dir/kek/<writer>``, the owner secret in
    ``secrets_dir``; ``keys`` (the writer's) to write records, None to read only."""
    store = DataKeyStore(
        KekRing(kek_dir(keys_dir, writer)),
        registry,
        writer=writer,
        keys=keys,
        owner_secret=load_or_create_secret(secrets_dir / OWNER_SECRET_FILE.format(writer=writer)),
        co_writers=co_writers,
    )
    return TopicKeyStore(settings, store, topic)


def kek_dir(keys_dir: Path, writer: str) -> Path:
    return keys_dir / KEK_DIR / writer
