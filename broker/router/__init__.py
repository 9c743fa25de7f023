"""The router: verify, decrypt, de-duplicate, resolve recipients, decide, minimise, re-seal, audit.

``pipeline`` is the pure decision path (bytes in, records out, no I/O); ``service`` runs it on
Kafka; ``recipients`` holds the routing rules; ``consent_log`` rebuilds the consent view from the
consent topic at start and keeps it current.
"""
