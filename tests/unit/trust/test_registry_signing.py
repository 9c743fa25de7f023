"""The signed registry (issue 21, docs/trust.md §2.1-2.2): a component loads only a registry that
enough pinned administrators signed; forgeries are made with *another valid key*; revocation is
refused whatever time the message claims; a registry change raises the serial and a running
component refuses an older one."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from trust_helpers import NOW, T0, Chain

from broker.component.registry_watch import RegistryWatch
from broker.trust import (
    Keyring,
    Reason,
    RegistryError,
    TrustError,
    generate_party_keys,
    open_sealed,
    registry_entry,
    verify_only,
)
from broker.trust.errors import KeyFileError, RegistrySignatureError, TrustConfigError
from broker.trust.registry import registry_yaml
from broker.trust.registry_change import key_entry, onboard, revoke, rotate
from broker.trust.registry_signing import (
    RegistryAnchor,
    add_signatures,
    generate_admin_key,
    load_admin_key,
    load_anchor,
    load_signed_registry,
    sign_registry,
    verify_registry,
    write_admin_key,
    write_anchor,
    write_signed_registry,
)
from schemas.vocab.roles import PartyRole

A, B, C = (generate_admin_key(n) for n in ("admin-a", "admin-b", "admin-c"))


def anchor(threshold: int = 1) -> RegistryAnchor:
    return RegistryAnchor({k.admin_id: k.public for k in (A, B, C)}, threshold)


def test_signed_by_an_administrator_loads(chain: Chain) -> None:
    loaded = verify_registry(sign_registry(chain.registry, [A]), anchor())
    assert [p.id for p in loaded] == [p.id for p in chain.registry]


def test_unsigned_registry_is_refused(chain: Chain) -> None:
    with pytest.raises(RegistrySignatureError, match="unsigned"):
        verify_registry(sign_registry(chain.registry, []), anchor())


def test_threshold_two_of_three(chain: Chain) -> None:
    one = sign_registry(chain.registry, [A])
    with pytest.raises(RegistrySignatureError, match=r"1 valid administrator signature.*2 needed"):
        verify_registry(one, anchor(2))
    both = add_signatures(one, [C])  # a second administrator co-signs the same text
    assert len(verify_registry(both, anchor(2))) == 3
    twice = add_signatures(one, [A])  # signing again does not count twice
    with pytest.raises(RegistrySignatureError):
        verify_registry(twice, anchor(2))


def test_tampered_registry_is_refused(chain: Chain) -> None:
    """Swapping a party's signing key for the attacker's own (a valid key) after signing."""
    text = sign_registry(chain.registry, [A])
    own = generate_party_keys("zvh-utrecht").public().signing_public
    real = chain.registry.get("zvh-utrecht").keys[0].signing_public
    forged = text.replace(real, own)
    assert forged != text
    with pytest.raises(RegistrySignatureError, match="does not verify under its pinned key"):
        verify_registry(forged, anchor())


def test_signed_with_another_valid_key_is_refused(chain: Chain) -> None:
    """A well-formed signature by a real Ed25519 key that is not a pinned administrator's:
    under its own name, and under a pinned administrator's name."""
    outsider = generate_admin_key("admin-x")
    with pytest.raises(RegistrySignatureError, match="'admin-x', which is not an administrator"):
        verify_registry(sign_registry(chain.registry, [outsider]), anchor())
    impostor = generate_admin_key("admin-a")  # same id as a pinned administrator, another key
    with pytest.raises(RegistrySignatureError, match="'admin-a' does not verify"):
        verify_registry(sign_registry(chain.registry, [impostor]), anchor())


def test_administrators_cannot_be_smuggled_into_the_registry(chain: Chain) -> None:
    """The anchor lives outside the document it vouches for: a registry naming administrators
    of its own is not a registry."""
    text = sign_registry(chain.registry, [A]) + "administrators: [{id: admin-x}]\n"
    with pytest.raises(RegistryError, match="unknown field 'administrators'"):
        verify_registry(text, anchor())


def test_older_serial_is_refused_as_rollback(chain: Chain) -> None:
    text = sign_registry(chain.registry.with_serial(4), [A])
    assert verify_registry(text, anchor(), min_serial=4).serial == 4
    with pytest.raises(RegistrySignatureError, match="rollback"):
        verify_registry(text, anchor(), min_serial=5)


def test_anchor_rules(tmp_path: Path) -> None:
    with pytest.raises(TrustConfigError, match="threshold 3"):
        RegistryAnchor({A.admin_id: A.public, B.admin_id: B.public}, 3)
    with pytest.raises(TrustConfigError, match="no administrator"):
        RegistryAnchor({}, 1)
    with pytest.raises(TrustConfigError, match="share one key"):
        RegistryAnchor({"admin-a": A.public, "admin-b": A.public}, 1)
    with pytest.raises(TrustConfigError, match="no registry trust anchor"):
        load_anchor(tmp_path / "missing.yaml")
    write_anchor(anchor(2), tmp_path / "anchor.yaml")
    assert load_anchor(tmp_path / "anchor.yaml").administrators == anchor(2).administrators


