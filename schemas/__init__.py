"""The language every ketenbus component shares.

Flows, their FHIR mapping, identifiers, vocabularies and the topic catalogue. No I/O.
"""
