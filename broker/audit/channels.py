"""The router's side of the parties' channel key stores: the data layer inside ``in.*`` and
``out.<party>`` envelopes (issue 16 §6, AVG art. 17; ``docs/erasure.md``).

A message about a person travels with its payload under a data key of *that person on that
channel* (the party's key store ``keystore.<party>``, keys wrapped under the party's KEK, which
the router holds too). The party makes the key for what it sends, the router for what it
delivers; both can open both, and nobody else's key opens them. ``ketenbus erase`` tombstones
the person's channel keys in every party's store and rotates every channel KEK, so every
record of that person on ``in.*`` and ``out.*`` is unreadable from then on, without a broker
restart and with every private key still on disk.

One data key per person *and* party: a party that receives a person's key can open only what it
could open anyway (its own channel), never the audit's sealed detail or another party's
deliveries (those are under other keys).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition

from broker.config import Settings
from broker.kafka.clients import make_consumer
from broker.kafka.replay import read_topic
from broker.trust.datakeys import (
    DataKeyStore,
    carried,
    channel_subject,
    layer_dkid,
    message_context,
    open_carried,
    seal_carried,
)
from broker.trust.errors import Reason, TrustError
from schemas.topics import party_key_store

log = logging.getLogger(__name__)

__all__ = ["ChannelKeys"]


class ChannelKeys:
    """Every party's channel store the router holds the KEK of, rebuilt from their topics at
    start and followed while it runs (one consumer for all of them); keys it made wait in
    :attr:`pending` (``(topic, key, value)``) and must reach their topic before what they seal.
    The keys are kept unwrapped in memory (a dict per store): the hot path costs one AES-GCM
    pass over the payload, and a tombstone drops the key at once."""

    def __init__(self, settings: Settings | None, stores: dict[str, DataKeyStore]) -> None:
        self.settings = settings
        self.stores = stores
        self.pending: list[tuple[str, bytes, bytes]] = []
        self._next: dict[str, int] = {}

    def topic(self, party: str) -> str:
        return party_key_store(party).name

    async def load(self) -> int:
        """Read every channel store whole, side by side; returns the records read (none
        without Kafka settings: in-process, the keys come carried with the messages)."""
        settings = self.settings
        if settings is None:
            return 0

        async def one(party: str, store: DataKeyStore) -> int:
            topic = self.topic(party)

            def apply(r: Any) -> None:
                store.apply(r.key, r.value)
                self._next[topic] = max(self._next.get(topic, 0), r.offset + 1)

            return await read_topic(settings, topic, apply)

        counts = await asyncio.gather(*(one(p, s) for p, s in self.stores.items()))
        return sum(counts)

    async def follow(self, poll_ms: int = 500) -> None:
        """Apply new records of every channel store until cancelled: an erasure's tombstones
        within a poll, and the keys other router instances made."""
        if not self.stores or self.settings is None:
            return
        consumer = make_consumer(self.settings, group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        try:
            by_topic = {self.topic(p): s for p, s in self.stores.items()}
            tps = [TopicPartition(t, 0) for t in by_topic]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, self._next.get(tp.topic, 0))
            while True:
                try:
                    batch = await consumer.getmany(*tps, timeout_ms=poll_ms, max_records=5000)
                except Exception as err:  # keep following; the broker may be restarting
                    log.warning("channel keys follow: %s", type(err).__name__)
                    await asyncio.sleep(1.0)
                    continue
                for tp, records in batch.items():
                    for r in records:
                        by_topic[tp.topic].apply(r.key, r.value)
                if not any(batch.values()):  # caught up with every store
                    self.settle()
        finally:
            await consumer.stop()

    def settle(self) -> None:
        """Settle every store's keys left under a destroyed KEK
        (:meth:`DataKeyStore.settle`): survivors re-wrapped and queued in :attr:`pending`,
        erased ones forgotten."""
        for party, store in self.stores.items():
            _, records = store.settle()
            self.pending.extend(
                (self.topic(party), r.dkid.encode("ascii"), r.value()) for r in records
            )

    def seal(self, party: str, bsn: str | None, payload: bytes, message_id: str) -> bytes:
        """``payload`` under the person's key on ``party``'s channel (made when needed); as it
        is when there is no person or this router holds no channel store for the party."""
        store = self.stores.get(party)
        if store is None or not bsn:
            return payload
        owner = store.owner(channel_subject(bsn))
        sealed, made = seal_carried(store, owner, payload, context=message_context(message_id))
        if made is not None:
            self.pending.append((self.topic(party), made.dkid.encode("ascii"), made.value()))
        return sealed

    def open(self, party: str, payload: bytes, message_id: str) -> bytes:
        """``payload`` without its data layer (as it is when it has none). ``ErasedKey`` when
        the key is erased or not known (yet); ``TrustError`` when it does not open."""
        if not carried(payload) and layer_dkid(payload) is None:
            return payload
        store = self.stores.get(party)
        if store is None:
            raise TrustError(Reason.DECRYPT_FAILED, "no channel key store for this sender")
        return open_carried(store, payload, context=message_context(message_id))

    def snapshot(self) -> list[tuple[str, bytes, bytes]]:
        """Every live channel key, each store's under its current generation: written back to
        a broker that lost its topics with the router's own keys, so that an erasure after the
        loss still finds (and forgets) the person's channel keys."""
        return [
            (self.topic(party), r.dkid.encode("ascii"), r.value())
            for party, store in self.stores.items()
            for r in store.snapshot()
        ]

    def drain(self) -> list[tuple[str, bytes, bytes]]:
        out, self.pending = self.pending, []
        return out

    def parties(self) -> Iterable[str]:
        return self.stores.keys()