def test_admin_key_file_is_private(tmp_path: Path) -> None:
    path = write_admin_key(generate_admin_key("admin-d"), tmp_path / "adm")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_admin_key(path).admin_id == "admin-d"
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError):
        load_admin_key(path)


def test_revoked_key_is_refused_whatever_time_the_message_claims(chain: Chain) -> None:
    """A thief dates a message before the revocation: the reader refuses it from the moment it
    holds the registry that revokes the key (``key-revoked``), not from the claimed time."""
    sealed = chain.sealed(timestamp=NOW)
    ring = Keyring([chain.router])
    assert open_sealed(
        sealed.key, sealed.value, sealed.headers, registry=chain.registry, keyring=ring, now=NOW
    )
    revoked = revoke(chain.registry, "zvh-utrecht", chain.zvh.key_id, NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=1, minutes=1)
    with pytest.raises(TrustError) as caught:
        verify_only(sealed.key, sealed.value, sealed.headers, registry=revoked, now=later)
    assert caught.value.reason == Reason.KEY_REVOKED
    # the revoked key is no encryption target and no signing key any more
    with pytest.raises(TrustError, match="no-valid-key"):
        revoked.encryption_key("zvh-utrecht", later)


def test_changes_raise_the_serial_and_keep_the_rules(chain: Chain) -> None:
    new = generate_party_keys("zvh-zeeland", now=T0)
    entry = registry_entry(new, role=PartyRole.ZVH, name="ZVH Zeeland", valid_from=T0)
    joined = onboard(chain.registry, entry)
    assert joined.serial == chain.registry.serial + 1
    assert joined.audit_chain_of("zvh-zeeland") is not None
    with pytest.raises(ValueError, match="already in the registry"):
        onboard(joined, entry)
    second = generate_party_keys("zvh-zeeland", now=NOW)
    rotated, notes = rotate(joined, "zvh-zeeland", key_entry(second, NOW), timedelta(hours=2))
    old, fresh = rotated.get("zvh-zeeland").keys
    assert old.valid_until == NOW + timedelta(hours=2) and fresh.valid_until is None
    assert notes and rotated.serial == joined.serial + 1
    assert old.valid_at(NOW + timedelta(hours=1)) and fresh.valid_at(NOW + timedelta(hours=1))
    assert not old.valid_at(NOW + timedelta(hours=2))
    with pytest.raises(ValueError, match="already revoked"):
        revoke(revoke(rotated, "zvh-zeeland", old.key_id, NOW), "zvh-zeeland", old.key_id, NOW)


def test_watch_applies_newer_signed_registries_only(chain: Chain, tmp_path: Path) -> None:
    reg, anc = tmp_path / "registry.yaml", tmp_path / "anchor.yaml"
    write_anchor(anchor(), anc)
    write_signed_registry(chain.registry.with_serial(1), [A], reg)
    watch = RegistryWatch(reg, anc, load_signed_registry(reg, anc))
    seen: list[int] = []
    watch.subscribe(lambda r: seen.append(r.serial))
    assert not watch.check()  # nothing changed
    revoked = revoke(chain.registry.with_serial(1), "zvh-utrecht", chain.zvh.key_id, NOW)
    # forged change (another valid key): refused, the last good registry stays
    write_signed_registry(revoked, [generate_admin_key("admin-a")], reg)
    assert not watch.check() and watch.refused == 1 and seen == []
    assert "does not verify" in (watch.last_problem or "")
    write_signed_registry(revoked, [A], reg)
    assert watch.check() and seen == [2]
    # the old registry, validly signed, comes back: a rollback, refused
    write_signed_registry(chain.registry.with_serial(1), [A], reg)
    assert not watch.check() and seen == [2] and watch.current.serial == 2
    assert "rollback" in (watch.last_problem or "")


@pytest.mark.parametrize(
    "tail",
    [
        "signatures: yes\n",
        "signatures: [[1, 2]]\n",
        "signatures: [{admin: admin-a}]\n",
        "signatures: [{admin: ../../etc, signature: AAAA}]\n",
        "signatures: [{admin: admin-a, signature: '" + "A" * 5000 + "'}]\n",
    ],
)
def test_hostile_signature_blocks_are_refused_by_rule(chain: Chain, tail: str) -> None:
    """Junk where the signatures go is a registry error with its line, never a crash or a pass."""
    text = registry_yaml(chain.registry)
    with pytest.raises(RegistryError) as caught:
        verify_registry(text + tail, anchor())
    assert "signatures" in str(caught.value) and "duplicate" not in str(caught.value)


def test_a_signature_that_is_not_base64_does_not_count(chain: Chain) -> None:
    text = registry_yaml(chain.registry) + "signatures: [{admin: admin-a, signature: '!!'}]\n"
    with pytest.raises(RegistrySignatureError, match="'admin-a' does not verify"):
        verify_registry(text, anchor())
