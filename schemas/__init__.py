"""The language every ketenbus component shares: flows, FHIR mapping, identifiers, vocabularies, topics. No I/O."""
