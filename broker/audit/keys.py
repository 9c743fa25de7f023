"""Load the Ed25519 public keys that audit records name by ``kid``.

Accepted forms:

* a directory: every ``*.pem`` in it (SubjectPublicKeyInfo PEM), the key id is the file name
  without ``.pem``;
* one ``.pem`` file: one key, the key id is the file name without ``.pem``;
* one ``.json`` file: ``{"<kid>": "<PEM text or 64 hex digits of the raw public key>", ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key


class KeyLoadError(ValueError):
    """A key file that cannot be used; the message names the file (and key id)."""


def _from_pem(data: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(data)
    except ValueError as exc:
        raise KeyLoadError(f"{where}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyLoadError(f"{where}: not an Ed25519 public key ({type(key).__name__})")
    return key


def load_public_keys(path: str | Path) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key, from a directory, a PEM file or a JSON file (see module doc)."""
    p = Path(path)
    if p.is_dir():
        keys = {f.stem: _from_pem(f.read_bytes(), str(f)) for f in sorted(p.glob("*.pem"))}
        if not keys:
            raise KeyLoadError(f"{p}: no *.pem public keys in this directory")
        return keys
    if not p.is_file():
        raise KeyLoadError(f"{p}: no such file or directory")
    if p.suffix in (".yaml", ".yml"):
        return _from_registry(p)
    if p.suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise KeyLoadError(f"{p}: not JSON ({exc})") from exc
        if not isinstance(data, dict) or not data:
            raise KeyLoadError(f"{p}: expected an object of key id -> key")
        keys = {}
        for kid, text in data.items():
            where = f"{p} key {kid!r}"
            if not isinstance(text, str):
                raise KeyLoadError(f"{where}: expected a string")
            if "BEGIN PUBLIC KEY" in text:
                keys[kid] = _from_pem(text.encode(), where)
            else:
                try:
                    keys[kid] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
                except ValueError as exc:
                    raise KeyLoadError(f"{where}: not PEM nor 64 hex digits ({exc})") from exc
        return keys
    return {p.stem: _from_pem(p.read_bytes(), str(p))}


def _from_registry(path: Path) -> dict[str, Ed25519PublicKey]:
    """Every signing key in a party registry (the public file every party already has)."""
    from broker.trust import TrustConfigError, load_registry

    try:
        registry = load_registry(path)
    except TrustConfigError as exc:
        raise KeyLoadError(f"{path}: {exc}") from exc
    return {
        entry.key_id: registry.signing_public_key(party.id, entry)
        for party in registry.parties
        for entry in party.keys
    }
