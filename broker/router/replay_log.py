"""The router's replay guard rebuilt from the routed topics at start, so that a restart does not
forget which messages it has routed: a replay of an old genuine record after a restart is still
a duplicate (issue 20; the rule is in ``broker/trust/replay.py``).

Read with ``assign()`` in the router's consumer group without joining it (``committed()`` only):
every routed partition from its start up to the group's **committed** offset -- a record past it
was not yet settled (a crash between routing and committing) and must be routed again, not
taken for a duplicate. Only records whose envelope verifies (sender, key, signature:
``verify_only``, nothing decrypted) and that are inside the replay window are remembered; an
unverified record could otherwise pre-empt a party's message id. The original responses are not
kept (they are sealed for their recipient): a duplicate after a restart is recognised and
audited, and gets no second response.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition

from broker.config import Settings
from broker.kafka import make_consumer
from broker.router.pipeline import RouterState
from broker.trust import TrustError, verify_only
from schemas import topics

log = logging.getLogger(__name__)


async def rebuild_replay(
    settings: Settings, state: RouterState, group_id: str, *, timeout: float = 60.0
) -> int:
    """Remember every authentic message the router's group has settled within the replay
    window; returns how many. A broker without the topics yet leaves the guard as it is."""
    consumer = make_consumer(
        settings, group_id=group_id, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    remembered = 0
    try:
        await consumer.topics()
        ends: dict[TopicPartition, int] = {}
        for spec in topics.ROUTED:
            for p in sorted(consumer.partitions_for_topic(spec.name) or ()):
                tp = TopicPartition(spec.name, p)
                committed = await consumer.committed(tp)
                if committed:
                    ends[tp] = committed
        if not ends:
            return 0
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        now = datetime.now(UTC)
        oldest_ms = (now - state.replay.window - timedelta(minutes=5)).timestamp() * 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        open_parts = set(ends)
        while open_parts:
            batch = await consumer.getmany(*open_parts, timeout_ms=200, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp] or r.timestamp < oldest_ms:
                        continue
                    try:
                        v = verify_only(
                            r.key,
                            r.value or b"",
                            list(r.headers or ()),
                            registry=state.registry,
                            now=now,
                        )
                    except TrustError:
                        continue  # never routed as authentic: nothing to remember
                    state.replay.remember(v.meta.replay_id, timestamp=v.meta.timestamp)
                    remembered += 1
            for tp in list(open_parts):
                if await consumer.position(tp) >= ends[tp]:
                    open_parts.discard(tp)
            if loop.time() > deadline:
                log.warning("replay guard rebuild stopped at its time limit (%d ids)", remembered)
                break
        return remembered
    finally:
        await consumer.stop()
