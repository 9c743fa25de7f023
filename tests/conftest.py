"""Shared fixtures: one Kafka for the whole session, fresh names, and Apache Kafka via Docker.

Kafka for integration tests, in order: ``KETENBUS_TEST_BOOTSTRAP`` (any Kafka you point at),
else ONE embedded Tansu broker started here over TCP. Never an in-memory fake.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.config import Settings
from tests.helpers.kafka import fresh_name

TEST_BOOTSTRAP_ENV = "KETENBUS_TEST_BOOTSTRAP"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's KETENBUS_* settings (except the test-broker pointer)."""
    for name in list(os.environ):
        if name.startswith("KETENBUS_") and name != TEST_BOOTSTRAP_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker shared by the whole session."""
    external = os.environ.get(TEST_BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    from broker.kafka import EmbeddedBroker

    broker = EmbeddedBroker(state_dir=tmp_path_factory.mktemp("kafka-state"))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings pointing at the session broker, with a per-test state dir."""
    return Settings(bootstrap_servers=kafka_bootstrap, state_dir=tmp_path / "state")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test (or earlier run against the same broker) uses."""
    return fresh_name(f"t-{request.node.name}")


@pytest.fixture
def unique_group(request: pytest.FixtureRequest) -> str:
    """A fresh consumer group id: reusing one right after it emptied costs ~18 s on Tansu."""
    return fresh_name(f"g-{request.node.name}")


def docker_engine_problem() -> str | None:
    """None if a Docker engine answers, else why not."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def apache_kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a real Apache Kafka in a container; skips when no Docker engine runs."""
    problem = docker_engine_problem()
    if problem is not None:
        pytest.skip(f"no Docker engine: testcontainers cannot start Apache Kafka ({problem})")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()
