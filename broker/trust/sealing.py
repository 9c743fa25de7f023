"""Sealing one payload for one recipient, written once.

A party sealing a message for the router, the router sealing a delivery for a party or a
record for itself: each names who it is (its keys), to whom, what and about whom, and takes the
recipient's encryption key from the registry. Only those values differ, so the envelope is made
in one place and a change to it (a header, the key choice) reaches every sender at once.
"""

from __future__ import annotations

from datetime import datetime

from broker.trust.envelope import EnvelopeMeta, Sealed, seal
from broker.trust.keys import PartyKeys
from broker.trust.registry import PartyRegistry

__all__ = ["seal_for"]


def seal_for(
    payload: bytes,
    keys: PartyKeys,
    registry: PartyRegistry,
    recipient: str,
    *,
    event: str,
    message_id: str,
    pseudonym: str,
    timestamp: datetime,
    key_at: datetime | None = None,
    sign: bool = True,
) -> Sealed:
    """``payload`` sealed by ``keys``' party for ``recipient``, encrypted to the recipient's
    newest key valid at ``key_at`` (by default ``timestamp``, the envelope's time).

    ``pseudonym`` is the record key: the sender's pseudonym of the person, or ``"none"``. With
    ``sign=False`` the envelope waits for ``sign_batch`` (one signature over many)."""
    key_id, public = registry.encryption_key(recipient, key_at or timestamp)
    sender = keys.party_id  # seal() refuses an envelope in another party's name
    meta = EnvelopeMeta(message_id, event, sender, recipient, timestamp, pseudonym)
    return seal(payload, meta, keys, key_id, public, sign=sign)
