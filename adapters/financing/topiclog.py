"""Read a topic from its beginning to its current end: how a component rebuilds its state from
topics at start instead of keeping a database (``broker.kafka.replay.read_topic`` does it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.config import Settings
from broker.kafka.replay import read_topic


async def replay(
    settings: Settings, topic: str, handle: Callable[[Any], None], timeout: float = 30.0
) -> int:
    """Hand every record of ``topic`` (a ConsumerRecord) to ``handle``; returns the count.
    A topic that does not exist yet is empty (``broker.kafka.replay.read_topic``)."""
    return await read_topic(settings, topic, handle, timeout)
