"""Flows: one module per kind of message, each a typed business model with its FHIR mapping."""
