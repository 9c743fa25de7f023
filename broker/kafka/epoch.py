"""The broker epoch: a marker topic that tells components the broker still has its state.

The embedded broker keeps everything in memory and auto-creates any topic a client names, so
after a restart our topics can silently reappear empty (with the wrong partition count) and
consumers wait at offsets past the new log end. Nobody ever names the epoch topic except to
create it, so its absence is a reliable sign that the broker lost its state. Only the router
creates it; adapters watch it change and then re-subscribe. On Apache Kafka (durable) the epoch
simply stays the same.

Several routers may run side by side. Only one of them may restore a broker that lost its state,
or the others take its new epoch for another loss and restore again, for ever (issue 19): the
restorer is whoever creates the claim topic ``ketenbus.epoch-claim`` first. CreateTopics is
atomic (measured on the embedded broker: of five clients creating it at the same instant, one got
0 and four TOPIC_ALREADY_EXISTS), and the claim vanishes with the rest of a lost broker's state, so
there is exactly one claim per broker life. The others wait for the epoch and follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from broker.config import Settings
from broker.kafka.topics import ensure_topics, topic_partitions
from schemas.topics import KeyKind, TopicSpec

log = logging.getLogger(__name__)

EPOCH_PREFIX = "ketenbus.epoch."
CLAIM_TOPIC = "ketenbus.epoch-claim"  # not under EPOCH_PREFIX: a claim is not an epoch
CLAIM_TIMEOUT = 30.0  # seconds a claim may stand without an epoch before it counts as abandoned
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


def new_epoch_id(now: datetime | None = None) -> str:
    """A new epoch id that sorts after every earlier one (UTC time first, then randomness), so
    the newest epoch is the one every reader takes, whatever ids were drawn before."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


async def claim_epoch(settings: Settings) -> bool:
    """Try to become the one router that creates this broker life's epoch; True if we did."""
    from aiokafka.admin import NewTopic

    from broker.kafka.clients import make_admin
    from broker.kafka.topics import TOPIC_ALREADY_EXISTS, _topic_errors

    admin = make_admin(settings)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(CLAIM_TOPIC, 1, 1)])
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    for name, code, message in _topic_errors(response):
        if name != CLAIM_TOPIC:
            continue
        if code == 0:
            return True
        if code == TOPIC_ALREADY_EXISTS:
            return False
        raise RuntimeError(f"could not create {CLAIM_TOPIC}: error {code} {message or ''}")
    raise RuntimeError(f"no answer for {CLAIM_TOPIC}")


async def release_claim(settings: Settings) -> None:
    """Drop a claim whose holder never created the epoch (it died while restoring)."""
    from broker.kafka.clients import make_admin

    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.delete_topics([CLAIM_TOPIC])
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def wait_for_epoch(settings: Settings, timeout: float, interval: float = 0.2) -> str | None:
    """The epoch once another router has created it, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        now = await current_epoch(settings, max_age=0)
        if now is not None or time.monotonic() >= deadline:
            return now
        await asyncio.sleep(interval)


async def establish_epoch(
    settings: Settings,
    *,
    claim_timeout: float = CLAIM_TIMEOUT,
    before_create: Callable[[], Awaitable[None]] | None = None,
) -> tuple[str, bool]:
    """The broker's epoch, created by us only if no epoch exists and we won the claim.

    Returns ``(epoch, created)``. ``before_create`` runs between winning the claim and creating
    the epoch (the restorer puts topics and the consent log back there, so a router that follows
    the epoch finds them restored). A claim that stands ``claim_timeout`` seconds without an epoch
    is dropped and claimed anew.
    """
    while True:
        now = await current_epoch(settings, max_age=0)
        if now is not None:
            return now, False
        if await claim_epoch(settings):
            log.info("won the epoch claim")
            if before_create is not None:
                await before_create()
            return await new_epoch(settings), True
        log.info("another router holds the epoch claim; waiting for its epoch")
        now = await wait_for_epoch(settings, claim_timeout)
        if now is not None:
            return now, False
        log.warning("an epoch claim stood %.0f s without an epoch; dropped", claim_timeout)
        with contextlib.suppress(Exception):
            await release_claim(settings)


async def new_epoch(settings: Settings) -> str:
    """Create a new epoch marker (the router does this after the topics exist)."""
    epoch = new_epoch_id()
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
