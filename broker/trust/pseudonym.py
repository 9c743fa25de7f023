"""Per-domain person pseudonyms, BSNk-style in spirit (keyed, one-way, unlinkable across domains).

A pseudonym is ``p-`` followed by 26 lowercase base32 characters (128 bits)::

    K_d = HKDF-SHA256(ikm=secret, salt="ketenbus-pseudonym-v1", info="domain:" || domain, L=32)
    pseudonym(d, bsn) = "p-" || lower(base32(HMAC-SHA256(K_d, "bsn:" || bsn9)[:16])) without "="

``bsn9`` is the BSN as 9 ASCII digits (an 8-digit BSN gets a leading zero). Each domain (a party
id, ``router``, ...) gets its own key, so two parties cannot link their pseudonyms of the same
person, and nobody without ``K_d`` can compute or reverse them. This is *not* BSNk polymorphic
pseudonymisation: whoever holds the secret can compute every domain's pseudonym (and, given a
candidate BSN, test it), so the secret lives only where re-identification is allowed. A
component that needs only some domains can be given ``restricted(domains)`` or the derived
``domain_key``\\s, never the secret.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.trust._encoding import b64decode_strict, b64encode
from broker.trust._files import ensure_private_dir, read_private_file, write_private_file
from broker.trust.errors import KeyFileError

PSEUDONYM_PREFIX = "p-"
PSEUDONYM_SALT = b"ketenbus-pseudonym-v1"
SECRET_BYTES = 32
PSEUDONYM_RE = re.compile(r"^p-[a-z2-7]{26}\Z")
DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,127}\Z")
_BSN_RE = re.compile(r"^[0-9]{8,9}\Z")
# Pseudonyms remembered per Pseudonymiser (the router asks for the same person in 3-4 domains
# per message, and again for each later message about that person).
DEFAULT_CACHE_SIZE = 65_536
_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, in lower case
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)  # 10 bits -> two characters


def is_valid_bsn(bsn: str) -> bool:
    """Whether ``bsn`` is 8 or 9 digits passing the BSN eleven test (elfproef)."""
    if type(bsn) is not str:
        return _BSN_RE.match(bsn) is not None and _elfproef(bsn.zfill(9))  # raises as before
    if not (8 <= len(bsn) <= 9 and bsn.isascii() and bsn.isdigit()):  # i.e. _BSN_RE
        return False
    return _elfproef(bsn if len(bsn) == 9 else "0" + bsn)


def _elfproef(bsn9: str) -> bool:
    """9*d1 + 8*d2 + ... + 2*d8 - d9 divisible by 11, and not all zeros (9 ASCII digits)."""
    d = bsn9.encode("ascii")
    total = 9 * d[0] + 8 * d[1] + 7 * d[2] + 6 * d[3] + 5 * d[4] + 4 * d[5] + 3 * d[6]
    total += 2 * d[7] - d[8] - 2064  # 2064 = 48 * (9 + 8 + ... + 2 - 1): the "0" offsets
    return total % 11 == 0 and bsn9 != "000000000"


def normalise_bsn(bsn: str, *, check_digit: bool = True) -> str:
    """The BSN as 9 digits. ``ValueError`` (which never repeats the input) when it is not 8-9
    digits or, with ``check_digit``, fails the eleven test."""
    if not isinstance(bsn, str):
        raise TypeError("a BSN must be given as a str")
    text = bsn.strip()
    if not (8 <= len(text) <= 9 and text.isascii() and text.isdigit()):  # i.e. _BSN_RE
        raise ValueError("not a BSN: expected 8 or 9 digits")
    if check_digit and not is_valid_bsn(text):
        raise ValueError("not a BSN: fails the eleven test (elfproef)")
    return text.zfill(9)


def _check_domain(domain: str) -> str:
    if not isinstance(domain, str) or not DOMAIN_RE.match(domain):
        raise ValueError(
            f"pseudonym domain {domain!r} must be 1-128 of [a-z0-9._:-], starting with a "
            "letter or digit"
        )
    return domain


def derive_domain_key(secret: bytes, domain: str) -> bytes:
    """``K_d``: HKDF-SHA256(ikm=secret, salt=PSEUDONYM_SALT, info=b"domain:" + domain, L=32)."""
    info = b"domain:" + _check_domain(domain).encode("ascii")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=PSEUDONYM_SALT, info=info).derive(secret)


def _pseudonym_from_key(domain_key: bytes, bsn9: str) -> str:
    """``p-`` + lower(base32(HMAC-SHA256(K_d, "bsn:" + bsn9)[:16])) without padding."""
    return _pseudonym_from_pads(_hmac_pads(domain_key), bsn9)


_Pads = tuple[Any, Any]  # hashlib sha256 objects


def _hmac_pads(key: bytes) -> _Pads:
    """SHA-256 states after the HMAC inner and outer key blocks (RFC 2104), computed once per
    domain key: an HMAC is then two state copies and two short hashes."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    return (
        hashlib.sha256(block.translate(_IPAD)),
        hashlib.sha256(block.translate(_OPAD)),
    )


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _pseudonym_from_pads(pads: _Pads, bsn9: str) -> str:
    """The pseudonym from the precomputed HMAC states; base32 by table: 16 bytes are 128
    bits, which base32 writes as 26 characters (5 bits each, after two zero bits of padding),
    i.e. 13 pairs of characters for the 13 groups of 10 bits of ``n << 2``."""
    inner = pads[0].copy()
    inner.update(b"bsn:" + bsn9.encode("ascii"))
    outer = pads[1].copy()
    outer.update(inner.digest())
    n = int.from_bytes(outer.digest()[:16], "big") << 2
    p = _B32_PAIRS
    return "".join(
        (
            PSEUDONYM_PREFIX,
            p[n >> 120],
            p[n >> 110 & 0x3FF],
            p[n >> 100 & 0x3FF],
            p[n >> 90 & 0x3FF],
            p[n >> 80 & 0x3FF],
            p[n >> 70 & 0x3FF],
            p[n >> 60 & 0x3FF],
            p[n >> 50 & 0x3FF],
            p[n >> 40 & 0x3FF],
            p[n >> 30 & 0x3FF],
            p[n >> 20 & 0x3FF],
            p[n >> 10 & 0x3FF],
            p[n & 0x3FF],
        )
    )


