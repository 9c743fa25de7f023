"""The router lets its event loop turn while it routes a large fetched batch: the group's
heartbeats run on that loop, and a batch routed in one go held it for seconds on a loaded
machine, long enough for the coordinator to evict a live router (issue 19, point 6). The batch
still yields one result per record, in order, as routing it at once does."""

from __future__ import annotations

import asyncio

from broker.apps.deployment import Deployment
from broker.config import Settings
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.service import ROUTE_SLICE, RouterService
from tests.unit.router.test_pipeline import (
    ZVH,
    bsn,
    consent_in,
    deployment,  # noqa: F401 - the module-scoped fixture
    reply_of,
)


async def test_a_large_batch_is_routed_in_slices_with_the_loop_turning_between(
    deployment: Deployment,  # noqa: F811
) -> None:
    zvh = deployment.party_client(ZVH)
    people = [bsn() for _ in range(2 * ROUTE_SLICE + 3)]
    recs = [consent_in(zvh, p) for p in people]
    recs.append(recs[0])  # a replay of the first, across slices: answered as a duplicate
    service = RouterService(
        Settings(bootstrap_servers="127.0.0.1:9"), deployment.router_state(default_policy())
    )
    turns = 0
    stop = asyncio.Event()

    async def count_turns() -> None:
        nonlocal turns
        while not stop.is_set():
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    before = turns
    results = await service._route_sliced(recs)
    stop.set()
    await counter
    assert turns - before >= 2  # the loop turned between the three slices
    assert len(results) == len(recs)
    assert [reply_of(zvh, r.records)["code"] for r in results] == ["ok"] * len(recs)
    # the replay, routed two slices later, is answered as a duplicate, not applied again
    assert [f.kind for f in results[-1].facts] == [FactKind.DUPLICATE]
    assert reply_of(zvh, results[-1].records) == reply_of(zvh, results[0].records)


async def test_a_batch_fetched_before_the_router_is_ready_waits_for_it(
    deployment: Deployment,  # noqa: F811
) -> None:
    """A restarted router's fetcher can hand it a batch before its audit chain has resumed and
    its consent view is whole (the rebalance listener's wait does not hold the fetcher): seen
    as ``assert self._chain is not None`` in the audit sink and a nacked batch. The batch now
    waits for the router to be ready."""
    zvh = deployment.party_client(ZVH)
    rec = consent_in(zvh, bsn())
    service = RouterService(
        Settings(bootstrap_servers="127.0.0.1:9"), deployment.router_state(default_policy())
    )

    class Raw:
        topic, partition, offset = rec.topic, 0, 0
        key, value, headers = rec.key, rec.value, rec.headers

    class Msg:
        raw_message = (Raw(),)

    assert not service._ready.is_set()
    handled = asyncio.create_task(service._handle_batch(Msg()))  # type: ignore[arg-type]
    for _ in range(50):
        await asyncio.sleep(0)
    assert not handled.done(), "a batch was handled before the router was ready"
    handled.cancel()
    await asyncio.gather(handled, return_exceptions=True)
