"""Wrapping a small secret (a data key) for one party's X25519 key.

The same key agreement as the envelope (``docs/trust.md`` 3.3): a fresh ephemeral X25519 key,
the AES key from :func:`broker.trust.envelope.derive_key`, AES-256-GCM. What differs is the
associated data, which starts with ``ketenbus-key-wrap-v1``, so a wrapped key can never be taken
for an envelope's payload nor the other way round. The caller's ``context`` binds the wrapped key
to where it is used (an audit record: its chain and event id), so it cannot be moved elsewhere.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.trust.envelope import NONCE_LEN, derive_key
from broker.trust.errors import Reason, TrustError

__all__ = ["WRAPPED_LEN", "WRAP_DOMAIN", "unwrap_key", "wrap_key"]

WRAP_DOMAIN = b"ketenbus-key-wrap-v1"
_EPHEMERAL = 32
_TAG = 16
WRAPPED_LEN = _EPHEMERAL + NONCE_LEN + 32 + _TAG  # for a 32-byte data key


def wrap_key(secret: bytes, key_id: str, public: X25519PublicKey, *, context: bytes) -> bytes:
    """``ephemeral public (32) || nonce (12) || AES-256-GCM(secret)`` for ``public``."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    key = derive_key(
        ephemeral.exchange(public), ephemeral_public, public.public_bytes_raw(), key_id
    )
    nonce = os.urandom(NONCE_LEN)
    return ephemeral_public + nonce + AESGCM(key).encrypt(nonce, secret, WRAP_DOMAIN + context)


def unwrap_key(wrapped: bytes, key_id: str, private: X25519PrivateKey, *, context: bytes) -> bytes:
    """The secret of :func:`wrap_key`; ``TrustError`` (decrypt-failed) when it was wrapped for
    another key or context, or changed."""
    if len(wrapped) < _EPHEMERAL + NONCE_LEN + _TAG:
        raise TrustError(Reason.DECRYPT_FAILED, "the wrapped key is too short")
    ephemeral_public = wrapped[:_EPHEMERAL]
    nonce = wrapped[_EPHEMERAL : _EPHEMERAL + NONCE_LEN]
    try:
        peer = X25519PublicKey.from_public_bytes(ephemeral_public)
        shared = private.exchange(peer)
        own = private.public_key().public_bytes_raw()
        key = derive_key(shared, ephemeral_public, own, key_id)
        return AESGCM(key).decrypt(
            nonce, wrapped[_EPHEMERAL + NONCE_LEN :], WRAP_DOMAIN + context
        )
    except (InvalidTag, ValueError):
        raise TrustError(Reason.DECRYPT_FAILED, "the wrapped key does not open") from None
