"""Provider adapter: the care provider's EPD side. Receives referrals (and other deliveries) and
writes them to its outbox folder as FHIR JSON; the EPD imports from there."""
