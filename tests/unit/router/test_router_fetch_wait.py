"""The router's own consumer group has its own, short fetch wait (issue 19 point 5): on the
embedded broker a fetch is answered only when its wait is over, so the wait is the router's
latency; the adapters keep ``fetch_max_wait_ms`` (many consumers in one process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.common.outbox import Outbox
from adapters.common.runtime import AdapterRuntime
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.config import Settings
from broker.kafka import faststream_broker
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
