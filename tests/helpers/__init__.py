"""Reusable test helpers (Kafka reading, TLS material). Import as ``tests.helpers.<module>``."""
