"""At scale, side by side in one run (issue 19): one versus two router instances, the router's
rate versus end to end with the provider's adapter, and how long routing pauses when one of two
routers is killed (failover) or the only one is killed and restarted at once.

Every router here is ``RouterService`` as deployed, in its own process, with the deployed
session timeout (``KETENBUS_SESSION_TIMEOUT_MS`` if set, else the broker kind's default,
``broker/kafka/group.py``): a pause is what an operator would see.
Referrals are sealed anew for each run (fresh message ids; a router rebuilds its replay guard
from the topic at start and would answer old ids as duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.apps.bench.kafka_runs import (
    DELIVERIES,
    BenchError,
    KafkaBench,
    Variant,
    Watcher,
    Worker,
    _kb_id,
    _offer,
)
from broker.apps.bench.worker import WorkerSpec, provider_outbox
from broker.apps.bench.workload import INSTANCES, fresh_id
from broker.apps.bench.workload import PROVIDER as PROVIDER_ID
from broker.config import Settings
from broker.kafka.group import session_timeout
from schemas import topics

ROUTER = Variant("RouterService as deployed", "service")
PROVIDER = Variant("provider adapter as deployed", "provider")


@dataclass
class ScaleResult:
    """What the scale runs measured (rates in msgs/s, pauses in seconds; None: not measured)."""

    messages: int = 0
    routers: dict[int, float] = field(default_factory=dict)  # instances -> router-side rate
    router_rate: float = 0.0  # the router's rate in the end-to-end run (one router)
    end_to_end: float = 0.0  # the same run: files durably in the provider's outbox
    failover: float | None = None
    restart: float | None = None
    pause_rate: float = 100.0
    session_timeout_ms: int = 0  # as deployed on the bench's broker (measure() fills it in)
    notes: list[str] = field(default_factory=list)


def _spec(
    bench: KafkaBench, variant: Variant, group: str, instance: str | None = None
) -> WorkerSpec:
    return WorkerSpec(
        mode=variant.mode,
        client="aiokafka",
        bootstrap=bench.bootstrap,
        state_dir=str(bench.workload.state_dir),
        group_id=group,
        session_timeout_ms=_deployed[bench.bootstrap],  # deployed_session_timeout() first
        instance=instance,
    )


_deployed: dict[str, int] = {}  # bootstrap -> the session timeout as deployed there


async def deployed_session_timeout(bench: KafkaBench) -> int:
    """The timeout a router started as deployed would use on the bench's broker."""
    if bench.bootstrap not in _deployed:
        settings = Settings(bootstrap_servers=bench.bootstrap)
        _deployed[bench.bootstrap] = await session_timeout(settings)
    return _deployed[bench.bootstrap]


async def _start(specs: list[WorkerSpec]) -> list[Worker]:
    """Start the workers side by side (as ``ketenbus up`` starts N routers)."""
    workers = [Worker(s) for s in specs]
    try:
        await asyncio.gather(*(w.start() for w in workers))
    except BaseException:
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        raise
    return workers


async def _close(workers: list[Worker]) -> None:
    await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)


async def _routers(
    bench: KafkaBench, instances: tuple[str | None, ...]
) -> tuple[str, list[Worker]]:
    group = fresh_id("bench-scale")
    await bench.commit_group(group, bench.start_offsets())
    return group, await _start([_spec(bench, ROUTER, group, i) for i in instances])


async def _warm(bench: KafkaBench, watcher: Watcher, n: int) -> None:
    """A warm-up routed by every instance (partitions assigned, code paths warm)."""
    warm = bench.workload.sealed_referrals(n)
    watcher.expect(_kb_id(r) for r in warm)
    await bench.produce(warm)
    if not await watcher.wait_for((_kb_id(r) for r in warm), timeout=90.0):
        raise BenchError("scale: the warm-up was not delivered within 90 s")


def _outbox_count(folder: Path) -> int:
    try:
        return sum(
            1
            for e in os.scandir(folder)
            if e.is_file() and not e.name.startswith(".") and e.name.count(".") == 1
        )
    except FileNotFoundError:
        return 0


async def router_rate(
    bench: KafkaBench, instances: tuple[str | None, ...], messages: int, warmup: int, budget: float
) -> float:
    """Routers side by side in one group: ``messages`` referrals sent in one go, the clock from
    the first send to the last delivery on the provider's topic."""
    await deployed_session_timeout(bench)
    watcher = Watcher(bench.bootstrap, DELIVERIES, topics.PERSON_PARTITIONS)
    await watcher.start()
    workers: list[Worker] = []
    try:
        _, workers = await _routers(bench, instances)
        await _warm(bench, watcher, warmup)
        measured = bench.workload.sealed_referrals(messages)
        ids = [_kb_id(r) for r in measured]
        watcher.expect(ids)
        t0 = time.perf_counter()
        await bench.produce(measured)
        await watcher.wait_for(ids, timeout=budget)
    finally:
        await _close(workers)
        await watcher.stop()
    times = [watcher.arrivals[i] for i in ids if i in watcher.arrivals]
    return len(times) / (max(times) - t0) if times else 0.0


