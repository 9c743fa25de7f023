"""The monitor's figures as Prometheus metrics: the latest snapshot of whichever
:class:`Collector` this process runs, served on the process's metrics endpoint next to the
components' own counters (``broker.component.metrics``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as PrometheusCollector

from broker.apps.monitoring.model import Snapshot
from broker.component.metrics import code
from broker.config import Settings

if TYPE_CHECKING:
    from broker.apps.monitoring.collector import Collector


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
    report_age = GaugeMetricFamily("ketenbus_capacity_report_age_seconds",
                                   "Age of the newest capacity report per region and level.",
                                   labels=["region", "level"])
    for cell in snap.capacity:
        if cell.updated_at is not None:
            report_age.add_metric([cell.region, cell.level], _seconds(cell.updated_at, now))
    yield report_age
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


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[None]:
    """While inside: if this process serves metrics (``metrics_port``), run a collector so the
    endpoint carries the monitor's figures too (``ketenbus router`` does, as in production)."""
    if settings.metrics_port is None or FIGURES.source is not None:
        yield
        return
    from broker.apps.monitoring.collector import Collector

    collector = Collector(settings)
    await collector.start()
    FIGURES.source = collector
    try:
        yield
    finally:
        FIGURES.source = None
        await collector.stop()
