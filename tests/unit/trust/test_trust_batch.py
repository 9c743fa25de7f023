"""Key-agreement reuse and batch signatures: bounds, caches, every tamper refused, and a batch
member verified by an independent reader of docs/trust.md."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from test_trust_rotation import OLD_UNTIL, Rotation
from trust_helpers import NOW, T0, V1_HEADERS, Chain, replace_header

from broker.trust import (
    EnvelopeMeta,
    PartyKeys,
    Reason,
    Sealed,
    TrustError,
    envelope,
    merkle,
    open_sealed,
    read_envelope,
    seal,
    seal_to,
    sign_batch,
    verify_only,
)
from schemas.memo import Memo


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    envelope.reset_key_caches()
    yield
    envelope.reset_key_caches()


def unsigned(chain: Chain, n: int, payload: bytes = b'{"resourceType": "Bundle"}') -> list[Sealed]:
    return [
        seal_to(
            payload, chain.meta(message_id=f"msg-{i:04d}"), chain.zvh, chain.registry, sign=False
        )
        for i in range(n)
    ]


def open_router(
    chain: Chain,
    s: Sealed,
    headers: list[tuple[str, bytes]] | None = None,
    value: bytes | None = None,
    key: bytes | None = None,
) -> bytes:
    return open_sealed(
        s.key if key is None else key,
        s.value if value is None else value,
        s.headers if headers is None else headers,
        registry=chain.registry,
        keyring=chain.keyring(chain.router),
        now=NOW,
    ).payload


def reason_of(call: Any) -> str:
    with pytest.raises(TrustError) as info:
        call()
    return info.value.reason


class CountingKey:
    """Wraps an Ed25519 public key and counts verify calls."""

    def __init__(self, key: Ed25519PublicKey, counter: list[int]) -> None:
        self.key, self.counter = key, counter

    def verify(self, signature: bytes, data: bytes) -> None:
        self.counter[0] += 1
        self.key.verify(signature, data)


def count_verifies(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counter = [0]
    real = chain.registry.signing_public_key
    monkeypatch.setattr(
        chain.registry, "signing_public_key", lambda p, e: CountingKey(real(p, e), counter)
    )
    return counter


# --- key-agreement reuse ----------------------------------------------------------------------


def test_ephemeral_is_reused_within_its_use_bound(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(envelope, "EPHEMERAL_MAX_USES", 3)
    ephemerals = [chain.sealed(message_id=f"m{i}").value[:32] for i in range(7)]
    assert ephemerals[0] == ephemerals[1] == ephemerals[2]
    assert ephemerals[3] == ephemerals[4] == ephemerals[5] != ephemerals[2]
    assert ephemerals[6] != ephemerals[5]
    nonces = {chain.sealed(message_id=f"n{i}").value[32:44] for i in range(50)}
    assert len(nonces) == 50
    for i in range(7):  # every one still opens
        assert open_router(chain, chain.sealed(message_id=f"o{i}"))


def test_ephemeral_expires_with_age(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(envelope, "_clock", lambda: clock[0])
    first = chain.sealed().value[:32]
    clock[0] += envelope.EPHEMERAL_MAX_AGE_S - 1
    assert chain.sealed().value[:32] == first
    clock[0] += 1
    assert chain.sealed().value[:32] != first


def test_ephemeral_is_per_sender_and_recipient_key(chain: Chain) -> None:
    to_router = chain.sealed().value[:32]
    meta = chain.meta(recipient="fivoor")
    to_provider = seal_to(b"x", meta, chain.zvh, chain.registry).value[:32]
    other_sender = seal_to(b"x", chain.meta(sender="fivoor"), chain.provider, chain.registry).value[
        :32
    ]
    assert len({to_router, to_provider, other_sender}) == 3


def test_cached_recipients_are_bounded(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "_ephemerals", Memo(2))
    public = chain.router.encryption.public_key()
    for i in range(5):
        seal(b"x", chain.meta(), chain.zvh, f"router-k{i}", public)
    assert len(envelope._ephemerals) == 2


def test_explicit_ephemeral_is_used_and_not_cached(chain: Chain) -> None:
    eph = X25519PrivateKey.generate()
    s = seal(
        b"x",
        chain.meta(),
        chain.zvh,
        chain.router.key_id,
        chain.router.encryption.public_key(),
        ephemeral=eph,
    )
    assert s.value[:32] == eph.public_key().public_bytes_raw()
    assert len(envelope._ephemerals) == 0
    assert open_router(chain, s) == b"x"


def test_reader_runs_key_agreement_once_per_sender_ephemeral(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]
    real = envelope.derive_key

    def counting(*args: Any) -> bytes:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(envelope, "derive_key", counting)
    for i in range(5):
        assert (
            open_router(chain, chain.sealed(payload=b"p%d" % i, message_id=f"m{i}")) == b"p%d" % i
        )
    assert calls[0] == 2  # one on the sender's side, one on the reader's


def test_reader_cache_is_per_own_key(chain: Chain) -> None:
    """Same key id, different private key: the cache must not hand over the other's AES key."""
    s = chain.sealed()
    assert open_router(chain, s)
    impostor = chain.router.__class__(
        party_id="router",
        key_id=chain.router.key_id,
        signing=chain.router.signing,
        encryption=X25519PrivateKey.generate(),
        created=chain.router.created,
    )
    with pytest.raises(TrustError) as info:
        open_sealed(
            s.key,
            s.value,
            s.headers,
            registry=chain.registry,
            keyring=chain.keyring(impostor),
            now=NOW,
        )
    assert info.value.reason == Reason.DECRYPT_FAILED


