"""Rates of the cryptographic primitives and of seal/open, side by side, for a 5 KB payload.

They put the per-stage profile in proportion: what a message costs in public-key operations
before any JSON, policy or Kafka work. Rates are per CPU second of this thread, so another
process on the core does not lower them; still, read the ratios.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.trust import (
    EnvelopeMeta,
    Keyring,
    PartyRegistry,
    Pseudonymiser,
    generate_party_keys,
    open_sealed,
    registry_entry,
    seal,
    verify_only,
)
from schemas.vocab.roles import PartyRole


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per CPU second of ``fn`` over about ``seconds`` of CPU time (after a warm-up)."""
    for _ in range(20):
        fn()
    count, start = 0, time.thread_time()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn()
        count += 20
        now = time.thread_time()
        if now >= deadline:
            return count / (now - start)


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

    measurements: list[tuple[str, Callable[[], object]]] = [
        ("AES-256-GCM encrypt 5 KB", lambda: aes.encrypt(nonce, payload, b"")),
        ("Ed25519 sign 5 KB", lambda: ed.sign(payload)),
        ("Ed25519 verify 5 KB", lambda: ed_public.verify(signature, payload)),
        ("X25519 exchange (static keys)", lambda: x_static.exchange(x_peer)),
        ("X25519 new key + exchange", lambda: X25519PrivateKey.generate().exchange(x_peer)),
        ("pseudonym (HMAC, cached domain key)", lambda: pseudonymiser.pseudonym("r", "123456782")),
        ("seal 5 KB (envelope)", lambda: seal(payload, meta, sender, router.key_id, router_public)),
        ("verify_only 5 KB (envelope)", verify_once),
        ("open_sealed 5 KB (envelope)", open_once),
    ]
    return {name: rate(fn, seconds) for name, fn in measurements}
