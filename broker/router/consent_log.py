"""Rebuild the consent view from the consent topic at start and keep it current — no database.

Reads every partition from the beginning with ``assign()`` (no consumer group: every router
instance needs all consents). "Caught up" is judged by the fetch high watermark, because
ListOffsets(LATEST) is wrong on the embedded broker for multi-record batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from broker.config import Settings
from broker.kafka import make_consumer
from broker.kafka.clients import REPLAY_FETCH_WAIT_MS
from broker.router.pipeline import ROUTER_DOMAIN, RouterState
from broker.trust import Opened, TrustError, open_sealed
from broker.trust.datakeys import ErasedKey, open_layer
from schemas import topics
from schemas.errors import MessageError
from schemas.flows.consent import consent_from_message
from schemas.messaging import parse_message

log = logging.getLogger(__name__)
FOLLOW_WAIT_MS = 200  # longest a fetch of the consent log waits for new records
CATCH_UP_SECONDS = 5.0


class ConsentLog:
    """The consent topic read into the consent view. Subclasses read another topic the router
    writes for itself (``topic``, ``_fold``): ``broker.router.delivery_log``."""

    topic = topics.CONSENT

    def __init__(
        self,
        settings: Settings,
        state: RouterState,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.applied = 0
        self.errors = 0
        self.erased = 0  # records of erased persons: unreadable by design (docs/erasure.md)
        self._on_error = on_error
        # made in start(): aiokafka complains (an ERROR log line) about a consumer that is
        # garbage-collected unclosed, even one never started
        self._made: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._fetches = 0  # fetches ``follow`` completed: a catch-up waits for a fresh one
        # partition -> next offset to read, of what is applied: the position a consent view
        # snapshot reflects (broker.router.consent_snapshot)
        self.positions: dict[int, int] = {}

    def _apply(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        try:
            opened = open_sealed(
                key,
                value,
                headers,
                registry=self.state.registry,
                keyring=self.state.keyring,
                now=datetime.now(UTC),
            )
            self._fold(opened)
        except ErasedKey:
            self.erased += 1
            return
        except (TrustError, MessageError, ValueError, KeyError, TypeError) as err:
            # Only the router writes this topic; anything unreadable is an operations problem.
            self.errors += 1
            log.error("%s record skipped: %s", self.topic.name, getattr(err, "reason", err))
            if self._on_error:
                self._on_error(str(getattr(err, "reason", "unreadable")))
            return
        self.applied += 1

    def _fold(self, opened: Opened) -> None:
        """Apply one verified record to the router's state (raises on one it cannot read; an
        erased person's record raises ``ErasedKey``: unreadable by design)."""
        store = self.state.datakeys.store if self.state.datakeys else None
        payload = open_layer(store, opened.payload, topics.CONSENT.name)
        record = consent_from_message(parse_message(payload, full=False))
        pseudo = self.state.pseudonyms.pseudonym(ROUTER_DOMAIN, record.person_bsn)
        self.state.consents.apply(pseudo, record)

    async def start(
        self, timeout: float = 30.0, positions: dict[int, int] | None = None
    ) -> int:
        """Read the whole consent topic, or from ``positions`` (per partition, the next offset
        to read: a snapshot's, whose view is already in the state); returns the number of
        records applied. A position past a partition's end (a snapshot of a broker that has
        since lost its state) reads that partition from its beginning: applying a record the
        view already holds changes nothing."""
        self._made = make_consumer(
            self.settings,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=REPLAY_FETCH_WAIT_MS,
        )
        await self._consumer.start()
        parts: set[int] = set()
        for _ in range(50):
            await self._consumer.topics()  # refreshes cluster metadata
            parts = self._consumer.partitions_for_topic(self.topic.name) or set()
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"topic {self.topic.name!r} does not exist; create topics first")
        self._partitions = [TopicPartition(self.topic.name, p) for p in sorted(parts)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        for tp in self._partitions:
            at = (positions or {}).get(tp.partition)
            if at:
                self._consumer.seek(tp, at)
                self.positions[tp.partition] = at
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            self._apply_batch(batch)
            if await self._caught_up():
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the {self.topic.name} topic was not read in time")
        return self.applied

    async def _caught_up(self) -> bool:
        for tp in self._partitions:
            hw = self._consumer.highwater(tp)
            if hw is None or await self._consumer.position(tp) < hw:
                return False
        return True

    async def follow(self) -> None:
        """Keep applying new consent records until cancelled."""
        while True:
            batch = await self._consumer.getmany(timeout_ms=FOLLOW_WAIT_MS, max_records=1000)
            self._apply_batch(batch)
            self._fetches += 1

    def _apply_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in batch.items():
            for r in records:
                self._apply(r.key, r.value, list(r.headers))
            if records:
                self.positions[tp.partition] = records[-1].offset + 1

    async def catch_up(self, timeout: float = CATCH_UP_SECONDS) -> bool:
        """Wait (bounded) until ``follow`` has applied everything on the consent log as of now:
        two fetches that began after this call, then position at the high watermark. A router
        that takes over partitions from another instance calls it first, so it never judges a
        referral on a view that lacks a consent the other instance already acknowledged.
        Returns False when the time ran out (the router then routes on what it has)."""
        if self._made is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        start = self._fetches
        while loop.time() < deadline:
            if self._fetches >= start + 2 and await self._caught_up():
                return True
            await asyncio.sleep(0.02)
        log.warning("consent log not caught up within %.1f s of a partition assignment", timeout)
        return False

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._made is None:
            raise RuntimeError("ConsentLog.start() has not been called")
        return self._made

    async def stop(self) -> None:
        if self._made is not None:
            await self._made.stop()
