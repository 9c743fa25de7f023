"""Strict encodings shared by the trust modules: base64 of raw keys, identifiers, UTC times."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

PARTY_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]\Z")
"""Party ids: 2-64 lowercase letters, digits and inner hyphens (safe in topic names and files)."""

KEY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
"""Key ids: 1-128 letters, digits, dot, underscore, hyphen; used as file names too."""


def b64encode(raw: bytes) -> str:
    """Standard base64 (RFC 4648 section 4) with padding."""
    return base64.b64encode(raw).decode("ascii")


def b64decode_strict(text: str, length: int | None = None) -> bytes:
    """Decode canonical standard base64 only (no whitespace, no other alphabet, exact padding).

    Raises ``ValueError``; with ``length`` the decoded value must have exactly that many bytes.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("not base64") from None
    if b64encode(raw) != text:
        raise ValueError("not canonical base64")
    if length is not None and len(raw) != length:
        raise ValueError(f"base64 of {len(raw)} bytes, expected {length}")
    return raw


def require_aware(value: datetime, name: str = "time") -> datetime:
    """``value`` converted to UTC; naive datetimes are a programming error (``ValueError``)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time in UTC. Only used as a default where a caller passes no clock."""
    return datetime.now(UTC)
