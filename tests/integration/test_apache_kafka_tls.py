"""Transport security against Apache Kafka itself: a KRaft broker in a container with an SSL
listener (PEM key store and trust store from a test CA made at run time), and our clients
configured only through KETENBUS_* settings. Runs where a Docker engine exists; elsewhere it is
skipped with the reason. (The embedded broker cannot serve TLS; see test_tls.py for the client
side through a TLS proxy, which runs everywhere.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.config import Settings
from broker.kafka import ensure_topics, make_consumer, make_producer
from broker.kafka.embedded import free_port
from schemas.topics import KeyKind, TopicSpec
from tests.conftest import docker_engine_problem
from tests.helpers.kafka import fresh_name
from tests.helpers.tls import TlsFiles, make_tls_files

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.timeout(240)]
IMAGE = "apache/kafka:3.8.0"


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TlsFiles]]:
    problem = docker_engine_problem()
    if problem is not None:
        pytest.skip(f"no Docker engine: cannot start Apache Kafka with TLS ({problem})")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    certs = tmp_path_factory.mktemp("kafka-tls")
    tls = make_tls_files(certs)
    keystore = certs / "server-keystore.pem"  # Kafka's PEM key store: key, then certificate
    keystore.write_bytes(Path(tls.server_key).read_bytes() + Path(tls.server_cert).read_bytes())
    keystore.chmod(0o644)
    port = free_port()
    container = (
        DockerContainer(IMAGE)
        .with_bind_ports(9093, port)
        .with_volume_mapping(str(certs), "/etc/kafka/tls", "ro")
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "SSL://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"SSL://localhost:{port}")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "SSL:SSL,CONTROLLER:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9094")
        .with_env("KAFKA_INTER_BROKER_LISTENER_NAME", "SSL")
        .with_env("KAFKA_SSL_KEYSTORE_TYPE", "PEM")
        .with_env("KAFKA_SSL_KEYSTORE_LOCATION", "/etc/kafka/tls/server-keystore.pem")
        .with_env("KAFKA_SSL_TRUSTSTORE_TYPE", "PEM")
        .with_env("KAFKA_SSL_TRUSTSTORE_LOCATION", f"/etc/kafka/tls/{Path(tls.ca_cert).name}")
        .with_env("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    )
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=180)
        yield f"localhost:{port}", tls


async def test_clients_produce_and_consume_over_tls_with_only_settings(
    tls_kafka: tuple[str, TlsFiles], tmp_path: Path
) -> None:
    bootstrap, tls = tls_kafka
    settings = Settings(
        bootstrap_servers=bootstrap,
        security_protocol="SSL",
        ssl_cafile=Path(tls.ca_cert),
        state_dir=tmp_path,
    )
    topic = fresh_name("tls")
    await ensure_topics(settings, [TopicSpec(topic, 1, KeyKind.NONE, "TLS round trip")])
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over-tls", key=b"k")
    finally:
        await producer.stop()
    consumer = make_consumer(settings, topic, group_id=fresh_name("g"))
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value == b"over-tls"


async def test_a_plaintext_client_cannot_talk_to_the_tls_listener(
    tls_kafka: tuple[str, TlsFiles], tmp_path: Path
) -> None:
    from broker.kafka.probe import broker_reachable

    bootstrap, _ = tls_kafka
    assert not await broker_reachable(Settings(bootstrap_servers=bootstrap, state_dir=tmp_path))
