"""Benchmarks on a real broker: throughput of raw pass-through versus the routed pipeline, and
end-to-end latency at fixed offered rates.

One embedded broker on 127.0.0.1 serves every run. Each relay runs in its own process (spawned,
as the router runs in production) and is measured from outside by a watcher that consumes its
output topic: rate = messages after the warm-up / time from the warm-up's last arrival to the
last arrival. Every variant gets the same inbound records, so the figures compare relays, not
workloads. Counts and durations are bounded; a run that does not finish in time is reported
with what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import queue
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from broker.apps.bench.report import Table, micros, millis, rate, ratio
from broker.apps.bench.worker import (
    PASSTHROUGH_TOPIC,
    Client,
    Mode,
    Signals,
    WorkerSpec,
    worker_main,
)
from broker.apps.bench.workload import PROVIDER, Workload, fresh_id
from broker.config import Settings
from broker.kafka import EmbeddedBroker, ensure_topics, make_producer
from broker.router.records import Incoming, Outgoing, header
from schemas import topics
from schemas.topics import KeyKind, TopicSpec

PASSTHROUGH = TopicSpec(
    PASSTHROUGH_TOPIC, topics.PERSON_PARTITIONS, KeyKind.PERSON_PSEUDONYM, "benchmark output"
)
DELIVERIES = topics.outbound(PROVIDER).name


class BenchError(RuntimeError):
    """A benchmark could not run (a worker failed or never became ready)."""


# --- the broker and what is on it ---------------------------------------------------------------


@dataclass
class KafkaBench:
    """The broker, the workload, and the next offset of every partition of ``in.referral``
    (the bench is its only producer, so it knows the true end without ListOffsets)."""

    broker: EmbeddedBroker
    workload: Workload
    producer: AIOKafkaProducer
    ends: dict[int, int] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @classmethod
    async def start(cls, workload: Workload) -> KafkaBench:
        broker = EmbeddedBroker(state_dir=workload.state_dir)
        await broker.astart()
        try:
            parties = [p.id for p in workload.deployment.registry.parties]
            await ensure_topics(broker.bootstrap, (*topics.catalogue(parties), PASSTHROUGH))
            producer = make_producer(Settings(bootstrap_servers=broker.bootstrap))
            await producer.start()
        except BaseException:
            await broker.astop()
            raise
        bench = cls(broker, workload, producer)
        await bench.produce(workload.consent_log_records(len(workload.consents)))
        return bench

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.producer.stop()
        await self.broker.astop()

    async def produce(self, records: Iterable[Incoming | Outgoing]) -> None:
        """Send and wait for every ack; track the ends of ``in.referral``."""
        futures = [
            await self.producer.send(r.topic, value=r.value, key=r.key, headers=r.headers)
            for r in records
        ]
        for meta in await asyncio.gather(*futures):
            self._track(meta)

    def _track(self, meta: Any) -> None:
        if meta.topic == topics.IN_REFERRAL.name:
            self.ends[meta.partition] = max(self.ends.get(meta.partition, 0), meta.offset + 1)

    def start_offsets(self) -> tuple[tuple[int, int], ...]:
        return tuple((p, self.ends.get(p, 0)) for p in range(topics.IN_REFERRAL.partitions))

    async def commit_group(
        self,
        group_id: str,
        start: tuple[tuple[int, int], ...],
        topic: str = topics.IN_REFERRAL.name,
    ) -> None:
        """Start a fresh consumer group at ``start`` on ``topic`` (not at offset 0)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = {TopicPartition(topic, p): o for p, o in start}
            consumer.assign(list(tps))
            await consumer.commit(tps)
        finally:
            await consumer.stop()


# --- a relay in its own process -----------------------------------------------------------------


