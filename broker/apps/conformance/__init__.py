"""``ketenbus conformance``: documented cases, run against a counterpart's adapter from the
outside (docs/conformance.md)."""
