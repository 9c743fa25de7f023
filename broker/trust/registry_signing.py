"""The signed party registry: administrators sign it, every component verifies it before use.

The registry says who may send what under which key, so whoever can change it can speak in any
party's name. It is therefore signed by the registry's **administrators** (Ed25519), and a
component loads it only when at least ``threshold`` of the administrators *pinned in its own
configuration* (the trust anchor, a file beside the settings, never inside the document it
vouches for) signed exactly what it reads. A serial number, raised by every change, lets a
running component refuse an older registry (a rollback that would bring a revoked key back).

What is signed (a second implementation can reproduce it from this alone)::

    tree   = the YAML document with every scalar read as text (registry.read_registry_tree),
             without its top-level ``signatures``
    signed = "ketenbus-registry-v1" (ASCII, 20 bytes) || 0x0a
             || JSON(tree) with sorted keys, separators "," and ":", UTF-8, no ASCII escaping
    signature = base64(Ed25519-Sign(administrator's key, signed))

Comments and layout are not signed; every value is. Anchor file (``registry-anchor.yaml``)::

    format: ketenbus-registry-anchor/v1
    threshold: 2                  # signatures needed (1 <= threshold <= administrators)
    administrators:
      - id: admin-a               # 2-64 of [a-z0-9-]
        signing_public: <base64 of the 32-byte Ed25519 public key>
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.trust._encoding import b64decode_strict, b64encode, utc_now
from broker.trust._files import (
    ensure_private_dir,
    read_private_file,
    write_file_atomic,
    write_private_file,
)
from broker.trust.errors import KeyFileError, RegistrySignatureError, TrustConfigError
from broker.trust.keys import check_party_id
from broker.trust.registry import (
    PartyRegistry,
    parse_registry_document,
    read_registry_text,
    read_registry_tree,
    registry_yaml,
)

SIGNED_LABEL = b"ketenbus-registry-v1\n"
ANCHOR_FORMAT = "ketenbus-registry-anchor/v1"
ADMIN_KEY_FORMAT = "ketenbus-registry-admin/v1"
ADMIN_KEY_SUFFIX = ".admin.json"


def _public_b64(key: Ed25519PublicKey) -> str:
    return b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


@dataclass(frozen=True)
class AdminKey:
    """An administrator's private signing key (file mode 0600, never committed)."""

    admin_id: str
    signing: Ed25519PrivateKey
    created: datetime

    @property
    def public(self) -> str:
        return _public_b64(self.signing.public_key())


def generate_admin_key(admin_id: str) -> AdminKey:
    check_party_id(admin_id)
    return AdminKey(admin_id, Ed25519PrivateKey.generate(), utc_now())


def write_admin_key(key: AdminKey, directory: Path) -> Path:
    """``<directory>/<admin_id>.admin.json`` with mode 0600 in a 0700 directory (never replaced)."""
    directory = Path(directory)
    ensure_private_dir(directory)
    seed = key.signing.private_bytes_raw()
    document = {
        "format": ADMIN_KEY_FORMAT,
        "admin_id": key.admin_id,
        "created": key.created.isoformat(),
        "signing_private": b64encode(seed),
        "signing_public": key.public,
    }
    path = directory / f"{key.admin_id}{ADMIN_KEY_SUFFIX}"
    write_private_file(path, json.dumps(document, indent=2).encode("utf-8"))
    return path


def load_admin_key(path: Path) -> AdminKey:
    """An administrator key file; refused when others can read it or its halves disagree."""
    try:
        data = json.loads(read_private_file(Path(path)))
        if data.get("format") != ADMIN_KEY_FORMAT:
            raise ValueError(f"format is not {ADMIN_KEY_FORMAT}")
        signing = Ed25519PrivateKey.from_private_bytes(
            b64decode_strict(data["signing_private"], 32)
        )
        if _public_b64(signing.public_key()) != data["signing_public"]:
            raise ValueError("signing_public does not belong to signing_private")
        admin_id = check_party_id(data["admin_id"])
        created = datetime.fromisoformat(data["created"])
    except KeyFileError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an administrator key file ({exc})") from None
    return AdminKey(admin_id, signing, created)


