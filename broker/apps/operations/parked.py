"""The records the router parked on ``rejected`` and ``dead-letter``, with where they stand.

The router parks a refused record as it came (still sealed for the router) with its reason in
headers (``kb-reason``, ``kb-detail``, ``kb-source-topic``, ``kb-refused-at``); nothing is
decrypted here. A record's place (``topic/partition/offset``) is its id for a re-process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from broker.config import Settings
from broker.kafka import make_consumer
from broker.router.records import Headers, header
from broker.router.reprocess import REQUEST_HEADER
from schemas import topics

PARKING_TOPICS = (topics.REJECTED.name, topics.DEAD_LETTER.name)


@dataclass(frozen=True)
class ParkedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int = 0  # Kafka's record time

    @property
    def at(self) -> datetime | None:
        if not self.timestamp_ms:
            return None
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def place(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def message_id(self) -> str | None:
        return header(self.headers, "kb-id")

    @property
    def sender(self) -> str | None:
        return header(self.headers, "kb-sender")

    @property
    def event(self) -> str | None:
        return header(self.headers, "kb-event")

    @property
    def original_key(self) -> bytes | None:
        """The record's Kafka key as it came (parking keys it by sender)."""
        found = [v for k, v in self.headers if k == "kb-original-key"]
        return found[-1] if found else None

    @property
    def reason(self) -> str:
        return header(self.headers, "kb-reason") or "unknown"

    @property
    def detail(self) -> str:
        return header(self.headers, "kb-detail") or ""

    @property
    def source_topic(self) -> str | None:
        return header(self.headers, "kb-source-topic")

    @property
    def refused_at(self) -> datetime | None:
        text = header(self.headers, "kb-refused-at")
        try:
            return datetime.fromisoformat(text) if text else None
        except ValueError:
            return None

    @property
    def reprocess_of(self) -> str | None:
        """For a re-processed record refused again: the place of the record it re-sent."""
        raw = header(self.headers, REQUEST_HEADER)
        if not raw:
            return None
        try:
            return str(orjson.loads(raw).get("of"))
        except (orjson.JSONDecodeError, AttributeError):
            return None


async def read_records(
    settings: Settings, names: Iterable[str], *, stall_timeout: float = 20.0
) -> list[ParkedRecord]:
    """Every record of the named topics (those that exist), from the beginning."""
    return await read_parked(settings, names, stall_timeout=stall_timeout)


async def read_parked(
    settings: Settings, names: Iterable[str] = PARKING_TOPICS, *, stall_timeout: float = 20.0
) -> list[ParkedRecord]:
    """Every record on the parking topics, from the beginning up to the high watermark."""
    consumer = make_consumer(settings, group_id=None, auto_offset_reset="earliest")
    out: list[ParkedRecord] = []
    await consumer.start()
    try:
        known = await consumer.topics()
        parts = [
            TopicPartition(name, p)
            for name in names
            if name in known
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        if not parts:
            return out
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        progress = time.monotonic()
        while True:  # caught up by the fetch high watermark (end_offsets is wrong on Tansu)
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, messages in batch.items():
                for m in messages:
                    out.append(ParkedRecord(tp.topic, tp.partition, m.offset, m.key,
                                            m.value or b"", list(m.headers or ()),
                                            m.timestamp or 0))
                    progress = time.monotonic()
            if await _caught_up(consumer, parts):
                break
            if time.monotonic() - progress > stall_timeout:
                raise TimeoutError("no progress reading the parking topics")
    finally:
        await consumer.stop()
    out.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return out


async def _caught_up(consumer: AIOKafkaConsumer, parts: list[TopicPartition]) -> bool:
    for tp in parts:
        high = consumer.highwater(tp)
        if high is None or await consumer.position(tp) < high:
            return False
    return True
