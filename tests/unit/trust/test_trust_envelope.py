"""Sealed envelopes: round trip, every tamper refused with its reason, and the byte format."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import struct
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trust_helpers import NOW, T0, V1_HEADERS, Chain, replace_header

from broker.trust import (
    CONTENT_TYPE,
    EnvelopeMeta,
    Keyring,
    PartyKeys,
    PartyRegistry,
    Reason,
    TrustError,
    canonical_header_bytes,
    generate_party_keys,
    open_sealed,
    read_envelope,
    registry_entry,
    seal,
    seal_to,
    verify_only,
)
from broker.trust.envelope import _seal, derive_key
from broker.trust.errors import UnknownParty
from schemas.vocab.roles import PartyRole


def open_at_router(chain: Chain, key: bytes | None, value: bytes, headers: list, **kw: object):
    return open_sealed(
        key,
        value,
        headers,
        registry=chain.registry,
        keyring=chain.keyring(chain.router),
        now=kw.pop("now", NOW),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def reason_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TrustError) as info:
        call()
    return info.value.reason


# --- round trip ------------------------------------------------------------------------------


def test_round_trip(chain: Chain) -> None:
    payload = b'{"resourceType": "Bundle", "id": "b1"}'
    meta = chain.meta()
    sealed = seal(
        payload,
        meta,
        chain.zvh,
        chain.router.key_id,
        chain.router.encryption.public_key(),
    )
    opened = open_at_router(chain, sealed.key, sealed.value, sealed.headers)
    assert opened.payload == payload
    assert opened.meta == meta
    assert opened.signer_key_id == chain.zvh.key_id
    assert opened.encryption_key_id == chain.router.key_id


def test_sealed_is_what_kafka_takes(chain: Chain) -> None:
    sealed = chain.sealed()
    assert sealed.key == ("p-" + "a" * 26).encode()
    assert all(isinstance(n, str) and isinstance(v, bytes) for n, v in sealed.headers)
    assert {n for n, _ in sealed.headers} == V1_HEADERS
    assert dict(sealed.headers)["content-type"] == CONTENT_TYPE.encode()
    assert dict(sealed.headers)["kb-time"] == b"2026-03-03T09:30:00.000000Z"


def test_value_layout_and_fresh_randomness(chain: Chain) -> None:
    payload = b"x" * 100
    first, second = chain.sealed(payload), chain.sealed(payload)
    assert len(first.value) == 32 + 12 + len(payload) + 16
    # the ephemeral key is reused for one recipient key within bounds (docs/trust.md 3.3) ...
    assert first.value[:32] == second.value[:32]
    assert first.value[32:44] != second.value[32:44]  # ... but every message has a new nonce
    assert first.value[44:] != second.value[44:]


def test_nothing_of_the_payload_is_in_the_clear(chain: Chain) -> None:
    bsn = b"123456782"
    payload = b'{"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "'
    payload += bsn + b'"}}'
    sealed = chain.sealed(payload)
    clear = sealed.key + b"".join(n.encode() + v for n, v in sealed.headers)
    assert bsn not in clear
    assert bsn not in sealed.value
    assert b"NamingSystem" not in sealed.value


def test_empty_payload_and_no_pseudonym(chain: Chain) -> None:
    sealed = chain.sealed(b"", pseudonym="", event="capacity-report")
    assert sealed.key == b""
    opened = open_at_router(chain, None, sealed.value, sealed.headers)  # None key == no person
    assert opened.payload == b""
    assert opened.meta.pseudonym == ""


def test_foreign_headers_are_ignored(chain: Chain) -> None:
    sealed = chain.sealed()
    headers = [*sealed.headers, ("traceparent", b"00-abc-def-01")]
    assert open_at_router(chain, sealed.key, sealed.value, headers).payload


def test_verify_only_needs_no_private_key(chain: Chain) -> None:
    sealed = chain.sealed()
    verified = verify_only(
        sealed.key, sealed.value, sealed.headers, registry=chain.registry, now=NOW
    )
    assert verified.meta.sender == "zvh-utrecht"
    assert verified.encryption_key_id == chain.router.key_id


def test_opened_repr_hides_payload(chain: Chain) -> None:
    sealed = chain.sealed(b"secret-clinical-text")
    opened = open_at_router(chain, sealed.key, sealed.value, sealed.headers)
    assert "secret-clinical-text" not in repr(opened)


# --- tampering -------------------------------------------------------------------------------


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_value_byte_is_refused(chain: Chain, data: st.DataObject) -> None:
    sealed = chain.sealed(b"a payload of some length" * 4)
    index = data.draw(st.integers(0, len(sealed.value) - 1), label="index")
    bit = data.draw(st.integers(0, 7), label="bit")
    value = bytearray(sealed.value)
    value[index] ^= 1 << bit
    reason = reason_of(lambda: open_at_router(chain, sealed.key, bytes(value), sealed.headers))
    assert reason == Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("header", "new_value"),
    [
        ("kb-id", b"msg-0002"),
        ("kb-event", b"claim"),
        ("kb-recipient", b"fivoor"),
        ("kb-time", b"2026-03-03T09:30:00.000001Z"),
        ("kb-enc-kid", b"router-other-key"),
    ],
)
def test_changed_signed_header_is_refused(chain: Chain, header: str, new_value: bytes) -> None:
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, header, new_value)
    reason = reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers))
    assert reason == Reason.BAD_SIGNATURE


@pytest.mark.parametrize("key", [b"p-" + b"b" * 26, b"", None, b"p-" + b"a" * 25])
def test_changed_key_pseudonym_is_refused(chain: Chain, key: bytes | None) -> None:
    sealed = chain.sealed()
    reason = reason_of(lambda: open_at_router(chain, key, sealed.value, sealed.headers))
    assert reason == Reason.BAD_SIGNATURE


def test_changed_signature_is_refused(chain: Chain) -> None:
    sealed = chain.sealed()
    raw = bytearray(base64.b64decode(dict(sealed.headers)["kb-sig"]))
    raw[5] ^= 0x01
    headers = replace_header(sealed.headers, "kb-sig", base64.b64encode(bytes(raw)))
    reason = reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers))
    assert reason == Reason.BAD_SIGNATURE


def test_sender_swapped_to_another_party_is_refused(chain: Chain) -> None:
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, "kb-sender", b"fivoor")
    reason = reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers))
    assert reason == Reason.UNKNOWN_KEY  # fivoor has no key with the ZVH's key id


def test_sender_swapped_with_the_sig_kid_is_refused(chain: Chain) -> None:
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, "kb-sender", b"fivoor")
    headers = replace_header(headers, "kb-sig-kid", chain.provider.key_id.encode())
    reason = reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers))
    assert reason == Reason.BAD_SIGNATURE


def test_resigning_someone_elses_ciphertext_does_not_decrypt(chain: Chain) -> None:
    """A party that re-signs another's envelope as its own (to claim the content) gets a
    verifying signature, but the ciphertext is bound to the original sender: decrypt fails."""
    sealed = chain.sealed(b"the ZVH's referral")
    meta = read_envelope(sealed.key, sealed.headers)
    forged_meta = dataclasses.replace(meta, sender="fivoor")
    enc_kid = dict(sealed.headers)["kb-enc-kid"].decode()
    header_bytes = canonical_header_bytes(forged_meta, chain.provider.key_id, enc_kid)
    signature = chain.provider.signing.sign(header_bytes + hashlib.sha256(sealed.value).digest())
    headers = dict(sealed.headers)
    headers.update(
        {
            "kb-sender": b"fivoor",
            "kb-sig-kid": chain.provider.key_id.encode(),
            "kb-sig": base64.b64encode(signature),
        }
    )
    reason = reason_of(
        lambda: open_at_router(chain, sealed.key, sealed.value, list(headers.items()))
    )
    assert reason == Reason.DECRYPT_FAILED


def test_unknown_signing_key_id(chain: Chain) -> None:
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, "kb-sig-kid", b"zvh-utrecht-nope")
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers)) == (
        Reason.UNKNOWN_KEY
    )


def test_unknown_sender(chain: Chain) -> None:
    sealed = chain.sealed()
    without_zvh = PartyRegistry(p for p in chain.registry if p.id != "zvh-utrecht")
    reason = reason_of(
        lambda: open_sealed(
            sealed.key,
            sealed.value,
            sealed.headers,
            registry=without_zvh,
            keyring=Keyring([chain.router]),
            now=NOW,
        )
    )
    assert reason == Reason.UNKNOWN_SENDER


def test_wrong_recipient(chain: Chain) -> None:
    sealed = chain.sealed()  # for the router
    reason = reason_of(
        lambda: open_sealed(
            sealed.key,
            sealed.value,
            sealed.headers,
            registry=chain.registry,
            keyring=Keyring([chain.provider]),
            now=NOW,
        )
    )
    assert reason == Reason.WRONG_RECIPIENT


def test_encrypted_to_the_wrong_key_fails_to_decrypt(chain: Chain) -> None:
    other = X25519PrivateKey.generate()
    sealed = seal(b"x", chain.meta(), chain.zvh, chain.router.key_id, other.public_key())
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, sealed.headers)) == (
        Reason.DECRYPT_FAILED
    )


def test_encryption_key_not_in_keyring(chain: Chain) -> None:
    sealed = seal(
        b"x", chain.meta(), chain.zvh, "router-retired", chain.router.encryption.public_key()
    )
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, sealed.headers)) == (
        Reason.UNKNOWN_KEY
    )


@pytest.mark.parametrize("header", ["kb-sig", "kb-sig-kid"])
def test_missing_signature(chain: Chain, header: str) -> None:
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, header, None)
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers)) == (
        Reason.MISSING_SIGNATURE
    )


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("content-type", None),
        ("content-type", b"application/json"),
        ("kb-id", None),
        ("kb-event", None),
        ("kb-sender", None),
        ("kb-recipient", None),
        ("kb-time", None),
        ("kb-enc-kid", None),
        ("kb-time", b"2026-03-03T09:30:00Z"),  # same instant, not the canonical form
        ("kb-time", b"2026-03-03T09:30:00.000000+00:00"),
        ("kb-time", b"2026-03-03T09:30:00.000000Z\n"),
        ("kb-time", "٢٠٢٦-03-03T09:30:00.000000Z".encode()),  # non-ASCII digits
        ("kb-sig", b"not base64!"),
        ("kb-sig", base64.b64encode(b"short")),
        ("kb-id", b"\xff\xfe"),
        ("kb-id", b""),
        ("kb-sig-kid", b"../../etc/passwd"),
        ("kb-extra", b"smuggled"),
    ],
)
def test_malformed_envelope(chain: Chain, header: str, value: bytes | None) -> None:
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, header, value)
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers)) == (
        Reason.MALFORMED_ENVELOPE
    )


def test_duplicated_header_is_malformed(chain: Chain) -> None:
    sealed = chain.sealed()
    headers = [*sealed.headers, ("kb-recipient", b"fivoor")]
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers)) == (
        Reason.MALFORMED_ENVELOPE
    )


def test_truncated_value_is_malformed(chain: Chain) -> None:
    sealed = chain.sealed()
    assert reason_of(
        lambda: open_at_router(chain, sealed.key, sealed.value[:59], sealed.headers)
    ) == (Reason.MALFORMED_ENVELOPE)


def test_future_and_stale_timestamps(chain: Chain) -> None:
    sealed = chain.sealed(timestamp=NOW + timedelta(minutes=3))
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, sealed.headers)) == (
        Reason.FUTURE_TIMESTAMP
    )
    ok = chain.sealed(timestamp=NOW + timedelta(minutes=2))
    assert open_at_router(chain, ok.key, ok.value, ok.headers).payload

    old = chain.sealed(timestamp=NOW - timedelta(hours=2))
    assert open_at_router(chain, old.key, old.value, old.headers).payload  # no max_age: accepted
    reason = reason_of(
        lambda: open_at_router(chain, old.key, old.value, old.headers, max_age=timedelta(hours=1))
    )
    assert reason == Reason.STALE


def test_a_tampered_message_gets_no_validity_reason(chain: Chain) -> None:
    """Validity and time reasons are only given for authentic envelopes."""
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, "kb-time", b"2030-01-01T00:00:00.000000Z")
    assert reason_of(lambda: open_at_router(chain, sealed.key, sealed.value, headers)) == (
        Reason.BAD_SIGNATURE
    )


# --- reading without verifying ---------------------------------------------------------------


def test_read_meta_reads_unsigned_envelopes(chain: Chain) -> None:
    sealed = chain.sealed()
    headers = replace_header(sealed.headers, "kb-sig", None)
    meta = read_envelope(sealed.key, headers)
    assert (meta.sender, meta.message_id) == ("zvh-utrecht", "msg-0001")
    assert meta.replay_id == "zvh-utrecht/msg-0001"


@pytest.mark.parametrize("headers", [[], [("content-type", CONTENT_TYPE.encode())], None])
def test_read_meta_refuses_garbage(headers: list | None) -> None:
    with pytest.raises(TrustError) as info:
        read_envelope(b"k", headers)  # type: ignore[arg-type]
    assert info.value.reason == Reason.MALFORMED_ENVELOPE


# --- sealing rules ---------------------------------------------------------------------------


def test_seal_refuses_to_sign_for_another_party(chain: Chain) -> None:
    with pytest.raises(ValueError, match="not the signing party"):
        seal(
            b"x",
            chain.meta(sender="fivoor"),
            chain.zvh,
            chain.router.key_id,
            chain.router.encryption.public_key(),
        )


def test_meta_requires_aware_time_and_normalises_to_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        EnvelopeMeta("m", "referral", "a1", "b1", datetime(2026, 1, 1), "")
    cet = datetime(2026, 1, 1, 1, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Amsterdam")
    )
    meta = EnvelopeMeta("m", "referral", "a1", "b1", cet, "")
    assert meta.timestamp.tzinfo is UTC and meta.timestamp.hour == 1


@pytest.mark.parametrize("bad", ["", "a\nb", "x" * 257])
def test_meta_refuses_bad_fields(bad: str) -> None:
    with pytest.raises(ValueError):
        EnvelopeMeta(bad, "referral", "a1", "b1", NOW, "")


# --- the documented byte format --------------------------------------------------------------

KAT_SEAL_VALUE = bytes.fromhex(
    "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"
    "606162636465666768696a6b"
    "db16f48c823ccae1bf36bd32379bfb229958ce17e4c2fac45f0837f327f3e135f5b8cefd4c50d8e448"
)
KAT_SIG = "Cvhpn8XVxcUFz3ue5tuEByDSDNr3C1QAnD3oJtfd9I2pgfbFqT242dhqbhmL3sJY96EOEQhRx9tUv9LPWZiDAA=="
KAT_CANONICAL = bytes.fromhex(
    "6b6574656e6275732d656e76656c6f70652d7631"
    "00000024"
    + b"00000000-0000-4000-8000-000000000001".hex()
    + "00000008"
    + b"referral".hex()
    + "00000008"
    + b"zvh-test".hex()
    + "00000006"
    + b"router".hex()
    + "0000001b"
    + b"2026-01-01T00:00:00.000000Z".hex()
    + "0000001c"
    + b"p-aaaaaaaaaaaaaaaaaaaaaaaaaa".hex()
    + "0000000b"
    + b"zvh-test-k1".hex()
    + "00000009"
    + b"router-k1".hex()
)


def _kat_inputs() -> tuple[PartyKeys, X25519PrivateKey, EnvelopeMeta]:
    sender = PartyKeys(
        "zvh-test",
        "zvh-test-k1",
        Ed25519PrivateKey.from_private_bytes(bytes(range(32))),
        X25519PrivateKey.from_private_bytes(bytes(range(200, 232))),
        created=datetime(2026, 1, 1, tzinfo=UTC),
    )
    recipient = X25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
    meta = EnvelopeMeta(
        "00000000-0000-4000-8000-000000000001",
        "referral",
        "zvh-test",
        "router",
        datetime(2026, 1, 1, tzinfo=UTC),
        "p-aaaaaaaaaaaaaaaaaaaaaaaaaa",
    )
    return sender, recipient, meta


def test_known_answer_vector_matches_docs() -> None:
    """The test vector printed in docs/trust.md."""
    sender, recipient, meta = _kat_inputs()
    assert canonical_header_bytes(meta, "zvh-test-k1", "router-k1") == KAT_CANONICAL
    sealed = _seal(
        b'{"resourceType":"Bundle"}',
        meta,
        sender,
        "router-k1",
        recipient.public_key(),
        X25519PrivateKey.from_private_bytes(bytes(range(64, 96))),
        bytes(range(96, 108)),
    )
    assert sealed.value == KAT_SEAL_VALUE
    assert dict(sealed.headers)["kb-sig"].decode() == KAT_SIG
    ephemeral = X25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
    shared = ephemeral.exchange(recipient.public_key())
    assert shared.hex() == "04c304fb1ca83cee75e206344231f33797e07d9929db670994b7c6fbeb1dc255"
    aes_key = derive_key(
        shared,
        ephemeral.public_key().public_bytes_raw(),
        recipient.public_key().public_bytes_raw(),
        "router-k1",
    )
    assert aes_key.hex() == "7177a15c234e958ef675cfa943b9b80d6df7e3c4eca86e6516b5efbb1c06b669"


def _independent_open(
    key: bytes,
    value: bytes,
    headers: dict[str, bytes],
    sender_public: Ed25519PublicKey,
    recipient: X25519PrivateKey,
) -> bytes:
    """A from-the-spec reader (docs/trust.md), sharing no code with broker.trust.envelope."""

    def lp(raw: bytes) -> bytes:
        return struct.pack(">I", len(raw)) + raw

    fields = [headers[n] for n in ("kb-id", "kb-event", "kb-sender", "kb-recipient", "kb-time")]
    fields += [key, headers["kb-sig-kid"], headers["kb-enc-kid"]]
    canonical = b"ketenbus-envelope-v1" + b"".join(lp(f) for f in fields)
    sender_public.verify(
        base64.b64decode(headers["kb-sig"]), canonical + hashlib.sha256(value).digest()
    )
    eph, nonce, ciphertext = value[:32], value[32:44], value[44:]
    shared = recipient.exchange(X25519PublicKey.from_public_bytes(eph))
    info = (
        b"ketenbus-envelope-v1 aes-256-gcm key"
        + eph
        + recipient.public_key().public_bytes_raw()
        + lp(headers["kb-enc-kid"])
    )
    aes_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"ketenbus-envelope-v1 hkdf-salt", info=info
    ).derive(shared)
    return AESGCM(aes_key).decrypt(nonce, ciphertext, canonical)


def test_an_independent_reader_of_the_spec_opens_the_vector() -> None:
    sender, recipient, _ = _kat_inputs()
    headers = {
        "kb-id": b"00000000-0000-4000-8000-000000000001",
        "kb-event": b"referral",
        "kb-sender": b"zvh-test",
        "kb-recipient": b"router",
        "kb-time": b"2026-01-01T00:00:00.000000Z",
        "kb-sig-kid": b"zvh-test-k1",
        "kb-enc-kid": b"router-k1",
        "kb-sig": KAT_SIG.encode(),
    }
    payload = _independent_open(
        b"p-aaaaaaaaaaaaaaaaaaaaaaaaaa",
        KAT_SEAL_VALUE,
        headers,
        sender.signing.public_key(),
        recipient,
    )
    assert payload == b'{"resourceType":"Bundle"}'


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.binary(max_size=2048),
    pseudonym=st.from_regex(r"\Ap-[a-z2-7]{26}\Z"),
    message_id=st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
        min_size=1,
        max_size=40,
    ),
)
def test_independent_reader_opens_random_messages(
    chain: Chain, payload: bytes, pseudonym: str, message_id: str
) -> None:
    sealed = chain.sealed(payload, pseudonym=pseudonym, message_id=message_id)
    assert (
        _independent_open(
            sealed.key,
            sealed.value,
            dict(sealed.headers),
            chain.zvh.signing.public_key(),
            chain.router.encryption,
        )
        == payload
    )
    assert open_at_router(chain, sealed.key, sealed.value, sealed.headers).payload == payload


def test_router_reply_to_a_party_round_trips(chain: Chain) -> None:
    """Outbound direction: the router seals for a party's outbound topic."""
    meta = EnvelopeMeta.new(
        event="assessment-outcome", sender="router", recipient="fivoor", pseudonym="", now=NOW
    )
    sealed = seal(
        b"r", meta, chain.router, chain.provider.key_id, chain.provider.encryption.public_key()
    )
    opened = open_sealed(
        sealed.key,
        sealed.value,
        sealed.headers,
        registry=chain.registry,
        keyring=Keyring([chain.provider]),
        now=NOW,
    )
    assert opened.payload == b"r"


def test_seal_to_needs_a_registered_recipient(chain: Chain) -> None:
    stranger = generate_party_keys("stranger", now=T0)
    with pytest.raises(UnknownParty):
        chain.sealed(recipient="stranger")
    registry = chain.registry.with_party(
        registry_entry(stranger, role=PartyRole.DJI, name="DJI", valid_from=T0)
    )
    sealed = seal_to(b"x", chain.meta(recipient="stranger"), chain.zvh, registry)
    opened = open_sealed(
        sealed.key,
        sealed.value,
        sealed.headers,
        registry=registry,
        keyring=Keyring([stranger]),
        now=NOW,
    )
    assert opened.payload == b"x"