class Pseudonymiser:
    """Computes per-domain pseudonyms of BSNs from one secret (or from given domain keys)."""

    def __init__(
        self, secret: bytes, *, check_digit: bool = True, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        if not isinstance(secret, bytes | bytearray) or len(secret) < SECRET_BYTES:
            raise ValueError(f"the pseudonym secret must be at least {SECRET_BYTES} bytes")
        self._secret: bytes | None = bytes(secret)
        self._keys: dict[str, bytes] = {}
        self._check_digit = check_digit
        self._init_cache(cache_size)

    def _init_cache(self, size: int) -> None:
        # A bounded LRU cache of (domain, BSN) -> pseudonym. It holds BSNs in clear, in this
        # process's memory only: never log, persist, pickle or expose it (cache_info() shows
        # counts only). Errors are not cached; a bad BSN is refused again each time.
        self._cache_size = size
        self._cached: Callable[[str, str], str] = functools.lru_cache(maxsize=size)(self._compute)
        # The HMAC states of K_d per domain (a ValueError for a domain without a key is not
        # cached: it is raised again each time).
        self._pads_for: Callable[[str], _Pads] = functools.cache(self._make_pads)

    @classmethod
    def from_domain_keys(
        cls,
        keys: Mapping[str, bytes],
        *,
        check_digit: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Pseudonymiser:
        """A pseudonymiser that knows only these domains' keys (``ValueError`` for others)."""
        self = cls.__new__(cls)
        self._secret = None
        self._check_digit = check_digit
        self._keys = {}
        self._init_cache(cache_size)
        for domain, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"domain key for {domain!r} must be 32 bytes")
            self._keys[_check_domain(domain)] = bytes(key)
        return self

    def restricted(self, domains: Iterable[str]) -> Pseudonymiser:
        """A pseudonymiser for ``domains`` only, holding their derived keys, not the secret."""
        return Pseudonymiser.from_domain_keys(
            {d: self.domain_key(d) for d in domains},
            check_digit=self._check_digit,
            cache_size=self._cache_size,
        )

    def domain_key(self, domain: str) -> bytes:
        """``K_d`` for ``domain`` (to hand to a component that may pseudonymise only there)."""
        key = self._keys.get(domain)
        if key is None:
            if self._secret is None:
                raise ValueError(f"this pseudonymiser has no key for domain {domain!r}")
            key = derive_domain_key(self._secret, domain)
            self._keys[domain] = key
        return key

    @property
    def domains(self) -> tuple[str, ...] | None:
        """The domains a restricted pseudonymiser serves; ``None`` when it holds the secret."""
        return None if self._secret is not None else tuple(self._keys)

    def pseudonym(self, domain: str, bsn: str) -> str:
        """The pseudonym of ``bsn`` in ``domain``: ``p-`` + 26 chars of ``[a-z2-7]``."""
        if type(domain) is str and type(bsn) is str:
            return self._cached(domain, bsn)
        return self._compute(domain, bsn)  # uncached: whatever it raises, it raises as before

    def _compute(self, domain: str, bsn: str) -> str:
        pads = self._pads_for(domain)
        return _pseudonym_from_pads(pads, normalise_bsn(bsn, check_digit=self._check_digit))

    def _make_pads(self, domain: str) -> _Pads:
        """The HMAC states of ``K_d`` (``ValueError`` for a domain without a key, as before)."""
        return _hmac_pads(self.domain_key(domain))

    def translate(self, bsn: str, domains: Iterable[str]) -> dict[str, str]:
        """``{domain: pseudonym}`` of one BSN, e.g. for a compliance officer searching the audit
        log of several domains. Never log the BSN that goes in."""
        bsn9 = normalise_bsn(bsn, check_digit=self._check_digit)
        return {d: _pseudonym_from_pads(self._pads_for(d), bsn9) for d in domains}

    def __repr__(self) -> str:
        held = "secret" if self._secret is not None else f"domains={sorted(self._keys)}"
        return f"Pseudonymiser(<{held}>)"


def is_pseudonym(text: str) -> bool:
    """Whether ``text`` has the pseudonym shape ``p-`` + 26 of ``[a-z2-7]``."""
    return bool(PSEUDONYM_RE.match(text))


def generate_secret() -> bytes:
    """A fresh random 32-byte pseudonym secret."""
    return secrets.token_bytes(SECRET_BYTES)


def load_or_create_secret(path: Path) -> bytes:
    """The pseudonym secret in ``path`` (base64 text, mode 0600), created there at first use
    (a missing parent directory is created with mode 0700).

    Creation is atomic and never overwrites, so concurrent first starts agree on one secret. A
    file that exists but cannot be read or parsed is an error, never silently replaced: a new
    secret would change every pseudonym.
    """
    path = Path(path)
    if not path.exists():
        ensure_private_dir(path.parent, strict=False)
        try:
            write_private_file(path, (b64encode(generate_secret()) + "\n").encode("ascii"))
        except KeyFileError:
            if not path.exists():  # a real write problem, not a concurrent creation
                raise
    raw = read_private_file(path)
    try:
        secret = b64decode_strict(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{path}: not a base64 pseudonym secret") from None
    if len(secret) < SECRET_BYTES:
        raise KeyFileError(f"{path}: the pseudonym secret must be at least {SECRET_BYTES} bytes")
    return secret
