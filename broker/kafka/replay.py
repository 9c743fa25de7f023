"""Read a whole topic from its beginning to its current end, with record keys: how a component
rebuilds state from a topic at start instead of keeping a database (the key store, a provider's
journal, the escalation ladder's log). ``assign()`` without a group, a short fetch wait, and
"caught up" judged by the fetch high watermark, because ListOffsets(LATEST) is wrong on the
embedded broker for multi-record batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from broker.config import Settings
from broker.kafka.clients import REPLAY_FETCH_WAIT_MS, make_consumer

__all__ = ["read_topic"]


async def read_topic(
    settings: Settings, topic: str, handle: Callable[[Any], None], timeout: float = 30.0
) -> int:
    """Hand every record of ``topic`` (a ConsumerRecord), partition by partition in offset
    order, to ``handle``; returns the count. A topic that does not exist yet is empty."""
    consumer = make_consumer(
        settings,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=REPLAY_FETCH_WAIT_MS,
    )
    await consumer.start()
    count = 0
    try:
        parts: set[int] = set()
        for _ in range(20):
            await consumer.topics()
            parts = consumer.partitions_for_topic(topic) or set()
            if parts:
                break
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for tp in [TopicPartition(topic, p) for p in sorted(parts)]:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=5000)
                for r in batch.get(tp, []):
                    handle(r)
                    count += 1
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    break
                if loop.time() > deadline:
                    raise TimeoutError(f"topic {topic!r} did not replay within {timeout} s")
        return count
    finally:
        await consumer.stop()
