"""The embedded Tansu broker over real TCP: start, topics, round trip, clean stop, clear errors."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from broker.config import Settings
from broker.kafka import ensure_topics, make_consumer, make_producer, probe, topic_partitions
from broker.kafka.embedded import EmbeddedBroker, free_port
from broker.kafka.errors import EmbeddedBrokerError
from schemas.topics import TopicSpec, catalogue, outbound
from tests.conftest import TEST_BOOTSTRAP_ENV
from tests.helpers.kafka import consume_all, pid_alive, port_open, processes_with_arg

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_session_broker_answers_kafka_requests(kafka_bootstrap: str) -> None:
    topics = await probe(kafka_bootstrap, timeout=5)
    assert isinstance(topics, list)


async def test_the_embedded_broker_is_tansu_and_gets_the_short_session_timeout(
    kafka_settings: Settings,
) -> None:
    """Issue 19, point 6: the embedded broker has no minimum session timeout, so a crashed
    router's partitions move after 2 s there (docs/performance.md, "Fast restarts")."""
    from broker.kafka.group import BrokerKind, broker_kind, session_timeout

    if os.environ.get(TEST_BOOTSTRAP_ENV, "").strip():
        pytest.skip("the session broker is an external one")
    assert await broker_kind(kafka_settings) is BrokerKind.TANSU
    unset = kafka_settings.model_copy(update={"session_timeout_ms": None})
    assert await session_timeout(unset) == 2000


async def test_ensure_topics_creates_the_catalogue_with_its_partitions(
    kafka_bootstrap: str, unique_name: str
) -> None:
    # A per-test party keeps this independent of other tests on a shared broker.
    specs = (*catalogue((unique_name,)),)
    created = await ensure_topics(kafka_bootstrap, specs)
    assert outbound(unique_name).name in created
    actual = await topic_partitions(kafka_bootstrap)
    for spec in specs:
        assert actual[spec.name] == spec.partitions, spec.name

    assert await ensure_topics(kafka_bootstrap, specs) == []  # idempotent
    assert (await topic_partitions(kafka_bootstrap)) == actual  # and nothing else appeared


async def test_ensure_topics_reports_a_different_partition_count(
    kafka_settings: Settings, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = TopicSpec(unique_name, 2, catalogue()[0].key, "test")
    assert await ensure_topics(kafka_settings, [spec]) == [unique_name]
    wider = TopicSpec(unique_name, 5, spec.key, "test")
    with caplog.at_level(logging.WARNING, logger="broker.kafka.topics"):
        assert await ensure_topics(kafka_settings, [wider]) == []
    assert f"topic {unique_name} exists with 2 partitions, the catalogue says 5" in caplog.text
    assert (await topic_partitions(kafka_settings))[unique_name] == 2


async def test_compacted_topic_is_created_with_its_config(
    kafka_settings: Settings, unique_name: str
) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from broker.kafka import make_admin

    spec = TopicSpec(unique_name, 1, catalogue()[0].key, "test", compacted=True)
    await ensure_topics(kafka_settings, [spec])
    admin = make_admin(kafka_settings)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, unique_name)]
        )
    finally:
        await admin.close()
    entries = {e[0]: e[1] for r in response.resources for e in r[4]}
    assert entries["cleanup.policy"] == "compact"


async def test_produce_consume_round_trip_with_keys_and_headers(
    kafka_settings: Settings, unique_name: str, unique_group: str
) -> None:
    await ensure_topics(kafka_settings, [TopicSpec(unique_name, 3, catalogue()[0].key, "t")])
    headers = [("fhir-event", b"referral"), ("dup", b"1"), ("dup", b"2"), ("utf8-ключ", b"")]
    sent = {f"person-{i}".encode(): f'{{"n": {i}}}'.encode() for i in range(12)}
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        for key, value in sent.items():
            await producer.send_and_wait(unique_name, value, key=key, headers=headers)
    finally:
        await producer.stop()

    # Without a group: the whole topic, stopping at the fetch high watermark.
    records = await consume_all(kafka_settings.bootstrap_servers or "", unique_name)
    assert {r.key: r.value for r in records} == sent
    assert all(list(r.headers) == headers for r in records)
    assert len({r.partition for r in records}) > 1  # keys spread over partitions

    # With a consumer group (small timeouts: join takes about half the session timeout).
    consumer = make_consumer(
        kafka_settings,
        unique_name,
        group_id=unique_group,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    got: dict[bytes, bytes] = {}
    try:
        async with asyncio.timeout(20):
            while len(got) < len(sent):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    got.update({r.key: r.value for r in batch if r.key and r.value})
        await consumer.commit()
        committed = {p: await consumer.committed(TopicPartition(unique_name, p)) for p in range(3)}
    finally:
        await consumer.stop()
    assert got == sent
    assert sum(o or 0 for o in committed.values()) == len(sent)


def test_stop_is_clean_and_the_process_is_gone(tmp_path: Path) -> None:
    broker = EmbeddedBroker(state_dir=tmp_path)
    with broker:
        pid = broker.pid
        assert pid is not None and pid_alive(pid)
        assert port_open(broker.port)
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.returncode == 0  # SIGTERM honoured, no SIGKILL needed
    assert not pid_alive(pid)
    assert not port_open(broker.port)
    assert processes_with_arg(f"tcp://127.0.0.1:{broker.port}") == []
    assert broker.stop() == 0  # idempotent
    log_text = (tmp_path / "logs" / f"tansu-{broker.port}.log").read_text()
    assert f"listening on: tcp://127.0.0.1:{broker.port}" in log_text
    assert "\x1b[" not in log_text  # no colour codes in the log file


async def test_async_context_manager_and_a_given_port(tmp_path: Path) -> None:
    port = free_port()
    async with EmbeddedBroker(port=port, state_dir=tmp_path) as broker:
        assert broker.bootstrap == f"127.0.0.1:{port}"
        await probe(broker.bootstrap, timeout=5)
        pid = broker.pid
    assert pid is not None and not pid_alive(pid)


def test_port_in_use_is_a_clear_error(tmp_path: Path, kafka_bootstrap: str) -> None:
    if not kafka_bootstrap.startswith("127.0.0.1:"):
        pytest.skip("needs the embedded session broker's port")
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    with pytest.raises(EmbeddedBrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
        EmbeddedBroker(port=port, state_dir=tmp_path).start()


def test_bogus_binary_names_the_alternative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "tansu"
    bogus.write_text("not a program\n")  # exists, but not executable
    monkeypatch.setenv("CALF_TANSU_BIN", str(bogus))
    with pytest.raises(EmbeddedBrokerError) as info:
        EmbeddedBroker(state_dir=tmp_path).start()
    message = str(info.value)
    assert "cannot find the embedded Kafka broker" in message
    assert str(bogus) in message
    assert "KETENBUS_BOOTSTRAP_SERVERS=host:9092" in message


def test_binary_that_exits_at_once_shows_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu: broken build' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))
    broker = EmbeddedBroker(state_dir=tmp_path, startup_timeout=10)
    with pytest.raises(EmbeddedBrokerError) as info:
        broker.start()
    message = str(info.value)
    assert "exited with status 3 before it was ready" in message
    assert "tansu: broken build" in message
    assert "KETENBUS_BOOTSTRAP_SERVERS=host:9092" in message
    assert not broker.running
