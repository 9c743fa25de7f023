"""Rates of the cryptographic primitives and of seal/open, side by side, for a 5 KB payload.

They put the per-stage profile in proportion: what a message costs in public-key operations
before any JSON, policy or Kafka work. Rates are per CPU second of this thread, so another
process on the core does not lower them; still, read the ratios.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.trust import (
    EnvelopeMeta,
    Keyring,
    PartyKeys,
    PartyRegistry,
    Pseudonymiser,
    generate_party_keys,
    open_sealed,
    registry_entry,
    reset_key_caches,
    seal,
    sign_batch,
    verify_only,
)
from broker.trust.datakeys import (
    DataKeyStore,
    KekRing,
    channel_subject,
    message_context,
    open_carried,
    seal_carried,
)
from schemas.vocab.roles import PartyRole


def rate(fn: Callable[[], object], seconds: float, *, warmup: int = 20) -> float:
    """Calls per CPU second of ``fn`` over about ``seconds`` of CPU time (after a warm-up)."""
    for _ in range(warmup):
        fn()
    step = warmup
    count, start = 0, time.thread_time()
    deadline = start + seconds
    while True:
        for _ in range(step):
            fn()
        count += step
        now = time.thread_time()
        if now >= deadline:
            return count / (now - start)


BATCH = 500
"""Envelopes per batch signature in the batch rows (rates there are per message)."""


def payload_5k() -> bytes:
    entry = {"resource": {"resourceType": "Observation", "status": "final", "note": "x" * 120}}
    bundle = {"resourceType": "Bundle", "type": "message", "entry": [entry] * 25}
    return (json.dumps(bundle).encode() * 2)[:5120]


def measure(seconds: float) -> dict[str, float]:
    """Operations per second of each primitive and envelope operation."""
    payload = payload_5k()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    sender = generate_party_keys("zvh-utrecht", now=t0)
    router = generate_party_keys("router", now=t0)
    registry = PartyRegistry(
        [
            registry_entry(sender, role=PartyRole.ZVH, name="ZVH", valid_from=t0),
            registry_entry(router, role=PartyRole.ROUTER, name="router", valid_from=t0),
        ]
    )
    keyring = Keyring([router])
    now = t0 + timedelta(days=1)
    meta = EnvelopeMeta("m-1", "referral", "zvh-utrecht", "router", now, "p-" + "a" * 26)
    router_public = router.encryption.public_key()
    sealed = seal(payload, meta, sender, router.key_id, router_public)
    aes = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    ed = Ed25519PrivateKey.generate()
    signature = ed.sign(payload)
    ed_public = ed.public_key()
    x_static = X25519PrivateKey.generate()
    x_peer = X25519PrivateKey.generate().public_key()
    pseudonymiser = Pseudonymiser(os.urandom(32))

    def open_once() -> object:
        return open_sealed(
            sealed.key, sealed.value, sealed.headers, registry=registry, keyring=keyring, now=now
        )

    def verify_once() -> object:
        return verify_only(sealed.key, sealed.value, sealed.headers, registry=registry, now=now)

    def seal_fresh() -> object:  # as before key-agreement reuse: a new X25519 key per message
        return seal(
            payload,
            meta,
            sender,
            router.key_id,
            router_public,
            ephemeral=X25519PrivateKey.generate(),
        )

    def open_uncached() -> object:  # the reader's AES-key cache emptied: X25519 + HKDF again
        reset_key_caches()
        return open_once()

    metas = [
        EnvelopeMeta(f"m-{i}", "referral", "zvh-utrecht", "router", now, "p-" + "a" * 26)
        for i in range(BATCH)
    ]
    unsigned = [seal(payload, m, sender, router.key_id, router_public, sign=False) for m in metas]
    members = sign_batch(unsigned, sender)
    member = members[7]

    def sign_batch_once() -> object:
        return sign_batch(unsigned, sender)

    def seal_and_sign_batch() -> object:
        return sign_batch(
            [seal(payload, m, sender, router.key_id, router_public, sign=False) for m in metas],
            sender,
        )

    def verify_member() -> object:
        return verify_only(member.key, member.value, member.headers, registry=registry, now=now)

    def open_member() -> object:
        return open_sealed(
            member.key, member.value, member.headers, registry=registry, keyring=keyring, now=now
        )

    measurements: list[tuple[str, Callable[[], object]]] = [
        ("AES-256-GCM encrypt 5 KB", lambda: aes.encrypt(nonce, payload, b"")),
        ("Ed25519 sign 5 KB", lambda: ed.sign(payload)),
        ("Ed25519 verify 5 KB", lambda: ed_public.verify(signature, payload)),
        ("X25519 exchange (static keys)", lambda: x_static.exchange(x_peer)),
        ("X25519 new key + exchange", lambda: X25519PrivateKey.generate().exchange(x_peer)),
        ("pseudonym (HMAC, cached domain key)", lambda: pseudonymiser.pseudonym("r", "123456782")),
        ("seal 5 KB (envelope, new ephemeral)", seal_fresh),
        (
            "seal 5 KB (envelope, reused ephemeral)",
            lambda: seal(payload, meta, sender, router.key_id, router_public),
        ),
        ("verify_only 5 KB (envelope)", verify_once),
        ("open_sealed 5 KB (envelope, key not cached)", open_uncached),
        ("open_sealed 5 KB (envelope, cached key)", open_once),
    ]
    # per message: one call handles BATCH envelopes
    batched: list[tuple[str, Callable[[], object]]] = [
        (f"sign_batch of {BATCH}, per message", sign_batch_once),
        (f"seal (reused) + sign_batch of {BATCH}, per message", seal_and_sign_batch),
    ]
    after: list[tuple[str, Callable[[], object]]] = [
        ("verify_only batch member, root verified", verify_member),
        ("open_sealed batch member, root verified + cached key", open_member),
    ]
    kek = tempfile.TemporaryDirectory(prefix="ketenbus-bench-kek-")
    measurements += _channel_layer(registry, sender, router, payload, kek.name)
    rates = {name: rate(fn, seconds) for name, fn in measurements}
    rates |= {name: BATCH * rate(fn, seconds, warmup=1) for name, fn in batched}
    rates |= {name: rate(fn, seconds) for name, fn in after}
    kek.cleanup()
    return rates


def _channel_layer(
    registry: PartyRegistry, sender: PartyKeys, router: PartyKeys, payload: bytes, folder: str
) -> list[tuple[str, Callable[[], object]]]:
    """The data layer inside ``in.*``/``out.*`` envelopes (docs/erasure.md): what it adds per
    message once the person's key is known on both sides (the usual case)."""
    KekRing(Path(folder)).create(1)
    secret = os.urandom(32)

    def store(keys: PartyKeys) -> DataKeyStore:
        return DataKeyStore(
            KekRing(Path(folder)),
            registry,
            writer="zvh-utrecht",
            keys=keys,
            owner_secret=secret,
            co_writers=("router",),
        )

    party, reader = store(sender), store(router)
    context = message_context("m-1")

    def seal_once() -> bytes:
        owner = party.owner(channel_subject("123456782"))
        return seal_carried(party, owner, payload, context=context)[0]

    blob = seal_once()

    def open_once() -> bytes:
        return open_carried(reader, blob, context=context)

    open_once()  # the reader knows the key from now on
    return [
        ("channel layer seal 5 KB (person key known)", seal_once),
        ("channel layer open 5 KB (key known)", open_once),
    ]
