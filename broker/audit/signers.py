"""Who may sign which audit chain: the signer binding of ``docs/audit-format.md``.

A record verifies only under a key declared for **its own** chain, valid at the record's time,
and only if the chain's writer may record that kind of event. The router records decisions,
an adapter only its own refusals and the web app only compliance searches. A registered
party's key is therefore no licence to write the trail, and a chain cannot be continued under
another chain's key.

The declarations come from the party registry (``audit_chains``) or from the export an outside
auditor receives (``ketenbus audit keys --out audit-keys.json``), a JSON document that needs no
ketenbus code to read::

    {"version": 1,
     "chains": {"router": {"writer": "router", "role": "router",
                           "keys": [{"kid": "router-20261123-9f3a",
                                     "public": "<64 hex digits: raw Ed25519 public key>",
                                     "valid_from": "2026-11-23T00:00:00+00:00",
                                     "valid_until": null}]}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.audit.keys import KeyLoadError
from broker.trust import PartyRegistry, RegistryError, TrustConfigError, load_registry
from schemas.vocab import PartyRole

EXPORT_VERSION = 1

# What each writer may record (event type codes of docs/audit-format.md section 5). Anything
# else on its chain is refused by the verifier, however well signed.
_ROUTER_EVENTS = frozenset(
    {
        "decision-permit",
        "decision-deny",
        "delivery",
        "refusal",
        "consent-change",
        "correction",
        "withdrawal",
        "erasure",
        "escalation-step",
        "reprocess",
    }
)
_EVENTS_BY_ROLE: dict[PartyRole, frozenset[str]] = {
    PartyRole.ROUTER: _ROUTER_EVENTS,
    # the console: its searches, re-processes and sign-ins through identity providers
    PartyRole.CAPACITY_DASHBOARD: frozenset({"compliance-search", "reprocess", "sign-in"}),
}
_ADAPTER_EVENTS = frozenset({"refusal", "erasure"})  # other roles: own refusals and erasures
KEY_ROTATION = "key-rotation"  # any chain: the hand-over to its next key


def allowed_events(role: PartyRole) -> frozenset[str]:
    """The event types a chain written by a party of ``role`` may hold."""
    return _EVENTS_BY_ROLE.get(role, _ADAPTER_EVENTS) | {KEY_ROTATION}


@dataclass(frozen=True)
class SignerKey:
    """One key allowed to sign a chain, in ``[valid_from, valid_until)``."""

    kid: str
    public: Ed25519PublicKey
    valid_from: datetime
    valid_until: datetime | None = None

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    def public_hex(self) -> str:
        return self.public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@dataclass(frozen=True)
class ChainSigners:
    """A declared chain: its writer, the writer's role and its keys in rotation order."""

    chain: str
    writer: str
    role: PartyRole
    keys: tuple[SignerKey, ...]

    def key(self, kid: str) -> SignerKey | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def may_record(self, event_type: str | None) -> bool:
        return event_type in allowed_events(self.role)


Signers = Mapping[str, ChainSigners]


def signers_from_registry(registry: PartyRegistry) -> dict[str, ChainSigners]:
    """The chains the registry declares, with each key's public half and validity."""
    out: dict[str, ChainSigners] = {}
    for decl in registry.audit_chains.values():
        party = registry.get(decl.writer)
        keys = []
        for kid in decl.keys:
            entry = registry.key_entry(decl.writer, kid)
            public = registry.signing_public_key(decl.writer, entry)
            keys.append(SignerKey(kid, public, entry.valid_from, entry.valid_until))
        out[decl.chain] = ChainSigners(decl.chain, decl.writer, party.role, tuple(keys))
    return out


def dump_signers(signers: Signers) -> str:
    """The export an outside auditor verifies with (see the module docstring)."""
    chains = {
        c.chain: {
            "writer": c.writer,
            "role": c.role.value,
            "keys": [
                {
                    "kid": k.kid,
                    "public": k.public_hex(),
                    "valid_from": k.valid_from.isoformat(),
                    "valid_until": k.valid_until.isoformat() if k.valid_until else None,
                }
                for k in c.keys
            ],
        }
        for c in signers.values()
    }
    return json.dumps({"version": EXPORT_VERSION, "chains": chains}, indent=2) + "\n"


def load_signers(path: str | Path) -> dict[str, ChainSigners]:
    """Chain declarations from an export (``.json``) or a party registry (``.yaml``/``.yml``).

    Key files without a chain binding (``<kid>.pem``, a JSON map of key id to key) are refused:
    with them any listed key could sign any chain."""
    p = Path(path)
    if p.suffix in (".yaml", ".yml"):
        try:
            registry = load_registry(p)
        except (RegistryError, TrustConfigError) as exc:
            raise KeyLoadError(f"{p}: {exc}") from exc
        signers = signers_from_registry(registry)
        if not signers:
            raise KeyLoadError(
                f"{p}: the registry declares no audit chains (audit_chains); add them "
                "(docs/audit-format.md, signer binding)"
            )
        return signers
    if p.is_file() and p.suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyLoadError(f"{p}: not JSON ({exc})") from exc
        if isinstance(data, dict) and "chains" in data:
            return _from_export(data, str(p))
    raise KeyLoadError(
        f"{p}: not an audit key export. Keys without a chain binding are not accepted: "
        "export them with 'ketenbus audit keys --registry REGISTRY --out audit-keys.json', "
        "or pass the party registry itself"
    )


def _from_export(data: dict[str, Any], where: str) -> dict[str, ChainSigners]:
    if data.get("version") != EXPORT_VERSION:
        raise KeyLoadError(f"{where}: unsupported export version {data.get('version')!r}")
    chains = data.get("chains")
    if not isinstance(chains, dict) or not chains:
        raise KeyLoadError(f"{where}: 'chains' must be a non-empty object")
    out: dict[str, ChainSigners] = {}
    for chain, spec in chains.items():
        at = f"{where} chain {chain!r}"
        try:
            role = PartyRole(spec["role"])
            keys = tuple(_key(k, at) for k in spec["keys"])
            writer = spec["writer"]
            if not isinstance(writer, str) or not keys:
                raise ValueError("needs a writer and at least one key")
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyLoadError(f"{at}: {exc}") from exc
        out[chain] = ChainSigners(chain, writer, role, keys)
    return out


def _key(spec: dict[str, Any], where: str) -> SignerKey:
    kid = spec["kid"]
    if not isinstance(kid, str) or not kid:
        raise ValueError("a key needs a kid")
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(spec["public"]))
    except ValueError as exc:
        raise ValueError(f"key {kid!r}: 'public' must be 64 hex digits ({exc})") from exc
    valid_from = datetime.fromisoformat(spec["valid_from"])
    until = spec.get("valid_until")
    valid_until = datetime.fromisoformat(until) if until else None
    if valid_from.tzinfo is None or (valid_until is not None and valid_until.tzinfo is None):
        raise ValueError(f"key {kid!r}: validity times must carry a UTC offset")
    return SignerKey(kid, public, valid_from, valid_until)