# --- batch signatures ------------------------------------------------------------------------


def test_one_item_batch_is_the_v1_signature(chain: Chain) -> None:
    [item] = unsigned(chain, 1)
    assert "kb-sig" not in dict(item.headers)
    assert item.to_sign
    [signed] = sign_batch([item], chain.zvh)
    headers = dict(signed.headers)
    assert set(headers) == V1_HEADERS
    assert base64.b64decode(headers["kb-sig"]) == chain.zvh.signing.sign(item.to_sign)
    assert signed.to_sign == b""
    assert open_router(chain, signed)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
def test_batch_members_open_with_one_verify(
    chain: Chain, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    counter = count_verifies(chain, monkeypatch)
    batch = sign_batch(unsigned(chain, n), chain.zvh)
    assert len({dict(s.headers)["kb-sig"] for s in batch}) == 1
    assert len({dict(s.headers)["kb-sig-proof"] for s in batch}) == n
    for s in batch:
        assert set(dict(s.headers)) == V1_HEADERS | {"kb-sig-proof"}
        assert open_router(chain, s) == b'{"resourceType": "Bundle"}'
    assert counter[0] == 1
    assert (
        verify_only(
            batch[0].key, batch[0].value, batch[0].headers, registry=chain.registry, now=NOW
        ).meta.message_id
        == "msg-0000"
    )


def test_sign_batch_refuses_signed_or_foreign_items(chain: Chain) -> None:
    with pytest.raises(ValueError, match="unsigned"):
        sign_batch([chain.sealed(), *unsigned(chain, 1)], chain.zvh)
    with pytest.raises(ValueError, match="unsigned"):
        sign_batch(sign_batch(unsigned(chain, 2), chain.zvh), chain.zvh)
    with pytest.raises(ValueError, match="not sealed by"):
        sign_batch(unsigned(chain, 2), chain.provider)
    other_key = PartyKeys(
        party_id="zvh-utrecht",
        key_id="zvh-utrecht-other",
        signing=Ed25519PrivateKey.generate(),
        encryption=chain.zvh.encryption,
        created=chain.zvh.created,
    )
    with pytest.raises(ValueError, match="not sealed by"):
        sign_batch(unsigned(chain, 2), other_key)
    assert sign_batch([], chain.zvh) == []


def _proof(s: Sealed) -> bytes:
    return base64.b64decode(dict(s.headers)["kb-sig-proof"])


def _with_proof(s: Sealed, raw: bytes) -> list[tuple[str, bytes]]:
    return replace_header(s.headers, "kb-sig-proof", base64.b64encode(raw))


@pytest.mark.parametrize(
    "header", ["kb-id", "kb-event", "kb-recipient", "kb-time", "kb-enc-kid", "key", "value"]
)
def test_batch_member_tamper_is_refused(chain: Chain, header: str) -> None:
    batch = sign_batch(unsigned(chain, 4), chain.zvh)
    assert open_router(chain, batch[1])  # root now cached
    s = batch[2]
    if header == "value":
        v = bytearray(s.value)
        v[-1] ^= 1
        call = lambda: open_router(chain, s, value=bytes(v))  # noqa: E731
    elif header == "key":
        call = lambda: open_router(chain, s, key=b"p-" + b"b" * 26)  # noqa: E731
    else:
        new = {"kb-time": b"2026-03-03T09:30:00.000001Z", "kb-enc-kid": b"router-k9"}
        h = replace_header(s.headers, header, new.get(header, b"changed"))
        call = lambda: open_router(chain, s, headers=h)  # noqa: E731
    assert reason_of(call) == Reason.BAD_SIGNATURE


def test_batch_member_other_sender_or_key_is_refused(chain: Chain) -> None:
    batch = sign_batch(unsigned(chain, 3), chain.zvh)
    assert open_router(chain, batch[0])
    h = replace_header(batch[1].headers, "kb-sig-kid", chain.provider.key_id.encode())
    h = replace_header(h, "kb-sender", b"fivoor")
    assert reason_of(lambda: open_router(chain, batch[1], headers=h)) in (
        Reason.BAD_SIGNATURE,
        Reason.UNKNOWN_KEY,
    )


def test_proof_tampering_is_refused(chain: Chain) -> None:
    batch = sign_batch(unsigned(chain, 5), chain.zvh)
    assert open_router(chain, batch[0])
    s = batch[3]
    raw = _proof(s)
    index, size = struct.unpack(">II", raw[:8])
    flipped = bytearray(raw)
    flipped[-1] ^= 1
    cases = {
        "path byte": bytes(flipped),
        "index": struct.pack(">II", (index + 1) % size, size) + raw[8:],
        "size": struct.pack(">II", index, size + 1) + raw[8:],
        "path cut": raw[:-32],
        "path longer": raw + b"\x00" * 32,
        "other member's proof": _proof(batch[4]),
    }
    for name, bad in cases.items():
        got = reason_of(lambda bad=bad: open_router(chain, s, headers=_with_proof(s, bad)))
        assert got == Reason.BAD_SIGNATURE, name
    malformed = {
        "not base64": b"!!",
        "not whole hashes": base64.b64encode(raw + b"\x00"),
        "index past size": base64.b64encode(struct.pack(">II", size, size) + raw[8:]),
        "too long": base64.b64encode(b"\x00" * 8 + b"\x00" * 32 * 40),
        "batch of one": base64.b64encode(struct.pack(">II", 0, 1)),
    }
    for name, header in malformed.items():
        h = replace_header(s.headers, "kb-sig-proof", header)
        assert reason_of(lambda h=h: open_router(chain, s, headers=h)) == (
            Reason.MALFORMED_ENVELOPE
        ), name
    dup = [*s.headers, ("kb-sig-proof", dict(s.headers)["kb-sig-proof"])]
    assert reason_of(lambda: open_router(chain, s, headers=dup)) == Reason.MALFORMED_ENVELOPE
    assert open_router(chain, s)  # untouched, still fine


def test_proof_moved_between_batches_is_refused(chain: Chain) -> None:
    a = sign_batch(unsigned(chain, 4), chain.zvh)
    b = sign_batch(unsigned(chain, 4, payload=b"other"), chain.zvh)
    assert open_router(chain, a[0]) and open_router(chain, b[0])  # both roots cached
    for headers in (
        _with_proof(a[1], _proof(b[1])),  # other batch's proof, own signature
        replace_header(a[1].headers, "kb-sig", dict(b[1].headers)["kb-sig"]),  # other sig
        [
            *replace_header(replace_header(a[1].headers, "kb-sig", None), "kb-sig-proof", None),
            ("kb-sig", dict(b[1].headers)["kb-sig"]),
            ("kb-sig-proof", dict(b[1].headers)["kb-sig-proof"]),
        ],
    ):
        assert reason_of(lambda h=headers: open_router(chain, a[1], headers=h)) == (
            Reason.BAD_SIGNATURE
        )


def test_proof_on_a_v1_message_or_v1_signature_on_a_member_is_refused(chain: Chain) -> None:
    single = chain.sealed()
    batch = sign_batch(unsigned(chain, 2), chain.zvh)
    h = [*single.headers, ("kb-sig-proof", dict(batch[0].headers)["kb-sig-proof"])]
    assert reason_of(lambda: open_router(chain, single, headers=h)) == Reason.BAD_SIGNATURE
    v1_sig = base64.b64encode(chain.zvh.signing.sign(unsigned(chain, 1)[0].to_sign))
    h = replace_header(batch[0].headers, "kb-sig", v1_sig)
    assert reason_of(lambda: open_router(chain, batch[0], headers=h)) == Reason.BAD_SIGNATURE


def test_batch_signature_by_another_key_is_refused(chain: Chain) -> None:
    items = unsigned(chain, 3)
    batch = sign_batch(items, chain.zvh)
    # the provider signs the very same root: right bytes, wrong key
    root, _ = merkle.build([merkle.leaf_hash(i.to_sign) for i in items])
    forged = chain.provider.signing.sign(merkle.batch_signed_bytes(envelope.BATCH_DOMAIN, root, 3))
    h = replace_header(batch[0].headers, "kb-sig", base64.b64encode(forged))
    assert reason_of(lambda: open_router(chain, batch[0], headers=h)) == Reason.BAD_SIGNATURE


def test_cache_never_admits_an_unverified_root(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = unsigned(chain, 4)
    batch = sign_batch(items, chain.zvh)
    good_sig = dict(batch[0].headers)["kb-sig"]
    bad = bytearray(base64.b64decode(good_sig))
    bad[0] ^= 1
    bad_headers = [replace_header(s.headers, "kb-sig", base64.b64encode(bytes(bad))) for s in batch]
    # refused first, and the refusal is not remembered as a success
    for h, s in zip(bad_headers, batch, strict=True):
        assert reason_of(lambda h=h, s=s: open_router(chain, s, headers=h)) == Reason.BAD_SIGNATURE
    assert len(envelope._verified_batches) == 0
    counter = count_verifies(chain, monkeypatch)
    assert open_router(chain, batch[0])
    assert counter[0] == 1 and len(envelope._verified_batches) == 1
    # with the good root cached, a wrong signature over it is still checked, and refused
    for h, s in zip(bad_headers, batch, strict=True):
        assert reason_of(lambda h=h, s=s: open_router(chain, s, headers=h)) == Reason.BAD_SIGNATURE
    assert counter[0] == 5
    for s in batch[1:]:
        assert open_router(chain, s)
    assert counter[0] == 5


def test_batch_key_validity_stays_per_message() -> None:
    rot = Rotation()
    router_pub = rot.router_new.encryption.public_key()

    def items(signer: PartyKeys, times: list[Any]) -> list[Sealed]:
        return [
            seal(
                b"payload",
                EnvelopeMeta(f"m-{i}", "referral", "zvh-utrecht", "router", t, "p-x"),
                signer,
                rot.router_new.key_id,
                router_pub,
                sign=False,
            )
            for i, t in enumerate(times)
        ]

    def open_(s: Sealed, now: Any) -> bytes:
        return open_sealed(
            s.key, s.value, s.headers, registry=rot.registry, keyring=rot.router_ring, now=now
        ).payload

    inside = OLD_UNTIL - timedelta(days=1)
    # old key in the overlap, then one member dated after its end date: that one is refused
    batch = sign_batch(items(rot.old, [inside, inside, OLD_UNTIL]), rot.old)
    assert open_(batch[0], inside) and open_(batch[1], inside)
    with pytest.raises(TrustError) as info:
        open_(batch[2], OLD_UNTIL)
    assert info.value.reason == Reason.KEY_EXPIRED
    # and with expiry_grace, cached roots do not outlive the key
    with pytest.raises(TrustError) as info:
        open_sealed(
            batch[1].key,
            batch[1].value,
            batch[1].headers,
            registry=rot.registry,
            keyring=rot.router_ring,
            now=OLD_UNTIL + timedelta(days=2),
            expiry_grace=timedelta(days=1),
        )
    assert info.value.reason == Reason.KEY_EXPIRED
    # new key across the overlap and after the old one's end
    batch = sign_batch(items(rot.new, [inside, OLD_UNTIL + timedelta(days=3)]), rot.new)
    assert open_(batch[0], inside)
    assert open_(batch[1], OLD_UNTIL + timedelta(days=3))
    # a member of a batch dated too far ahead is refused as before
    batch = sign_batch(items(rot.new, [inside, inside + timedelta(hours=1)]), rot.new)
    assert open_(batch[0], inside)
    with pytest.raises(TrustError) as info:
        open_(batch[1], inside)
    assert info.value.reason == Reason.FUTURE_TIMESTAMP
    assert inside > T0


def test_an_independent_verifier_checks_a_batch_member(chain: Chain) -> None:
    """docs/trust.md 3.4, re-implemented with hashlib and cryptography only."""
    batch = sign_batch(unsigned(chain, 7), chain.zvh)
    s = batch[5]
    h = dict(s.headers)

    def lp(raw: bytes) -> bytes:
        return struct.pack(">I", len(raw)) + raw

    fields = [h[n] for n in ("kb-id", "kb-event", "kb-sender", "kb-recipient", "kb-time")]
    fields += [s.key, h["kb-sig-kid"], h["kb-enc-kid"]]
    signed = b"ketenbus-envelope-v1" + b"".join(lp(f) for f in fields)
    signed += hashlib.sha256(s.value).digest()

    proof = base64.b64decode(h["kb-sig-proof"])
    index, size = struct.unpack(">II", proof[:8])
    path = [proof[i : i + 32] for i in range(8, len(proof), 32)]
    # RFC 9162 2.1.3.2
    r = hashlib.sha256(b"\x00" + signed).digest()
    fn, sn = index, size - 1
    for p in path:
        assert sn != 0
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    message = b"ketenbus-envelope-batch-v1" + struct.pack(">I", size) + r
    public = Ed25519PublicKey.from_public_bytes(chain.zvh.signing_public_raw)
    public.verify(base64.b64decode(h["kb-sig"]), message)  # raises if wrong
    assert (index, size) == (5, 7)
    assert T0 < NOW


# --- the remembered parse ----------------------------------------------------------------------


def test_read_meta_then_open_never_reuses_another_records_parse(chain: Chain) -> None:
    s = chain.sealed()
    assert read_envelope(s.key, s.headers).message_id == "msg-0001"
    tampered = replace_header(s.headers, "kb-id", b"msg-9999")
    assert read_envelope(s.key, tampered).message_id == "msg-9999"
    assert reason_of(lambda: open_router(chain, s, headers=tampered)) == Reason.BAD_SIGNATURE
    assert read_envelope(b"p-other", s.headers).pseudonym == "p-other"
    assert open_router(chain, s)


def test_in_place_change_of_a_header_value_is_seen(chain: Chain) -> None:
    s = chain.sealed()
    headers: list[tuple[str, bytes]] = [(n, bytearray(v)) for n, v in s.headers]  # type: ignore[misc]
    assert read_envelope(s.key, headers).event == "referral"
    event = next(v for n, v in headers if n == "kb-event")
    event[:] = b"claim"  # type: ignore[index]
    assert read_envelope(s.key, headers).event == "claim"
    assert reason_of(lambda: open_router(chain, s, headers=headers)) == Reason.BAD_SIGNATURE


def test_missing_signature_still_comes_before_malformed_fields(chain: Chain) -> None:
    s = chain.sealed()
    assert read_envelope(s.key, s.headers)
    no_sig = replace_header(s.headers, "kb-sig", None)
    assert read_envelope(s.key, no_sig).message_id == "msg-0001"  # verifies nothing
    assert reason_of(lambda: open_router(chain, s, headers=no_sig)) == Reason.MISSING_SIGNATURE
    no_enc = replace_header(s.headers, "kb-enc-kid", None)
    assert read_envelope(s.key, no_enc)
    assert reason_of(lambda: open_router(chain, s, headers=no_enc)) == Reason.MALFORMED_ENVELOPE


def test_sign_batch_of_one_is_the_test_vector_signature() -> None:
    """docs/trust.md 7.1: sealing unsigned and signing a batch of one gives KAT_SIG exactly."""
    from test_trust_envelope import KAT_SEAL_VALUE, KAT_SIG, _kat_inputs

    sender, recipient, meta = _kat_inputs()
    args = (
        b'{"resourceType":"Bundle"}',
        meta,
        sender,
        "router-k1",
        recipient.public_key(),
        X25519PrivateKey.from_private_bytes(bytes(range(64, 96))),
        bytes(range(96, 108)),
    )
    signed = envelope._seal(*args)
    unsigned_one = envelope._seal(*args, sign=False)
    assert unsigned_one.value == KAT_SEAL_VALUE
    [batched] = sign_batch([unsigned_one], sender)
    assert batched == signed
    assert batched.headers == signed.headers
    assert dict(batched.headers)["kb-sig"].decode() == KAT_SIG


def test_a_forked_child_makes_its_own_ephemeral(chain: Chain) -> None:
    import os

    parent = chain.sealed().value[:32]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its ephemeral and leave at once
        try:
            os.write(write, chain.sealed().value[:32])
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != parent
    assert chain.sealed().value[:32] == parent  # the parent keeps its own