class Worker:
    """A spawned worker process (see ``broker.apps.bench.worker``), stopped by its own handle."""

    def __init__(self, spec: WorkerSpec) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.spec = spec
        self.results: Any = ctx.Queue()
        self.signals = Signals(go=ctx.Event(), stop=ctx.Event())
        self.process = ctx.Process(
            target=worker_main, args=(spec, self.results, self.signals), daemon=True
        )
        self.ready: dict[str, Any] = {}
        self.done: dict[str, Any] = {}

    async def start(self, timeout: float = 120.0) -> dict[str, Any]:
        self.process.start()
        self.ready = await self._next(timeout)
        if self.ready.get("kind") != "ready":
            await self.close()
            raise BenchError(f"{self.spec.mode} worker: {self.ready.get('error', self.ready)}")
        return self.ready

    async def warmed_up(self, timeout: float) -> None:
        """Wait until the worker has handled its warm-up records and waits for ``go``."""
        msg = await self._next(timeout)
        if msg.get("kind") != "warm":
            raise BenchError(f"{self.spec.mode} worker did not warm up: {msg}")

    def go(self) -> float:
        """Let the worker continue; returns the moment (``perf_counter``) it was told."""
        self.signals.go.set()
        return time.perf_counter()

    async def _next(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg: dict[str, Any] = self.results.get_nowait()
                return msg
            except queue.Empty:
                if not self.process.is_alive() and self.results.empty():
                    return {"kind": "error", "error": f"exited with {self.process.exitcode}"}
                await asyncio.sleep(0.05)
        return {"kind": "error", "error": f"no answer within {timeout:.0f} s"}

    async def close(self, timeout: float = 30.0) -> None:
        self.signals.stop.set()
        if self.process.is_alive():
            self.done = await self._next(timeout)  # "done" (or an error) once it has stopped
        await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.terminate()
            await asyncio.to_thread(self.process.join, 5)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, 5)


# --- watching an output topic -------------------------------------------------------------------


class Watcher:
    """Consumes a topic (all partitions) and notes when each expected ``kb-id`` arrives.

    Starts at the end: it first reads what is already there (judged by the fetch high
    watermark, which is right on Tansu where ListOffsets is not) and ignores it.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int, wait_ms: int = 10) -> None:
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            # Tansu answers a fetch only when this wait is over, even if records arrive
            # meanwhile: the wait bounds the error of an arrival time
            fetch_max_wait_ms=wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.expected: set[str] = set()
        self.arrivals: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self, timeout: float = 60.0) -> None:
        await self.consumer.start()
        self.consumer.assign(self.tps)
        await self.consumer.seek_to_beginning(*self.tps)
        deadline = time.monotonic() + timeout
        while not await self._caught_up():
            if time.monotonic() > deadline:
                raise BenchError(f"could not read to the end of {self.tps[0].topic}")
            await self.consumer.getmany(*self.tps, timeout_ms=100, max_records=5000)
        self._task = asyncio.create_task(self._follow())

    async def _caught_up(self) -> bool:
        for tp in self.tps:
            hw = self.consumer.highwater(tp)
            if hw is None or await self.consumer.position(tp) < hw:
                return False
        return True

    def expect(self, ids: Iterable[str]) -> None:
        self.expected.update(ids)

    async def _follow(self) -> None:
        while True:
            batch = await self.consumer.getmany(*self.tps, timeout_ms=50, max_records=5000)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    kb_id = header(list(r.headers or ()), "kb-id")
                    if kb_id in self.expected and kb_id not in self.arrivals:
                        self.arrivals[kb_id] = now
            if batch:
                self._changed.set()

    async def wait_for(self, ids: Iterable[str], timeout: float) -> bool:
        """True once every id in ``ids`` has arrived; False after ``timeout`` seconds."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while not wanted <= self.arrivals.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


def _kb_id(rec: Incoming) -> str:
    found = header(rec.headers, "kb-id")
    assert found is not None
    return found


# --- throughput ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    label: str
    mode: Mode
    client: Client = "aiokafka"
    full_validation: bool = False  # the router's default
    linger_ms: int | None = None
    repeat: int = 1  # short runs (raw pass-through) are repeated; the median is reported

    @property
    def output(self) -> str:
        return PASSTHROUGH_TOPIC if self.mode == "raw" else DELIVERIES


