"""Read audit records: from the ``audit`` topic (from the beginning) or from a JSONL export.

Kafka: the consumer has no group (nothing is committed), is ``assign()``-ed every partition of
the topic in turn, seeks to the beginning and reads until its position reaches the **high
watermark of the last fetch**. ``end_offsets()`` is not used: on the embedded Tansu broker it is
wrong when the last record batch holds more than one record (platform-facts 1.6). Records come
out partition by partition, each in offset order (the audit topic has one partition, so a
record's position is its offset).

JSONL: one record per line, exactly the bytes of the Kafka record value, each followed by one LF
(design audit-record-v2 section 3). A line with a CR, a blank line or a last line without its LF
is read as a :class:`~broker.audit.chain.BadLine`, which ``verify`` reports as ``malformed`` at
that position: a cut or re-encoded export is never read as an intact one. An empty file is an
empty trail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from broker.audit.chain import BadLine
from schemas.topics import AUDIT

DEFAULT_TOPIC = AUDIT.name


class AuditReadError(RuntimeError):
    """The audit records could not be read (no such topic, broker unreachable, stalled)."""


def read_jsonl(path: str | Path) -> Iterator[bytes]:
    """The records of a JSONL export, in file order; a line that breaks the line rules comes
    out as a :class:`BadLine` saying why."""
    with Path(path).open("rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                yield BadLine(line, "the last line has no LF: the export is cut or incomplete")
            elif line == b"\n":
                yield BadLine(b"", "a blank line: every line of an export holds one record")
            elif b"\r" in line:
                yield BadLine(line[:-1], "a CR in the line: a record is followed by one LF only")
            else:
                yield line[:-1]


def write_jsonl(records: Iterable[bytes], path: str | Path) -> int:
    """Write records one per line; returns how many. Records never contain a raw newline
    (JSON escapes it), which is checked."""
    n = 0
    with Path(path).open("wb") as f:
        for raw in records:
            if b"\n" in raw:
                raise ValueError(f"record {n} contains a newline: not a JSON audit record")
            f.write(raw + b"\n")
            n += 1
    return n


async def iter_topic(
    bootstrap_servers: str,
    topic: str = DEFAULT_TOPIC,
    *,
    poll_ms: int = 500,
    stall_timeout: float = 30.0,
    client_id: str = "ketenbus-audit-reader",
) -> AsyncIterator[bytes]:
    """Yield every record value of ``topic`` from the beginning up to the high watermark."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        client_id=client_id,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        await consumer.start()
    except Exception as exc:
        raise AuditReadError(f"cannot reach Kafka at {bootstrap_servers}: {exc}") from exc
    try:
        topics = await consumer.topics()
        partitions = consumer.partitions_for_topic(topic) if topic in topics else None
        if not partitions:
            raise AuditReadError(f"topic {topic!r} does not exist at {bootstrap_servers}")
        for partition in sorted(partitions):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            last_progress = time.monotonic()
            while True:
                batch = await consumer.getmany(tp, timeout_ms=poll_ms)
                for message in batch.get(tp, []):
                    if message.value is not None:
                        yield message.value
                if batch.get(tp):
                    last_progress = time.monotonic()
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    break
                if time.monotonic() - last_progress > stall_timeout:
                    raise AuditReadError(
                        f"no progress on {topic}[{partition}] for {stall_timeout:.0f} s "
                        f"(position {await consumer.position(tp)}, high watermark {highwater})"
                    )
    finally:
        await consumer.stop()


async def read_topic(bootstrap_servers: str, topic: str = DEFAULT_TOPIC) -> list[bytes]:
    return [raw async for raw in iter_topic(bootstrap_servers, topic)]


def read_topic_sync(bootstrap_servers: str, topic: str = DEFAULT_TOPIC) -> list[bytes]:
    """:func:`read_topic` for synchronous callers (the CLI)."""
    return asyncio.run(read_topic(bootstrap_servers, topic))
