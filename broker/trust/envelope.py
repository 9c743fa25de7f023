"""The sealed envelope: a message encrypted for its one reader and signed by its sender.

A sealed message is exactly what is handed to Kafka: ``send(topic, key=, value=, headers=)``.

- **key**: the person pseudonym in the reader's domain (UTF-8), or the topic's non-personal key,
  or empty.
- **headers**: routing metadata only -- ``content-type``, ``kb-id``, ``kb-event``, ``kb-sender``,
  ``kb-recipient``, ``kb-time``, ``kb-sig-kid``, ``kb-enc-kid``, ``kb-sig``.
- **value**: ``ephemeral X25519 public key (32) || nonce (12) || AES-256-GCM ciphertext + tag``.

The AES key is ``HKDF-SHA256(X25519(ephemeral, recipient))`` with an ``info`` that binds both
public keys and the recipient key id; the GCM associated data is the canonical header bytes, so
the ciphertext is bound to its id, sender, recipient, time, pseudonym and key ids. The sender
signs (Ed25519) the canonical header bytes followed by SHA-256 of the value. Altering any signed
header, the key, or one byte of the value fails verification; the reader only decrypts what
verified. ``docs/trust.md`` gives the byte layout precisely, with a test vector.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.trust._encoding import b64decode_strict, b64encode, require_aware, utc_now
from broker.trust.errors import Reason, TrustError, UnknownParty
from broker.trust.keys import Keyring, PartyKeys, check_key_id
from broker.trust.registry import PartyRegistry, check_key_valid

CONTENT_TYPE = "application/vnd.ketenbus.sealed+v1"
ENVELOPE_PREFIX = b"ketenbus-envelope-v1"
HKDF_SALT = b"ketenbus-envelope-v1 hkdf-salt"
HKDF_INFO_PREFIX = b"ketenbus-envelope-v1 aes-256-gcm key"
EPHEMERAL_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16
MIN_VALUE_LEN = EPHEMERAL_LEN + NONCE_LEN + TAG_LEN
MAX_FIELD_BYTES = 256
DEFAULT_MAX_FUTURE = timedelta(minutes=2)

H_CONTENT_TYPE = "content-type"
H_ID = "kb-id"
H_EVENT = "kb-event"
H_SENDER = "kb-sender"
H_RECIPIENT = "kb-recipient"
H_TIME = "kb-time"
H_SIG_KID = "kb-sig-kid"
H_ENC_KID = "kb-enc-kid"
H_SIG = "kb-sig"
HEADER_NAMES = (
    H_CONTENT_TYPE,
    H_ID,
    H_EVENT,
    H_SENDER,
    H_RECIPIENT,
    H_TIME,
    H_SIG_KID,
    H_ENC_KID,
    H_SIG,
)

_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def format_time(value: datetime) -> str:
    """The canonical ``kb-time`` text: UTC, microseconds, ``Z``: ``2026-11-23T15:48:00.000000Z``."""
    text = require_aware(value, "timestamp").isoformat(timespec="microseconds")
    return text.removesuffix("+00:00") + "Z"


def parse_time(text: str) -> datetime:
    """Parse canonical ``kb-time`` text only (``ValueError`` for any other form)."""
    if not _TIME_RE.match(text):
        raise ValueError("kb-time must look like 2026-11-23T15:48:00.000000Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def _check_field(name: str, value: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str")
    if not value and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if len(value.encode("utf-8")) > MAX_FIELD_BYTES:
        raise ValueError(f"{name} is longer than {MAX_FIELD_BYTES} UTF-8 bytes")
    if _CONTROL_RE.search(value):
        raise ValueError(f"{name} contains control characters")


@dataclass(frozen=True)
class EnvelopeMeta:
    """What a sealed message says about itself in the clear: routing metadata only.

    ``timestamp`` must be timezone-aware and is kept in UTC. ``pseudonym`` becomes the Kafka
    record key and is signed: on person-keyed topics it is the person's pseudonym in the
    reader's domain; on topics keyed otherwise (``schemas.topics.KeyKind``: location, party,
    chain) it is that key; ``""`` for no key. Never a BSN or other identifier in clear.
    """

    message_id: str
    event: str
    sender: str
    recipient: str
    timestamp: datetime
    pseudonym: str

    def __post_init__(self) -> None:
        _check_field("message_id", self.message_id)
        _check_field("event", self.event)
        _check_field("sender", self.sender)
        _check_field("recipient", self.recipient)
        _check_field("pseudonym", self.pseudonym, allow_empty=True)
        object.__setattr__(self, "timestamp", require_aware(self.timestamp, "timestamp"))

    @classmethod
    def new(
        cls,
        *,
        event: str,
        sender: str,
        recipient: str,
        pseudonym: str,
        now: datetime | None = None,
        message_id: str | None = None,
    ) -> EnvelopeMeta:
        """Metadata for a new message: a random UUID id and ``now`` (default: the clock)."""
        return cls(
            message_id=message_id or str(uuid.uuid4()),
            event=str(event),
            sender=sender,
            recipient=recipient,
            timestamp=now or utc_now(),
            pseudonym=pseudonym,
        )

    @property
    def replay_id(self) -> str:
        """``<sender>/<message_id>``: the id to de-duplicate on, scoped to the sender so that one
        party cannot pre-empt (or fish for the response to) another party's message id."""
        return f"{self.sender}/{self.message_id}"


