"""Errors raised while getting a Kafka connection.

They are separate from aiokafka's so a command can tell "no broker, here is how to fix it" from a
failure halfway through a conversation with a broker.
"""

from __future__ import annotations


class KafkaSetupError(RuntimeError):
    """No usable Kafka; the message says what to change."""


class EmbeddedBrokerError(KafkaSetupError):
    """The embedded Tansu broker could not be found, started or stopped."""


class KafkaUnavailableError(KafkaSetupError):
    """The configured Kafka (KETENBUS_BOOTSTRAP_SERVERS) does not answer."""
