"""One writer's audit chain on the ``audit`` topic: resumed from its last record there, then
appended to and sent. The router, the web app and each adapter write their own chain
(``docs/design/audit-record-v2.md`` §1: one chain per writer, each with its own key), so a chain
verifies on its own and a restart continues it instead of starting a new one that could hide a
gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import TopicPartition

from broker.audit.chain import AuditChain, last_record_of, resume_chain
from broker.audit.checkpoint import Cadence
from broker.audit.event import AuditRecord
from broker.config import Settings
from broker.kafka import make_consumer
from broker.kafka.clients import REPLAY_FETCH_WAIT_MS
from broker.trust import PartyKeys
from schemas import topics

__all__ = ["ChainWriter", "Send", "read_audit_topic"]

Send = Callable[[str, bytes, bytes], Awaitable[None]]  # topic, key, value
"""Produce one record to the audit topic: (key, value), returning once Kafka acknowledged it."""


async def read_audit_topic(
    settings: Settings, topic: str = topics.AUDIT.name, timeout: float = 30.0
) -> list[bytes]:
    """Every record of the audit topic (or ``topic``, e.g. the checkpoints), partition by
    partition in order, up to the high watermark of the last fetch (see ``broker.audit.reader``
    for why not ``end_offsets``)."""
    consumer = make_consumer(
        settings,
        group_id=None,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_wait_ms=REPLAY_FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        await consumer.topics()
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out: list[bytes] = []
        for p in parts:
            tp = TopicPartition(topic, p)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=300, max_records=10000)
                out.extend(r.value for r in batch.get(tp, []) if r.value)
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    break
                if loop.time() > deadline:
                    raise TimeoutError(f"{topic} was not read to its end in time")
        return out
    finally:
        await consumer.stop()


class ChainWriter:
    """Appends records to one chain and sends them, one batch at a time.

    The chain is resumed from the topic on first use (handed over first when it was last signed
    by an older key of ours); if sending fails, the chain is put back where it stood and read
    again from the topic, because the record may or may not have reached it. The chain's signed
    head goes to ``audit-checkpoint`` at the configured cadence."""

    def __init__(self, settings: Settings, keys: PartyKeys, chain_id: str | None = None) -> None:
        self.settings = settings
        self.keys = keys
        self.chain_id = chain_id or keys.key_id  # a chain not declared: named after the key
        self.written: int = 0
        self._chain: AuditChain | None = None
        self._lock = asyncio.Lock()
        self._cadence = Cadence(settings.audit_checkpoint_seconds)

    @property
    def last(self) -> tuple[int, str] | None:
        return None if self._chain is None else self._chain.last

    async def resume(self, send: Send) -> None:
        last = last_record_of(await read_audit_topic(self.settings), self.chain_id)
        keys = {self.keys.key_id: self.keys.signing}
        self._chain, handover = resume_chain(self.chain_id, keys, self.keys.key_id, last)
        for value in handover:
            await send(topics.AUDIT.name, self.chain_id.encode(), value)

    async def write(self, records: Sequence[AuditRecord], send: Send) -> None:
        """Append ``records`` (one batch signature) and send them in order."""
        if not records:
            return
        async with self._lock:
            if self._chain is None:
                await self.resume(send)
            assert self._chain is not None
            before = self._chain.last
            values = self._chain.append_records(records)
            try:
                for value in values:
                    await send(topics.AUDIT.name, self.chain_id.encode(), value)
            except BaseException:
                self._chain = AuditChain(
                    self.chain_id, self.keys.signing, self.keys.key_id, before
                )
                with contextlib.suppress(Exception):
                    await self.resume(send)
                raise
            self.written += len(values)
            if self._cadence.due():
                await self.checkpoint(send)

    async def checkpoint(self, send: Send) -> None:
        """Send the chain's signed head now (the cadence, or a clean stop)."""
        cp = None if self._chain is None else self._chain.checkpoint()
        if cp is not None:
            await send(topics.AUDIT_CHECKPOINT.name, cp.chain.encode(), cp.encode())
            self._cadence.done()
