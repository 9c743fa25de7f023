"""A party's own key pairs: generation, the private key file, and the keyring used for rotation.

Each key generation (one ``key_id``) is a pair of raw 32-byte keys: Ed25519 for signing what the
party sends, X25519 for decrypting what is sent to it. The public halves go into the party
registry (``broker.trust.registry``); the private halves stay in one file per key id, mode 0600,
in a directory of mode 0700, and are never printed or logged.

Key file format (JSON, UTF-8; documented in ``docs/trust.md``)::

    {"format": "ketenbus-party-keys/v1", "party_id": "...", "key_id": "...",
     "created": "2026-11-23T15:48:00Z",
     "signing_private": "<base64 of the 32-byte Ed25519 private key (seed)>",
     "encryption_private": "<base64 of the 32-byte X25519 private key>",
     "signing_public": "<base64, 32 bytes>", "encryption_public": "<base64, 32 bytes>"}
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.trust._encoding import (
    KEY_ID_RE,
    PARTY_ID_RE,
    b64decode_strict,
    b64encode,
    require_aware,
    utc_now,
)
from broker.trust._files import ensure_private_dir, read_private_file, write_private_file
from broker.trust.errors import KeyFileError, Reason, TrustError

if TYPE_CHECKING:
    from broker.trust.registry import PartyRegistry

KEY_FILE_FORMAT = "ketenbus-party-keys/v1"
KEY_FILE_SUFFIX = ".key.json"


def check_party_id(party_id: str) -> str:
    """``party_id`` if it is a valid party id, else ``ValueError``."""
    if not PARTY_ID_RE.match(party_id):
        raise ValueError(
            f"party id {party_id!r} must be 2-64 lowercase letters, digits or inner hyphens"
        )
    return party_id


def check_key_id(key_id: str) -> str:
    """``key_id`` if it is a valid key id, else ``ValueError``."""
    if not KEY_ID_RE.match(key_id):
        raise ValueError(
            f"key id {key_id!r} must be 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return key_id


@dataclass(frozen=True)
class PublicKeys:
    """The public half of a ``PartyKeys``: raw 32-byte keys in standard base64."""

    party_id: str
    key_id: str
    signing_public: str
    encryption_public: str

    def signing_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(b64decode_strict(self.signing_public, 32))

    def encryption_key(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(b64decode_strict(self.encryption_public, 32))


@dataclass(frozen=True, eq=False)
class PartyKeys:
    """One key generation of a party: an Ed25519 signing key and an X25519 encryption key.

    ``repr`` never shows key material. Equality is identity; compare ``public()`` instead.
    """

    party_id: str
    key_id: str
    signing: Ed25519PrivateKey = field(repr=False)
    encryption: X25519PrivateKey = field(repr=False)
    created: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        check_party_id(self.party_id)
        check_key_id(self.key_id)
        object.__setattr__(self, "created", require_aware(self.created, "created"))

    @cached_property
    def signing_public_raw(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self.signing.public_key().public_bytes_raw()

    @cached_property
    def encryption_public_raw(self) -> bytes:
        """The raw 32-byte X25519 public key."""
        return self.encryption.public_key().public_bytes_raw()

    def public(self) -> PublicKeys:
        """The public keys, as they go into the registry."""
        return PublicKeys(
            party_id=self.party_id,
            key_id=self.key_id,
            signing_public=b64encode(self.signing_public_raw),
            encryption_public=b64encode(self.encryption_public_raw),
        )


def default_key_id(party_id: str, now: datetime | None = None) -> str:
    """``<party>-<yyyymmdd>-<4 random hex digits>``, e.g. ``zvh-utrecht-20261123-9f3a``."""
    day = require_aware(now or utc_now(), "now").strftime("%Y%m%d")
    return f"{party_id}-{day}-{secrets.token_hex(2)}"


def generate_party_keys(
    party_id: str, key_id: str | None = None, *, now: datetime | None = None
) -> PartyKeys:
    """A fresh key generation for ``party_id`` (``key_id`` defaults to ``default_key_id``)."""
    check_party_id(party_id)
    created = require_aware(now or utc_now(), "now").replace(microsecond=0)
    return PartyKeys(
        party_id=party_id,
        key_id=key_id if key_id is not None else default_key_id(party_id, created),
        signing=Ed25519PrivateKey.generate(),
        encryption=X25519PrivateKey.generate(),
        created=created,
    )


def key_file_name(key_id: str) -> str:
    return check_key_id(key_id) + KEY_FILE_SUFFIX


def _key_file_bytes(keys: PartyKeys) -> bytes:
    public = keys.public()
    document = {
        "format": KEY_FILE_FORMAT,
        "party_id": keys.party_id,
        "key_id": keys.key_id,
        "created": keys.created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "signing_private": b64encode(keys.signing.private_bytes_raw()),
        "encryption_private": b64encode(keys.encryption.private_bytes_raw()),
        "signing_public": public.signing_public,
        "encryption_public": public.encryption_public,
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def write_party_keys(keys: PartyKeys, directory: Path) -> Path:
    """Write ``<directory>/<key_id>.key.json`` (mode 0600; ``directory`` 0700, created if needed).

    Never overwrites: an existing file for the key id raises ``KeyFileError``, as does a
    directory that group or others can access.
    """
    directory = Path(directory)
    ensure_private_dir(directory)
    path = directory / key_file_name(keys.key_id)
    write_private_file(path, _key_file_bytes(keys))
    return path


def _field(document: dict[str, Any], name: str, path: Path) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise KeyFileError(f"{path}: field {name!r} is missing or not a string")
    return value


def load_party_keys(path: Path) -> PartyKeys:
    """Load a key file written by ``write_party_keys``; refuses files group/others can read."""
    path = Path(path)
    raw = read_private_file(path)
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyFileError(f"{path}: not a JSON key file") from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"{path}: not a {KEY_FILE_FORMAT} key file")
    try:
        signing = Ed25519PrivateKey.from_private_bytes(
            b64decode_strict(_field(document, "signing_private", path), 32)
        )
        encryption = X25519PrivateKey.from_private_bytes(
            b64decode_strict(_field(document, "encryption_private", path), 32)
        )
        created_text = _field(document, "created", path)
        created = require_aware(datetime.fromisoformat(created_text), "created")
        keys = PartyKeys(
            party_id=_field(document, "party_id", path),
            key_id=_field(document, "key_id", path),
            signing=signing,
            encryption=encryption,
            created=created,
        )
    except ValueError as exc:  # bad base64, bad id, bad time; never echo key material
        raise KeyFileError(f"{path}: {exc}") from None
    public = keys.public()
    for name in ("signing_public", "encryption_public"):
        stored = document.get(name)
        if stored is not None and stored != getattr(public, name):
            raise KeyFileError(f"{path}: {name} does not match the private key")
    return keys


class Keyring:
    """A party's own key generations by key id, for decrypting whatever key a sender used.

    ``current`` is the newest generation (by ``created``, then key id). To pick the key to *sign*
    with, prefer ``for_signing(registry, at)``: the newest key whose registry entry is valid then.
    """

    def __init__(self, keys: Iterable[PartyKeys]) -> None:
        by_id: dict[str, PartyKeys] = {}
        for item in keys:
            if item.key_id in by_id:
                raise ValueError(f"key id {item.key_id!r} appears twice in the keyring")
            by_id[item.key_id] = item
        if not by_id:
            raise ValueError("a keyring needs at least one key")
        parties = {k.party_id for k in by_id.values()}
        if len(parties) != 1:
            raise ValueError(f"a keyring holds one party's keys, got {sorted(parties)}")
        self._keys = by_id
        self._newest_first = sorted(
            by_id.values(), key=lambda k: (k.created, k.key_id), reverse=True
        )
        self.party_id: str = parties.pop()

    @classmethod
    def load(cls, directory: Path, party_id: str | None = None) -> Keyring:
        """Every ``*.key.json`` in ``directory`` (of ``party_id``, when given)."""
        directory = Path(directory)
        files = sorted(directory.glob("*" + KEY_FILE_SUFFIX))
        loaded = [load_party_keys(f) for f in files]
        if party_id is not None:
            loaded = [k for k in loaded if k.party_id == party_id]
        if not loaded:
            who = f" for party {party_id!r}" if party_id else ""
            raise KeyFileError(f"no key files{who} in {directory}")
        try:
            return cls(loaded)
        except ValueError as exc:
            raise KeyFileError(f"{directory}: {exc}") from None

    @property
    def current(self) -> PartyKeys:
        """The newest key generation."""
        return self._newest_first[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Key ids, newest first."""
        return tuple(k.key_id for k in self._newest_first)

    def signing_keys(self) -> dict[str, Ed25519PrivateKey]:
        """Key id -> Ed25519 private key of every generation here (an audit chain last signed
        by an older key is handed over with it: broker.audit.chain.resume_chain)."""
        return {kid: keys.signing for kid, keys in self._keys.items()}

    def get(self, key_id: str) -> PartyKeys:
        """The key generation ``key_id``; ``TrustError`` ``unknown-key`` when absent."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise TrustError(
                Reason.UNKNOWN_KEY,
                f"key id {key_id!r} is not in the keyring of party {self.party_id!r}",
            ) from None

    def for_signing(self, registry: PartyRegistry, at: datetime) -> PartyKeys:
        """The newest own key that the registry lists, with matching public keys, as valid at
        ``at``; ``TrustError`` ``no-valid-key`` when there is none."""
        at = require_aware(at, "at")
        party = registry.get(self.party_id)
        entries = {e.key_id: e for e in party.keys}
        for keys in self._newest_first:
            entry = entries.get(keys.key_id)
            if entry is None or not entry.valid_at(at):
                continue
            public = keys.public()
            if (entry.signing_public, entry.encryption_public) != (
                public.signing_public,
                public.encryption_public,
            ):
                raise TrustError(
                    Reason.UNKNOWN_KEY,
                    f"registry keys for {keys.key_id!r} do not match the private key file",
                )
            return keys
        raise TrustError(
            Reason.NO_VALID_KEY,
            f"party {self.party_id!r} holds no key that the registry lists as valid at "
            f"{at.isoformat()}",
        )

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[PartyKeys]:
        return iter(self._newest_first)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring(party_id={self.party_id!r}, key_ids={self.key_ids!r})"
