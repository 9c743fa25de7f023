"""Adapters that translate counterpart systems to and from ketenbus FHIR messages."""
