"""The language every ketenbus component shares.

Flows, their FHIR mapping, identifiers, vocabularies and the topic catalogue. No I/O, except
the generators of examples (``python -m schemas.examples``), docs (``python -m schemas.docs``)
and the AsyncAPI document (``python -m schemas.asyncapi``).
"""
