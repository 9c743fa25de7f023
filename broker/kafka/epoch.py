"""The broker epoch: a marker topic that tells components the broker still has its state.

The embedded broker keeps everything in memory and auto-creates any topic a client names, so
after a restart our topics can silently reappear empty (with the wrong partition count) and
consumers wait at offsets past the new log end. Nobody ever names the epoch topic except to
create it, so its absence is a reliable sign that the broker lost its state. Only the router
creates it; adapters watch it change and then re-subscribe. On Apache Kafka (durable) the epoch
simply stays the same.
"""

from __future__ import annotations

import asyncio
import secrets

from broker.config import Settings
from broker.kafka.topics import ensure_topics, topic_partitions
from schemas.topics import KeyKind, TopicSpec

EPOCH_PREFIX = "ketenbus.epoch."
PROBE_MAX_AGE = 0.5  # seconds one topic listing answers every watch in this process

# One probe per broker and event loop at a time: a topic listing decodes the metadata of every
# topic in aiokafka's pure-Python protocol code, and the local stack runs some 60 components that
# each watch the epoch every second; sharing the listing took that from half of the national
# scenario's CPU to a negligible share.
_probes: dict[str, tuple[float, asyncio.Task[str | None]]] = {}


def epoch_of(topic_names: list[str] | set[str] | dict[str, int]) -> str | None:
    """The current epoch id from a topic listing (the newest if several)."""
    found = sorted(n.removeprefix(EPOCH_PREFIX) for n in topic_names if n.startswith(EPOCH_PREFIX))
    return found[-1] if found else None


async def current_epoch(
    settings: Settings, timeout: float = 5.0, *, max_age: float = PROBE_MAX_AGE
) -> str | None:
    """The epoch now on the broker, or None when there is none (a fresh or restarted broker).

    Callers in one process share a listing younger than ``max_age`` (or one under way); a
    failure reaches every caller that shared it.
    """
    loop = asyncio.get_running_loop()
    key = settings.model_dump_json()
    now = loop.time()
    entry = _probes.get(key)
    if entry is not None:
        started, task = entry
        if task.get_loop() is loop and (not task.done() or now - started < max_age):
            return await asyncio.shield(task)
    task = loop.create_task(_probe(settings, timeout))
    _probes[key] = (now, task)
    return await asyncio.shield(task)


async def _probe(settings: Settings, timeout: float) -> str | None:
    async with asyncio.timeout(timeout):
        return epoch_of(await topic_partitions(settings))


def forget_probes() -> None:
    """Drop shared listings: this process just changed the epoch and must not read an old one."""
    _probes.clear()


async def new_epoch(settings: Settings) -> str:
    """Create a new epoch marker (the router does this after the topics exist)."""
    epoch = secrets.token_hex(6)
    spec = TopicSpec(EPOCH_PREFIX + epoch, 1, KeyKind.NONE, "broker epoch marker")
    await ensure_topics(settings, [spec])
    forget_probes()
    return epoch


async def repair_topics(
    settings: Settings, specs: tuple[TopicSpec, ...], attempts: int = 5
) -> None:
    """Make every topic exist with its catalogue partition count.

    Topics the broker auto-created after a restart (4 partitions on the embedded broker) are
    deleted and created again; consumers still naming them may race us, hence the retries.
    """
    from broker.kafka.clients import make_admin

    for _ in range(attempts):
        existing = await topic_partitions(settings)
        wrong = [s.name for s in specs if s.name in existing and existing[s.name] != s.partitions]
        if wrong:
            admin = make_admin(settings)
            await admin.start()
            try:
                await admin.delete_topics(wrong)
            finally:
                await admin.close()
            await asyncio.sleep(0.2)
        await ensure_topics(settings, specs)
        existing = await topic_partitions(settings)
        if all(existing.get(s.name) == s.partitions for s in specs):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("topics could not be restored with their partition counts")
