"""kafka_connection(): configured Kafka checked first, else a private embedded broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import Settings
from broker.kafka import kafka_connection
from broker.kafka.embedded import free_port
from broker.kafka.errors import KafkaUnavailableError
from broker.kafka.probe import broker_reachable, probe
from tests.helpers.kafka import port_open, processes_with_arg

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_configured_bootstrap_is_used_as_is(kafka_settings: Settings) -> None:
    async with kafka_connection(kafka_settings) as bootstrap:
        assert bootstrap == kafka_settings.bootstrap_servers


async def test_unreachable_bootstrap_names_the_variable(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    settings = Settings(bootstrap_servers=dead, state_dir=tmp_path)
    with pytest.raises(KafkaUnavailableError) as info:
        async with kafka_connection(settings, timeout=3):
            pytest.fail("must not get here")
    assert f"KETENBUS_BOOTSTRAP_SERVERS={dead}: no Kafka answered" in str(info.value)
    assert "unset it to use the embedded broker" in str(info.value)


async def test_without_bootstrap_an_embedded_broker_runs_for_the_block(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    async with kafka_connection(settings) as bootstrap:
        host, port = bootstrap.rsplit(":", 1)
        assert host == "127.0.0.1"
        await probe(bootstrap, timeout=5)
        assert await broker_reachable(settings.with_bootstrap(bootstrap))
    assert not port_open(int(port))
    assert processes_with_arg(f"tcp://127.0.0.1:{port}") == []
    assert (tmp_path / "logs" / f"tansu-{port}.log").is_file()


async def test_broker_reachable(kafka_settings: Settings) -> None:
    assert await broker_reachable(kafka_settings)
    dead = kafka_settings.with_bootstrap(f"127.0.0.1:{free_port()}")
    assert not await broker_reachable(dead, timeout=2)