@dataclass
class Throughput:
    variant: Variant
    rate: float
    measured: int
    expected: int
    seconds: float
    cpu: float = 0.0  # wall seconds in the relay's own work per message (raw, routed modes)
    thread_cpu: float = 0.0  # CPU seconds of that work (less than ``cpu`` when contended)
    process_cpu: float = 0.0  # CPU seconds of the whole process per message, from ``go`` on
    spread: tuple[float, float] | None = None  # slowest and fastest of repeated runs

    @property
    def complete(self) -> bool:
        return self.measured >= self.expected


RAW = Variant("raw pass-through", "raw", repeat=3)
RAW_CONFLUENT = Variant("raw pass-through", "raw", "confluent", repeat=3)
RAW_DIRECT = Variant("raw pass-through", "raw", "librdkafka", repeat=3)
SHAPE = Variant("Kafka alone, routed output shape (no routing work)", "shape", repeat=3)
SHAPE_DIRECT = Variant(SHAPE.label, "shape", "librdkafka", repeat=3)
ROUTED = Variant("routed (router default)", "routed")
ROUTED_CONFLUENT = Variant("routed (router default)", "routed", "confluent")
ROUTED_DIRECT = Variant("routed (router default)", "routed", "librdkafka")
ROUTED_FULL = Variant("routed, full FHIR validation (opt-in)", "routed", full_validation=True)
SERVICE = Variant("RouterService as deployed (batch subscriber)", "service")
THROUGHPUT_VARIANTS = (
    RAW,
    RAW_CONFLUENT,
    RAW_DIRECT,
    SHAPE,
    SHAPE_DIRECT,
    ROUTED,
    ROUTED_CONFLUENT,
    ROUTED_DIRECT,
    ROUTED_FULL,
    SERVICE,
)
CLIENT_LABEL = {
    "aiokafka": "aiokafka",
    "confluent": "FastStream confluent",
    "librdkafka": "confluent-kafka (direct)",
}


async def run_worker(
    bench: KafkaBench,
    variant: Variant,
    start: tuple[tuple[int, int], ...],
    warmup: int = 0,
    *,
    group: str | None = None,
    instance: str | None = None,
) -> Worker:
    """A relay process reading from ``start``; a service joins ``group`` (a fresh one
    committed at ``start`` when None) as router ``instance`` (None: the router's own key)."""
    fresh = group is None
    group = group or fresh_id("bench")
    if variant.mode == "service" and fresh:
        await bench.commit_group(group, start)
    worker = Worker(
        WorkerSpec(
            mode=variant.mode,
            client=variant.client,
            bootstrap=bench.bootstrap,
            state_dir=str(bench.workload.state_dir),
            group_id=group,
            start=start,
            full_validation=variant.full_validation,
            warmup=warmup,
            instance=instance,
            linger_ms=variant.linger_ms,
        )
    )
    await worker.start()
    return worker


