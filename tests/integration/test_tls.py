"""TLS settings reach real clients: aiokafka and FastStream talk to Kafka through TLS.

Tansu cannot serve TLS itself, so a TLS-terminating proxy sits in front of a private Tansu that
advertises the proxy's port; every client connection therefore has to complete a TLS handshake
that checks our CA (and, for mutual TLS, presents our client certificate).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from broker.config import Settings
from broker.kafka import (
    ensure_topics,
    faststream_broker,
    kafka_connection,
    make_consumer,
    make_producer,
)
from broker.kafka.embedded import free_port, resolve_tansu
from broker.kafka.errors import KafkaUnavailableError
from schemas.topics import KeyKind, TopicSpec
from tests.helpers.kafka import wait_for_port
from tests.helpers.tls import TlsFiles, TlsProxy, make_tls_files

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass
class TlsKafka:
    tls: TlsFiles
    tls_port: int
    plain_port: int
    proxy: TlsProxy

    def settings(self, tmp_path: Path, **kw: object) -> Settings:
        values: dict[str, object] = {
            "bootstrap_servers": f"127.0.0.1:{self.tls_port}",
            "security_protocol": "SSL",
            "ssl_cafile": self.tls.ca_cert,
            "state_dir": tmp_path,
            **kw,
        }
        return Settings(**values)


async def _tls_kafka(tmp_path: Path, *, mutual: bool) -> AsyncIterator[TlsKafka]:
    tls = make_tls_files(tmp_path / "tls")
    plain_port, tls_port = free_port(), free_port()
    url = f"tcp://127.0.0.1:{plain_port}"
    log = (tmp_path / "tansu.log").open("wb")
    proc = subprocess.Popen(
        [
            resolve_tansu(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{tls_port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"NO_COLOR": "1"},
    )
    proxy = TlsProxy(tls, plain_port, require_client_cert=mutual)
    try:
        wait_for_port(plain_port, 10)
        await proxy.start(tls_port)
        yield TlsKafka(tls, tls_port, plain_port, proxy)
    finally:
        await proxy.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture
async def tls_kafka(tmp_path: Path) -> AsyncIterator[TlsKafka]:
    async for k in _tls_kafka(tmp_path, mutual=False):
        yield k


@pytest.fixture
async def mtls_kafka(tmp_path: Path) -> AsyncIterator[TlsKafka]:
    async for k in _tls_kafka(tmp_path, mutual=True):
        yield k


async def _round_trip(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    await ensure_topics(settings, [TopicSpec(topic, 2, KeyKind.NONE, "tls test")])
    producer = make_producer(settings)
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()
    records = await _read(settings, topic, partitions=2, count=5)
    return sorted((r.key, r.value) for r in records)


async def _read(
    settings: Settings, topic: str, *, partitions: int, count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """``count`` records from the start of ``topic``, read with our own (TLS) consumer."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(15):
            while len(records) < count:
                for batch in (await consumer.getmany(*tps, timeout_ms=300)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_ssl_round_trip(tls_kafka: TlsKafka, tmp_path: Path, unique_name: str) -> None:
    settings = tls_kafka.settings(tmp_path)
    async with kafka_connection(settings) as bootstrap:
        assert bootstrap == f"127.0.0.1:{tls_kafka.tls_port}"
    got = await _round_trip(settings, unique_name)
    assert got == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(5)]
    assert tls_kafka.proxy.handshakes >= 3


async def test_mutual_tls_needs_the_client_certificate(
    mtls_kafka: TlsKafka, tmp_path: Path, unique_name: str
) -> None:
    with_cert = mtls_kafka.settings(
        tmp_path, ssl_certfile=mtls_kafka.tls.client_cert, ssl_keyfile=mtls_kafka.tls.client_key
    )
    got = await _round_trip(with_cert, unique_name)
    assert len(got) == 5

    without_cert = mtls_kafka.settings(tmp_path)
    with pytest.raises(KafkaUnavailableError, match="KETENBUS_BOOTSTRAP_SERVERS="):
        async with kafka_connection(without_cert, timeout=3):
            pytest.fail("connected without a client certificate")


async def test_a_different_ca_is_refused(tls_kafka: TlsKafka, tmp_path: Path) -> None:
    other = make_tls_files(tmp_path / "other", ca_name="some other CA")
    settings = tls_kafka.settings(tmp_path, ssl_cafile=other.ca_cert)
    with pytest.raises(KafkaUnavailableError) as info:
        async with kafka_connection(settings, timeout=3):
            pytest.fail("connected to a server signed by an untrusted CA")
    assert "KETENBUS_SECURITY_PROTOCOL=SSL" in str(info.value)
    assert isinstance(info.value.__cause__, (KafkaConnectionError, TimeoutError, OSError))


async def test_plaintext_client_gets_nowhere_on_the_tls_port(
    tls_kafka: TlsKafka, tmp_path: Path
) -> None:
    settings = Settings(bootstrap_servers=f"127.0.0.1:{tls_kafka.tls_port}", state_dir=tmp_path)
    with pytest.raises(KafkaUnavailableError):
        async with kafka_connection(settings, timeout=3):
            pytest.fail("plaintext client talked to the TLS listener")


async def test_faststream_broker_publishes_over_tls(
    tls_kafka: TlsKafka, tmp_path: Path, unique_name: str
) -> None:
    settings = tls_kafka.settings(tmp_path)
    await ensure_topics(settings, [TopicSpec(unique_name, 1, KeyKind.NONE, "tls test")])
    before = tls_kafka.proxy.handshakes
    broker = faststream_broker(settings)
    await broker.start()
    try:
        await broker.publish(
            b'{"resourceType": "Bundle"}', unique_name, key=b"k", headers={"h": "1"}
        )
    finally:
        await broker.stop()
    assert tls_kafka.proxy.handshakes > before  # FastStream's own connections went through TLS
    [record] = await _read(settings, unique_name, partitions=1, count=1)
    assert (record.key, record.value) == (b"k", b'{"resourceType": "Bundle"}')
    assert ("h", b"1") in list(record.headers)
