"""The erasure notice: what ``ketenbus erase`` tells every party that exchanged a person's
messages through ketenbus (AVG art. 17(2) and 19; ``docs/erasure.md``).

A recipient's copy in its outbox is its own record, under its own duties as a controller (e.g.
the Wgbo's care file): ketenbus does not shred it, it tells the party so that the party can act
on it. The notice carries only the fact and the person's pseudonym on that party's topic (the
Kafka key of every delivery about the person to that party), never a BSN, a name or what was
erased. It is a small JSON document in the router's envelope, event ``erasure-notice``, not a
FHIR message: it has no FHIR counterpart and no payload to minimise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from schemas.jsontext import loads

__all__ = ["ERASURE_NOTICE_EVENT", "ErasureNotice"]

ERASURE_NOTICE_EVENT = "erasure-notice"
_FIELDS = {"kind", "id", "erased_at", "pseudonym", "law", "what"}
_SAFE = re.compile(r"^[A-Za-z0-9._:+-]{1,128}$")
_LAW = "AVG art. 17(2) en 19"
_WHAT = (
    "ketenbus heeft de gegevens van deze persoon gewist (crypto-shredding). Uw eigen kopie is "
    "uw dossier: beoordeel zelf of u die moet wissen of corrigeren."
)


@dataclass(frozen=True)
class ErasureNotice:
    """One notice: its id (the envelope's ``kb-id``), when, and the person's pseudonym on the
    receiving party's topic."""

    id: str
    erased_at: str
    pseudonym: str

    def to_json(self) -> bytes:
        doc = {
            "kind": ERASURE_NOTICE_EVENT,
            "id": self.id,
            "erased_at": self.erased_at,
            "pseudonym": self.pseudonym,
            "law": _LAW,
            "what": _WHAT,
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> ErasureNotice:
        """The notice; ``ValueError`` for anything else (fields, kind, or a value that is not
        an id-like text: a notice never carries free text from outside)."""
        doc: Any = loads(raw)
        if not isinstance(doc, dict) or set(doc) != _FIELDS:
            raise ValueError("not an erasure notice")
        if doc["kind"] != ERASURE_NOTICE_EVENT or doc["law"] != _LAW or doc["what"] != _WHAT:
            raise ValueError("not an erasure notice")
        for name in ("id", "erased_at", "pseudonym"):
            if not isinstance(doc[name], str) or not _SAFE.match(doc[name]):
                raise ValueError(f"erasure notice: {name} is not an id")
        return cls(doc["id"], doc["erased_at"], doc["pseudonym"])
