"""The language every ketenbus component shares.

Flows, their FHIR mapping, identifiers, vocabularies, the topic catalogue and the example
messages as data (``schemas/examples/``). No I/O: the generators that write examples, docs and
the AsyncAPI document from this package live in ``broker.apps.generate``.
"""
