"""Financing: the rules (data with validity periods), daily accrual per calendar month, the claim
book folded from topic events, and the claims desk with its 28-day watchdog (docs/financing.md)."""
