"""Why a goal of issue 19 is not met in this run, and what would move it.

Issue 19's "Done when": for any goal not met, the bench prints "the measured figure, the reason,
and what would move it". A reason is derived from this run's own figures where the run measured
them (CPU per referral, the cores of the machine, the session timeout, the largest stages of the
profile), so that it changes when the figures do; a lever names the change that would move the
figure (the issue's points, or the next step its profile points at). Goals that are met keep no
reason (:meth:`broker.apps.bench.goals.Goal.explanation` prints none for them).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker.apps.bench import stages
from broker.apps.bench.goals import Goal
from broker.apps.bench.kafka_runs import LATENCY_BATCHED, Throughput
from broker.apps.bench.report import micros, rate

if TYPE_CHECKING:
    from broker.apps.bench.run import Results

TWO_INSTANCES = "two router instances / one (router side)"
END_TO_END = "end to end / router rate (provider's adapter)"
SERVICE_LOOP = "RouterService / batched loop (same pipeline)"
P99 = "RouterService p99 at 500 msgs/s"
FAILOVER = "failover pause (SIGKILL one of two)"
RESTART = "restart pause (killed router restarted at once)"
SHAPE = "routed / Kafka alone with the router's output shape"
FULL = "routed default / validate-everything"
ROUTING_CPU = "routing CPU, ingress-validated"
SNAPSHOT = "consent view ready from its snapshot, 1M consents"
NATIONAL = "national year (ketenbus up --scenario national)"

Reason = tuple[str, str]  # (why, lever)


def explain(goals: list[Goal], results: Results) -> list[Goal]:
    """``goals`` with ``why`` and ``lever`` filled in for each goal this run did not meet."""
    out = []
    for g in goals:
        derive = REASONS.get(g.measure)
        if g.met is False and derive is not None and not (g.why and g.lever):
            why, lever = derive(g, results)
            g = dataclasses.replace(g, why=g.why or why, lever=g.lever or lever)
        out.append(g)
    return out


# --- the figures a reason is built from ---------------------------------------------------------


def _throughput(results: Results, mode: str, full: bool = False) -> Throughput | None:
    for t in results.throughput:
        v = t.variant
        if v.mode == mode and v.client == "aiokafka" and v.full_validation == full and t.rate:
            return t
    return None


def cpu_per_referral(results: Results) -> tuple[float, str] | None:
    """Seconds of CPU one referral costs the deployed router, and where that figure is from:
    the service's process CPU in the throughput run, else the batched loop's, else the
    instrumented profile (which leaves Kafka out)."""
    for mode, label in (("service", "RouterService's process CPU"), ("routed", "the loop's")):
        t = _throughput(results, mode)
        if t is not None and t.process_cpu:
            return t.process_cpu, label
    fast = results.profiles.get(False)
    if fast is not None and fast.messages:
        return fast.total / fast.messages, "the profile, Kafka excluded"
    return None


def largest_stages(results: Results, n: int = 3) -> str:
    """The ``n`` costliest stages of the ingress-validated profile, with µs and share."""
    fast = results.profiles.get(False)
    if fast is None or not fast.total:
        return ""
    ranked = sorted(stages.ORDER, key=fast.per_message, reverse=True)[:n]
    return ", ".join(
        f"{s} {micros(fast.per_message(s))} µs ({fast.totals.get(s, 0.0) / fast.total:.0%})"
        for s in ranked
    )


def _cpu_phrase(results: Results) -> str:
    cpu = cpu_per_referral(results)
    return f"{micros(cpu[0])} µs of CPU per referral ({cpu[1]})" if cpu else ""


# --- one reason per goal ------------------------------------------------------------------------


def _two_instances(g: Goal, results: Results) -> Reason:
    cores = os.cpu_count() or 1
    sc = results.scale
    one = sc.routers.get(1, 0.0) if sc else 0.0
    why = (
        f"{cores} logical CPU(s) shared by two routers, the broker and the load generator: "
        f"about {cores / 4:.1f} core per process if they share evenly"
    )
    cpu = cpu_per_referral(results)
    if cpu and one:
        used = one * cpu[0]
        why += (
            f"; one router alone already kept {used:.1f} core(s) busy ({rate(one)} msgs/s at "
            f"{micros(cpu[0])} µs per referral), so the cores hold at most "
            f"{cores / used if used else 0.0:.1f}x its rate for all routers together, before "
            "the broker's and the load generator's share"
        )
    lever = (
        "a core per router (measure on a machine with at least one core per router plus the "
        "broker's); less CPU per referral (the routing CPU goal) raises both rates"
    )
    return why, lever


def _end_to_end(g: Goal, results: Results) -> Reason:
    sc = results.scale
    why = "the provider's adapter delivers more slowly than the router routes"
    if sc is not None and sc.end_to_end and sc.router_rate:
        why = (
            f"the provider's adapter fills its outbox at {rate(sc.end_to_end)} msgs/s, "
            f"{micros(1 / sc.end_to_end)} µs of wall time per delivery, against the router's "
            f"{micros(1 / sc.router_rate)} µs per referral, on the cores it shares with the "
            "router, the broker and the bench: its event loop opens the envelope, parses it, "
            "folds it into the claims desk and seals a journal record per delivery (about "
            "0.8 ms of CPU, of which about 0.55 ms is envelope and message code it shares with "
            "the router); the files are written and synced by writer threads"
        )
    lever = (
        "less CPU per envelope in broker/trust (open, seal) and schemas/messaging.py (parse), "
        "which the router gains from too; on a core of its own the adapter keeps up"
    )
    return why, lever


def _service_loop(g: Goal, results: Results) -> Reason:
    svc, loop = _throughput(results, "service"), _throughput(results, "routed")
    why = "the deployed service routes more slowly than its own batched loop"
    if svc is not None and loop is not None and svc.process_cpu and loop.process_cpu:
        extra = svc.process_cpu - loop.process_cpu
        if extra > 0.05 * loop.process_cpu:
            why = (
                f"the service spends {micros(svc.process_cpu)} µs of process CPU per referral "
                f"against the loop's {micros(loop.process_cpu)}: {micros(extra)} µs more in "
                "FastStream's dispatch and the commit per batch"
            )
        else:
            why = (
                f"both spend the same CPU per referral ({micros(svc.process_cpu)} / "
                f"{micros(loop.process_cpu)} µs): the gap is waiting, not work (the commit per "
                "batch, the fetch wait), and noise on a shared machine"
            )
    lever = (
        "commit offsets without waiting for the next fetch, larger batches under load; "
        "compare in a longer run (the ratio varies by 0.1 between quick runs)"
    )
    return why, lever


def _p99(g: Goal, results: Results) -> Reason:
    cpu = cpu_per_referral(results)
    why = "a referral waits for the batch ahead of it and for its own batch's acknowledgements"
    if cpu:
        busy = 500 * cpu[0]
        why = (
            f"{micros(cpu[0])} µs of CPU per referral ({cpu[1]}): at 500 msgs/s the router is "
            f"{busy:.0%} busy, so " + why
        )
    loop = [
        lt
        for lt in results.latency
        if lt.variant == LATENCY_BATCHED and lt.offered == 500.0 and not lt.skipped
    ]
    if loop:
        why += f"; the batched loop itself: p99 {loop[0].percentile(0.99) * 1e3:,.0f} ms"
    lever = (
        "route the next batch while the previous one's acknowledgements are awaited (each "
        "batch committed only after its own records are acknowledged); less CPU per referral "
        "(at 150 µs a router is 8% busy at 500 msgs/s); confluent-kafka's producer (15-20 µs "
        "per record against aiokafka's 34, six records per referral)"
    )
    return why, lever


def _pause(g: Goal, results: Results) -> Reason:
    sc = results.scale
    timeout = (sc.session_timeout_ms if sc else 10_000) / 1000
    value = g.value or 0.0
    if g.measure == RESTART:
        why = (
            f"a restart is the new process's start (spawn, imports, keys, router state: 1.3-2.5 s "
            f"of CPU, longer on a loaded machine) and then the broker's hold of a rejoin (on the "
            f"embedded broker half the session timeout of {timeout:,.0f} s, at least 1 s): "
            f"{value:,.1f} s here"
        )
        lever = (
            "a router process that imports and loads less before it joins its group; or two "
            "instances, so that a crash is a failover; static membership was measured slower "
            "on the embedded broker (it holds a static member 3 s at each step)"
        )
        return why, lever
    why = (
        f"the group reassigns a killed member's partitions only after its session timeout "
        f"({timeout:,.0f} s, the deployed default for this broker); the rest of the "
        f"{value:,.1f} s ({max(0.0, value - timeout):,.1f} s) is the broker's hold of the "
        "survivors' rejoin and their restart of fetching"
    )
    lever = (
        "a shorter session timeout where safe (the router routes in slices so its heartbeats "
        "go out; Apache Kafka refuses one below group.min.session.timeout.ms); aiokafka has no "
        "cooperative rebalancing"
    )
    return why, lever


def _shape(g: Goal, results: Results) -> Reason:
    shape, routed = _throughput(results, "shape"), _throughput(results, "routed")
    why = "the routing work per referral costs more than Kafka's own work per record"
    if shape is not None and routed is not None:
        why = (
            f"Kafka alone moves a record in {micros(1 / shape.rate)} µs, the router a referral "
            f"in {micros(1 / routed.rate)} µs: {micros(1 / routed.rate - 1 / shape.rate)} µs "
            "of routing work each"
        )
    spots = largest_stages(results)
    lever = "less routing CPU per referral" + (f" (largest stages: {spots})" if spots else "")
    return why, lever


def _full(g: Goal, results: Results) -> Reason:
    full, routed = _throughput(results, "routed", full=True), _throughput(results, "routed")
    why = "the default path still costs more than a tenth of full validation"
    if full is not None and routed is not None:
        why = (
            f"a referral takes {micros(1 / full.rate)} µs with full FHIR validation and "
            f"{micros(1 / routed.rate)} µs by default: for 10x the default would cost at most "
            f"{micros(1 / full.rate / 10)} µs"
        )
    lever = (
        "the default path's own cost (the routing CPU goal); full validation is fhir.resources "
        "and is the opt-in, not the lever"
    )
    return why, lever


def _routing_cpu(g: Goal, results: Results) -> Reason:
    spots = largest_stages(results)
    why = (
        f"the cost is spread over some twenty stages (largest: {spots}): one open, three "
        "seals, two data layers, two audit records per referral"
        if spots
        else "run the profile section to see the stages"
    )
    lever = (
        "fewer public-key operations per referral (one sealed delivery and one audit record "
        "per batch where the formats allow it), a minimisation walk over only the resources "
        "that hold references, a router that skips re-reading its own consent-log records"
    )
    return why, lever


def _snapshot(g: Goal, results: Results) -> Reason:
    snap = results.snapshot
    why = "loading the snapshot is slower than the goal"
    if snap is not None and snap.consents and snap.load_seconds:
        why = (
            f"{snap.consents:,} consents loaded in {snap.load_seconds:.1f} s "
            f"({rate(snap.consents / snap.load_seconds)} consents/s)"
            + ("" if snap.consents == 1_000_000 else ", scaled linearly to 1M")
            + f"; the build took {snap.build_seconds:.1f} s and {snap.chunks} chunks"
        )
    lever = "open the chunks in parallel (decrypt and parse in a thread pool), larger chunks"
    return why, lever


def _national(g: Goal, results: Results) -> Reason:
    run = results.national
    if run is None:
        return "the simulated year is paced and waits for the components", "run it"
    levers = []
    if run.start_seconds > 0.2 * run.year_seconds:
        levers.append(
            f"a faster start (now {run.start_seconds:,.0f} s: 58 adapters' Kafka clients each "
            "read the whole cluster's metadata, decoded in pure Python)"
        )
    if run.paced_seconds > 0.5 * run.run_seconds:
        levers.append("a lower floor of the pace (--seconds-per-month)")
    if run.cpu_seconds > 0.8 * run.wall_seconds:
        levers.append(
            "less CPU per message in the adapters (ingress FHIR validation, the claims desks' "
            "ticks, idle fetches of some 120 consumers in one process)"
        )
    if run.clock_waits > 0.1 * run.days:
        levers.append("faster components: the clock waited for them on many days")
    lever = "; ".join(levers) or "profile `ketenbus up --scenario national --months 3` (py-spy)"
    return run.why(), lever


REASONS: dict[str, Callable[[Goal, Results], Reason]] = {
    TWO_INSTANCES: _two_instances,
    END_TO_END: _end_to_end,
    SERVICE_LOOP: _service_loop,
    P99: _p99,
    FAILOVER: _pause,
    RESTART: _pause,
    SHAPE: _shape,
    FULL: _full,
    ROUTING_CPU: _routing_cpu,
    SNAPSHOT: _snapshot,
    NATIONAL: _national,
}

__all__ = ["REASONS", "cpu_per_referral", "explain", "largest_stages"]
