"""The client side of trust for one party: seal what it sends for the router, open and verify
what the router delivers, and key records by the party's own pseudonym of the person.

With a ``channel`` (the party's key store, shared with the router: ``docs/erasure.md``) a
message about a person carries its payload under the person's data key *inside* the envelope
(``ketenbus-pdk-v1``): the envelope's signature still covers exactly what is on the wire, and
``ketenbus erase`` makes the record unreadable on ``in.*`` and ``out.<party>`` for everyone,
the party's own private key included (AVG art. 17)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from broker.trust import (
    Keyring,
    Opened,
    PartyKeys,
    PartyRegistry,
    Pseudonymiser,
    TrustError,
    open_sealed,
    seal_for,
    sign_batch,
)
from broker.trust.datakeys import (
    DataKeyStore,
    KeyRecord,
    carried,
    channel_subject,
    layer_dkid,
    message_context,
    open_carried,
    seal_carried,
)
from broker.trust.errors import Reason
from schemas.messaging import dumps, read_meta


@dataclass
class PartyClient:
    party_id: str
    keys: PartyKeys
    keyring: Keyring
    registry: PartyRegistry
    pseudonyms: Pseudonymiser
    router_id: str = "router"
    channel: DataKeyStore | None = None
    pending_keys: list[KeyRecord] = field(default_factory=list)

    def use_registry(
        self, registry: PartyRegistry, keyring: Keyring | None = None, at: datetime | None = None
    ) -> None:
        """Follow a new signed registry (and the keyring reloaded from disk, which may hold the
        key a rotation registered): read with it at once, and sign with the newest own key it
        lists as valid now. With none valid (a revoked key), keep the current one: what it
        sends is then refused with its reason, never silently dropped."""
        self.registry = registry
        if keyring is not None:
            self.keyring = keyring
        with contextlib.suppress(TrustError):
            self.keys = self.keyring.for_signing(registry, at or datetime.now(UTC))

    def seal_message(
        self, bundle: dict[str, Any], bsn: str | None, now: datetime | None = None
    ) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Seal a message Bundle for the router; returns (key, value, headers)."""
        return self.seal_messages([(bundle, bsn)], now)[0]

    def seal_messages(
        self, messages: Sequence[tuple[dict[str, Any], str | None]], now: datetime | None = None
    ) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
        """Seal message Bundles (with their person's BSN, or None) for the router, in order,
        under one batch signature (one message: the ordinary signature); returns (key, value,
        headers) per message. Send them all: each one verifies on its own."""
        now = now or datetime.now(UTC)
        unsigned = []
        for bundle, bsn in messages:
            meta = read_meta(bundle)
            unsigned.append(
                seal_for(
                    self.inner(dumps(bundle), bsn, meta.message_id),
                    self.keys,
                    self.registry,
                    self.router_id,
                    event=meta.event.value,
                    message_id=meta.message_id,
                    pseudonym=self.pseudonyms.pseudonym(self.party_id, bsn) if bsn else "none",
                    timestamp=meta.timestamp,
                    key_at=now,
                    sign=False,
                )
            )
        return [(s.key, s.value, list(s.headers)) for s in sign_batch(unsigned, self.keys)]

    def open(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> Opened:
        """Verify the router's signature and decrypt; raises ``TrustError`` with a reason."""
        opened = open_sealed(key, value, headers, registry=self.registry, keyring=self.keyring)
        if opened.meta.sender != self.router_id:
            raise TrustError("unknown-sender", "only the router delivers to a party's topic")
        if not carried(opened.payload) and layer_dkid(opened.payload) is None:
            return opened
        if self.channel is None:
            raise TrustError(Reason.DECRYPT_FAILED, "a person's data layer: no key store here")
        inner = open_carried(
            self.channel, opened.payload, context=message_context(opened.meta.message_id)
        )
        return replace(opened, payload=inner)

    def inner(self, payload: bytes, bsn: str | None, message_id: str) -> bytes:
        """``payload`` under the person's channel key when there is a person and a channel; a
        new key's record waits in ``pending_keys`` and must reach the key-store topic before
        the message (:meth:`drain_keys`)."""
        if self.channel is None or not bsn:
            return payload
        owner = self.channel.owner(channel_subject(bsn))
        sealed, made = seal_carried(
            self.channel, owner, payload, context=message_context(message_id)
        )
        if made is not None:
            self.pending_keys.append(made)
        return sealed

    def drain_keys(self) -> list[tuple[bytes, bytes]]:
        """The records of keys made since the last call, as Kafka ``(key, value)``."""
        out = [(r.dkid.encode("ascii"), r.value()) for r in self.pending_keys]
        self.pending_keys.clear()
        return out

    def seal_for_router(
        self, payload: bytes, event: str, message_id: str, now: datetime | None = None
    ) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Seal arbitrary bytes (e.g. refused input for the dead-letter topic) for the router."""
        sealed = seal_for(
            payload,
            self.keys,
            self.registry,
            self.router_id,
            event=event,
            message_id=message_id,
            pseudonym="none",
            timestamp=now or datetime.now(UTC),
        )
        return sealed.key, sealed.value, list(sealed.headers)
