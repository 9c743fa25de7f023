"""The same Kafka plumbing against real Apache Kafka (testcontainers); skipped without Docker.

Apache Kafka enforces what Tansu only stores (topic configs, no auto-create surprises), and has
correct ListOffsets, so this is where behaviour that differs between the two shows up.
"""

from __future__ import annotations

import pytest

from broker.config import Settings
from broker.kafka import ensure_topics, kafka_connection, make_producer, topic_partitions
from schemas.topics import catalogue
from tests.helpers.kafka import consume_all

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.timeout(180)]


async def test_catalogue_and_round_trip_on_apache_kafka(
    apache_kafka_bootstrap: str, unique_name: str
) -> None:
    settings = Settings(bootstrap_servers=apache_kafka_bootstrap)
    async with kafka_connection(settings, timeout=30) as bootstrap:
        assert bootstrap == apache_kafka_bootstrap
    specs = catalogue((unique_name,))
    await ensure_topics(settings, specs)
    assert await ensure_topics(settings, specs) == []
    actual = await topic_partitions(settings)
    assert all(actual[s.name] == s.partitions for s in specs)

    topic = specs[-1].name
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"v", key=b"k", headers=[("h", b"1")])
    finally:
        await producer.stop()
    [record] = await consume_all(apache_kafka_bootstrap, topic, timeout=30)
    assert (record.key, record.value, list(record.headers)) == (b"k", b"v", [("h", b"1")])
