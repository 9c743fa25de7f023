"""Per-party bearer tokens for an adapter's HTTP intake (issue 21 point 4).

A token is 32 random bytes (``secrets``, base64url): 256 bits, so one SHA-256 of it is a safe
record of it (no dictionary to run through; argon2's slowness guards low-entropy passwords, not
random keys). The registry keeps only that digest (``Party.intake_tokens``), so the published
registry discloses nothing that opens the endpoint, and a party removed from the registry loses
its tokens with it. The token itself exists once, in a 0600 file of the party
(``<state_dir>/secrets/<party>.intake-token``), made at run time, never committed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from broker.trust._files import ensure_private_dir, read_private_file, write_private_file
from broker.trust.errors import KeyFileError

TOKEN_BYTES = 32
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}\Z")
"""What a token looks like: 32 bytes in unpadded base64url. Anything else is malformed."""
DIGEST_RE = re.compile(r"^[0-9a-f]{64}\Z")


def new_token() -> str:
    """A fresh token (43 characters of base64url)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """The lowercase hex SHA-256 of ``token``: what the registry holds."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def digest_matches(token: str, digests: Iterable[str]) -> bool:
    """Whether ``token`` is one of ``digests``; compared in constant time per digest."""
    mine = token_digest(token)
    found = False
    for d in digests:
        found |= hmac.compare_digest(mine, d)
    return found


def token_file(secrets_dir: Path, party_id: str) -> Path:
    return secrets_dir / f"{party_id}.intake-token"


def load_or_create_token(path: Path) -> str:
    """The token in ``path`` (mode 0600), created at first use; a file that holds no token is
    an error, never silently replaced (its digest is in the registry)."""
    if not path.exists():
        ensure_private_dir(path.parent, strict=False)
        try:
            write_private_file(path, (new_token() + "\n").encode("ascii"))
        except KeyFileError:
            if not path.exists():
                raise
    return read_token(path)


def read_token(path: Path) -> str:
    """The token in ``path`` (a 0600 file); ``KeyFileError`` if it is missing or malformed."""
    token = read_private_file(path).decode("ascii", "replace").strip()
    if not TOKEN_RE.match(token):
        raise KeyFileError(f"{path}: not an intake token")
    return token
