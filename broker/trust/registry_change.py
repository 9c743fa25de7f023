"""Registry changes of a party's lifecycle: onboard, rotate, revoke (docs/onboarding.md).

Each change is a pure function from the registry in use to the next one, with the serial raised
by one, so administrators sign exactly one successor and a running component refuses any
registry older than the one it holds (a rollback that would bring a revoked key back).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from broker.trust._encoding import require_aware
from broker.trust.keys import PartyKeys
from broker.trust.registry import AuditChainDecl, KeyEntry, Party, PartyRegistry

REVOCATION_REASONS = ("key-compromise", "superseded", "cessation-of-operation")
"""Why a key was revoked (the RFC 5280 §5.3.1 reason names): shown to operators, never a secret."""


def _next(registry: PartyRegistry) -> PartyRegistry:
    return registry.with_serial(registry.serial + 1)


def _with_chain_key(registry: PartyRegistry, party_id: str, key_id: str) -> PartyRegistry:
    """The party's audit chain may be signed by ``key_id`` too (signer binding,
    docs/audit-format.md); a new party gets a chain named after its first key."""
    decl = registry.audit_chain_of(party_id)
    chain = decl.chain if decl else key_id
    kids = [*(decl.keys if decl else []), key_id]
    return registry.with_audit_chain(AuditChainDecl(chain=chain, writer=party_id, keys=kids))


def onboard(registry: PartyRegistry, party: Party) -> PartyRegistry:
    """``registry`` with the new ``party`` (and its audit chain); ``ValueError`` if it exists
    or one of its key ids is taken."""
    if party.id in registry:
        raise ValueError(f"party {party.id} is already in the registry: rotate its key instead")
    taken = {k.key_id for p in registry for k in p.keys}
    for entry in party.keys:
        if entry.key_id in taken:
            raise ValueError(f"key id {entry.key_id} is already in the registry")
    changed = registry.with_party(party)
    for entry in party.keys:
        changed = _with_chain_key(changed, party.id, entry.key_id)
    return _next(changed)


def key_entry(keys: PartyKeys, valid_from: datetime) -> KeyEntry:
    """The public registry entry of a new key generation, valid from ``valid_from``."""
    public = keys.public()
    return KeyEntry(
        key_id=keys.key_id,
        signing_public=public.signing_public,
        encryption_public=public.encryption_public,
        valid_from=valid_from,
    )


def rotate(
    registry: PartyRegistry, party_id: str, entry: KeyEntry, overlap: timedelta
) -> tuple[PartyRegistry, list[str]]:
    """Add ``entry`` to ``party_id``; its older keys still valid at ``entry.valid_from +
    overlap`` end there (the rotation rule of docs/trust.md §1.2: both keys are valid during the
    overlap, then only the new one). Returns the next registry and what changed, for the log."""
    if overlap < timedelta(0):
        raise ValueError("the overlap must not be negative")
    party = registry.get(party_id)
    if any(entry.key_id == k.key_id for p in registry for k in p.keys):
        raise ValueError(f"key id {entry.key_id} is already in the registry")
    retire_at = entry.valid_from + overlap
    keys: list[KeyEntry] = []
    notes: list[str] = []
    for old in party.keys:
        ends_later = old.valid_until is None or old.valid_until > retire_at
        if old.instance is None and ends_later and old.valid_from < retire_at:
            old = old.model_copy(update={"valid_until": retire_at})
            notes.append(f"key {old.key_id} now ends at {retire_at.isoformat()}")
        keys.append(old)
    keys.append(entry)
    rotated = Party.model_validate({**party.model_dump(), "keys": keys})
    changed = _with_chain_key(registry.with_party(rotated), party_id, entry.key_id)
    return _next(changed), notes


def revoke(
    registry: PartyRegistry,
    party_id: str,
    key_id: str,
    at: datetime,
    reason: str = "key-compromise",
) -> PartyRegistry:
    """Mark ``key_id`` of ``party_id`` revoked from ``at``: every reader holding this registry
    refuses a message signed with it (``key-revoked``), whatever time the message claims, and no
    sender encrypts to it any more."""
    if reason not in REVOCATION_REASONS:
        raise ValueError(f"reason must be one of {', '.join(REVOCATION_REASONS)}")
    party = registry.get(party_id)
    entry = party.key(key_id)
    if entry is None:
        raise ValueError(f"party {party_id} has no key {key_id}")
    if entry.revoked is not None:
        raise ValueError(f"key {key_id} was already revoked at {entry.revoked.isoformat()}")
    revoked = entry.model_copy(
        update={"revoked": require_aware(at, "at"), "revocation_reason": reason}
    )
    keys = [revoked if k.key_id == key_id else k for k in party.keys]
    return _next(registry.with_party(party.model_copy(update={"keys": keys})))