@dataclass(frozen=True)
class RegistryAnchor:
    """The administrators a component trusts to change the registry, and how many must sign."""

    administrators: dict[str, str]  # admin id -> base64 raw Ed25519 public key
    threshold: int = 1
    source: str = "<anchor>"

    def __post_init__(self) -> None:
        if not self.administrators:
            raise TrustConfigError(f"{self.source}: the anchor names no administrator")
        if not 1 <= self.threshold <= len(self.administrators):
            raise TrustConfigError(
                f"{self.source}: threshold {self.threshold} must be between 1 and the number of "
                f"administrators ({len(self.administrators)})"
            )
        for admin_id, public in self.administrators.items():
            try:
                check_party_id(admin_id)
                b64decode_strict(public, 32)
            except ValueError as exc:
                problem = f"{self.source}: administrator {admin_id!r}: {exc}"
                raise TrustConfigError(problem) from None
        if len(set(self.administrators.values())) != len(self.administrators):
            raise TrustConfigError(f"{self.source}: two administrators share one key")

    def with_admin(self, admin_id: str, public: str) -> RegistryAnchor:
        return RegistryAnchor({**self.administrators, admin_id: public}, self.threshold)


def anchor_yaml(anchor: RegistryAnchor) -> str:
    document = {
        "format": ANCHOR_FORMAT,
        "threshold": anchor.threshold,
        "administrators": [
            {"id": a, "signing_public": k} for a, k in anchor.administrators.items()
        ],
    }
    head = "# ketenbus registry trust anchor: the administrators' public keys (docs/trust.md)\n"
    return head + yaml.safe_dump(document, sort_keys=False)


def write_anchor(anchor: RegistryAnchor, path: Path) -> None:
    write_file_atomic(Path(path), anchor_yaml(anchor).encode("utf-8"))