async def throughput(
    bench: KafkaBench,
    messages: int,
    warmup: int,
    variants: tuple[Variant, ...] = THROUGHPUT_VARIANTS,
    budget: float = 60.0,
) -> list[Throughput]:
    """Preload ``warmup + messages`` referrals once; pass them through each variant in turn.

    A raw or routed worker handles the warm-up, then waits: the clock starts when it is told
    to go, and stops at the last arrival on its output topic. ``RouterService`` cannot be held
    like that; its clock starts at its ``warmup``-th arrival. A variant gets ``budget`` seconds;
    a slower one is measured over what arrived by then. A variant with ``repeat`` > 1 (the
    short raw runs) is measured that many times; the median is reported, with the spread.
    """
    start = bench.start_offsets()
    records = bench.workload.sealed_referrals(warmup + messages)
    await bench.produce(records)
    ids = [_kb_id(r) for r in records]
    out = []
    for variant in variants:
        runs = [
            await (
                _service_once(bench, variant, records, warmup, budget)
                if variant.mode == "service"
                else _throughput_once(bench, variant, ids, start, warmup, budget)
            )
            for _ in range(variant.repeat)
        ]
        runs.sort(key=lambda r: r.rate)
        median = runs[len(runs) // 2]
        median.spread = (runs[0].rate, runs[-1].rate) if len(runs) > 1 else None
        out.append(median)
    return out


async def _throughput_once(
    bench: KafkaBench,
    variant: Variant,
    ids: list[str],
    start: tuple[tuple[int, int], ...],
    warmup: int,
    budget: float,
) -> Throughput:
    watcher = Watcher(bench.bootstrap, variant.output, topics.PERSON_PARTITIONS)
    await watcher.start()
    watcher.expect(ids)
    worker: Worker | None = None
    t0 = 0.0
    try:
        worker = await run_worker(bench, variant, start, warmup)
        await worker.warmed_up(timeout=60.0)
        t0 = worker.go()
        await watcher.wait_for(ids, timeout=budget)
    finally:
        if worker is not None:
            await worker.close()
        await watcher.stop()
    # the relay handles records in its own order (partition by partition), so the warm-up is
    # "the first ``warmup`` handled", not particular ids
    times = sorted(watcher.arrivals[i] for i in ids if i in watcher.arrivals)
    done = max(0, len(times) - warmup)
    span = times[-1] - t0 if times else 0.0
    handled = max(1, int(worker.done.get("handled", 0)))
    return Throughput(
        variant,
        done / span if span > 0 else 0.0,
        done,
        len(ids) - warmup,
        span,
        cpu=float(worker.done.get("busy", 0.0)) / handled,
        thread_cpu=float(worker.done.get("cpu", 0.0)) / handled,
        process_cpu=float(worker.done.get("process_cpu", 0.0)) / max(1, done),
    )


async def _warm_router(
    bench: KafkaBench, variant: Variant, watcher: Watcher, warm: list[Incoming]
) -> Worker:
    """A router process reading from the topic's end, with ``warm`` sent and delivered."""
    worker = await run_worker(bench, variant, bench.start_offsets())
    try:
        await bench.produce(warm)
        if not await watcher.wait_for((_kb_id(r) for r in warm), timeout=60.0):
            raise BenchError(f"{variant.label}: the warm-up was not delivered within 60 s")
    except BaseException:
        await worker.close()
        raise
    return worker


async def _service_once(
    bench: KafkaBench, variant: Variant, records: list[Incoming], warmup: int, budget: float
) -> Throughput:
    """``RouterService`` timed like the batched loops: it starts at the topic's end, routes the
    warm-up, and waits at a gate before its next batch (``worker._service``); the measured
    records are then put on the topic, and the clock runs from ``go`` to the last arrival.
    They are sealed anew (fresh message ids): the router rebuilds its replay guard from the
    topic at start, so the records the other relays read would be answered as duplicates."""
    fresh = bench.workload.sealed_referrals(len(records))
    warm, measured = fresh[:warmup], fresh[warmup:]
    watcher = Watcher(bench.bootstrap, variant.output, topics.PERSON_PARTITIONS)
    await watcher.start()
    watcher.expect(_kb_id(r) for r in fresh)
    worker: Worker | None = None
    t0 = 0.0
    try:
        worker = await run_worker(bench, variant, bench.start_offsets(), warmup=len(warm))
        await bench.produce(warm)
        if not await watcher.wait_for((_kb_id(r) for r in warm), timeout=60.0):
            raise BenchError(f"{variant.label}: the warm-up was not delivered within 60 s")
        await bench.produce(measured)
        await worker.warmed_up(timeout=60.0)
        t0 = worker.go()
        await watcher.wait_for((_kb_id(r) for r in measured), timeout=budget)
    finally:
        if worker is not None:
            await worker.close()
        await watcher.stop()
    times = [watcher.arrivals[i] for i in (_kb_id(r) for r in measured) if i in watcher.arrivals]
    span = max(times) - t0 if times else 0.0
    handled = max(1, int(worker.done.get("handled", 0)))
    return Throughput(
        variant,
        len(times) / span if span > 0 else 0.0,
        len(times),
        len(measured),
        span,
        cpu=float(worker.done.get("busy", 0.0)) / handled,
        thread_cpu=float(worker.done.get("cpu", 0.0)) / handled,
        process_cpu=float(worker.done.get("process_cpu", 0.0)) / max(1, len(times)),
    )


def throughput_table(results: list[Throughput], messages: int, value_bytes: int) -> Table:
    table = Table(
        "throughput",
        f"Throughput: the same {messages:,} referrals (sealed value {value_bytes:,} B) through "
        "each relay, one after another on one broker",
        [
            "relay",
            "client",
            "msgs/s",
            "x raw (same client)",
            "x raw aiokafka",
            "relay µs/msg",
            "of it CPU µs",
        ],
    )
    raw = {r.variant.client: r.rate for r in results if r.variant.mode == "raw"}
    for r in results:
        same = raw.get(r.variant.client if r.variant.mode != "service" else "aiokafka", 0.0)
        label = r.variant.label + ("" if r.complete else f" [{r.measured}/{r.expected} in time]")
        if r.spread is not None:
            label += f" (median of {r.variant.repeat}: {rate(r.spread[0])}-{rate(r.spread[1])})"
        client = (
            "FastStream aiokafka" if r.variant.mode == "service" else CLIENT_LABEL[r.variant.client]
        )
        table.add(
            label,
            client,
            rate(r.rate),
            ratio(r.rate / same) if same else "-",
            ratio(r.rate / raw["aiokafka"]) if raw.get("aiokafka") else "-",
            micros(r.cpu) if r.cpu else "-",
            micros(r.thread_cpu) if r.thread_cpu else "-",
        )
    table.notes.append(
        "relay µs/msg: wall time inside the relay's own work (route + audit, or the copy) per "
        "message in its process; 'of it CPU' is that process's CPU time for it (the rest is "
        "waiting for a core)"
    )
    table.notes.append(
        "raw, shape and routed relays use one loop: fetch up to 500 records, handle them, send, "
        "await the acks once per batch; RouterService does the same through FastStream's batch "
        "subscriber and commits per batch"
    )
    table.notes.append(
        "'Kafka alone, routed output shape' produces, per input, copies of what the router "
        "produces for one referral (delivery, response, audit record) without routing: the "
        "ceiling of any router with this output on this client"
    )
    return table


# --- latency at fixed offered rates -------------------------------------------------------------


@dataclass
class Latency:
    variant: Variant
    offered: float
    sent: int
    delivered: int
    delivered_rate: float
    latencies: list[float]  # seconds; math.inf for not delivered by the cut-off
    cutoff: float
    skipped: bool = False  # not offered: the router was saturated at a lower rate

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


LATENCY_SERVICE = Variant("RouterService as deployed", "service")
LATENCY_BATCHED = Variant("batched loop (router default)", "routed")
LATENCY_VARIANTS = (LATENCY_SERVICE, LATENCY_BATCHED)


async def latency(
    bench: KafkaBench,
    rates: tuple[float, ...],
    seconds: float,
    variants: tuple[Variant, ...] = LATENCY_VARIANTS,
) -> list[Latency]:
    """Per router: one process, a warm-up, then ``seconds`` of referrals at each offered rate
    (ascending); latency is send → arrival on the provider's topic. Once a rate is not fully
    delivered within the cut-off, higher rates are not offered to that router (it is saturated
    and its backlog would distort them)."""
    out: list[Latency] = []
    for variant in variants:
        batches = {r: bench.workload.sealed_referrals(max(1, round(r * seconds))) for r in rates}
        warm = bench.workload.sealed_referrals(10)  # all sealed before the router starts
        watcher = Watcher(bench.bootstrap, DELIVERIES, topics.PERSON_PARTITIONS)
        await watcher.start()
        watcher.expect(_kb_id(r) for r in warm)
        for records in batches.values():
            watcher.expect(_kb_id(r) for r in records)
        worker: Worker | None = None
        try:
            worker = await _warm_router(bench, variant, watcher, warm)
            saturated: Latency | None = None
            for offered, records in batches.items():
                if saturated is not None:
                    out.append(Latency(variant, offered, 0, 0, 0.0, [], 0.0, skipped=True))
                    continue
                result = await _offer_and_wait(bench, watcher, variant, offered, records, seconds)
                out.append(result)
                if result.delivered < result.sent:
                    saturated = result
        finally:
            if worker is not None:
                await worker.close()
            await watcher.stop()
    return out


async def _offer_and_wait(
    bench: KafkaBench,
    watcher: Watcher,
    variant: Variant,
    offered: float,
    records: list[Incoming],
    seconds: float,
) -> Latency:
    sent = await _offer(bench, records, offered)
    cutoff = max(3.0, seconds)
    await watcher.wait_for(sent, timeout=cutoff)
    arrived = {i: watcher.arrivals[i] for i in sent if i in watcher.arrivals}
    lat = [arrived[i] - t if i in arrived else math.inf for i, t in sent.items()]
    span = (max(arrived.values()) - min(sent.values())) if arrived else 0.0
    return Latency(
        variant,
        offered,
        len(sent),
        len(arrived),
        len(arrived) / span if span else 0.0,
        lat,
        cutoff,
    )


async def _offer(bench: KafkaBench, records: list[Incoming], offered: float) -> dict[str, float]:
    """Send at a fixed rate (not waiting for acks in between); return send times by id."""
    sent: dict[str, float] = {}
    futures = []
    t0 = time.perf_counter()
    for i, rec in enumerate(records):
        delay = t0 + i / offered - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[_kb_id(rec)] = time.perf_counter()
        futures.append(
            await bench.producer.send(rec.topic, value=rec.value, key=rec.key, headers=rec.headers)
        )
    for meta in await asyncio.gather(*futures):
        bench._track(meta)
    return sent


def _ms(value: float, cutoff: float) -> str:
    if math.isnan(value):
        return "-"
    return f"> {cutoff:,.0f} s" if math.isinf(value) else millis(value)


def latency_table(results: list[Latency], seconds: float) -> Table:
    table = Table(
        "latency",
        f"End-to-end latency: ZVH send → delivery on {DELIVERIES}, {seconds:g} s at each "
        "offered rate (one router process per row group, rates ascending)",
        ["router", "offered/s", "delivered/s", "p50 ms", "p95 ms", "p99 ms", "delivered"],
    )
    for r in results:
        if r.skipped:
            table.add(r.variant.label, rate(r.offered), "-", "-", "-", "-", "saturated below")
            continue
        table.add(
            r.variant.label,
            rate(r.offered),
            rate(r.delivered_rate),
            _ms(r.percentile(0.50), r.cutoff),
            _ms(r.percentile(0.95), r.cutoff),
            _ms(r.percentile(0.99), r.cutoff),
            f"{r.delivered}/{r.sent}",
        )
    table.notes.append(
        "a message not delivered within the cut-off after the last send counts as slower than "
        "it ('> N s'): the router could not keep up with that rate, and is not offered the "
        "higher rates ('saturated below')"
    )
    return table


# --- consent view rebuilt from the consent topic ------------------------------------------------


async def rebuild_from_topic(bench: KafkaBench, extra: int) -> dict[str, Any]:
    """Append ``extra`` consent events, then time a router-style rebuild of the whole topic."""
    from broker.router.consent_log import ConsentLog

    base = len(bench.workload.consents)
    records = bench.workload.consent_log_records(base + extra)[base:]
    await bench.produce(records)
    state = bench.workload.router_state(consents=False)
    began = time.perf_counter()
    log = ConsentLog(Settings(bootstrap_servers=bench.bootstrap), state)
    try:
        applied = await log.start(timeout=600.0)
    finally:
        await log.stop()
    seconds = time.perf_counter() - began
    return {"events": applied, "seconds": seconds, "consents": len(state.consents)}


def value_size(records: list[Incoming]) -> int:
    return round(sum(len(r.value) for r in records) / max(1, len(records)))


def state_dir_of(bench: KafkaBench) -> Path:
    return bench.workload.state_dir
