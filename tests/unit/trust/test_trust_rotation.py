"""Key validity and rotation: before valid_from, after valid_until, and the overlap window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from trust_helpers import NOW, T0

from broker.trust import (
    EnvelopeMeta,
    KeyEntry,
    Keyring,
    PartyKeys,
    PartyRegistry,
    Reason,
    TrustError,
    generate_party_keys,
    open_sealed,
    registry_entry,
    seal,
    seal_to,
    verify_only,
)
from schemas.vocab.roles import PartyRole

DAY = timedelta(days=1)
OLD_UNTIL = T0 + 30 * DAY
NEW_FROM = T0 + 20 * DAY


class Rotation:
    """ZVH key ``old`` valid [T0, T0+30d), ``new`` valid [T0+20d, -); router keys likewise."""

    def __init__(self) -> None:
        self.old = generate_party_keys("zvh-utrecht", "zvh-old", now=T0)
        self.new = generate_party_keys("zvh-utrecht", "zvh-new", now=NEW_FROM)
        self.router_old = generate_party_keys("router", "router-old", now=T0)
        self.router_new = generate_party_keys("router", "router-new", now=NEW_FROM)
        zvh = registry_entry(
            self.old, role=PartyRole.ZVH, name="ZVH", valid_from=T0, valid_until=OLD_UNTIL
        )
        zvh = zvh.model_copy(update={"keys": [*zvh.keys, self._entry(self.new, NEW_FROM)]})
        router = registry_entry(
            self.router_old,
            role=PartyRole.ROUTER,
            name="router",
            valid_from=T0,
            valid_until=OLD_UNTIL,
        )
        router = router.model_copy(
            update={"keys": [*router.keys, self._entry(self.router_new, NEW_FROM)]}
        )
        self.registry = PartyRegistry([zvh, router])
        self.router_ring = Keyring([self.router_old, self.router_new])

    @staticmethod
    def _entry(keys: PartyKeys, valid_from) -> KeyEntry:  # type: ignore[no-untyped-def]
        public = keys.public()
        return KeyEntry(
            key_id=keys.key_id,
            signing_public=public.signing_public,
            encryption_public=public.encryption_public,
            valid_from=valid_from,
        )

    def send(self, signer: PartyKeys, at, **kw):  # type: ignore[no-untyped-def]
        meta = EnvelopeMeta("m-1", "referral", "zvh-utrecht", "router", at, "p-x")
        sealed = seal(
            b"payload",
            meta,
            signer,
            self.router_new.key_id,
            self.router_new.encryption.public_key(),
        )
        return open_sealed(
            sealed.key,
            sealed.value,
            sealed.headers,
            registry=self.registry,
            keyring=self.router_ring,
            now=kw.pop("now", at),
            **kw,
        )


@pytest.fixture
def rot() -> Rotation:
    return Rotation()


def reason(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TrustError) as info:
        call()
    return info.value.reason


def test_before_valid_from(rot: Rotation) -> None:
    assert reason(lambda: rot.send(rot.old, T0 - timedelta(microseconds=1))) == (
        Reason.KEY_NOT_YET_VALID
    )
    assert reason(lambda: rot.send(rot.new, NEW_FROM - DAY)) == Reason.KEY_NOT_YET_VALID
    assert rot.send(rot.old, T0).payload == b"payload"  # valid_from itself is inside


def test_after_valid_until(rot: Rotation) -> None:
    assert rot.send(rot.old, OLD_UNTIL - timedelta(microseconds=1)).payload
    assert reason(lambda: rot.send(rot.old, OLD_UNTIL)) == Reason.KEY_EXPIRED  # half-open
    assert reason(lambda: rot.send(rot.old, OLD_UNTIL + DAY)) == Reason.KEY_EXPIRED
    assert rot.send(rot.new, OLD_UNTIL + DAY).payload


def test_overlap_window_both_keys_verify(rot: Rotation) -> None:
    during = NEW_FROM + 5 * DAY
    assert rot.send(rot.old, during).signer_key_id == "zvh-old"
    assert rot.send(rot.new, during).signer_key_id == "zvh-new"


def test_backlog_is_accepted_unless_expiry_grace_is_asked(rot: Rotation) -> None:
    """A message signed just before the old key ended, read later (Kafka backlog)."""
    sent = OLD_UNTIL - DAY
    later = OLD_UNTIL + 2 * DAY
    assert rot.send(rot.old, sent, now=later).payload
    assert rot.send(rot.old, sent, now=later, expiry_grace=3 * DAY).payload
    assert reason(lambda: rot.send(rot.old, sent, now=later, expiry_grace=DAY)) == (
        Reason.KEY_EXPIRED
    )
    assert reason(lambda: rot.send(rot.old, sent, now=later, max_age=DAY)) == Reason.STALE


def test_verification_key_reasons(rot: Rotation) -> None:
    registry = rot.registry
    assert registry.verification_key("zvh-utrecht", "zvh-old", T0 + DAY)
    for at, expected in [
        (T0 - DAY, Reason.KEY_NOT_YET_VALID),
        (OLD_UNTIL, Reason.KEY_EXPIRED),
    ]:
        with pytest.raises(TrustError) as info:
            registry.verification_key("zvh-utrecht", "zvh-old", at)
        assert info.value.reason == expected
    with pytest.raises(TrustError) as info:
        registry.verification_key("zvh-utrecht", "router-old", T0 + DAY)
    assert info.value.reason == Reason.UNKNOWN_KEY
    with pytest.raises(TrustError) as info:
        registry.verification_key("nobody", "zvh-old", T0 + DAY)
    assert info.value.reason == Reason.UNKNOWN_SENDER


def test_encryption_key_is_newest_valid(rot: Rotation) -> None:
    assert rot.registry.encryption_key("router", T0 + DAY)[0] == "router-old"
    assert rot.registry.encryption_key("router", NEW_FROM + DAY)[0] == "router-new"
    assert rot.registry.encryption_key("router", OLD_UNTIL + DAY)[0] == "router-new"
    with pytest.raises(TrustError) as info:
        rot.registry.encryption_key("router", T0 - DAY)
    assert info.value.reason == Reason.NO_VALID_KEY


def test_reader_decrypts_with_whichever_key_the_sender_used(rot: Rotation) -> None:
    meta = EnvelopeMeta("m-2", "referral", "zvh-utrecht", "router", T0 + DAY, "p-x")
    sealed = seal_to(b"old-key message", meta, rot.old, rot.registry)
    assert dict(sealed.headers)["kb-enc-kid"] == b"router-old"
    opened = open_sealed(
        sealed.key,
        sealed.value,
        sealed.headers,
        registry=rot.registry,
        keyring=rot.router_ring,
        now=NOW + 30 * DAY,
    )
    assert opened.payload == b"old-key message"
    assert opened.encryption_key_id == "router-old"
    only_new = Keyring([rot.router_new])
    with pytest.raises(TrustError) as info:
        open_sealed(
            sealed.key,
            sealed.value,
            sealed.headers,
            registry=rot.registry,
            keyring=only_new,
            now=NOW,
        )
    assert info.value.reason == Reason.UNKNOWN_KEY


def test_keyring_picks_the_signing_key_valid_now(rot: Rotation) -> None:
    ring = Keyring([rot.old, rot.new])
    assert ring.current is rot.new
    assert ring.for_signing(rot.registry, T0 + DAY) is rot.old  # new not valid yet
    assert ring.for_signing(rot.registry, NEW_FROM + DAY) is rot.new  # overlap: newest
    assert ring.for_signing(rot.registry, OLD_UNTIL + DAY) is rot.new
    with pytest.raises(TrustError) as info:
        ring.for_signing(rot.registry, T0 - DAY)
    assert info.value.reason == Reason.NO_VALID_KEY


def test_for_signing_detects_a_key_file_that_does_not_match_the_registry(rot: Rotation) -> None:
    impostor = generate_party_keys("zvh-utrecht", "zvh-old", now=T0)
    with pytest.raises(TrustError, match="do not match"):
        Keyring([impostor]).for_signing(rot.registry, T0 + DAY)


def test_signature_from_a_key_valid_at_message_time_checked_with_verify_only(
    rot: Rotation,
) -> None:
    meta = EnvelopeMeta("m-3", "referral", "zvh-utrecht", "router", OLD_UNTIL + DAY, "p-x")
    sealed = seal(b"x", meta, rot.old, "router-new", rot.router_new.encryption.public_key())
    with pytest.raises(TrustError) as info:
        verify_only(
            sealed.key, sealed.value, sealed.headers, registry=rot.registry, now=OLD_UNTIL + DAY
        )
    assert info.value.reason == Reason.KEY_EXPIRED
