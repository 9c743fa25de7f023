"""The hand-over of an audit chain to its next key, recorded in the chain itself.

A rotation is one record whose AuditEvent has type ``key-rotation``: it names the next key id
and the SHA-256 of its raw public key, and it is signed by the **current** key. From the next
record on only the next key may sign (docs/audit-format.md, signer binding). So whoever holds
only the new key cannot rewrite the past, and whoever holds only the old key cannot continue
after the hand-over.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.audit.event import SYSTEM_ID_SYSTEM, new_event_id
from schemas.vocab.base import KETENBUS_CS

KEY_ROTATION = "key-rotation"
AUDIT_EVENT_TYPE = KETENBUS_CS + "audit-event-type"
NEXT_KEY = "next-key"
NEXT_KEY_SHA256 = "next-key-sha256"


def public_key_sha256(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def key_rotation_event(
    chain: str, next_kid: str, next_public: Ed25519PublicKey, at: datetime | None = None
) -> dict[str, Any]:
    """The AuditEvent of handing ``chain`` over to ``next_kid``."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    recorded = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return {
        "resourceType": "AuditEvent",
        "id": new_event_id(),
        "type": {"system": AUDIT_EVENT_TYPE, "code": KEY_ROTATION, "display": "Sleutelwissel"},
        "action": "E",
        "recorded": recorded,
        "outcome": "0",
        "outcomeDesc": KEY_ROTATION,
        "agent": [
            {
                "who": {"identifier": {"system": SYSTEM_ID_SYSTEM, "value": chain}},
                "requestor": True,
            }
        ],
        "source": {"observer": {"identifier": {"system": SYSTEM_ID_SYSTEM, "value": chain}}},
        "entity": [
            {
                "detail": [
                    {"type": NEXT_KEY, "valueString": next_kid},
                    {"type": NEXT_KEY_SHA256, "valueString": public_key_sha256(next_public)},
                ]
            }
        ],
    }


def next_key_of(event: dict[str, Any]) -> tuple[str, str] | None:
    """``(next kid, SHA-256 of its public key)`` if ``event`` is a key rotation, else None."""
    kind = event.get("type")
    if not isinstance(kind, dict) or kind.get("code") != KEY_ROTATION:
        return None
    details: dict[str, str] = {}
    for entity in event.get("entity") or ():
        for d in (entity.get("detail") or ()) if isinstance(entity, dict) else ():
            if isinstance(d, dict) and isinstance(d.get("valueString"), str):
                details[str(d.get("type"))] = d["valueString"]
    if NEXT_KEY in details and NEXT_KEY_SHA256 in details:
        return details[NEXT_KEY], details[NEXT_KEY_SHA256]
    return None