@dataclass(frozen=True)
class Sealed:
    """Exactly what to give aiokafka:
    ``send(topic, key=s.key, value=s.value, headers=s.headers)``."""

    key: bytes
    value: bytes = field(repr=False)
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Verified:
    """An envelope whose sender, signing key and signature checked out (payload not decrypted)."""

    meta: EnvelopeMeta
    signer_key_id: str
    encryption_key_id: str


@dataclass(frozen=True)
class Opened:
    """A verified, decrypted message. ``repr`` leaves out the payload (it may identify a person)."""

    meta: EnvelopeMeta
    payload: bytes = field(repr=False)
    signer_key_id: str
    encryption_key_id: str = ""


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def canonical_header_bytes(
    meta: EnvelopeMeta, sig_kid: str, enc_kid: str, *, time_text: str | None = None
) -> bytes:
    """``ketenbus-envelope-v1`` then id, event, sender, recipient, time, pseudonym, sig-kid and
    enc-kid, each as a 4-byte big-endian length and UTF-8 bytes. Used as the GCM associated data
    and as the start of the signed bytes. (``time_text`` saves re-formatting ``meta.timestamp``.)
    """
    return b"".join(
        (
            ENVELOPE_PREFIX,
            _lp(meta.message_id),
            _lp(meta.event),
            _lp(meta.sender),
            _lp(meta.recipient),
            _lp(time_text if time_text is not None else format_time(meta.timestamp)),
            _lp(meta.pseudonym),
            _lp(sig_kid),
            _lp(enc_kid),
        )
    )


def signed_bytes(header_bytes: bytes, value: bytes) -> bytes:
    """What Ed25519 signs: the canonical header bytes followed by SHA-256 of the value."""
    return header_bytes + hashlib.sha256(value).digest()


def derive_key(
    shared: bytes, ephemeral_public: bytes, recipient_public: bytes, enc_kid: str
) -> bytes:
    """The AES-256-GCM key: HKDF-SHA256(salt=HKDF_SALT, ikm=shared,
    info=HKDF_INFO_PREFIX || ephemeral public (32) || recipient public (32) || lp(enc-kid))."""
    info = HKDF_INFO_PREFIX + ephemeral_public + recipient_public + _lp(enc_kid)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=info).derive(shared)


def _seal(
    payload: bytes,
    meta: EnvelopeMeta,
    sender: PartyKeys,
    recipient_key_id: str,
    recipient_public: X25519PublicKey,
    ephemeral: X25519PrivateKey,
    nonce: bytes,
) -> Sealed:
    if meta.sender != sender.party_id:
        raise ValueError(
            f"meta.sender {meta.sender!r} is not the signing party {sender.party_id!r}"
        )
    check_key_id(recipient_key_id)
    if len(nonce) != NONCE_LEN:
        raise ValueError("nonce must be 12 bytes")
    time_text = format_time(meta.timestamp)
    header_bytes = canonical_header_bytes(
        meta, sender.key_id, recipient_key_id, time_text=time_text
    )
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(recipient_public)
    key = derive_key(
        shared, ephemeral_public, recipient_public.public_bytes_raw(), recipient_key_id
    )
    ciphertext = AESGCM(key).encrypt(nonce, bytes(payload), header_bytes)
    value = ephemeral_public + nonce + ciphertext
    signature = sender.signing.sign(signed_bytes(header_bytes, value))
    headers = [
        (H_CONTENT_TYPE, CONTENT_TYPE.encode("ascii")),
        (H_ID, meta.message_id.encode("utf-8")),
        (H_EVENT, meta.event.encode("utf-8")),
        (H_SENDER, meta.sender.encode("utf-8")),
        (H_RECIPIENT, meta.recipient.encode("utf-8")),
        (H_TIME, time_text.encode("ascii")),
        (H_SIG_KID, sender.key_id.encode("utf-8")),
        (H_ENC_KID, recipient_key_id.encode("utf-8")),
        (H_SIG, b64encode(signature).encode("ascii")),
    ]
    return Sealed(key=meta.pseudonym.encode("utf-8"), value=value, headers=headers)


