"""Per-stage profile of the routed pipeline: where a message's CPU time goes.

The real ``Pipeline.route`` runs on pre-sealed referrals, with the functions it calls wrapped by
a clock that charges *exclusive* time to each stage (a nested stage pauses its caller: the
signature check inside ``open_sealed`` is "verify", the rest of ``open_sealed`` is "decrypt").
The audit step is what ``AuditSink.write`` does per fact, minus the Kafka send. No Kafka here:
this is the CPU ceiling of one core, the cost that batching and more cores must beat.

Stages are charged CPU time of this thread (``time.thread_time``), not wall time: the build
machines are shared, and a stage must not look dearer because another process held the core.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import pstats
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

from broker.apps.bench.workload import Workload
from broker.audit import AuditChain
from broker.router import audit_sink, heap
from broker.router import pipeline as pipeline_module
from broker.router.facts import Fact
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming

F = TypeVar("F", bound=Callable[..., Any])

# display order; every charged stage is one of these
ENVELOPE = "envelope headers"
VERIFY = "verify signature (Ed25519 per batch + Merkle proof)"
DECRYPT = "decrypt (cached X25519 + HKDF, AES-GCM)"
REPLAY = "replay guard"
PARSE = "JSON parse + messaging rules"
FHIR = "full FHIR validation (fhir.resources)"
RECIPIENTS = "recipients + authorisation"
PSEUDONYMS = "pseudonyms (HMAC)"
DECIDE = "policy decision (consent view)"
MINIMISE = "minimise (allow-list projection, written as JSON)"
SERIALISE = "serialise JSON"
SEAL = "seal: reused X25519 + HKDF, AES-GCM"
SIGN = "sign: one Ed25519 per batch + Merkle proofs"
RESPONSE = "build response message"
CHANNEL = "channel layer: per-person keys (docs/erasure.md)"
GLUE = "pipeline glue (facts, headers)"
AUDIT_EVENT = "audit: fact to NEN 7513 record"
AUDIT_CANON = "audit: AuditEvent canonical bytes"
AUDIT_SIGN = "audit: Ed25519 sign"
AUDIT_GLUE = "audit: chain glue"
ORDER = (
    ENVELOPE, VERIFY, DECRYPT, REPLAY, PARSE, FHIR, RECIPIENTS, PSEUDONYMS, DECIDE, MINIMISE,
    SERIALISE, SEAL, SIGN, RESPONSE, CHANNEL, GLUE, AUDIT_EVENT, AUDIT_CANON, AUDIT_SIGN,
    AUDIT_GLUE,
)  # fmt: skip


class StageClock:
    """Exclusive CPU time per stage (this thread only)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = dict.fromkeys(ORDER, 0.0)
        self._stack: list[str] = []
        self._mark = 0.0

    def _switch(self) -> float:
        now = time.thread_time()
        if self._stack:
            self.totals[self._stack[-1]] += now - self._mark
        self._mark = now
        return now

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def wrap(self, name: str, fn: F) -> F:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed  # type: ignore[return-value]


class _TimedKey:
    """Stands in for the audit chain's Ed25519 key so its ``sign`` is charged to a stage."""

    def __init__(self, key: Any, clock: StageClock) -> None:
        self._key = key
        self.sign = clock.wrap(AUDIT_SIGN, key.sign)

    def public_key(self) -> Any:
        return self._key.public_key()


@dataclass
class StageProfile:
    """Seconds per stage over ``messages`` routed messages (and the facts they produced)."""

    messages: int
    totals: dict[str, float]
    facts: int = 0
    elapsed: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def per_message(self, stage: str) -> float:
        return self.totals.get(stage, 0.0) / max(1, self.messages)

    @property
    def total(self) -> float:
        return sum(self.totals.values())

    @property
    def ceiling(self) -> float:
        """Messages per second one core could route (and audit) at this cost, Kafka excluded."""
        return self.messages / self.total if self.total else 0.0

    @property
    def wall_rate(self) -> float:
        """What the loop achieved by the clock on the wall (lower when the core is shared)."""
        return self.messages / self.elapsed if self.elapsed else 0.0


def _patches(clock: StageClock) -> list[Any]:
    """Wrap what ``Pipeline.route`` calls, where it looks the names up."""
    import broker.audit.chain as chain_module
    import broker.trust.envelope as envelope_module
    import broker.trust.sealing as sealing_module
    import schemas.messaging as messaging_module

    p = pipeline_module
    targets: list[tuple[Any, str, str]] = [
        (p, "read_envelope", ENVELOPE),
        (p, "open_sealed", DECRYPT),
        (envelope_module, "_verify", VERIFY),
        (p, "parse_message", PARSE),
        (messaging_module, "validate_fhir", FHIR),
        (p, "resolve", RECIPIENTS),
        (p, "sender_may_send", RECIPIENTS),
        (p, "decide", DECIDE),
        (p, "project_bytes", MINIMISE),
        (p, "dumps", SERIALISE),
        (sealing_module, "seal", SEAL),  # the pipeline seals through seal_for
        (p, "sign_batch", SIGN),
        (p, "response_message", RESPONSE),
        (p, "encrypt_layer", CHANNEL),  # a parked record under the person's data key
        (audit_sink, "to_record", AUDIT_EVENT),
        (chain_module, "event_bytes", AUDIT_CANON),
    ]
    return [
        mock.patch.object(module, name, clock.wrap(stage, getattr(module, name)))
        for module, name, stage in targets
    ]


