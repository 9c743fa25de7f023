"""A component's health is its own, not one record's (issue 20): a send that gave up (a
record the broker refused) marks it degraded, and the next send that works makes it ok again
-- one oversized dead letter once left an adapter's /health at 503 for good."""

from __future__ import annotations

from typing import Any

from broker.component.health import HealthStatus
from broker.component.lifecycle import KafkaComponent
from broker.config import Settings


class _Producer:
    """Stands in for aiokafka's producer (not our code): it acknowledges every record."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_and_wait(self, topic: str, **_: Any) -> None:
        self.sent.append(topic)


async def test_a_send_that_works_ends_a_degraded_state() -> None:
    component = KafkaComponent(Settings(), "adapter")
    producer = _Producer()
    component._producer = producer  # type: ignore[assignment]
    component.health.set(HealthStatus.DEGRADED, "sending failed after retries: too large")
    await component.send("dead-letter", b"k", b"v", [])
    assert producer.sent == ["dead-letter"]
    assert component.health.status is HealthStatus.OK


async def test_other_states_are_left_to_the_broker_watch() -> None:
    component = KafkaComponent(Settings(), "adapter")
    component._producer = _Producer()  # type: ignore[assignment]
    component.health.set(HealthStatus.BROKER_UNREACHABLE, "probe failed")
    await component.send("dead-letter", b"k", b"v", [])
    assert component.health.status is HealthStatus.BROKER_UNREACHABLE
