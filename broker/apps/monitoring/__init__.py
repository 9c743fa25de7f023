"""Operational figures for people who watch the chain: rates, lag, refusals, waiting referrals,
claims, secure-bed capacity and escalations, rebuilt from the topics (no database).

``model`` holds the snapshot types (no personal data by construction), ``state`` the pure
trackers that fold records into figures, ``collector`` reads Kafka, ``render`` draws the
terminal view of ``ketenbus monitor``, ``metrics`` exposes the same figures to Prometheus and
``sample`` makes synthetic traffic for the demo and the tests.
"""