def seal(
    payload: bytes,
    meta: EnvelopeMeta,
    sender: PartyKeys,
    recipient_key_id: str,
    recipient_public: X25519PublicKey,
) -> Sealed:
    """Encrypt ``payload`` for ``recipient_public`` and sign it with ``sender``'s key.

    ``meta.sender`` must be ``sender.party_id`` (``ValueError`` otherwise).
    """
    return _seal(
        payload,
        meta,
        sender,
        recipient_key_id,
        recipient_public,
        X25519PrivateKey.generate(),
        _random_nonce(),
    )


def seal_to(
    payload: bytes, meta: EnvelopeMeta, sender: PartyKeys, registry: PartyRegistry
) -> Sealed:
    """``seal`` for ``meta.recipient``'s newest encryption key valid at ``meta.timestamp``."""
    key_id, public = registry.encryption_key(meta.recipient, meta.timestamp)
    return seal(payload, meta, sender, key_id, public)


def _random_nonce() -> bytes:
    return os.urandom(NONCE_LEN)


# --- reading ----------------------------------------------------------------------------------


def _malformed(message: str) -> TrustError:
    return TrustError(Reason.MALFORMED_ENVELOPE, message)


@dataclass(frozen=True)
class _Parsed:
    meta: EnvelopeMeta
    time_text: str
    sig_kid: str | None
    enc_kid: str | None
    signature: bytes | None


def _text(name: str, raw: bytes | None) -> str:
    if raw is None:
        raise _malformed(f"header {name} has no value")
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(f"header {name} is not UTF-8") from None


def _parse(
    key: bytes | None, headers: Iterable[tuple[str, bytes | None]], *, signed: bool
) -> _Parsed:
    found: dict[str, str] = {}
    try:
        items = list(headers or ())
    except TypeError:
        raise _malformed("headers are not a list of (name, value) pairs") from None
    for item in items:
        try:
            name, raw = item
        except (TypeError, ValueError):
            raise _malformed("headers are not a list of (name, value) pairs") from None
        if name in HEADER_NAMES:
            if name in found:
                raise _malformed(f"header {name} appears more than once")
            found[name] = _text(name, raw)
        elif isinstance(name, str) and name.startswith("kb-"):
            raise _malformed(f"unknown ketenbus header {name}")
    if found.get(H_CONTENT_TYPE) != CONTENT_TYPE:
        raise _malformed(f"content-type is not {CONTENT_TYPE}")
    if signed and (not found.get(H_SIG) or not found.get(H_SIG_KID)):
        raise TrustError(Reason.MISSING_SIGNATURE, "no kb-sig or kb-sig-kid header")
    required = (H_ID, H_EVENT, H_SENDER, H_RECIPIENT, H_TIME) + ((H_ENC_KID,) if signed else ())
    missing = [n for n in required if n not in found]
    if missing:
        raise _malformed(f"missing header(s) {', '.join(missing)}")
    pseudonym = "" if key is None else _text("key", key)
    try:
        meta = EnvelopeMeta(
            message_id=found[H_ID],
            event=found[H_EVENT],
            sender=found[H_SENDER],
            recipient=found[H_RECIPIENT],
            timestamp=parse_time(found[H_TIME]),
            pseudonym=pseudonym,
        )
        sig_kid = found.get(H_SIG_KID)
        enc_kid = found.get(H_ENC_KID)
        for kid in (sig_kid, enc_kid):
            if kid is not None:
                check_key_id(kid)
        signature = b64decode_strict(found[H_SIG], 64) if H_SIG in found else None
    except (ValueError, TypeError) as exc:
        raise _malformed(str(exc)) from None
    return _Parsed(meta, found[H_TIME], sig_kid, enc_kid, signature)


def read_meta(key: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> EnvelopeMeta:
    """The envelope's metadata WITHOUT any verification (``malformed-envelope`` if unreadable).

    Only for routing a refusal back to the claimed sender: nothing read here is authentic.
    """
    return _parse(key, headers, signed=False).meta


def _check_time(
    meta: EnvelopeMeta, now: datetime, max_future: timedelta, max_age: timedelta | None
) -> None:
    if meta.timestamp > now + max_future:
        raise TrustError(
            Reason.FUTURE_TIMESTAMP,
            f"message {meta.message_id!r} is dated {format_time(meta.timestamp)}, "
            f"more than {max_future} after {format_time(now)}",
        )
    if max_age is not None and meta.timestamp < now - max_age:
        raise TrustError(
            Reason.STALE,
            f"message {meta.message_id!r} is dated {format_time(meta.timestamp)}, "
            f"more than {max_age} before {format_time(now)}",
        )


def verify_only(
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]],
    *,
    registry: PartyRegistry,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
    max_age: timedelta | None = None,
    expiry_grace: timedelta | None = None,
) -> Verified:
    """Check an envelope's sender, signing key and signature without decrypting it.

    In order: shape (``malformed-envelope``, ``missing-signature``), sender
    (``unknown-sender``), signing key id (``unknown-key``), signature (``bad-signature``), the
    key's validity at the message's ``kb-time`` (``key-not-yet-valid``, ``key-expired``) and
    the message time against ``now`` (``future-timestamp``; ``stale`` when ``max_age`` is set).
    With ``expiry_grace``, a key is also refused once ``now >= valid_until + expiry_grace``,
    whatever time the message claims. Only authentic envelopes get validity or time reasons.
    """
    return _verify(key, value, headers, registry, now, max_future, max_age, expiry_grace)[0]


