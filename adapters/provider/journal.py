"""The claims journal of one provider: every message its claims desk has seen, sealed for the
provider itself, on its own topic ``journal.<party>`` -- so the desk's state (cases, claims,
answers, escalations raised) is rebuilt from a topic at start, not kept in a database.

The records of one batch of deliveries are signed together (one Ed25519 signature over a Merkle
root, docs/trust.md 3.4.1) and acknowledged with the batch (``adapters.common.batch``).

One partition, so the records come back in the order they were written. A record is a JSON
document ``{"kind": "message", "outgoing": bool, "bundle": …}`` or ``{"kind": "coverage", …}``
encrypted for the party's own key and signed by it: nobody else can read it, and only the party
can have written it. The Kafka key is the party's own pseudonym of the person.

With a key store (the party's own, on ``keystore.<party>``: ``docs/erasure.md``) a record about a
person is, inside the envelope, under that person's data key: ``ketenbus erase --party`` then
makes it unreadable, and the desk rebuilt from the journal no longer holds the person (AVG art.
17; the journal's seven years, BW art. 2:10, end early for an erased person).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.common.batch import current_batch
from adapters.financing.topiclog import replay
from broker.audit.keystore import TopicKeyStore
from broker.config import Settings
from broker.kafka import ensure_topics
from broker.trust import Sealed, TrustError, open_sealed, seal_for, sign_batch
from broker.trust.datakeys import (
    ErasedKey,
    encrypt_layer,
    layer_context,
    layer_dkid,
    open_layer,
)
from broker.trust.party import PartyClient
from schemas.topics import JOURNAL_TERM, KeyKind, TopicSpec, party_key_store

EVENT = "journal"
Send = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


def journal_topic(party_id: str) -> TopicSpec:
    return TopicSpec(
        f"journal.{party_id}",
        1,
        KeyKind.PERSON_PSEUDONYM,
        f"Claims journal of {party_id}: what its claims desk saw, sealed for {party_id} only.",
        retention=JOURNAL_TERM,
    )


class Journal:
    def __init__(
        self, settings: Settings, client: PartyClient, datakeys: TopicKeyStore | None = None
    ) -> None:
        self.settings = settings
        self.client = client
        self.topic = journal_topic(client.party_id)
        self.datakeys = datakeys
        self.written = 0
        self.unreadable = 0
        self.erased = 0  # records of erased persons: unreadable by design
        # every record as it is on the topic, with the data key it is under (None: no person),
        # to write the journal back to a broker that lost its topics (docs/erasure.md)
        self.records: list[tuple[str | None, bytes, bytes, list[tuple[str, bytes]]]] = []
        # of the delivery batch being handled, each with the data key it is under
        self._unsigned: list[tuple[str | None, Sealed]] = []

    async def ensure(self) -> None:
        extra = [party_key_store(self.client.party_id)] if self.datakeys else []
        await ensure_topics(self.settings, [self.topic, *extra])

    async def append(self, send: Send, record: dict[str, Any], bsn: str | None) -> None:
        me = self.client.party_id
        pseudo = self.client.pseudonyms.pseudonym(me, bsn) if bsn else "none"
        try:  # as json.dumps(ensure_ascii=False, separators=(",", ":")), several times faster
            payload = orjson.dumps(record)
        except (TypeError, orjson.JSONEncodeError):  # an integer beyond 64 bits
            payload = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        if self.datakeys is not None and bsn:
            dkid, dk = self.datakeys.for_person(pseudo)
            for key, value in self.datakeys.drain():  # the key reaches its topic first
                await send(self.datakeys.topic, key, value, [])
            payload = encrypt_layer(dkid, dk, payload, context=layer_context(self.topic.name))
        batch = current_batch()
        sealed = seal_for(
            payload,
            self.client.keys,
            self.client.registry,
            me,
            event=EVENT,
            message_id=str(uuid.uuid4()),
            pseudonym=pseudo,
            timestamp=datetime.now(UTC),
            sign=batch is None,
        )
        layered = layer_dkid(payload)  # None: no person, nothing to erase
        if batch is None:
            await send(self.topic.name, sealed.key, sealed.value, list(sealed.headers))
            self.records.append((layered, sealed.key, sealed.value, list(sealed.headers)))
            self.written += 1
            return
        # within a batch of deliveries: signed with the batch's other records, at its end
        if not self._unsigned:
            batch.at_end(lambda: self._send_signed(send))
        self._unsigned.append((layered, sealed))

    async def _send_signed(self, send: Send) -> None:
        """The batch's records under one batch signature (docs/trust.md 3.4.1), in order."""
        unsigned, self._unsigned = self._unsigned, []
        signed = sign_batch([s for _, s in unsigned], self.client.keys)
        for (dkid, _), sealed in zip(unsigned, signed, strict=True):
            await send(self.topic.name, sealed.key, sealed.value, list(sealed.headers))
            self.records.append((dkid, sealed.key, sealed.value, list(sealed.headers)))
            self.written += 1

    async def read(self, handle: Callable[[dict[str, Any]], None]) -> int:
        """Hand every readable record to ``handle``, oldest first; returns the count."""
        if self.datakeys is not None:
            await self.datakeys.load()
        store = self.datakeys.store if self.datakeys is not None else None

        def one(r: Any) -> None:
            try:
                opened = open_sealed(
                    r.key,
                    r.value or b"",
                    list(r.headers or ()),
                    registry=self.client.registry,
                    keyring=self.client.keyring,
                )
                if opened.meta.sender != self.client.party_id:
                    raise TrustError("unknown-sender", "a journal is written by its party only")
                handle(json.loads(open_layer(store, opened.payload, self.topic.name)))
                headers = [(k, bytes(v or b"")) for k, v in r.headers or ()]
                self.records.append((layer_dkid(opened.payload), r.key, r.value, headers))
            except ErasedKey:
                self.erased += 1
            except (TrustError, ValueError):
                self.unreadable += 1

        self.records.clear()
        return await replay(self.settings, self.topic.name, one)

    async def write_back(self, send: Send) -> int:
        """The broker lost its topics (a new epoch after a restore): write the journal's keys
        and its records back as they were, so that the next start rebuilds the same desk; the
        records of a person erased since are left out (their key is gone). Returns the count."""
        await self.ensure()
        store = self.datakeys.store if self.datakeys is not None else None
        if self.datakeys is not None and store is not None:
            for r in store.snapshot():
                await send(self.datakeys.topic, r.dkid.encode("ascii"), r.value(), [])
        kept = [r for r in self.records if r[0] is None or (store and not store.erased(r[0]))]
        for _, key, value, headers in kept:
            await send(self.topic.name, key, value, headers)
        self.records = kept
        return len(kept)