BATCH = 100  # records per route_batch call: what one Kafka fetch brings under load (up to 500)
INPUT_BATCH = 50  # the ZVH adapter signs a file's referrals under one batch signature


def _route_all(
    pipe: Pipeline, chain: AuditChain, records: list[Incoming], clock: StageClock | None
) -> tuple[int, dict[str, int]]:
    """Route ``records`` as the router does: a batch at a time, then the batch's audit records."""
    facts, outcomes = 0, dict[str, int]()
    for first in range(0, len(records), BATCH):
        chunk = records[first : first + BATCH]
        with clock.stage(GLUE) if clock else contextlib.nullcontext():
            results = pipe.route_batch(chunk)
        batch_facts = [f for r in results for f in r.facts]
        for f in batch_facts:
            outcomes[str(f.kind)] = outcomes.get(str(f.kind), 0) + 1
        with clock.stage(AUDIT_GLUE) if clock else contextlib.nullcontext():
            _audit(chain, batch_facts)
        facts += len(batch_facts)
    return facts, outcomes


def _audit(chain: AuditChain, facts: list[Fact]) -> None:
    """What ``AuditSink.prepare`` does with a batch's facts."""
    chain.append_records([audit_sink.to_record(f, chain.chain_id) for f in facts])


@contextlib.contextmanager
def as_the_router() -> Iterator[None]:
    """The garbage collector as a routing process sets it (``broker.router.heap``) while a
    profile runs, and as it was afterwards (the bench goes on with other sections)."""
    before = gc.get_threshold()
    heap.settle()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def profile_stages(
    workload: Workload, messages: int, *, full_validation: bool, warmup: int = 20
) -> StageProfile:
    """Route ``messages`` fresh referrals (sealing not timed) and charge time to stages."""
    records = workload.sealed_referrals(messages + warmup, batch=INPUT_BATCH)
    state = workload.router_state(full_validation=full_validation)
    pipe = Pipeline(state)
    clock = StageClock()
    chain = AuditChain(state.keys.party_id, state.keys.signing, state.keys.key_id)
    _route_all(pipe, chain, records[:warmup], None)
    chain._key = _TimedKey(chain._key, clock)  # type: ignore[assignment]
    pipe._person = clock.wrap(PSEUDONYMS, pipe._person)  # type: ignore[method-assign]
    state.replay.check = clock.wrap(REPLAY, state.replay.check)  # type: ignore[method-assign]
    state.replay.remember = clock.wrap(REPLAY, state.replay.remember)  # type: ignore[method-assign]
    if state.channels is not None:  # the data layer inside in.* and out.* envelopes
        state.channels.open = clock.wrap(CHANNEL, state.channels.open)  # type: ignore[method-assign]
        state.channels.seal = clock.wrap(CHANNEL, state.channels.seal)  # type: ignore[method-assign]
    with contextlib.ExitStack() as stack:
        stack.enter_context(as_the_router())
        for patch in _patches(clock):
            stack.enter_context(patch)
        start = time.perf_counter()
        facts, outcomes = _route_all(pipe, chain, records[warmup:], clock)
        elapsed = time.perf_counter() - start
    return StageProfile(messages, dict(clock.totals), facts, elapsed, outcomes)


@dataclass(frozen=True)
class Hotspot:
    function: str
    calls: int
    own_seconds: float
    share: float


def hotspots(
    workload: Workload, messages: int, *, full_validation: bool, top: int = 12
) -> list[Hotspot]:
    """The functions with the most own time (cProfile) while routing and auditing."""
    records = workload.sealed_referrals(messages, batch=INPUT_BATCH)
    state = workload.router_state(full_validation=full_validation)
    pipe = Pipeline(state)
    chain = AuditChain(state.keys.party_id, state.keys.signing, state.keys.key_id)
    profiler = cProfile.Profile()
    with as_the_router():
        profiler.enable()
        _route_all(pipe, chain, records, None)
        profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    return [
        Hotspot(_name(func), calls=v[1], own_seconds=v[2], share=v[2] / total) for func, v in rows
    ]


def _name(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":  # a builtin: "<method 'sign' of 'a.b.Ed25519PrivateKey' objects>"
        return re.sub(r"'(?:[\w]+\.)+(\w+)'", r"'\1'", name.strip("<>"))
    path = Path(filename)
    parts = path.parts
    for anchor in ("broker", "schemas", "adapters"):
        if anchor in parts:
            return f"{'/'.join(parts[parts.index(anchor) :])}:{line} {name}"
    return f"{path.parent.name}/{path.name}:{line} {name}"