def _verify(
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]],
    registry: PartyRegistry,
    now: datetime | None,
    max_future: timedelta,
    max_age: timedelta | None,
    expiry_grace: timedelta | None,
) -> tuple[Verified, bytes]:
    now = require_aware(now or utc_now(), "now")
    parsed = _parse(key, headers, signed=True)
    meta = parsed.meta
    assert parsed.sig_kid is not None and parsed.enc_kid is not None
    assert parsed.signature is not None
    if len(value) < MIN_VALUE_LEN:
        raise _malformed(f"value is {len(value)} bytes, shorter than {MIN_VALUE_LEN}")
    try:
        party = registry.get(meta.sender)
    except UnknownParty:
        raise TrustError(
            Reason.UNKNOWN_SENDER, f"sender {meta.sender!r} is not in the registry"
        ) from None
    entry = party.key(parsed.sig_kid)
    if entry is None:
        raise TrustError(
            Reason.UNKNOWN_KEY,
            f"sender {meta.sender!r} has no registered signing key {parsed.sig_kid!r}",
        )
    header_bytes = canonical_header_bytes(
        meta, parsed.sig_kid, parsed.enc_kid, time_text=parsed.time_text
    )
    try:
        registry.signing_public_key(meta.sender, entry).verify(
            parsed.signature, signed_bytes(header_bytes, bytes(value))
        )
    except InvalidSignature:
        raise TrustError(
            Reason.BAD_SIGNATURE,
            f"signature of message {meta.message_id!r} from {meta.sender!r} does not verify",
        ) from None
    check_key_valid(entry, meta.sender, meta.timestamp)
    if (
        expiry_grace is not None
        and entry.valid_until is not None
        and now >= entry.valid_until + expiry_grace
    ):
        raise TrustError(
            Reason.KEY_EXPIRED,
            f"key {entry.key_id!r} of {meta.sender!r} expired at "
            f"{format_time(entry.valid_until)}; received {format_time(now)}",
        )
    _check_time(meta, now, max_future, max_age)
    verified = Verified(meta=meta, signer_key_id=parsed.sig_kid, encryption_key_id=parsed.enc_kid)
    return verified, header_bytes


def open_sealed(
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]],
    *,
    registry: PartyRegistry,
    keyring: Keyring,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
    max_age: timedelta | None = None,
    expiry_grace: timedelta | None = None,
) -> Opened:
    """Verify (see ``verify_only``), check the message is addressed to ``keyring``'s party
    (``wrong-recipient``) under a key it holds (``unknown-key``), then decrypt
    (``decrypt-failed``). Every failure is a ``TrustError`` with its reason."""
    verified, header_bytes = _verify(
        key, value, headers, registry, now, max_future, max_age, expiry_grace
    )
    meta = verified.meta
    if meta.recipient != keyring.party_id:
        raise TrustError(
            Reason.WRONG_RECIPIENT,
            f"message {meta.message_id!r} is for {meta.recipient!r}, not {keyring.party_id!r}",
        )
    own = keyring.get(verified.encryption_key_id)
    value = bytes(value)
    ephemeral_public = value[:EPHEMERAL_LEN]
    nonce = value[EPHEMERAL_LEN : EPHEMERAL_LEN + NONCE_LEN]
    ciphertext = value[EPHEMERAL_LEN + NONCE_LEN :]
    try:
        shared = own.encryption.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        aes_key = derive_key(shared, ephemeral_public, own.encryption_public_raw, own.key_id)
        payload = AESGCM(aes_key).decrypt(nonce, ciphertext, header_bytes)
    except (InvalidTag, ValueError):
        raise TrustError(
            Reason.DECRYPT_FAILED,
            f"message {meta.message_id!r} from {meta.sender!r} does not decrypt with key "
            f"{own.key_id!r}",
        ) from None
    return Opened(
        meta=meta,
        payload=payload,
        signer_key_id=verified.signer_key_id,
        encryption_key_id=own.key_id,
    )
