"""The consumer group's session timeout is chosen by the kind of broker (issue 19, point 6: a
replaced router routes again within 5 s): short on Tansu, which has no minimum, and Apache
Kafka's default minimum there, which refuses anything shorter (``INVALID_SESSION_TIMEOUT``)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from broker.config import Settings
from broker.kafka import group
from broker.kafka.group import (
    KAFKA_SESSION_TIMEOUT_MS,
    TANSU_SESSION_TIMEOUT_MS,
    BrokerKind,
    broker_kind,
    session_timeout,
    session_timeout_for,
)


def test_tansu_is_short_and_apache_kafka_gets_its_default_minimum() -> None:
    assert session_timeout_for(BrokerKind.TANSU) == TANSU_SESSION_TIMEOUT_MS == 2000
    # Apache Kafka's group.min.session.timeout.ms defaults to 6 s (KIP-35 era broker config)
    assert session_timeout_for(BrokerKind.KAFKA) == KAFKA_SESSION_TIMEOUT_MS == 6000
    # about 1.5 x the timeout plus a heartbeat on Tansu must stay inside the 5 s goal
    assert TANSU_SESSION_TIMEOUT_MS * 1.5 + TANSU_SESSION_TIMEOUT_MS / 4 < 5000


def test_unset_by_default_so_the_broker_decides() -> None:
    assert Settings().session_timeout_ms is None


def test_the_configured_timeout_wins_without_asking_any_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KETENBUS_SESSION_TIMEOUT_MS", "6500")
    settings = Settings(bootstrap_servers="127.0.0.1:9")  # nothing listens there
    began = time.monotonic()
    assert asyncio.run(session_timeout(settings)) == 6500
    assert time.monotonic() - began < 0.5


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung or hostile broker)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_a_broker_that_does_not_answer_counts_as_apache_kafka_and_is_asked_again(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group, "_kinds", {})
    settings = Settings(bootstrap_servers=f"127.0.0.1:{silent_port}")
    assert asyncio.run(broker_kind(settings, timeout=1.0)) is BrokerKind.KAFKA
    assert group._kinds == {}  # not remembered: a broker that comes up later is asked again


def test_a_closed_port_counts_as_apache_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group, "_kinds", {})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    settings = Settings(bootstrap_servers=f"127.0.0.1:{port}")
    assert asyncio.run(broker_kind(settings, timeout=2.0)) is BrokerKind.KAFKA


def test_a_component_asks_for_its_timeout_with_heartbeats_four_times_as_often() -> None:
    from broker.component.lifecycle import KafkaComponent

    settings = Settings(bootstrap_servers="127.0.0.1:9")
    options = KafkaComponent(settings, "x", session_timeout_ms=2000).subscriber_options("g")
    assert (options["session_timeout_ms"], options["heartbeat_interval_ms"]) == (2000, 500)
    # not yet resolved (start_subscriber asks the broker): the configured one, else the safe side
    unresolved = KafkaComponent(settings, "x").subscriber_options("g")
    assert unresolved["session_timeout_ms"] == KAFKA_SESSION_TIMEOUT_MS
    configured = Settings(bootstrap_servers="127.0.0.1:9", session_timeout_ms=4000)
    assert KafkaComponent(configured, "x").subscriber_options("g")["session_timeout_ms"] == 4000
