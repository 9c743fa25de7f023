"""Kafka plumbing: settings-driven clients, topic creation and the embedded dev broker.

Everything that opens a Kafka connection goes through here, so TLS/SASL settings reach every
client and topics are created with the catalogue's partition counts before first use.
"""

from broker.kafka.clients import (
    faststream_broker,
    make_admin,
    make_consumer,
    make_producer,
)
from broker.kafka.connection import kafka_connection
from broker.kafka.embedded import EmbeddedBroker, port_is_free
from broker.kafka.epoch import (
    claim_epoch,
    current_epoch,
    establish_epoch,
    new_epoch,
    release_claim,
    repair_topics,
)
from broker.kafka.errors import KafkaSetupError
from broker.kafka.probe import probe
from broker.kafka.topics import apply_topic_configs, ensure_topics, topic_partitions

__all__ = [
    "EmbeddedBroker",
    "KafkaSetupError",
    "apply_topic_configs",
    "claim_epoch",
    "current_epoch",
    "ensure_topics",
    "establish_epoch",
    "faststream_broker",
    "kafka_connection",
    "make_admin",
    "make_consumer",
    "make_producer",
    "new_epoch",
    "port_is_free",
    "probe",
    "release_claim",
    "repair_topics",
    "topic_partitions",
]
