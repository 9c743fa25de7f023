"""Prometheus metrics: the router's and the adapters' own counters, and the monitor's figures.

One endpoint per process, bound to 127.0.0.1 (``ketenbus up --metrics-port``, or
``KETENBUS_METRICS_PORT`` for a router or an adapter run on its own). Labels are codes and party
ids only: never a person, a pseudonym or a message id, and label values that come from outside
(an event or reason header of a refused record) are reduced to a safe, bounded form.
The names are documented in ``docs/operations.md``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as PrometheusCollector

from broker.monitoring.model import Snapshot
from broker.trust import is_pseudonym
from schemas import topics
from schemas.vocab import EventCode

if TYPE_CHECKING:
    from broker.config import Settings
    from broker.monitoring.collector import Collector
    from broker.router.facts import Fact

log = logging.getLogger(__name__)
disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise

HOST = "127.0.0.1"
PORT_ENV = "KETENBUS_METRICS_PORT"
_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}$")
_EVENTS = frozenset(e.value for e in EventCode)
_ROUTED = frozenset(t.name for t in topics.ROUTED)

# --- the components' own counters ---------------------------------------------------------------

ROUTER_RECORDS = Counter(
    "ketenbus_router_records", "Records the router consumed, per inbound topic.", ["topic"]
)
ROUTER_DECISIONS = Counter(
    "ketenbus_router_decisions",
    "What the router decided or observed per record: decision-permit and decision-deny per "
    "recipient, refusal, duplicate, consent-change; by flow and reason code.",
    ["kind", "flow", "reason"],
)
ROUTER_SECONDS = Histogram(
    "ketenbus_router_route_seconds",
    "Time from taking a record to having its deliveries and audit events acknowledged.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
ADAPTER_EVENTS = Counter(
    "ketenbus_adapter_events",
    "What an adapter did: sent, delivered, response, refused, invalid.",
    ["party", "kind"],
)
ADAPTER_DEAD_LETTERS = Counter(
    "ketenbus_adapter_dead_letters",
    "Input an adapter parked on the dead-letter topic, by reason code.",
    ["party", "reason"],
)


def code(value: str | None, allowed: frozenset[str] | None = None) -> str:
    """A label value that cannot carry personal data or grow without bound."""
    text = (value or "").strip().lower()
    if allowed is not None:
        return text if text in allowed else "other"
    ok = _CODE.match(text) and not re.search(r"[0-9]{5,}", text) and not is_pseudonym(text)
    return text if ok else "other"


def observe_route(topic: str, facts: Iterable[Fact], seconds: float) -> None:
    """Router hook: one record routed, with the facts it produced."""
    ROUTER_RECORDS.labels(code(topic, _ROUTED)).inc()
    for f in facts:
        ROUTER_DECISIONS.labels(f.kind.value, code(f.event, _EVENTS), code(f.reason)).inc()
    ROUTER_SECONDS.observe(seconds)


def observe_adapter(party: str, kind: str) -> None:
    """Adapter hook: one event (sent, delivered, response, refused, invalid)."""
    ADAPTER_EVENTS.labels(code(party), code(kind)).inc()


def observe_dead_letter(party: str, reason: str) -> None:
    ADAPTER_DEAD_LETTERS.labels(code(party), code(reason)).inc()


# --- the monitor's figures ------------------------------------------------------------------------


def _seconds(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def snapshot_metrics(snap: Snapshot) -> Iterator[Any]:
    """The figures of one snapshot as Prometheus metric families."""
    now = snap.taken_at
    total = CounterMetricFamily("ketenbus_topic_messages", "Messages on a topic (sum of the "
                                "partitions' high watermarks).", labels=["topic"])
    minute = GaugeMetricFamily("ketenbus_topic_messages_last_minute",
                               "Messages produced to a topic in the last minute.", labels=["topic"])
    for t in snap.topics:
        total.add_metric([t.name], t.messages)
        minute.add_metric([t.name], t.last_minute)
    yield total
    yield minute
    lag = GaugeMetricFamily("ketenbus_consumer_group_lag",
                            "Records on a group's topics it has not committed.", labels=["group"])
    lagging = GaugeMetricFamily("ketenbus_consumer_group_lagging_seconds",
                                "How long a group has been behind (0: it is not).",
                                labels=["group"])
    for g in snap.groups:
        lag.add_metric([g.group], g.lag)
        lagging.add_metric([g.group], _seconds(g.lagging_since, now))
    yield lag
    yield lagging
    refused = CounterMetricFamily("ketenbus_refused_messages",
                                  "Records parked on rejected or dead-letter, by reason code.",
                                  labels=["topic", "reason"])
    for r in snap.refusals:
        refused.add_metric([r.topic, code(r.reason)], r.count)
    yield refused
    yield GaugeMetricFamily("ketenbus_referrals_waiting", "Referrals delivered to a coordinating "
                            "provider without an assessment outcome yet.",
                            value=snap.referrals.count)
    yield GaugeMetricFamily("ketenbus_referrals_oldest_wait_seconds",
                            "Age of the oldest referral waiting for a decision.",
                            value=_seconds(snap.referrals.oldest_since, now))
    claims = GaugeMetricFamily("ketenbus_claims", "Claims by state (awaiting-answer, answered, "
                               "refused).", labels=["state"])
    oldest = GaugeMetricFamily("ketenbus_claims_oldest_age_seconds",
                               "Age of the oldest claim in a state.", labels=["state"])
    overdue = GaugeMetricFamily("ketenbus_claims_over_four_weeks",
                                "Claims awaiting an answer for more than four weeks.")
    for c in snap.claims:
        claims.add_metric([c.state], c.count)
        if c.oldest_since is not None:
            oldest.add_metric([c.state], _seconds(c.oldest_since, now))
        if c.state == "awaiting-answer":
            overdue.add_metric([], c.over_four_weeks)
    yield claims
    yield oldest
    yield overdue
    beds = GaugeMetricFamily("ketenbus_secure_beds", "Secure beds per region, security level and "
                             "population (in-service, occupied, available).",
                             labels=["region", "level", "population"])
    for cell in snap.capacity:
        for population, n in (("in-service", cell.in_service), ("occupied", cell.occupied),
                              ("available", cell.available)):
            beds.add_metric([cell.region, cell.level, population], n)
    yield beds
    escalations = CounterMetricFamily("ketenbus_escalations",
                                      "Escalations to the national coordination point.",
                                      labels=["outcome"])
    escalations.add_metric(["delivered"], snap.escalation_summary.delivered)
    escalations.add_metric(["refused"], snap.escalation_summary.refused)
    yield escalations
    stuck = GaugeMetricFamily("ketenbus_escalations_stuck", "Escalated cases by reason.",
                              labels=["reason"])
    by_reason: dict[str, int] = {}
    for e in snap.escalations:
        by_reason[e.reason] = by_reason.get(e.reason, 0) + 1
    for reason, n in sorted(by_reason.items()):
        stuck.add_metric([reason], n)
    yield stuck
    yield GaugeMetricFamily("ketenbus_monitor_snapshot_timestamp_seconds",
                            "When these figures were taken (Unix time).",
                            value=snap.taken_at.timestamp())


class Figures(PrometheusCollector):
    """Exposes the latest snapshot of whichever :class:`Collector` this process runs."""

    def __init__(self) -> None:
        self.source: Collector | None = None

    def collect(self) -> Iterator[Any]:
        if self.source is not None:
            yield from snapshot_metrics(self.source.snapshot)


FIGURES = Figures()
REGISTRY.register(FIGURES)


# --- the endpoint ---------------------------------------------------------------------------------


@dataclass
class _Endpoint:
    server: Any
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"


_endpoint: _Endpoint | None = None
_lock = threading.Lock()


def serve(port: int) -> str:
    """Start this process's metrics endpoint on 127.0.0.1 (0: a free port), once; the URL."""
    global _endpoint
    with _lock:
        if _endpoint is None:
            server, thread = start_http_server(port, addr=HOST)
            _endpoint = _Endpoint(server, thread, int(server.server_port))
            log.info("metrics on %s", _endpoint.url)
        return _endpoint.url


def shutdown() -> None:
    global _endpoint
    with _lock:
        if _endpoint is not None:
            _endpoint.server.shutdown()
            _endpoint.server.server_close()
            _endpoint = None


def port_from_env() -> int | None:
    """``KETENBUS_METRICS_PORT`` as a port number, or None when unset or not a number."""
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw.isdigit() or not 0 <= int(raw) < 65536:
        if raw:
            log.warning("%s=%r is not a port number; no metrics endpoint", PORT_ENV, raw)
        return None
    return int(raw)


class EnvMetrics:
    """A router or adapter run on its own serves its counters when ``KETENBUS_METRICS_PORT`` is
    set; the router also runs a collector so its endpoint carries the monitor's figures."""

    def __init__(self) -> None:
        self.collector: Collector | None = None

    async def start(self, settings: Settings, *, figures: bool) -> None:
        port = port_from_env()
        if port is None:
            return
        serve(port)
        if figures and FIGURES.source is None:
            from broker.monitoring.collector import Collector

            self.collector = Collector(settings)
            await self.collector.start()
            FIGURES.source = self.collector

    async def stop(self) -> None:
        if self.collector is not None:
            if FIGURES.source is self.collector:
                FIGURES.source = None
            await self.collector.stop()
            self.collector = None
