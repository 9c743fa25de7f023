"""ZVH adapter: the Zorg- en Veiligheidshuis case system's side. Reads referrals and consents
(JSON files in an inbox, or HTTP POST), sends them as FHIR messages; writes what comes back to
an outbox. The format is specified in ``docs/adapters/zvh.md``."""
