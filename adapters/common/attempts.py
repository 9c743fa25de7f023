"""Message ids by content, and the attempt a document is at (docs/adapters/limits.md, the rule
in ``broker/trust/replay.py``): the same document sent again is the same message, with its
original outcome; a document that was refused and is sent again is a new attempt, with a new
message id, and is routed again.

Used by the provider adapter for its CSV rows and plain resources (the ZVH adapter keeps the
response documents themselves, ``adapters/zvh/service.py``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

_NAMESPACE = uuid.UUID("0c7e2f7a-3f6b-5d0e-9b1a-6b6574656e63")


def content_key(document: Any) -> str:
    """SHA-256 of a JSON-able document in canonical form (keys sorted, compact)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class AttemptLog:
    """What this party has sent by content, and the router's outcome of each message."""

    def __init__(self, party_id: str) -> None:
        self.party_id = party_id
        self.outcomes: dict[str, bool] = {}  # message id -> accepted
        self.in_flight: set[str] = set()
        self.conflicts = 0

    def message_id(self, key: str, attempt: int) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.party_id}/{key}/{attempt}"))

    def identify(self, key: str) -> tuple[str, bool]:
        """(message id, repeat): the first attempt not refused; repeat when that attempt is in
        flight or accepted (then nothing is sent again)."""
        attempt = 0
        while True:
            mid = self.message_id(key, attempt)
            accepted = self.outcomes.get(mid)
            if accepted is None:
                return mid, mid in self.in_flight
            if accepted:
                return mid, True
            attempt += 1

    def sent(self, message_id: str) -> None:
        self.in_flight.add(message_id)

    def answered(self, message_id: str, accepted: bool) -> bool:
        """Record the router's outcome; a refusal never replaces an acceptance (returns False
        for that conflict, which the caller reports)."""
        self.in_flight.discard(message_id)
        if self.outcomes.get(message_id) and not accepted:
            self.conflicts += 1
            return False
        self.outcomes[message_id] = accepted
        return True
