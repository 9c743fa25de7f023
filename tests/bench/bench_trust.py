"""Seal/open throughput for a 5 KB payload, side by side with the raw primitives.

Not a test (pytest does not collect ``bench_*.py``). Run from the repository root:

    python tests/bench/bench_trust.py [--seconds 1.5]

Machines are shared and noisy: read the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.trust import (
    EnvelopeMeta,
    Keyring,
    PartyRegistry,
    Pseudonymiser,
    ReplayGuard,
    generate_party_keys,
    open_sealed,
    registry_entry,
    seal,
    verify_only,
)
from schemas.vocab.roles import PartyRole


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(50):
        fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn()
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def payload_5k() -> bytes:
    entry = {"resource": {"resourceType": "Observation", "status": "final", "note": "x" * 120}}
    bundle = {"resourceType": "Bundle", "type": "message", "entry": [entry] * 25}
    raw = json.dumps(bundle).encode()
    return (raw * 2)[:5120]


def main() -> None:
    parser = argparse.ArgumentParser(description="seal/open throughput, 5 KB payload")
    parser.add_argument("--seconds", type=float, default=1.5, help="duration of each measurement")
    seconds = parser.parse_args().seconds

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
    pseudonymiser.pseudonym("router", "123456782")
    guard = ReplayGuard(timedelta(hours=24), capacity=10_000_000)
    counter = iter(range(10**12))

    def guard_step() -> None:
        message_id = f"zvh-utrecht/{next(counter)}"
        guard.check(message_id, now, now)
        guard.remember(message_id)

    def open_once() -> object:
        return open_sealed(
            sealed.key, sealed.value, sealed.headers, registry=registry, keyring=keyring, now=now
        )

    def verify_once() -> object:
        return verify_only(sealed.key, sealed.value, sealed.headers, registry=registry, now=now)

    measurements: list[tuple[str, Callable[[], object]]] = [
        ("raw AES-256-GCM encrypt 5 KB", lambda: aes.encrypt(nonce, payload, b"")),
        ("raw Ed25519 sign 5 KB", lambda: ed.sign(payload)),
        ("raw Ed25519 verify 5 KB", lambda: ed_public.verify(signature, payload)),
        ("raw X25519 exchange (static)", lambda: x_static.exchange(x_peer)),
        ("raw X25519 new key + exchange", lambda: X25519PrivateKey.generate().exchange(x_peer)),
        ("seal 5 KB", lambda: seal(payload, meta, sender, router.key_id, router_public)),
        ("verify_only 5 KB", verify_once),
        ("open_sealed 5 KB", open_once),
        ("pseudonym (cached domain key)", lambda: pseudonymiser.pseudonym("router", "123456782")),
        ("replay guard check + remember", guard_step),
    ]
    results = {name: rate(fn, seconds) for name, fn in measurements}
    aes_rate = results["raw AES-256-GCM encrypt 5 KB"]
    sign_rate = results["raw Ed25519 sign 5 KB"]
    print(
        f"payload {len(payload)} bytes; sealed value {len(sealed.value)} bytes; "
        f"{seconds:.1f} s per line; Python {sys.version.split()[0]}"
    )
    print(f"{'operation':34} {'ops/s':>10} {'vs AES-GCM':>11} {'vs Ed25519 sign':>16}")
    for name, value in results.items():
        print(f"{name:34} {value:10,.0f} {value / aes_rate:10.3f}x {value / sign_rate:15.2f}x")
    seal_rate, open_rate = results["seal 5 KB"], results["open_sealed 5 KB"]
    print(
        f"\nseal + open per message: {1e6 / seal_rate + 1e6 / open_rate:.0f} us "
        f"-> about {1 / (1 / seal_rate + 1 / open_rate):,.0f} relayed messages/s per core "
        "(router: open inbound + seal outbound), before Kafka and policy work"
    )


if __name__ == "__main__":
    main()