def load_anchor(path: Path) -> RegistryAnchor:
    """The trust anchor file; ``TrustConfigError`` naming the file when it is missing or wrong."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrustConfigError(
            f"no registry trust anchor at {path}: a component loads only a registry signed by "
            "the administrators pinned there (set KETENBUS_REGISTRY_ANCHOR_FILE)"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TrustConfigError(f"{path}: cannot read the trust anchor ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != ANCHOR_FORMAT:
        raise TrustConfigError(f"{path}: not a trust anchor (format {ANCHOR_FORMAT})")
    admins = data.get("administrators")
    threshold = data.get("threshold", 1)
    if not isinstance(admins, list) or not isinstance(threshold, int):
        raise TrustConfigError(f"{path}: administrators must be a list, threshold a number")
    pinned: dict[str, str] = {}
    for item in admins:
        if not isinstance(item, dict) or set(item) != {"id", "signing_public"}:
            raise TrustConfigError(f"{path}: each administrator has exactly id and signing_public")
        if str(item["id"]) in pinned:
            raise TrustConfigError(f"{path}: administrator {item['id']!r} is listed twice")
        pinned[str(item["id"])] = str(item["signing_public"])
    return RegistryAnchor(pinned, threshold, str(path))


def signed_bytes(tree: Any) -> bytes:
    """The bytes administrators sign: the text tree without its signatures (module docstring)."""
    if not isinstance(tree, dict):
        raise RegistrySignatureError("the registry is not a mapping")
    body = {k: v for k, v in tree.items() if k != "signatures"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return SIGNED_LABEL + text.encode("utf-8")


def _signatures_yaml(signatures: Sequence[tuple[str, str]]) -> str:
    items = [{"admin": a, "signature": s} for a, s in signatures]
    return yaml.safe_dump({"signatures": items}, sort_keys=False)


def sign_registry(registry: PartyRegistry, keys: Iterable[AdminKey]) -> str:
    """The registry as YAML with a signature of each of ``keys`` appended."""
    text = registry_yaml(registry)
    return add_signatures(text, keys)


def add_signatures(text: str, keys: Iterable[AdminKey], file: str = "<registry>") -> str:
    """``text`` (registry YAML, signed or not) with the signatures of ``keys`` added (an
    administrator who already signed is signed again, replacing the old one)."""
    tree = read_registry_tree(text, file)
    message = signed_bytes(tree)
    existing: dict[str, str] = {}
    raw = tree.get("signatures") if isinstance(tree, dict) else None
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("admin"), str):
            existing[item["admin"]] = str(item.get("signature"))
    for key in keys:
        existing[key.admin_id] = b64encode(key.signing.sign(message))
    body = registry_yaml(parse_registry_document(text, file)[0])
    if read_registry_tree(body, file) != {k: v for k, v in tree.items() if k != "signatures"}:
        raise RegistrySignatureError(f"{file}: the registry does not round-trip; rewrite it first")
    return body + _signatures_yaml(sorted(existing.items()))


@dataclass(frozen=True)
class SignatureCheck:
    """Who signed validly, and why any other signature did not count."""

    valid: tuple[str, ...]
    problems: tuple[str, ...]


def check_signatures(text: str, anchor: RegistryAnchor, file: str = "<registry>") -> SignatureCheck:
    """Check every signature of registry ``text`` against the pinned administrators."""
    tree = read_registry_tree(text, file)
    message = signed_bytes(tree)
    valid: list[str] = []
    problems: list[str] = []
    raw = tree.get("signatures") if isinstance(tree, dict) else None
    for item in raw if isinstance(raw, list) else []:
        admin = item.get("admin") if isinstance(item, dict) else None
        signature = item.get("signature") if isinstance(item, dict) else None
        if not isinstance(admin, str) or not isinstance(signature, str):
            problems.append("a signature entry without admin and signature")
            continue
        pinned = anchor.administrators.get(admin)
        if pinned is None:
            problems.append(
                f"signed by {admin!r}, which is not an administrator pinned in {anchor.source}"
            )
            continue
        if admin in valid:
            problems.append(f"administrator {admin!r} signed twice (counted once)")
            continue
        try:
            public = Ed25519PublicKey.from_public_bytes(b64decode_strict(pinned, 32))
            public.verify(b64decode_strict(signature, 64), message)
        except (ValueError, InvalidSignature):
            problems.append(
                f"the signature of {admin!r} does not verify under its pinned key: the registry "
                "was changed after signing, or signed with another key"
            )
            continue
        valid.append(admin)
    return SignatureCheck(tuple(valid), tuple(problems))


def verify_registry(
    text: str, anchor: RegistryAnchor, file: str = "<registry>", *, min_serial: int = 0
) -> PartyRegistry:
    """The registry in ``text`` if at least ``anchor.threshold`` pinned administrators signed it
    (and its serial is at least ``min_serial``); ``RegistrySignatureError`` otherwise."""
    registry, document = parse_registry_document(text, file)
    check = check_signatures(text, anchor, file)
    if not document.signatures:
        raise RegistrySignatureError(
            f"{file}: the registry is unsigned; it needs the signatures of {anchor.threshold} "
            f"administrator(s) pinned in {anchor.source} (ketenbus party sign)"
        )
    if len(check.valid) < anchor.threshold:
        why = "; ".join(check.problems) or "more administrators must sign (ketenbus party sign)"
        raise RegistrySignatureError(
            f"{file}: {len(check.valid)} valid administrator signature(s), {anchor.threshold} "
            f"needed: {why}"
        )
    if registry.serial < min_serial:
        raise RegistrySignatureError(
            f"{file}: serial {registry.serial} is older than the registry in use "
            f"({min_serial}): refused as a rollback"
        )
    return registry


def load_signed_registry(
    path: Path, anchor: RegistryAnchor | Path, *, min_serial: int = 0
) -> PartyRegistry:
    """Read and verify a registry file against the anchor (or the anchor file at that path)."""
    if not isinstance(anchor, RegistryAnchor):
        anchor = load_anchor(anchor)
    return verify_registry(read_registry_text(path), anchor, str(path), min_serial=min_serial)


def write_signed_registry(
    registry: PartyRegistry, keys: Sequence[AdminKey], path: Path
) -> None:
    """Sign ``registry`` with ``keys`` and replace ``path`` atomically."""
    write_file_atomic(Path(path), sign_registry(registry, keys).encode("utf-8"))