async def end_to_end(
    bench: KafkaBench, messages: int, warmup: int, budget: float
) -> tuple[float, float]:
    """One router and the provider's adapter: the router's rate (deliveries on its topic) and
    the end-to-end rate (files durably in the provider's outbox), in the same run."""
    await deployed_session_timeout(bench)
    watcher = Watcher(bench.bootstrap, DELIVERIES, topics.PERSON_PARTITIONS)
    await watcher.start()
    workers: list[Worker] = []
    group = fresh_id("bench-e2e")
    provider_spec = _spec(bench, PROVIDER, group)
    outbox = provider_outbox(provider_spec)
    try:
        # the adapter's group starts where the topic ends now (earlier runs filled it)
        ends = tuple([(tp.partition, await watcher.consumer.position(tp)) for tp in watcher.tps])
        await bench.commit_group(f"ketenbus-adapter-{PROVIDER_ID}", ends, DELIVERIES)
        _, workers = await _routers(bench, (None,))
        workers += await _start([provider_spec])
        await _warm(bench, watcher, warmup)
        deadline = time.monotonic() + 90.0
        while _outbox_count(outbox) < warmup and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        base = _outbox_count(outbox)
        if base < warmup:
            raise BenchError(f"scale: the provider wrote {base} of {warmup} warm-up files")
        measured = bench.workload.sealed_referrals(messages)
        ids = [_kb_id(r) for r in measured]
        watcher.expect(ids)
        t0 = time.perf_counter()
        await bench.produce(measured)
        done_at = 0.0
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            if _outbox_count(outbox) >= base + messages:
                done_at = time.perf_counter()
                break
            await asyncio.sleep(0.01)
        await watcher.wait_for(ids, timeout=max(0.1, deadline - time.monotonic()))
    finally:
        await _close(workers)
        await watcher.stop()
    times = [watcher.arrivals[i] for i in ids if i in watcher.arrivals]
    router = len(times) / (max(times) - t0) if times else 0.0
    if not done_at:  # over budget: what reached the outbox by then
        written = _outbox_count(outbox) - base
        return router, written / budget
    return router, messages / (done_at - t0)


async def pauses(
    bench: KafkaBench, rate: float, cutoff: float = 60.0
) -> tuple[float | None, float | None]:
    """Two router instances under a steady stream: SIGKILL one (failover: how long until its
    partitions route again on the other), then SIGKILL the other and start it again at once
    (restart). Each pause is the longest latency of the referrals sent in the half second
    after the kill, so it counts detection, rebalance, the restart and catching up."""
    await deployed_session_timeout(bench)
    watcher = Watcher(bench.bootstrap, DELIVERIES, topics.PERSON_PARTITIONS)
    await watcher.start()
    workers: list[Worker] = []
    try:
        group, workers = await _routers(bench, INSTANCES)
        await _warm(bench, watcher, 20)
        failover = await _measure_pause(bench, watcher, rate, cutoff, lambda: _kill(workers[1]))

        async def restart() -> None:
            await _kill(workers[0])
            workers[0] = (await _start([_spec(bench, ROUTER, group, INSTANCES[0])]))[0]

        restarted = await _measure_pause(bench, watcher, rate, cutoff, restart)
    finally:
        await _close(workers)
        await watcher.stop()
    return failover, restarted


async def _kill(worker: Worker) -> None:
    """SIGKILL: no leave-group, no final checkpoint; the group notices by the session timeout."""
    worker.process.kill()
    await asyncio.to_thread(worker.process.join, 10)


async def _measure_pause(
    bench: KafkaBench,
    watcher: Watcher,
    rate: float,
    cutoff: float,
    act: Callable[[], Coroutine[Any, Any, None]],
) -> float | None:
    """Half a second of referrals at ``rate``, then ``act`` (a kill) while the next half
    second is sent; the pause is the longest latency of those (None: not all routed within
    ``cutoff``)."""
    before = bench.workload.sealed_referrals(max(1, round(rate * 0.5)))
    after = bench.workload.sealed_referrals(max(1, round(rate * 0.5)))
    watcher.expect(_kb_id(r) for r in before + after)
    await _offer(bench, before, rate)
    acting = asyncio.create_task(act())
    sent = await _offer(bench, after, rate)
    with contextlib.suppress(Exception):
        await acting
    await watcher.wait_for(sent, timeout=cutoff)
    latencies = [watcher.arrivals[i] - t for i, t in sent.items() if i in watcher.arrivals]
    if len(latencies) < len(sent):
        return None  # not all routed within the cut-off
    return max(latencies)


async def measure(
    bench: KafkaBench,
    messages: int,
    warmup: int,
    budget: float,
    rate: float = 100.0,
    *,
    with_pauses: bool = True,
    with_instances: bool = True,
) -> ScaleResult:
    """End to end, one versus two routers, then the pauses."""
    result = ScaleResult(
        messages=messages, pause_rate=rate, session_timeout_ms=await deployed_session_timeout(bench)
    )
    result.router_rate, result.end_to_end = await end_to_end(bench, messages, warmup, budget)
    if with_instances:
        result.routers[1] = await router_rate(bench, (None,), messages, warmup, budget)
        result.routers[2] = await router_rate(bench, INSTANCES, messages, warmup, budget)
    if with_pauses:
        result.failover, result.restart = await pauses(bench, rate)
    return result


__all__ = ["ScaleResult", "end_to_end", "measure", "pauses", "router_rate"]
