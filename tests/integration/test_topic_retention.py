"""Retention reaches the broker as topic configs (issue 16 §6, docs/retention.md): what
``ensure_topics`` creates carries the catalogue's term (or the configured override), and the
embedded broker's limits are stated by a test, not guessed."""

from __future__ import annotations

import os

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from broker.config import Settings
from broker.kafka import apply_topic_configs, ensure_topics, make_admin
from schemas.topics import DAY_MS, IN_REFERRAL, TopicSpec
from tests.conftest import TEST_BOOTSTRAP_ENV

pytestmark = pytest.mark.integration


async def test_created_topics_carry_their_retention_and_overrides(
    kafka_settings: Settings, unique_name: str
) -> None:
    spec = TopicSpec(unique_name, 1, IN_REFERRAL.key, "t", retention=IN_REFERRAL.retention)
    settings = kafka_settings.model_copy(update={"retention_days": {unique_name[:6] + "*": 3}})
    await ensure_topics(settings, [spec])
    admin = make_admin(settings)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, unique_name)]
        )
    finally:
        await admin.close()
    entries = response.to_object()["resources"][0]["config_entries"]
    configs = {e["config_names"]: e["config_value"] for e in entries}
    assert configs["retention.ms"] == str(3 * DAY_MS)
    assert configs["cleanup.policy"] == "delete"


async def test_the_embedded_broker_cannot_alter_configs(
    kafka_settings: Settings, unique_name: str
) -> None:
    """Measured on Tansu 0.6 (docs/retention.md): no AlterConfigs, so `ketenbus topics` warns
    that an existing topic keeps its old term; on Apache Kafka it returns the altered names."""
    spec = TopicSpec(unique_name, 1, IN_REFERRAL.key, "t", retention=IN_REFERRAL.retention)
    await ensure_topics(kafka_settings, [spec])
    altered = await apply_topic_configs(kafka_settings, [spec])
    if os.environ.get(TEST_BOOTSTRAP_ENV, "").strip():  # another Kafka, e.g. Apache Kafka
        assert altered == [unique_name]
    else:
        assert altered is None
