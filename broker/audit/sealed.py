"""The sealed detail of an AuditEvent (``docs/audit-format.md`` §5.1): what says more than
purpose and basis -- a conflict-of-duties justification, the deciding professional, a citation
that may name a person's legal title -- encrypted for the compliance role inside the event.

The chain hashes the ciphertext, so anyone can verify the trail without a key, and only the
compliance role reads the detail (AVG art. 5(1)(f) and art. 32; NEN 7513 keeps the record
itself readable). Layout of ``valueBase64Binary``::

    b"ketenbus-audit-seal-v1" || len(dkid) (1 byte) || dkid || nonce (12)
        || AES-256-GCM(dk, nonce, canonical(detail), aad)
    aad = len(chain) (1 byte) || chain || event id          (UTF-8)

``dk`` is the data key of the person the event is about, from the key store
(:mod:`broker.trust.datakeys`, ``docs/erasure.md``): ``dkid`` is ``pk1.<owner>.<serial>``, and
``ketenbus erase`` forgets the key, after which the detail opens as "erased" while the chain,
which hashes the ciphertext, still verifies. An event without a person (or a writer without a
key store) uses a random key per record carried in the ``dkid`` itself, wrapped for the
compliance reader's X25519 key (:func:`broker.trust.keywrap.wrap_key`, context = aad):
``rk1.<reader key id>.<base64url of the wrapped key, unpadded>``; that detail names no person.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.audit.canonical import canonical
from broker.trust import TrustError
from broker.trust.datakeys import DataKeyStore, ErasedKey
from broker.trust.keywrap import unwrap_key, wrap_key

__all__ = [
    "SEALED_FIELDS",
    "SEAL_PREFIX",
    "SealReader",
    "SealedDetailErased",
    "SealedDetailError",
    "open_detail",
    "seal_detail",
]

SEAL_PREFIX = b"ketenbus-audit-seal-v1"
RECORD_KEY_PREFIX = "rk1."
PERSON_KEY_PREFIX = "pk1."
SEALED_FIELDS = ("citation", "justification", "professional")
"""The detail types that never stand in clear in an AuditEvent."""
_NONCE = 12


class SealedDetailError(ValueError):
    """The sealed detail cannot be opened: malformed, for another reader, or changed."""


class SealedDetailErased(SealedDetailError):
    """The sealed detail was under a person's data key that ``ketenbus erase`` forgot."""


@dataclass(frozen=True)
class SealReader:
    """Whom the sealed detail is for: the compliance role's current X25519 key."""

    key_id: str
    public: X25519PublicKey
    datakey: Callable[[str], tuple[str, bytes]] | None = None
    """The data key (dkid, key) of a person by audit pseudonym: the key store's, when the
    writer has one; None seals every record under its own key (``rk1.``)."""


def _aad(chain: str, event_id: str) -> bytes:
    raw = chain.encode("utf-8")
    if not 0 < len(raw) < 256:
        raise ValueError("a chain id is 1 to 255 bytes")
    return bytes([len(raw)]) + raw + event_id.encode("utf-8")


def seal_detail(
    detail: Mapping[str, str],
    *,
    chain: str,
    event_id: str,
    reader: SealReader,
    person: str | None = None,
) -> str:
    """The base64 ``valueBase64Binary`` of the ``sealed`` detail item for ``detail``, under the
    data key of ``person`` (audit pseudonym) when the reader has a key store."""
    aad = _aad(chain, event_id)
    if reader.datakey is not None and person:
        dkid_text, dk = reader.datakey(person)
        dkid = dkid_text.encode("ascii")
    else:
        dk = AESGCM.generate_key(bit_length=256)
        wrapped = wrap_key(dk, reader.key_id, reader.public, context=aad)
        dkid = (
            RECORD_KEY_PREFIX
            + reader.key_id
            + "."
            + base64.urlsafe_b64encode(wrapped).rstrip(b"=").decode("ascii")
        ).encode("ascii")
    if len(dkid) > 255:
        raise ValueError("the reader's key id is too long for a record key id")
    nonce = os.urandom(_NONCE)
    body = AESGCM(dk).encrypt(nonce, canonical(dict(detail)), aad)
    blob = SEAL_PREFIX + bytes([len(dkid)]) + dkid + nonce + body
    return base64.b64encode(blob).decode("ascii")


def open_detail(
    value: str,
    *,
    chain: str,
    event_id: str,
    keys: Mapping[str, X25519PrivateKey],
    datakeys: DataKeyStore | None = None,
) -> dict[str, str]:
    """The detail sealed in ``value``, opened with the reader key its dkid names (``keys``: key
    id -> X25519 private key of the compliance role) or, for a person's data key, from
    ``datakeys``; ``SealedDetailErased`` when that key is forgotten, ``SealedDetailError``
    otherwise."""
    try:
        blob = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SealedDetailError("the sealed detail is not base64") from None
    if not blob.startswith(SEAL_PREFIX) or len(blob) <= len(SEAL_PREFIX):
        raise SealedDetailError("not a ketenbus-audit-seal-v1 detail")
    at = len(SEAL_PREFIX)
    n = blob[at]
    dkid_raw, at = blob[at + 1 : at + 1 + n], at + 1 + n
    nonce, body = blob[at : at + _NONCE], blob[at + _NONCE :]
    if len(dkid_raw) != n or len(nonce) != _NONCE:
        raise SealedDetailError("the sealed detail is cut short")
    dkid = dkid_raw.decode("ascii", errors="replace")
    aad = _aad(chain, event_id)
    if dkid.startswith(PERSON_KEY_PREFIX):
        if datakeys is None:
            raise SealedDetailError("sealed under a person's data key: the key store is needed")
        try:
            dk = datakeys.key(dkid)
        except ErasedKey:
            raise SealedDetailErased("sealed detail: erased") from None
        try:
            return _detail(AESGCM(dk).decrypt(nonce, body, aad))
        except (InvalidTag, ValueError):
            raise SealedDetailError("the sealed detail does not open with this key") from None
    if not dkid.startswith(RECORD_KEY_PREFIX) or dkid.count(".") < 2:
        raise SealedDetailError("unknown data key id")
    key_id, _, wrapped_text = dkid[len(RECORD_KEY_PREFIX) :].rpartition(".")
    private = keys.get(key_id)
    if private is None:
        raise SealedDetailError(f"sealed for key {key_id!r}, which this reader does not hold")
    try:
        wrapped = base64.urlsafe_b64decode(wrapped_text + "=" * (-len(wrapped_text) % 4))
        dk = unwrap_key(wrapped, key_id, private, context=aad)
        plain = AESGCM(dk).decrypt(nonce, body, aad)
    except (TrustError, InvalidTag, ValueError, binascii.Error):
        raise SealedDetailError("the sealed detail does not open with this key") from None
    return _detail(plain)


def _detail(plain: bytes) -> dict[str, str]:
    try:
        detail = orjson.loads(plain)
    except orjson.JSONDecodeError:
        raise SealedDetailError("the sealed detail is not JSON") from None
    if not isinstance(detail, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in detail.items()
    ):
        raise SealedDetailError("the sealed detail is not a map of texts")
    return detail
