"""Kafka plumbing: settings-driven clients, topic creation and the embedded dev broker.

Everything that opens a Kafka connection goes through here, so TLS/SASL settings reach every
client and topics are created with the catalogue's partition counts before first use.
"""

from broker.kafka.clients import (
    client_options,
    faststream_broker,
    make_admin,
    make_consumer,
    make_producer,
)
from broker.kafka.connection import kafka_connection
from broker.kafka.embedded import EmbeddedBroker
from broker.kafka.errors import EmbeddedBrokerError, KafkaSetupError, KafkaUnavailableError
from broker.kafka.probe import broker_reachable
from broker.kafka.topics import ensure_topics

__all__ = [
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "KafkaSetupError",
    "KafkaUnavailableError",
    "broker_reachable",
    "client_options",
    "ensure_topics",
    "faststream_broker",
    "kafka_connection",
    "make_admin",
    "make_consumer",
    "make_producer",
]
