"""Read a topic from its beginning to its current end: how a component rebuilds its state from
topics at start instead of keeping a database.

Uses ``assign()`` (no consumer group: the reader needs everything, not a share). "Caught up" is
judged by the fetch high watermark, because ListOffsets(LATEST) is wrong on the embedded broker
for multi-record batches (see the platform notes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from broker.config import Settings
from broker.kafka import make_consumer
from broker.kafka.clients import REPLAY_FETCH_WAIT_MS


async def replay(
    settings: Settings, topic: str, handle: Callable[[Any], None], timeout: float = 30.0
) -> int:
    """Hand every record of ``topic`` (a ConsumerRecord) to ``handle``; returns the count.
    A topic that does not exist yet is empty."""
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
        if not parts:
            return 0
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for r in records:
                    handle(r)
                    count += 1
            caught_up = True
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is None or await consumer.position(tp) < hw:
                    caught_up = False
            if caught_up:
                return count
            if loop.time() > deadline:
                raise TimeoutError(f"topic {topic!r} did not replay within {timeout} s")
    finally:
        await consumer.stop()
