"""Shared fixtures for the schemas tests (hypothesis profiles live in ``schema_strategies``)."""
