"""The broker epoch as the ~60 watches of one process see it: one shared listing, never stale
after this process changes the epoch itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker.config import Settings
from broker.kafka import ensure_topics, kafka_connection
from broker.kafka.epoch import EPOCH_PREFIX, current_epoch, forget_probes, new_epoch
from schemas.topics import KeyKind, TopicSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_watches_share_a_listing_and_see_their_own_new_epoch(tmp_path: Path) -> None:
    # a private broker: epoch markers made here must not confuse other tests' routers
    async with kafka_connection(Settings(state_dir=tmp_path)) as bootstrap:
        settings = Settings(bootstrap_servers=bootstrap, state_dir=tmp_path)
        forget_probes()
        assert await asyncio.gather(*(current_epoch(settings) for _ in range(30))) == [None] * 30

        mine = await new_epoch(settings)
        # new_epoch drops the shared listing: the next look sees the marker at once
        assert await current_epoch(settings, max_age=60) == mine

        # a marker made elsewhere (another process) is seen once the shared listing is old
        other = "f" * 12 if mine != "f" * 12 else "e" * 12
        spec = TopicSpec(EPOCH_PREFIX + other, 1, KeyKind.NONE, "another process's marker")
        await ensure_topics(settings, [spec])
        assert await current_epoch(settings, max_age=60) == mine  # shared, younger than 60 s
        assert await current_epoch(settings, max_age=0) == max(mine, other)
        forget_probes()
