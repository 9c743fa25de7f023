"""What the monitor shows and what Prometheus scrapes, from a hand-made snapshot."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from broker.apps.monitoring import figures
from broker.apps.monitoring.model import (
    CapacityCell,
    ClaimFigure,
    EscalationFigure,
    EscalationSummary,
    GroupLag,
    ReasonCount,
    Snapshot,
    TopicFigure,
    WaitingReferrals,
)
from broker.apps.monitoring.render import view
from broker.component import metrics
from broker.config import ConfigError, Settings
from broker.router.facts import Fact, FactKind
from schemas.vocab import EventCode

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SNAP = Snapshot(
    taken_at=NOW,
    topics=(TopicFigure("in.referral", 6, 42, 3, 1.5, NOW - timedelta(seconds=9)),),
    groups=(GroupLag("ketenbus-router", ("in.referral",), 5, NOW - timedelta(minutes=2)),),
    refusals=(ReasonCount("rejected", "no-consent", 4, NOW),),
    referrals=WaitingReferrals(2, NOW - timedelta(days=2, hours=3), (("fivoor", 2),), 1),
    claims=(ClaimFigure("awaiting-answer", 3, NOW - timedelta(days=30), 1),
            ClaimFigure("answered", 7), ClaimFigure("refused", 1)),
    capacity=(CapacityCell("limburg", "3", 12, 9, 3, 2, NOW),
              CapacityCell("limburg", "4", 4, 4, 0, 1, NOW)),
    escalations=(EscalationFigure("no-bed", "zvh-a", "zvh-a", date(2026, 11, 1), NOW),),
    escalation_summary=EscalationSummary(1, 0, NOW),
)


def scrape(snapshot: Snapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import CollectorRegistry

    class One(figures.Figures):
        def collect(self) -> Iterator[object]:
            yield from figures.snapshot_metrics(snapshot)

    registry = CollectorRegistry()
    registry.register(One())
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_the_terminal_view_shows_every_figure() -> None:
    console = Console(width=160, record=True)
    console.print(view(SNAP))
    out = console.export_text()
    for expected in ("in.referral", "42", "ketenbus-router", "no-consent", "2 d 3 h",
                     "fivoor 2", "awaiting-answer", "30 d 0 h", "limburg", "3 / 12", "0 / 4",
                     "no personal data"):
        assert expected in out, expected


def test_prometheus_figures_carry_the_same_numbers() -> None:
    m = scrape(SNAP)
    assert m[("ketenbus_topic_messages_total", (("topic", "in.referral"),))] == 42
    assert m[("ketenbus_topic_messages_last_minute", (("topic", "in.referral"),))] == 3
    assert m[("ketenbus_consumer_group_lag", (("group", "ketenbus-router"),))] == 5
    assert m[("ketenbus_consumer_group_lagging_seconds", (("group", "ketenbus-router"),))] == 120
    assert m[("ketenbus_refused_messages_total",
              (("reason", "no-consent"), ("topic", "rejected")))] == 4
    assert m[("ketenbus_referrals_waiting", ())] == 2
    assert m[("ketenbus_referrals_oldest_wait_seconds", ())] == (2 * 24 + 3) * 3600
    assert m[("ketenbus_claims", (("state", "awaiting-answer"),))] == 3
    assert m[("ketenbus_claims_over_four_weeks", ())] == 1
    assert m[("ketenbus_secure_beds",
              (("level", "3"), ("population", "available"), ("region", "limburg")))] == 3
    assert m[("ketenbus_escalations_total", (("outcome", "delivered"),))] == 1
    assert m[("ketenbus_escalations_stuck", (("reason", "no-bed"),))] == 1


@pytest.mark.parametrize(("raw", "expected"), [
    ("no-consent", "no-consent"),
    ("Not-JSON", "not-json"),
    ("person 999990019", "other"),
    ("p-abcdefghijklmnopqrstuvwxyz", "other"),
    ("x" * 80, "other"),
    (None, "other"),
])
def test_label_values_are_bounded_codes(raw: str | None, expected: str) -> None:
    assert metrics.code(raw) == expected


def test_router_and_adapter_counters() -> None:
    before = metrics.ROUTER_DECISIONS.labels("refusal", "other", "other")._value.get()
    fact = Fact(FactKind.REFUSAL, NOW, None, "bogus-event-999990019", "x", "Reason 123456789")
    metrics.observe_route("in.referral", [fact], 0.01)
    after = metrics.ROUTER_DECISIONS.labels("refusal", "other", "other")._value.get()
    assert after == before + 1, "outside values become 'other', never a label of their own"
    metrics.observe_adapter("fivoor", "delivered")
    metrics.observe_dead_letter("zvh-a", "not-json")
    text = scrape_default()
    assert 'ketenbus_adapter_events_total{kind="delivered",party="fivoor"}' in text
    assert 'ketenbus_adapter_dead_letters_total{party="zvh-a",reason="not-json"}' in text
    assert "999990019" not in text and "123456789" not in text


def scrape_default() -> str:
    from prometheus_client import REGISTRY
    from prometheus_client.exposition import generate_latest

    return generate_latest(REGISTRY).decode()


def test_the_endpoint_listens_on_loopback_once_per_process() -> None:
    try:
        url = metrics.serve(0)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        assert metrics.serve(0) == url, "a second component reuses the endpoint"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
        assert "ketenbus_router_route_seconds" in body
    finally:
        metrics.shutdown()


@pytest.mark.parametrize("raw", ["not-a-port", "70000", "-1"])
def test_metrics_port_is_a_validated_setting(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    """A wrong port stops the process at start with the setting's name, like every setting
    (it used to be read from the environment past the check and silently ignored)."""
    monkeypatch.setenv("KETENBUS_METRICS_PORT", "9464")
    assert Settings().metrics_port == 9464
    monkeypatch.setenv("KETENBUS_METRICS_PORT", raw)
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        Settings()
    monkeypatch.delenv("KETENBUS_METRICS_PORT")
    assert Settings().metrics_port is None
    assert metrics.serve_configured(Settings()) is None, "no port set: no endpoint"


def test_snapshot_json_has_no_person_fields() -> None:
    text = json.dumps(SNAP.to_dict())
    for field in ("pseudonym", "bsn", "message_id", "person"):
        assert field not in text


def _counts() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for metric in (metrics.ROUTER_RECORDS, metrics.ROUTER_DECISIONS, metrics.ROUTER_SECONDS):
        for family in metric.collect():
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_batch_counts_what_its_records_count_one_by_one() -> None:
    """``observe_batch`` (the router, once per fetched batch) adds exactly what
    ``observe_route`` per record adds, hostile label values reduced to 'other' alike."""
    permit = Fact(FactKind.PERMIT, NOW, "m", EventCode.REFERRAL, "zvh", "permit")
    hostile = Fact(FactKind.REFUSAL, NOW, None, "bogus-event-999990019", "x", "Reason 123456789")
    routed = [
        ("in.referral", [permit, permit]),
        ("in.referral", [hostile]),
        ("in.nowhere-999990019", []),
        ("in.consent", [permit, hostile]),
    ]
    start = _counts()
    for topic, facts in routed:
        metrics.observe_route(topic, facts, 0.02)
    middle = _counts()
    metrics.observe_batch(routed, 0.02)
    end = _counts()
    one_by_one = {k: v - start.get(k, 0.0) for k, v in middle.items()}
    batched = {k: v - middle.get(k, 0.0) for k, v in end.items()}
    changed = {k: v for k, v in one_by_one.items() if v}
    assert changed and {k: v for k, v in batched.items() if v} == pytest.approx(changed)
    assert not any("999990019" in str(k) for k in end)
