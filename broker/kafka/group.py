"""How long a consumer group waits for a silent member, chosen by the kind of broker.

A crashed member's partitions move only after its session timeout, so the timeout is most of a
failover pause (issue 19, point 6: a replaced router routes again within 5 s). The floor differs
per broker:

* **Tansu** (the embedded broker and ``ketenbus kafka``) has no minimum, and its coordinator
  holds every JoinGroup for half the session timeout (at least one second), so the pause is
  about 1.5 × the timeout plus a heartbeat. 2 s gives about 3.5 s; 3 s gave 5.1-5.5 s.
  Static membership (``group.instance.id``) does not help there: Tansu holds a static member's
  JoinGroup and SyncGroup for 3 s each, so a restart took 7.3 s against 4.9 s without it
  (docs/performance.md, "Fast restarts").
* **Apache Kafka** refuses a session timeout below its ``group.min.session.timeout.ms``
  (default 6 s) with ``INVALID_SESSION_TIMEOUT``, so the default there is 6 s; a cluster that
  lowers its minimum (``docker/compose.yaml`` does) sets ``KETENBUS_SESSION_TIMEOUT_MS`` to match.

A short timeout is safe only if no member's event loop stalls for that long, since the
heartbeats run on it: the router routes a fetched batch in slices and lets the loop turn
between them (``broker.router.service.ROUTE_SLICE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum

from broker.config import Settings
from broker.kafka.clients import make_admin

log = logging.getLogger(__name__)

TANSU_CLUSTER_ID = "tansu_cluster"
"""The cluster id Tansu reports unless started with another ``--cluster-id`` (the embedded
broker and ``ketenbus kafka`` never set one)."""

TANSU_SESSION_TIMEOUT_MS = 2000
KAFKA_SESSION_TIMEOUT_MS = 6000
"""Apache Kafka's default ``group.min.session.timeout.ms``."""


class BrokerKind(StrEnum):
    TANSU = "tansu"
    KAFKA = "kafka"


def session_timeout_for(kind: BrokerKind) -> int:
    """The default session timeout (ms) on this kind of broker."""
    return TANSU_SESSION_TIMEOUT_MS if kind is BrokerKind.TANSU else KAFKA_SESSION_TIMEOUT_MS


_kinds: dict[str, BrokerKind] = {}


async def broker_kind(settings: Settings, *, timeout: float = 5.0) -> BrokerKind:
    """Ask the cluster for its id (a Metadata request every principal may make). A broker that
    does not answer in time counts as Apache Kafka: its longer default is the safe side."""
    target = settings.bootstrap_servers or ""
    known = _kinds.get(target)
    if known is not None:
        return known
    admin = make_admin(settings, request_timeout_ms=max(1000, int(timeout * 1000)))
    kind = BrokerKind.KAFKA
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            cluster = await admin.describe_cluster()
        if cluster.get("cluster_id") == TANSU_CLUSTER_ID:
            kind = BrokerKind.TANSU
        _kinds[target] = kind
    except Exception as err:  # not cached: the next component asks again
        log.warning("broker kind unknown (%s): Apache Kafka's timeout", type(err).__name__)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return kind


async def session_timeout(settings: Settings) -> int:
    """``KETENBUS_SESSION_TIMEOUT_MS`` if set, else the default of the broker's kind."""
    if settings.session_timeout_ms is not None:
        return settings.session_timeout_ms
    return session_timeout_for(await broker_kind(settings))


__all__ = [
    "KAFKA_SESSION_TIMEOUT_MS",
    "TANSU_CLUSTER_ID",
    "TANSU_SESSION_TIMEOUT_MS",
    "BrokerKind",
    "broker_kind",
    "session_timeout",
    "session_timeout_for",
]
