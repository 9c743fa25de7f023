"""Create the catalogue's topics before anything produces to or subscribes to them.

Tansu creates any unknown topic that a Metadata request names, with 4 partitions, and partitions
cannot be added later (no CreatePartitions). A producer's first send or a consumer's subscribe
would therefore fix a topic at 4 partitions; :func:`ensure_topics` must run first. Existing
topics are listed with a Metadata request for *all* topics, which creates nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion

from broker.config import Settings
from broker.kafka.clients import make_admin
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
#: Replication factor to aim for; capped at the number of brokers (1 for Tansu or a dev Kafka).
DEFAULT_REPLICATION = 3


async def ensure_topics(
    settings_or_bootstrap: Settings | str,
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int | None = None,
) -> list[str]:
    """Create the topics in ``specs`` that do not exist yet; return the names created.

    Idempotent. A topic that exists with a different partition count is left alone and logged
    as a warning (Kafka cannot shrink partitions, and Tansu cannot add them).
    ``replication_factor`` defaults to ``min(3, number of brokers)``.
    """
    wanted = {spec.name: spec for spec in specs}
    if not wanted:
        return []
    overrides = (
        settings_or_bootstrap.retention_days if isinstance(settings_or_bootstrap, Settings) else {}
    )
    admin = make_admin(settings_or_bootstrap)
    try:
        await admin.start()
        existing = _partition_counts(await admin.describe_topics())
        for name, spec in wanted.items():
            if name in existing and existing[name] != spec.partitions:
                log.warning(
                    "topic %s exists with %d partitions, the catalogue says %d; left as is",
                    name,
                    existing[name],
                    spec.partitions,
                )
        missing = [spec for name, spec in wanted.items() if name not in existing]
        if not missing:
            return []
        if replication_factor is None:
            brokers = len((await admin.describe_cluster()).get("brokers") or [1])
            replication_factor = max(1, min(DEFAULT_REPLICATION, brokers))
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=replication_factor,
                    topic_configs=spec.topic_config(overrides),
                )
                for spec in missing
            ]
        )
        created: list[str] = []
        failures: list[str] = []
        for name, code, message in _topic_errors(response):
            if code == 0:
                created.append(name)
            elif code == TOPIC_ALREADY_EXISTS:
                log.info("topic %s was created by someone else meanwhile", name)
            else:
                failures.append(f"{name}: error {code} {message or ''}".rstrip())
        if failures:
            raise RuntimeError("could not create topics: " + "; ".join(failures))
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def apply_topic_configs(
    settings_or_bootstrap: Settings | str, specs: Iterable[TopicSpec]
) -> list[str] | None:
    """Set the catalogue's configs (retention, cleanup policy) on topics that already exist, so
    a changed term reaches a running Kafka (AlterConfigs); returns the names altered, or None
    when the broker has no AlterConfigs (the embedded Tansu broker: it also honours no retention,
    so ``ketenbus prune`` and crypto-shredding carry the terms there, ``docs/retention.md``)."""
    overrides = (
        settings_or_bootstrap.retention_days if isinstance(settings_or_bootstrap, Settings) else {}
    )
    admin = make_admin(settings_or_bootstrap)
    try:
        await admin.start()
        existing = _partition_counts(await admin.describe_topics())
        todo = [s for s in specs if s.name in existing]
        if not todo:
            return []
        try:
            await admin.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, s.name, s.topic_config(overrides))
                    for s in todo
                ]
            )
        except IncompatibleBrokerVersion:
            log.warning("this broker cannot alter topic configs; retention is not set on it")
            return None
        return [s.name for s in todo]
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def topic_partitions(settings_or_bootstrap: Settings | str) -> dict[str, int]:
    """Partition count of every existing topic (creates nothing)."""
    admin = make_admin(settings_or_bootstrap)
    try:
        await admin.start()
        return _partition_counts(await admin.describe_topics())
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _partition_counts(described: list[dict[str, Any]]) -> dict[str, int]:
    return {
        str(t["topic"]): len(t.get("partitions") or [])
        for t in described
        if t.get("error_code", 0) == 0
    }


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    obj = response.to_object()
    rows = obj.get("topic_errors") or obj.get("topics") or []
    return [
        (r["topic"] if "topic" in r else r["name"], r["error_code"], r.get("error_message"))
        for r in rows
    ]
