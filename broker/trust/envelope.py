"""The sealed envelope: a message encrypted for its one reader and signed by its sender.

A sealed message is exactly what is handed to Kafka: ``send(topic, key=, value=, headers=)``.

- **key**: the person pseudonym in the reader's domain (UTF-8), or the topic's non-personal key,
  or empty.
- **headers**: routing metadata only -- ``content-type``, ``kb-id``, ``kb-event``, ``kb-sender``,
  ``kb-recipient``, ``kb-time``, ``kb-sig-kid``, ``kb-enc-kid``, ``kb-sig`` (and
  ``kb-sig-proof`` on a member of a batch signature).
- **value**: ``ephemeral X25519 public key (32) || nonce (12) || AES-256-GCM ciphertext + tag``.

The AES key is ``HKDF-SHA256(X25519(ephemeral, recipient))`` with an ``info`` that binds both
public keys and the recipient key id; the GCM associated data is the canonical header bytes, so
the ciphertext is bound to its id, sender, recipient, time, pseudonym and key ids. The sender
signs (Ed25519) the canonical header bytes followed by SHA-256 of the value. Altering any signed
header, the key, or one byte of the value fails verification; the reader only decrypts what
verified. ``docs/trust.md`` gives the byte layout precisely, with a test vector.

Public-key work is amortised within v1: a sender reuses its ephemeral key (and AES key) per
recipient key for a bounded number of messages and time, a reader caches the AES key per sender
ephemeral, and ``sign_batch`` signs many envelopes with one Ed25519 signature over a Merkle root
(each keeps its own inclusion proof, so each still verifies alone).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.trust import merkle
from broker.trust._encoding import b64decode_strict, b64encode, require_aware, utc_now
from broker.trust.errors import Reason, TrustError, UnknownParty
from broker.trust.keys import Keyring, PartyKeys, check_key_id
from broker.trust.registry import KeyEntry, PartyRegistry, check_key_valid
from schemas.memo import Memo

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
H_SIG_PROOF = "kb-sig-proof"
BATCH_DOMAIN = b"ketenbus-envelope-batch-v1"
"""Domain label of a batch signature: ``BATCH_DOMAIN || size (4, BE) || Merkle root``."""

EPHEMERAL_MAX_USES = 4096
"""A sender's ephemeral key (and its AES key) serves at most this many messages ..."""
EPHEMERAL_MAX_AGE_S = 600.0
"""... and at most this many seconds (monotonic clock), whichever comes first."""
EPHEMERAL_MAX_RECIPIENTS = 1024
"""At most this many (sender key, recipient key) pairs hold a cached ephemeral key."""
READER_CACHE_SIZE = 4096
"""A reader keeps the AES keys of this many (own key, sender ephemeral) pairs."""
BATCH_CACHE_SIZE = 4096
"""A reader remembers this many verified (signer key, root, size, signature) batch signatures."""

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
    H_SIG_PROOF,
)

_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


_last_time: tuple[datetime, str] | None = None


def format_time(value: datetime) -> str:
    """The canonical ``kb-time`` text: UTC, microseconds, ``Z``: ``2026-11-23T15:48:00.000000Z``.

    The last result is kept: one routed message formats the same ``now`` several times.
    """
    global _last_time
    last = _last_time
    if last is not None and last[0] is value:
        return last[1]
    utc = value if value.tzinfo is UTC else require_aware(value, "timestamp")
    text = utc.isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"
    _last_time = (value, text)
    return text


def parse_time(text: str) -> datetime:
    """Parse canonical ``kb-time`` text only (``ValueError`` for any other form)."""
    if not _TIME_RE.match(text):
        raise ValueError("kb-time must look like 2026-11-23T15:48:00.000000Z")
    return datetime.fromisoformat(text)  # the "Z" gives tzinfo UTC itself (Python 3.11+)


