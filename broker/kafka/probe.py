"""Is the broker there? One short admin round trip, for readiness waits and health checks.

``list_topics`` sends a Metadata request for *all* topics, which (unlike naming a topic) does
not make Tansu auto-create anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from broker.config import ConfigError, Settings
from broker.kafka.clients import make_admin

log = logging.getLogger(__name__)


async def probe(target: Settings | str, *, timeout: float = 5.0) -> list[str]:
    """Connect, list the topics and disconnect; raise whatever went wrong (incl. TimeoutError)."""
    admin = make_admin(target, request_timeout_ms=max(1000, int(timeout * 1000)))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            topics: list[str] = await admin.list_topics()
            return topics
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def broker_reachable(settings: Settings, *, timeout: float = 3.0) -> bool:
    """True if the configured Kafka answers a Metadata request within ``timeout`` seconds.

    A configuration problem (e.g. no bootstrap servers) is raised, not reported as "down".
    """
    try:
        await probe(settings, timeout=timeout)
    except ConfigError:
        raise
    except Exception as exc:
        log.debug("Kafka at %s not reachable: %r", settings.bootstrap_servers, exc)
        return False
    return True
