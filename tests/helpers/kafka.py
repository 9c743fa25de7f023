"""Kafka helpers for tests: read a whole topic, fresh names, and process/port checks.

``consume_all`` uses ``assign()`` and no consumer group (no 1-5 s group join) and stops at the
*fetch* high watermark: on Tansu, ``end_offsets()`` is wrong when the last batch holds more than
one record.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

_INVALID = re.compile(r"[^A-Za-z0-9._-]+")


def fresh_name(prefix: str = "t") -> str:
    """A topic or group name no other test uses (valid Kafka name characters only)."""
    clean = _INVALID.sub("-", prefix).strip("-")[:60] or "t"
    return f"{clean}-{uuid.uuid4().hex[:10]}"


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """Partition ids of ``topic``, via a Metadata request for all topics (creates nothing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        for t in await admin.describe_topics():
            if t["topic"] == topic and t["error_code"] == 0:
                return sorted(p["partition"] for p in t["partitions"])
        return []
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def consume_all(
    bootstrap: str, topic: str, timeout: float = 10.0, **consumer_kwargs: Any
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from offset 0, in partition then offset order.

    Stops when each partition's position has reached the high watermark of the latest fetch
    response. Raises ``TimeoutError`` if that does not happen within ``timeout`` seconds, and
    ``LookupError`` if the topic does not exist (it is not auto-created).
    """
    partitions = await partitions_of(bootstrap, topic)
    if not partitions:
        raise LookupError(f"topic {topic!r} does not exist on {bootstrap}")
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **consumer_kwargs,
    )
    records: list[ConsumerRecord[bytes, bytes]] = []
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while True:
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            caught_up = True
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is None or await consumer.position(tp) < highwater:
                    caught_up = False
            if caught_up:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"read {len(records)} records of {topic} but did not reach the end in "
                    f"{timeout} s"
                )
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on host:port (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.05)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_with_arg(fragment: str) -> list[int]:
    """PIDs of live processes whose command line contains ``fragment`` (Linux /proc)."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            )
        except OSError:
            continue
        if fragment in cmdline and pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds passed; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)


async def async_wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        await asyncio.sleep(interval)