def _check_field(name: str, value: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str")
    if not value and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    # Fast path, same rule: printable ASCII has no control characters and is one byte a char.
    if value.isascii() and value.isprintable():
        if len(value) > MAX_FIELD_BYTES:
            raise ValueError(f"{name} is longer than {MAX_FIELD_BYTES} UTF-8 bytes")
        return
    if len(value.encode("utf-8")) > MAX_FIELD_BYTES:
        raise ValueError(f"{name} is longer than {MAX_FIELD_BYTES} UTF-8 bytes")
    if _CONTROL_RE.search(value):
        raise ValueError(f"{name} contains control characters")


@dataclass(frozen=True, slots=True)
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
        if self.timestamp.tzinfo is not UTC:  # the common case needs no conversion
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
    ``send(topic, key=s.key, value=s.value, headers=s.headers)``.

    ``to_sign`` is not sent: for ``seal(..., sign=False)`` it holds the bytes to be signed
    (``signed_bytes``) until ``sign_batch`` adds ``kb-sig``; it is ``b""`` once signed.
    """

    key: bytes
    value: bytes = field(repr=False)
    headers: list[tuple[str, bytes]]
    to_sign: bytes = field(default=b"", repr=False, compare=False)


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
    parts = [ENVELOPE_PREFIX]
    for text in (
        meta.message_id,
        meta.event,
        meta.sender,
        meta.recipient,
        time_text if time_text is not None else format_time(meta.timestamp),
        meta.pseudonym,
        sig_kid,
        enc_kid,
    ):
        raw = text.encode("utf-8")
        parts.append(len(raw).to_bytes(4, "big"))
        parts.append(raw)
    return b"".join(parts)


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


@dataclass(slots=True)
class _Ephemeral:
    """A sender's current ephemeral key for one recipient key: only its public half and the
    derived AES key are kept (the X25519 private key is dropped right after the exchange)."""

    public: bytes
    aead: AESGCM
    born: float
    uses: int


_clock = time.monotonic  # tests replace it to age ephemeral keys
_ephemerals: Memo[tuple[str, str, str, bytes], _Ephemeral] = Memo(EPHEMERAL_MAX_RECIPIENTS)
_reader_keys: Memo[tuple[str, bytes, bytes], AESGCM] = Memo(READER_CACHE_SIZE)
_verified_batches: Memo[tuple[str, str, str, bytes, int, bytes], bool] = Memo(BATCH_CACHE_SIZE)


def reset_key_caches() -> None:
    """Forget every cached ephemeral key, reader AES key and verified batch signature (tests,
    and a party that wants new ephemeral keys at once, e.g. after a key rotation)."""
    _ephemerals.clear()
    _reader_keys.clear()
    _verified_batches.clear()


# A forked child starts with no cached keys: parent and child never share an AES key, so the
# bound of EPHEMERAL_MAX_USES messages per key holds per process tree too.
os.register_at_fork(after_in_child=reset_key_caches)


def _agree(
    ephemeral: X25519PrivateKey,
    recipient_key_id: str,
    recipient_public: X25519PublicKey,
    recipient_raw: bytes,
) -> tuple[bytes, AESGCM]:
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(recipient_public)
    key = derive_key(shared, ephemeral_public, recipient_raw, recipient_key_id)
    return ephemeral_public, AESGCM(key)


def _reused_agreement(
    sender: PartyKeys, recipient_key_id: str, recipient_public: X25519PublicKey
) -> tuple[bytes, AESGCM]:
    """The sender's ephemeral public key and AES key for this recipient key, made anew after
    ``EPHEMERAL_MAX_USES`` messages or ``EPHEMERAL_MAX_AGE_S`` seconds (docs/trust.md 3.3.1)."""
    recipient_raw = recipient_public.public_bytes_raw()
    cache_key = (sender.party_id, sender.key_id, recipient_key_id, recipient_raw)
    now = _clock()
    entry = _ephemerals.get(cache_key)
    if entry is not None:
        with _ephemerals.lock:
            if entry.uses < EPHEMERAL_MAX_USES and 0 <= now - entry.born < EPHEMERAL_MAX_AGE_S:
                entry.uses += 1
                return entry.public, entry.aead
    public, aead = _agree(
        X25519PrivateKey.generate(), recipient_key_id, recipient_public, recipient_raw
    )
    _ephemerals.put(cache_key, _Ephemeral(public, aead, now, 1))
    return public, aead


def _check_seal(meta: EnvelopeMeta, sender: PartyKeys, recipient_key_id: str) -> None:
    if meta.sender != sender.party_id:
        raise ValueError(
            f"meta.sender {meta.sender!r} is not the signing party {sender.party_id!r}"
        )
    check_key_id(recipient_key_id)


def _seal(
    payload: bytes,
    meta: EnvelopeMeta,
    sender: PartyKeys,
    recipient_key_id: str,
    recipient_public: X25519PublicKey,
    ephemeral: X25519PrivateKey,
    nonce: bytes,
    *,
    sign: bool = True,
) -> Sealed:
    """``seal`` with a given ephemeral key and nonce (test vectors); nothing is cached."""
    _check_seal(meta, sender, recipient_key_id)
    ephemeral_public, aead = _agree(
        ephemeral, recipient_key_id, recipient_public, recipient_public.public_bytes_raw()
    )
    return _seal_with(payload, meta, sender, recipient_key_id, ephemeral_public, aead, nonce, sign)


def _seal_with(
    payload: bytes,
    meta: EnvelopeMeta,
    sender: PartyKeys,
    recipient_key_id: str,
    ephemeral_public: bytes,
    aead: AESGCM,
    nonce: bytes,
    sign: bool,
) -> Sealed:
    if len(nonce) != NONCE_LEN:
        raise ValueError("nonce must be 12 bytes")
    time_text = format_time(meta.timestamp)
    header_bytes = canonical_header_bytes(
        meta, sender.key_id, recipient_key_id, time_text=time_text
    )
    ciphertext = aead.encrypt(nonce, bytes(payload), header_bytes)
    value = ephemeral_public + nonce + ciphertext
    to_sign = signed_bytes(header_bytes, value)
    headers = [
        (H_CONTENT_TYPE, _CONTENT_TYPE_BYTES),
        (H_ID, meta.message_id.encode("utf-8")),
        (H_EVENT, meta.event.encode("utf-8")),
        (H_SENDER, meta.sender.encode("utf-8")),
        (H_RECIPIENT, meta.recipient.encode("utf-8")),
        (H_TIME, time_text.encode("ascii")),
        (H_SIG_KID, sender.key_id.encode("utf-8")),
        (H_ENC_KID, recipient_key_id.encode("utf-8")),
    ]
    key = meta.pseudonym.encode("utf-8")
    if not sign:
        return Sealed(key=key, value=value, headers=headers, to_sign=to_sign)
    headers.append((H_SIG, b64encode(sender.signing.sign(to_sign)).encode("ascii")))
    return Sealed(key=key, value=value, headers=headers)


_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode("ascii")


def seal(
    payload: bytes,
    meta: EnvelopeMeta,
    sender: PartyKeys,
    recipient_key_id: str,
    recipient_public: X25519PublicKey,
    *,
    sign: bool = True,
    ephemeral: X25519PrivateKey | None = None,
) -> Sealed:
    """Encrypt ``payload`` for ``recipient_public`` and sign it with ``sender``'s key.

    ``meta.sender`` must be ``sender.party_id`` (``ValueError`` otherwise). The ephemeral key
    agreement is reused per recipient key within bounds (docs/trust.md 3.3.1) unless an explicit
    ``ephemeral`` is given; the nonce is always fresh. With ``sign=False`` the result has no
    ``kb-sig`` yet: pass it (with others) to ``sign_batch``.
    """
    _check_seal(meta, sender, recipient_key_id)
    if ephemeral is not None:
        ephemeral_public, aead = _agree(
            ephemeral, recipient_key_id, recipient_public, recipient_public.public_bytes_raw()
        )
    else:
        ephemeral_public, aead = _reused_agreement(sender, recipient_key_id, recipient_public)
    return _seal_with(
        payload, meta, sender, recipient_key_id, ephemeral_public, aead, _random_nonce(), sign
    )


def seal_to(
    payload: bytes,
    meta: EnvelopeMeta,
    sender: PartyKeys,
    registry: PartyRegistry,
    *,
    sign: bool = True,
) -> Sealed:
    """``seal`` for ``meta.recipient``'s newest encryption key valid at ``meta.timestamp``."""
    key_id, public = registry.encryption_key(meta.recipient, meta.timestamp)
    return seal(payload, meta, sender, key_id, public, sign=sign)


def sign_batch(items: Sequence[Sealed], keys: PartyKeys) -> list[Sealed]:
    """Sign unsigned envelopes (``seal(..., sign=False)``) of ``keys``' party with one signature.

    One item gets exactly the single-message (v1) signature. Two or more get one Ed25519
    signature over ``BATCH_DOMAIN || size || Merkle root`` of their signed bytes, each item that
    signature in ``kb-sig`` and its inclusion proof in ``kb-sig-proof`` (docs/trust.md 3.4).
    ``ValueError`` for an item already signed, or sealed by another party or signing key.
    """
    sender = keys.party_id.encode("utf-8")
    kid = keys.key_id.encode("utf-8")
    for item in items:
        names = [name for name, _ in item.headers]
        if not item.to_sign or H_SIG in names or H_SIG_PROOF in names:
            raise ValueError("sign_batch takes only unsigned envelopes (seal(..., sign=False))")
        found = dict(item.headers)
        if found.get(H_SENDER) != sender or found.get(H_SIG_KID) != kid:
            raise ValueError(
                f"an envelope in the batch was not sealed by {keys.party_id!r} "
                f"with key {keys.key_id!r}"
            )
    if len(items) == 1:
        item = items[0]
        signature = b64encode(keys.signing.sign(item.to_sign)).encode("ascii")
        return [Sealed(key=item.key, value=item.value, headers=[*item.headers, (H_SIG, signature)])]
    if not items:
        return []
    root, proofs = merkle.build([merkle.leaf_hash(item.to_sign) for item in items])
    signed = merkle.batch_signed_bytes(BATCH_DOMAIN, root, len(items))
    signature = b64encode(keys.signing.sign(signed)).encode("ascii")
    return [
        Sealed(
            key=item.key,
            value=item.value,
            headers=[
                *item.headers,
                (H_SIG, signature),
                (H_SIG_PROOF, b64encode(merkle.encode_proof(proof)).encode("ascii")),
            ],
        )
        for item, proof in zip(items, proofs, strict=True)
    ]


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
    proof: merkle.Proof | None
    header_bytes: bytes | None  # canonical header bytes when both key ids are present


_HEADER_SET = frozenset(HEADER_NAMES)


def _text(name: str, raw: bytes | None) -> str:
    if raw is None:
        raise _malformed(f"header {name} has no value")
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(f"header {name} is not UTF-8") from None


_Headers = tuple[tuple[str, bytes | None], ...]


def _found(items: _Headers) -> tuple[dict[str, str], bool]:
    """Step 1: the known headers' texts (each at most once; no unknown ``kb-*`` header), and
    whether ``items`` is all tuples of ``bytes`` (immutable, so safe to remember as is)."""
    found: dict[str, str] = {}
    immutable = True
    for item in items:
        try:
            name, raw = item
        except (TypeError, ValueError):
            raise _malformed("headers are not a list of (name, value) pairs") from None
        if type(item) is not tuple or (raw is not None and type(raw) is not bytes):
            immutable = False
        if name in _HEADER_SET:
            if name in found:
                raise _malformed(f"header {name} appears more than once")
            if type(raw) is bytes:
                try:
                    found[name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise _malformed(f"header {name} is not UTF-8") from None
            else:
                found[name] = _text(name, raw)
        elif isinstance(name, str) and name.startswith("kb-"):
            raise _malformed(f"unknown ketenbus header {name}")
    if found.get(H_CONTENT_TYPE) != CONTENT_TYPE:
        raise _malformed(f"content-type is not {CONTENT_TYPE}")
    return found, immutable


def _build(key: bytes | None, found: dict[str, str]) -> _Parsed:
    """Step 3 once the required headers are known to be present."""
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
    proof = None
    if H_SIG_PROOF in found:
        text = found[H_SIG_PROOF]
        try:
            if len(text) > _MAX_PROOF_TEXT:
                raise ValueError("longer than any batch needs")
            proof = merkle.decode_proof(b64decode_strict(text))
            if proof.size < 2:
                raise ValueError("a batch has at least 2 members")
        except ValueError as exc:
            raise _malformed(
                f"header {H_SIG_PROOF} is not a Merkle inclusion proof: {exc}"
            ) from None
    header_bytes = None
    if sig_kid is not None and enc_kid is not None:
        header_bytes = canonical_header_bytes(meta, sig_kid, enc_kid, time_text=found[H_TIME])
    return _Parsed(meta, found[H_TIME], sig_kid, enc_kid, signature, proof, header_bytes)


_last_parse: tuple[bytes | None, _Headers, dict[str, str], _Parsed] | None = None
"""The last successful parse: a router reads the same record with ``read_envelope`` and then
``open_sealed``. Reused only when key and headers are equal by value (immutable copies are
kept), so it can never return another record's metadata."""


def _parse(
    key: bytes | None, headers: Iterable[tuple[str, bytes | None]], *, signed: bool
) -> _Parsed:
    global _last_parse
    try:
        items: _Headers = tuple(headers or ())
    except TypeError:
        raise _malformed("headers are not a list of (name, value) pairs") from None
    hit = _last_parse
    parsed: _Parsed | None = None
    immutable = False
    if hit is not None and hit[0] == key and hit[1] == items:
        found, parsed = hit[2], hit[3]
    else:
        found, immutable = _found(items)
    if signed and (not found.get(H_SIG) or not found.get(H_SIG_KID)):
        raise TrustError(Reason.MISSING_SIGNATURE, "no kb-sig or kb-sig-kid header")
    required = _REQUIRED_SIGNED if signed else _REQUIRED
    missing = [n for n in required if n not in found]
    if missing:
        raise _malformed(f"missing header(s) {', '.join(missing)}")
    if parsed is None:
        parsed = _build(key, found)
        frozen = items if immutable else _frozen(items)
        if frozen is not None:
            _last_parse = (None if key is None else bytes(key), frozen, found, parsed)
    return parsed


def _frozen(items: _Headers) -> _Headers | None:
    """``items`` with every value an immutable ``bytes`` copy; ``None`` if some value is of a
    kind we do not copy (then nothing is remembered)."""
    out = []
    for name, raw in items:
        if raw is None or type(raw) is bytes:
            out.append((name, raw))
        elif isinstance(raw, bytearray | memoryview):
            out.append((name, bytes(raw)))
        else:
            return None
    return tuple(out)


_REQUIRED = (H_ID, H_EVENT, H_SENDER, H_RECIPIENT, H_TIME)
_REQUIRED_SIGNED = (*_REQUIRED, H_ENC_KID)


_MAX_PROOF_TEXT = 4 * (8 + 32 * 25 + 2) // 3 + 4  # base64 of a proof in a tree of 2**24 leaves


def read_envelope(key: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> EnvelopeMeta:
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
    header_bytes = parsed.header_bytes
    assert header_bytes is not None
    _check_signature(parsed, entry, header_bytes, bytes(value), registry)
    if entry.revoked is not None and now >= entry.revoked:
        # a stolen key may be used with any kb-time it likes: revocation counts from the
        # reader's clock, not from the time the message claims (docs/trust.md §2.2)
        raise TrustError(
            Reason.KEY_REVOKED,
            f"key {entry.key_id!r} of {meta.sender!r} was revoked at "
            f"{format_time(entry.revoked)}",
        )
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


def _bad_signature(meta: EnvelopeMeta, detail: str) -> TrustError:
    return TrustError(
        Reason.BAD_SIGNATURE,
        f"signature of message {meta.message_id!r} from {meta.sender!r} {detail}",
    )


def _check_signature(
    parsed: _Parsed, entry: KeyEntry, header_bytes: bytes, value: bytes, registry: PartyRegistry
) -> None:
    """The v1 signature over this message, or (with ``kb-sig-proof``) the batch signature over
    the Merkle root that this message's leaf and proof lead to. A batch signature is verified
    once per (signer key, root, size, signature); later members only recompute their root."""
    meta = parsed.meta
    assert parsed.signature is not None
    public = registry.signing_public_key(meta.sender, entry)
    to_sign = signed_bytes(header_bytes, value)
    if parsed.proof is None:
        try:
            public.verify(parsed.signature, to_sign)
        except InvalidSignature:
            raise _bad_signature(meta, "does not verify") from None
        return
    proof = parsed.proof
    try:
        root = merkle.root_from_proof(merkle.leaf_hash(to_sign), proof)
    except merkle.ProofError as exc:
        raise _bad_signature(
            meta, f"has a kb-sig-proof that does not fit its tree: {exc}"
        ) from None
    cache_key = (
        meta.sender,
        entry.key_id,
        entry.signing_public,
        root,
        proof.size,
        parsed.signature,
    )
    if _verified_batches.get(cache_key):
        return
    try:
        public.verify(parsed.signature, merkle.batch_signed_bytes(BATCH_DOMAIN, root, proof.size))
    except InvalidSignature:
        raise _bad_signature(
            meta, "does not verify over the batch root its kb-sig-proof leads to"
        ) from None
    _verified_batches.put(cache_key, True)


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
    cache_key = (own.key_id, own.encryption_public_raw, ephemeral_public)
    aead = _reader_keys.get(cache_key)
    fresh = aead is None
    try:
        if aead is None:
            shared = own.encryption.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
            aead = AESGCM(
                derive_key(shared, ephemeral_public, own.encryption_public_raw, own.key_id)
            )
        payload = aead.decrypt(nonce, ciphertext, header_bytes)
    except (InvalidTag, ValueError):
        raise TrustError(
            Reason.DECRYPT_FAILED,
            f"message {meta.message_id!r} from {meta.sender!r} does not decrypt with key "
            f"{own.key_id!r}",
        ) from None
    if fresh:  # only keys that opened an authentic message are kept
        _reader_keys.put(cache_key, aead)
    return Opened(
        meta=meta,
        payload=payload,
        signer_key_id=verified.signer_key_id,
        encryption_key_id=own.key_id,
    )
