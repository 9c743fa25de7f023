"""The router's own consumer group has its own, short fetch wait (issue 19 point 5): on the
embedded broker a fetch is answered only when its wait is over, so the wait is the router's
latency; the adapters keep ``fetch_max_wait_ms`` (many consumers in one process)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.common.outbox import Outbox
from adapters.common.runtime import AdapterRuntime
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.config import Settings
from broker.kafka import faststream_broker
from broker.kafka.partitioner import KeyPartitioner
from broker.policy import default_policy
from broker.router.service import RouterService


def _options(component: Any, settings: Settings) -> tuple[Any, dict[str, Any]]:
    broker = faststream_broker(settings)
    component.subscribe(broker)
    [sub] = broker.subscribers
    return sub, sub._connection_args


def test_the_router_fetches_with_its_own_wait_and_the_adapters_with_theirs(
    tmp_path: Path,
) -> None:
    dep = create_local(tmp_path, demo.PARTIES)
    settings = Settings(
        bootstrap_servers="127.0.0.1:9", router_fetch_max_wait_ms=33, fetch_max_wait_ms=700
    )
    router, options = _options(
        RouterService(settings, dep.router_state(default_policy())), settings
    )
    assert options["fetch_max_wait_ms"] == 33
    assert router.batch_timeout_ms == 33  # FastStream also sleeps this long after an idle fetch

    async def deliver(_opened: object, _msg: object) -> None:
        return None

    runtime = AdapterRuntime(settings, dep.party_client("fivoor"), Outbox(tmp_path / "o"), deliver)
    adapter, options = _options(runtime, settings)
    assert options["fetch_max_wait_ms"] == 700
    assert adapter.max_records == runtime.max_batch  # deliveries are settled per fetched batch


def test_the_default_is_short() -> None:
    assert Settings().router_fetch_max_wait_ms == 20
    assert Settings().fetch_max_wait_ms == 500


def test_the_router_produces_without_linger_and_the_adapters_with_the_default(
    tmp_path: Path,
) -> None:
    """The router sends a batch's records together and then awaits them, so a linger only
    delays the acknowledgements its offsets wait for (``Settings.router_linger_ms``)."""
    from broker.kafka.clients import PRODUCER_DEFAULTS, make_producer

    dep = create_local(tmp_path, demo.PARTIES)
    assert Settings().router_linger_ms == 0
    settings = Settings(bootstrap_servers="127.0.0.1:9", router_linger_ms=7)
    router = RouterService(settings, dep.router_state(default_policy()))
    options = router.producer_options()
    assert isinstance(options.pop("partitioner"), KeyPartitioner)  # the default's partitions
    assert options == {"linger_ms": 7}

    async def deliver(_opened: object, _msg: object) -> None:
        return None

    runtime = AdapterRuntime(settings, dep.party_client("fivoor"), Outbox(tmp_path / "o"), deliver)
    assert runtime.producer_options() == {}
    assert PRODUCER_DEFAULTS["linger_ms"] == 5

    async def made() -> float:  # aiokafka makes a producer only inside a running loop
        producer = make_producer(settings, **router.producer_options())
        assert isinstance(producer._partitioner, KeyPartitioner)
        linger: float = producer._message_accumulator._linger_time  # kept in seconds
        await producer.stop()
        return linger

    assert asyncio.run(made()) == 0.007
