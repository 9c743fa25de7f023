"""Helpers for the trust tests: a small chain of parties with freshly generated keys.

(A uniquely named module rather than ``conftest`` so that tests can import it without clashing
with other test packages' conftests.)

Keys are generated at run time (never committed). Times are fixed so tests do not depend on the
clock: everything happens around ``T0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from broker.trust import (
    EnvelopeMeta,
    Keyring,
    PartyKeys,
    PartyRegistry,
    Sealed,
    generate_party_keys,
    registry_entry,
    seal_to,
)
from schemas.vocab.roles import PartyRole

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
"""When the chain's first keys became valid."""

NOW = T0 + timedelta(days=1)
"""When the tests' messages are sent and read."""

V1_HEADERS = {
    "content-type",
    "kb-id",
    "kb-event",
    "kb-sender",
    "kb-recipient",
    "kb-time",
    "kb-sig-kid",
    "kb-enc-kid",
    "kb-sig",
}
"""The headers of a v1 envelope (docs/trust.md 3.2); nothing else may appear in clear."""


@dataclass
class Chain:
    """Three parties (ZVH, router, provider) with one key each, and their registry."""

    zvh: PartyKeys
    router: PartyKeys
    provider: PartyKeys
    registry: PartyRegistry

    def keyring(self, keys: PartyKeys) -> Keyring:
        return Keyring([keys])

    def meta(self, **changes: object) -> EnvelopeMeta:
        fields: dict[str, object] = {
            "message_id": "msg-0001",
            "event": "referral",
            "sender": "zvh-utrecht",
            "recipient": "router",
            "timestamp": NOW,
            "pseudonym": "p-" + "a" * 26,
        }
        fields.update(changes)
        return EnvelopeMeta(**fields)  # type: ignore[arg-type]

    def sealed(self, payload: bytes = b'{"resourceType": "Bundle"}', **changes: object) -> Sealed:
        """A message from the ZVH to the router (fields overridable)."""
        return seal_to(payload, self.meta(**changes), self.zvh, self.registry)


def make_chain() -> Chain:
    zvh = generate_party_keys("zvh-utrecht", now=T0)
    router = generate_party_keys("router", now=T0)
    provider = generate_party_keys("fivoor", now=T0)
    registry = PartyRegistry(
        [
            registry_entry(zvh, role=PartyRole.ZVH, name="ZVH Utrecht", valid_from=T0),
            registry_entry(router, role=PartyRole.ROUTER, name="ketenbus router", valid_from=T0),
            registry_entry(
                provider,
                role=PartyRole.COORDINATING_PROVIDER,
                name="Fivoor",
                region="midden-nederland",
                identifiers={"agb": "73730101"},
                valid_from=T0,
            ),
        ]
    )
    return Chain(zvh=zvh, router=router, provider=provider, registry=registry)


def replace_header(
    headers: list[tuple[str, bytes]], name: str, value: bytes | None
) -> list[tuple[str, bytes]]:
    """Headers with ``name`` set to ``value`` (or removed when ``value`` is None)."""
    out = [(n, v) for n, v in headers if n != name]
    if value is not None:
        out.append((name, value))
    return out
