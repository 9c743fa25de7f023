"""A local deployment started on a Kafka-protocol broker, for integration tests: every party of
``parties`` with keys made at run time, the router and the adapters (ZVH HTTP on a free port),
stopped again when the block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from broker.apps.deployment import LocalParty, create_local, router_instance_ids
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.config import Settings
from broker.policy import default_policy


@asynccontextmanager
async def running_stack(
    bootstrap: str, state: Path, parties: Sequence[LocalParty], **settings: Any
) -> AsyncIterator[LocalStack]:
    config = Settings(bootstrap_servers=bootstrap, state_dir=state, **settings)
    s = LocalStack(
        config,
        create_local(state, list(parties), router_instances=router_instance_ids(config.routers)),
        default_policy(),
        StackOptions(
            data_dir=state / "data", http_port=0, session_timeout_ms=2000, poll_interval=0.1
        ),
    )
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
