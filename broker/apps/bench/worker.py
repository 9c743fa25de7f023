"""One relay under test, in its own process (as the router runs in production), until stopped.

Modes, all reading the same inbound records and writing to the same broker:

* ``raw``: consume → produce the same key, value and headers to a pass-through topic;
* ``shape``: Kafka alone with the routed output: the first record is routed once, and every
  record then produces copies of those outputs (same topics and sizes: delivery, response,
  audit record) with its own id, so the figure is the ceiling any router with this output
  shape can reach on this client;
* ``routed``: consume → ``Pipeline.route_batch`` → produce its records and the batch's audit
  records, awaiting the acks once per fetched batch (the loop is the same as ``raw``'s);
* ``service``: ``RouterService`` exactly as ``ketenbus router`` runs it (FastStream batch
  subscriber, commits per batch).

``client`` picks aiokafka (the project's client) or FastStream's confluent-kafka broker (a batch
subscriber) for ``raw``, ``shape`` and ``routed``. A worker rebuilds the consent view from the
consent topic like a starting router, reports ``ready`` on its queue, and stops when the parent
sets ``stop``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing.synchronize
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from faststream.kafka.annotations import KafkaMessage

from broker.apps.deployment import KEYS_DIR, REGISTRY_FILE, SECRETS_DIR, load
from broker.audit import AuditChain
from broker.config import Settings
from broker.policy import default_policy
from broker.router import heap
from broker.router.audit_sink import to_record
from broker.router.pipeline import Pipeline, RouterState
from broker.router.records import Incoming, Outgoing
from schemas import topics

PASSTHROUGH_TOPIC = "bench.passthrough"
READ_BACK_SAFE = ("out.", "audit")
"""Topics the shape relay writes its copies to as they are; copies for any other topic go to the
pass-through topic (a router rebuilds its state from those topics at start)."""
Mode = Literal["raw", "shape", "routed", "service", "provider"]
Client = Literal["aiokafka", "confluent", "librdkafka"]


@dataclass(frozen=True)
class WorkerSpec:
    mode: Mode
    client: Client
    bootstrap: str
    state_dir: str
    group_id: str
    start: tuple[tuple[int, int], ...] = ()  # (partition, offset) of the source topic
    full_validation: bool = False
    source: str = topics.IN_REFERRAL.name
    sink: str = PASSTHROUGH_TOPIC
    session_timeout_ms: int = 3000
    warmup: int = 0  # raw/routed: after this many records, wait for ``go`` (0: no gate)
    linger_ms: int | None = None  # service: a what-if producer linger (None: as deployed)
    instance: str | None = None  # service: run as this router instance (own key and chain)


@dataclass(frozen=True)
class Signals:
    """What the parent tells a worker: ``go`` (after the warm-up) and ``stop``."""

    go: multiprocessing.synchronize.Event
    stop: multiprocessing.synchronize.Event


def worker_main(spec: WorkerSpec, results: Any, signals: Signals) -> None:
    """Process entry point (spawned): run until ``stop`` is set; report on ``results``."""
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(_run(spec, results, signals))
    except BaseException as exc:  # the parent must hear of any failure, then we exit
        results.put({"kind": "error", "error": f"{type(exc).__name__}: {exc}"})


def _settings(spec: WorkerSpec) -> Settings:
    return Settings(bootstrap_servers=spec.bootstrap, state_dir=Path(spec.state_dir))


def _state(spec: WorkerSpec) -> RouterState:
    state_dir = Path(spec.state_dir)
    dep = load(state_dir / REGISTRY_FILE, state_dir / KEYS_DIR, state_dir / SECRETS_DIR)
    state: RouterState = dep.router_state(default_policy(), instance=spec.instance)
    state.full_validation = spec.full_validation
    return state


async def _until(event: multiprocessing.synchronize.Event, also: Any = None) -> None:
    while not event.is_set() and not (also is not None and also.is_set()):
        await asyncio.sleep(0.002)


async def _run(spec: WorkerSpec, results: Any, signals: Signals) -> None:
    if spec.mode == "service":
        await _service(spec, results, signals)
        return
    if spec.mode == "provider":
        await _provider(spec, results, signals)
        return
    relay: _Relay
    if spec.mode == "raw":
        relay = _Passthrough(spec)
    elif spec.mode == "shape":
        relay = _Shape(await _Router.create(spec))
    else:
        relay = await _Router.create(spec)
    if spec.client == "aiokafka":
        await _aiokafka_loop(spec, relay, results, signals)
    elif spec.client == "confluent":
        await _confluent_loop(spec, relay, results, signals)
    else:
        await _librdkafka_loop(spec, relay, results, signals)
    results.put(
        {
            "kind": "done",
            "handled": relay.handled,
            "busy": relay.busy,
            "cpu": relay.cpu,
            "process_cpu": (relay.process_end or time.process_time()) - relay.process_cpu
            if relay.process_cpu
            else 0.0,
        }
    )


async def _service(spec: WorkerSpec, results: Any, signals: Signals) -> None:
    from broker.router.service import RouterService

    settings = _settings(spec)
    if spec.linger_ms is not None:  # what-if: the service's producer with another linger
        settings = settings.model_copy(update={"router_linger_ms": spec.linger_ms})
    state = _state(spec)
    gated = spec.warmup > 0

    class Gated(RouterService):
        """``RouterService`` unchanged but for a gate before the first batch after the
        warm-up, as the batched loops have: the clock starts at ``go`` with every measured
        record on the topic, so both are timed on the same preloaded records."""

        busy = 0.0  # seconds in the batch handler (route, publish, acknowledgements)
        cpu = 0.0
        process_cpu = 0.0  # the process's CPU time at ``go``

        async def _handle_batch(self, msg: KafkaMessage) -> None:
            if gated and self.routed >= spec.warmup and not signals.go.is_set():
                results.put({"kind": "warm"})
                await _until(signals.go, signals.stop)
                self.process_cpu = time.process_time()
            began, cpu = time.perf_counter(), time.thread_time()
            await super()._handle_batch(msg)
            self.busy += time.perf_counter() - began
            self.cpu += time.thread_time() - cpu

    service = Gated(
        settings,
        state,
        group_id=spec.group_id,
        session_timeout_ms=spec.session_timeout_ms,
    )
    began = time.perf_counter()
    await service.start()
    results.put({"kind": "ready", "consents": len(state.consents), "startup": _since(began)})
    ended = 0.0
    try:
        await _until(signals.stop)
        ended = time.process_time()
    finally:
        await service.stop()
    results.put(
        {
            "kind": "done",
            "handled": service.routed,
            "busy": service.busy,
            "cpu": service.cpu,
            "process_cpu": ended - service.process_cpu if service.process_cpu else 0.0,
        }
    )


async def _provider(spec: WorkerSpec, results: Any, signals: Signals) -> None:
    """The provider's adapter as ``ketenbus adapter provider`` runs it (journal, key store,
    claims desk), writing its outbox under ``<state_dir>/bench-provider/<group_id>``."""
    from adapters.provider.service import ProviderAdapter
    from broker.apps.bench.workload import PROVIDER

    settings = _settings(spec)
    state_dir = Path(spec.state_dir)
    dep = load(state_dir / REGISTRY_FILE, state_dir / KEYS_DIR, state_dir / SECRETS_DIR)
    adapter = ProviderAdapter(
        settings,
        dep.party_client(PROVIDER),
        provider_outbox(spec),
        session_timeout_ms=spec.session_timeout_ms,
        datakeys=dep.key_store(settings, write=True, party=PROVIDER),
    )
    began = time.perf_counter()
    await adapter.start()
    results.put({"kind": "ready", "startup": _since(began)})
    try:
        await _until(signals.stop)
    finally:
        await adapter.stop()
    results.put({"kind": "done", "handled": adapter.runtime.delivered})


def provider_outbox(spec: WorkerSpec) -> Path:
    return Path(spec.state_dir) / "bench-provider" / spec.group_id / "outbox"


def _since(t: float) -> float:
    return time.perf_counter() - t


# --- the relays ---------------------------------------------------------------------------------


class _Relay:
    consents = 0
    rebuild_seconds = 0.0
    handled = 0
    busy = 0.0  # seconds spent in handle(): the relay's own CPU work
    cpu = 0.0
    process_cpu = 0.0  # the process's CPU time at ``go`` (client work included)
    process_end = 0.0  # and when told to stop

    def handle(self, recs: list[Incoming]) -> list[Outgoing]:
        """Handle a fetched batch (or the part of it up to the warm-up gate)."""
        began, cpu = time.perf_counter(), time.thread_time()
        out = self._handle(recs)
        self.busy += time.perf_counter() - began
        self.cpu += time.thread_time() - cpu
        self.handled += len(recs)
        return out

    def _handle(self, recs: list[Incoming]) -> list[Outgoing]:
        raise NotImplementedError

    def chunks(self, spec: WorkerSpec, recs: list[Incoming]) -> list[list[Incoming]]:
        """``recs`` split where the warm-up ends, so the gate falls between two chunks."""
        cut = spec.warmup - self.handled
        if spec.warmup and 0 < cut < len(recs):
            return [recs[:cut], recs[cut:]]
        return [recs]

    async def gate(self, spec: WorkerSpec, results: Any, signals: Signals) -> None:
        """After the warm-up, say so and wait for ``go`` (the parent starts its clock)."""
        if spec.warmup and self.handled == spec.warmup and not signals.go.is_set():
            results.put({"kind": "warm"})
            await _until(signals.go, signals.stop)
            self.process_cpu = time.process_time()


class _Passthrough(_Relay):
    def __init__(self, spec: WorkerSpec) -> None:
        self.sink = spec.sink

    def _handle(self, recs: list[Incoming]) -> list[Outgoing]:
        return [Outgoing(self.sink, r.key, r.value, r.headers) for r in recs]


class _Router(_Relay):
    """The pipeline plus what ``AuditSink.write`` does per fact (its own chain id)."""

    def __init__(self, state: RouterState, chain: AuditChain) -> None:
        self.pipeline = Pipeline(state)
        self.chain = chain

    @classmethod
    async def create(cls, spec: WorkerSpec) -> _Router:
        from broker.router.consent_log import ConsentLog

        state = _state(spec)
        began = time.perf_counter()
        log = ConsentLog(_settings(spec), state)
        await log.start()
        await log.stop()
        chain_id = f"bench-{spec.group_id}"
        router = cls(state, AuditChain(chain_id, state.keys.signing, state.keys.key_id))
        router.consents, router.rebuild_seconds = log.applied, _since(began)
        heap.settle()  # as RouterService does once its state is built: the same pipeline
        return router

    def _handle(self, recs: list[Incoming]) -> list[Outgoing]:
        out: list[Outgoing] = []
        facts = []
        for result in self.pipeline.route_batch(recs):
            out.extend(result.records)
            facts.extend(result.facts)
        key = self.chain.chain_id.encode()
        values = self.chain.append_records([to_record(f, self.chain.chain_id) for f in facts])
        out.extend(Outgoing(topics.AUDIT.name, key, v) for v in values)
        return out


class _Shape(_Relay):
    """Copies of the first record's routed output for every record: Kafka's share alone."""

    def __init__(self, router: _Router) -> None:
        self.router = router
        self.consents, self.rebuild_seconds = router.consents, router.rebuild_seconds
        self.template: list[Outgoing] = []

    def _handle(self, recs: list[Incoming]) -> list[Outgoing]:
        if not self.template:
            self.template = self.router._handle(recs[:1])
        out: list[Outgoing] = []
        for rec in recs:
            kb_id = [h for h in rec.headers if h[0] == "kb-id"]
            for t in self.template:
                headers = [h for h in t.headers if h[0] != "kb-id"] + kb_id if t.headers else []
                # same size and count, but the copies of what a router reads back at start
                # (delivery index, ladder log: their signatures no longer match) go elsewhere
                topic = t.topic if t.topic.startswith(READ_BACK_SAFE) else PASSTHROUGH_TOPIC
                out.append(Outgoing(topic, rec.key if t.headers else t.key, t.value, headers))
        return out


# --- the client loops ---------------------------------------------------------------------------


async def _aiokafka_loop(spec: WorkerSpec, relay: _Relay, results: Any, signals: Signals) -> None:
    from aiokafka import TopicPartition

    from broker.kafka import make_consumer, make_producer

    settings = _settings(spec)
    producer = make_producer(settings)
    # a short fetch wait: Tansu answers a fetch only when the wait is over, so the wait is
    # latency (real Kafka answers as soon as records arrive)
    consumer = make_consumer(
        settings, group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_wait_ms=20
    )
    await producer.start()
    await consumer.start()
    try:
        tps = {TopicPartition(spec.source, p): offset for p, offset in spec.start}
        consumer.assign(list(tps))
        for tp, offset in tps.items():
            consumer.seek(tp, offset)
        results.put(_ready(relay))
        while not signals.stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            recs = [
                Incoming(
                    r.topic, r.key, r.value or b"", list(r.headers or ()), r.partition, r.offset
                )
                for records in batch.values()
                for r in records
            ]
            for chunk in relay.chunks(spec, recs) if recs else []:
                if spec.warmup and relay.handled == spec.warmup:
                    await relay.gate(spec, results, signals)  # the warm-up is out: wait for go
                futures = [
                    await producer.send(
                        out.topic, value=out.value, key=out.key, headers=out.headers
                    )
                    for out in relay.handle(chunk)
                ]
                await asyncio.gather(*futures)
        relay.process_end = time.process_time()
    finally:
        await consumer.stop()
        await producer.stop()


def _ready(relay: _Relay) -> dict[str, Any]:
    return {"kind": "ready", "consents": relay.consents, "rebuild": relay.rebuild_seconds}


async def _confluent_loop(spec: WorkerSpec, relay: _Relay, results: Any, signals: Signals) -> None:
    from faststream import AckPolicy
    from faststream.confluent import KafkaBroker, TopicPartition

    broker = KafkaBroker(
        spec.bootstrap,
        acks="all",
        linger_ms=5,
        client_id="ketenbus-bench",
        logger=None,
        allow_auto_create_topics=False,
    )

    async def raw_batch(msg: Any) -> Any:
        return msg.raw_message  # a tuple of confluent_kafka.Message

    async def handle(batch: Any) -> None:
        recs = [
            Incoming(
                m.topic(),
                m.key(),
                m.value() or b"",
                [(k, v or b"") for k, v in (m.headers() or ())],
                m.partition(),
                m.offset(),
            )
            for m in batch
        ]
        for chunk in relay.chunks(spec, recs) if recs else []:
            if spec.warmup and relay.handled == spec.warmup:
                await relay.gate(spec, results, signals)
            futures = [
                await broker.publish(
                    out.value,
                    out.topic,
                    key=out.key,
                    headers={k: v.decode("utf-8", "replace") for k, v in out.headers},
                    no_confirm=True,
                )
                for out in relay.handle(chunk)
            ]
            await asyncio.gather(*futures)

    subscriber = broker.subscriber(
        partitions=[TopicPartition(spec.source, p, offset) for p, offset in spec.start],
        batch=True,
        max_records=500,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK_FIRST,  # no group: nothing to commit
        decoder=raw_batch,
        polling_interval=0.01,
        fetch_max_wait_ms=20,
    )
    subscriber(handle)
    await broker.start()
    try:
        results.put(_ready(relay))
        await _until(signals.stop)
    finally:
        await broker.stop()


async def _librdkafka_loop(spec: WorkerSpec, relay: _Relay, results: Any, signals: Signals) -> None:
    """confluent-kafka's own Consumer and Producer (librdkafka, no FastStream in between): the
    same loop as the others, to tell the Python client's cost from the broker's."""
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    producer = Producer(
        {
            "bootstrap.servers": spec.bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "enable.idempotence": False,  # the embedded broker has no idempotent producer
            "batch.size": 512 * 1024,
        }
    )
    consumer = Consumer(
        {
            "bootstrap.servers": spec.bootstrap,
            "group.id": spec.group_id,  # required by librdkafka; nothing is committed
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )
    failures: list[str] = []

    def acked(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    try:
        consumer.assign([TopicPartition(spec.source, p, o) for p, o in spec.start])
        results.put(_ready(relay))
        while not signals.stop.is_set():
            batch = await asyncio.to_thread(consumer.consume, 500, 0.1)
            recs = [_incoming(m) for m in batch if m.error() is None]
            for chunk in relay.chunks(spec, recs) if recs else []:
                if spec.warmup and relay.handled == spec.warmup:
                    await relay.gate(spec, results, signals)
                for o in relay.handle(chunk):
                    headers: Any = o.headers
                    producer.produce(o.topic, o.value, o.key, headers=headers, on_delivery=acked)
                    producer.poll(0)
                await asyncio.to_thread(producer.flush)  # the acks, once per batch
                if failures:
                    raise KafkaException(failures[0])
    finally:
        consumer.close()


def _incoming(m: Any) -> Incoming:
    """A confluent-kafka message as the pipeline's plain record."""
    headers = [(k, v or b"") for k, v in (m.headers() or ())]
    return Incoming(m.topic(), m.key(), m.value() or b"", headers, m.partition(), m.offset())
