"""The data layer inside ``in.*`` and ``out.<party>`` envelopes (issue 16 §6, AVG art. 17;
``docs/erasure.md``): a party's message about a person is under the person's key on that
party's channel, which the router opens from the key record carried with it; after the erasure
nothing opens it, not the recipient's private key, not a fresh store rebuilt from the whole
topic with every KEK file left on disk, not the key record carried inside the envelope.

Forgeries are made with *another valid key*: a registered party that signs a key record (or a
notice) in someone else's name, or in its own, is refused."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.trust import open_sealed, seal_for
from broker.trust.datakeys import (
    CARRIED_PREFIX,
    DataKeyStore,
    ErasedKey,
    KekRing,
    KeyRecord,
    channel_subject,
    message_context,
    open_carried,
    seal_carried,
)
from broker.trust.errors import TrustError
from broker.trust.keys import Keyring, PartyKeys, generate_party_keys
from broker.trust.party import PartyClient
from broker.trust.pseudonym import Pseudonymiser
from broker.trust.registry import PartyRegistry, PartyRole, registry_entry
from schemas.erasure_notice import ERASURE_NOTICE_EVENT, ErasureNotice

BSN, OTHER = "999990019", "999990020"
SECRET = os.urandom(32)  # the channel's owner secret, shared by the party and the router
Topic = list[tuple[bytes, bytes]]


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.kek = tmp_path / "kek" / "zvh-a"
        self.router = generate_party_keys("router")
        self.zvh = generate_party_keys("zvh-a")
        self.other = generate_party_keys("zvh-b")  # another registered party: the forger
        self.registry = PartyRegistry(
            [
                registry_entry(self.router, role=PartyRole.ROUTER, name="router"),
                registry_entry(self.zvh, role=PartyRole.ZVH, name="ZVH A"),
                registry_entry(self.other, role=PartyRole.ZVH, name="ZVH B"),
            ]
        )
        KekRing(self.kek).create(1)

    def channel(self, keys: PartyKeys | None) -> DataKeyStore:
        """zvh-a's channel store as the party (``keys`` = its own) or the router sees it."""
        return DataKeyStore(
            KekRing(self.kek), self.registry, writer="zvh-a", keys=keys,
            owner_secret=SECRET, co_writers=("router",),
        )  # fmt: skip

    def client(self, channel: DataKeyStore | None) -> PartyClient:
        return PartyClient(
            "zvh-a", self.zvh, Keyring([self.zvh]), self.registry,
            Pseudonymiser(os.urandom(32)), channel=channel,
        )  # fmt: skip


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def sealed(
    store: DataKeyStore, bsn: str, payload: bytes, mid: str
) -> tuple[bytes, KeyRecord | None]:
    return seal_carried(store, store.owner(channel_subject(bsn)), payload,
                        context=message_context(mid))  # fmt: skip


def test_the_router_opens_a_party_message_from_the_carried_key_alone(w: World) -> None:
    party = w.channel(w.zvh)
    blob, made = sealed(party, BSN, b'{"family":"Jansen"}', "m-1")
    assert made is not None and made.writer == "zvh-a"
    assert b"Jansen" not in blob
    router = w.channel(w.router)  # nothing loaded from the topic: the key travels with it
    assert open_carried(router, blob, context=message_context("m-1")) == b'{"family":"Jansen"}'
    with pytest.raises(TrustError):  # bound to its message: cut into another, it does not open
        open_carried(w.channel(w.router), blob, context=message_context("m-2"))


def test_the_envelope_signature_covers_the_wire_and_the_private_key_alone_reads_nothing(
    w: World,
) -> None:
    client = w.client(w.channel(w.zvh))
    bundle_bytes = b"Jansen " + BSN.encode()
    inner = client.inner(bundle_bytes, BSN, "m-1")
    s = seal_for(inner, w.zvh, w.registry, "router", event="referral", message_id="m-1",
                 pseudonym="p", timestamp=datetime.now(UTC))  # fmt: skip
    opened = open_sealed(s.key, s.value, s.headers, registry=w.registry,
                         keyring=Keyring([w.router]))  # fmt: skip
    assert opened.payload == inner  # the signature verifies over exactly what is on the wire
    assert BSN.encode() not in opened.payload and b"Jansen" not in opened.payload
    assert opened.payload.startswith(CARRIED_PREFIX)
    assert len(client.drain_keys()) == 1 and client.drain_keys() == []  # published once


def test_after_the_erasure_nothing_opens_it_and_the_carried_key_brings_nothing_back(
    w: World,
) -> None:
    topic: Topic = []
    party = w.channel(w.zvh)
    gone, made = sealed(party, BSN, b"Jansen", "m-1")
    kept, made2 = sealed(party, OTHER, b"Pietersen", "m-2")
    assert made is not None and made2 is not None
    topic += [(r.dkid.encode(), r.value()) for r in (made, made2)]
    # the router's erase: tombstones, survivors re-wrapped under g+1, then g destroyed
    router = w.channel(w.router).load(topic)
    records, new = router.erase(router.owner(channel_subject(BSN)))
    topic += [(r.dkid.encode(), r.value()) for r in records]
    KekRing(w.kek).destroy_older(than=new)
    # an independent reader: the whole topic, every KEK file on disk, the carried record too
    fresh = w.channel(None).load(topic)
    with pytest.raises(ErasedKey):
        open_carried(fresh, gone, context=message_context("m-1"))
    assert open_carried(fresh, kept, context=message_context("m-2")) == b"Pietersen"
    # a store that never saw the topic has only the carried record: its KEK is gone
    with pytest.raises(ErasedKey):
        open_carried(w.channel(None), gone, context=message_context("m-1"))
    # the running party applied the tombstone: its in-memory key is gone too
    for key, value in topic:
        party.apply(key, value)
    with pytest.raises(ErasedKey):
        open_carried(party, gone, context=message_context("m-1"))
    # a later message about the person gets a new key, under the new generation
    _, made3 = sealed(party, BSN, b"new", "m-3")
    assert made3 is not None and made3.generation == new


def test_a_key_record_forged_with_another_valid_key_is_not_taken(w: World) -> None:
    party = w.channel(w.zvh)
    blob, made = sealed(party, BSN, b"Jansen", "m-1")
    assert made is not None
    # zvh-b re-signs the record in zvh-a's name, then in its own: both refused
    as_zvh_a = made.signed(w.other)
    forged_own = KeyRecord(made.dkid, made.owner, made.generation, made.wrapped, "zvh-b",
                           made.at).signed(w.other)  # fmt: skip
    for forged in (as_zvh_a, forged_own):
        value = forged.value()
        swapped = CARRIED_PREFIX + len(value).to_bytes(4, "big") + value
        swapped += blob[len(CARRIED_PREFIX) + 4 + len(made.value()) :]
        router = w.channel(w.router)
        with pytest.raises(ErasedKey):  # the key is not taken, so the layer does not open
            open_carried(router, swapped, context=message_context("m-1"))
        assert router.refused == 1


def test_a_cut_short_or_hostile_carried_record_is_refused(w: World) -> None:
    party = w.channel(w.zvh)
    blob, _ = sealed(party, BSN, b"Jansen", "m-1")
    for hostile in (
        CARRIED_PREFIX + (10**6).to_bytes(4, "big") + b"{}",
        CARRIED_PREFIX + b"\x00\x00\x00\x02{}" + b"ketenbus-pdk-v1\xff",
        blob[:-1],
        CARRIED_PREFIX + b"\x00\x00",
    ):
        with pytest.raises(TrustError):
            open_carried(w.channel(w.router), hostile, context=message_context("m-1"))


def test_the_erasure_notice_carries_only_the_fact_and_the_pseudonym() -> None:
    notice = ErasureNotice(str(uuid.uuid4()), "2026-12-07T01:00:00+00:00", "Ab3_-xYz")
    raw = notice.to_json()
    assert ErasureNotice.parse(raw) == notice
    assert set(__import__("json").loads(raw)) == {
        "kind", "id", "erased_at", "pseudonym", "law", "what"}  # fmt: skip
    assert ERASURE_NOTICE_EVENT in raw.decode()
    for hostile in (
        raw.replace(b'"Ab3_-xYz"', b'"Jansen, 999990019 woont in Utrecht"'),
        raw.replace(b'"kind"', b'"soort"'),
        raw.replace(b"}", b', "bsn": "999990019"}'),
        b"NaN",
        b"[]",
        raw.replace(b"AVG art. 17(2) en 19", b"iets anders"),
    ):
        with pytest.raises(ValueError):
            ErasureNotice.parse(hostile)


def test_a_party_opens_only_the_router_s_deliveries(w: World) -> None:
    """A notice (or any delivery) sealed by another registered party, with its own valid key,
    is refused before its content is read."""
    client = w.client(w.channel(w.zvh))
    notice = ErasureNotice("n-1", "2026-12-07T01:00:00+00:00", "p")
    forged = seal_for(notice.to_json(), w.other, w.registry, "zvh-a",
                      event=ERASURE_NOTICE_EVENT, message_id="n-1", pseudonym="p",
                      timestamp=datetime.now(UTC))  # fmt: skip
    with pytest.raises(TrustError):
        client.open(forged.key, forged.value, list(forged.headers))
    genuine = seal_for(notice.to_json(), w.router, w.registry, "zvh-a",
                       event=ERASURE_NOTICE_EVENT, message_id="n-1", pseudonym="p",
                       timestamp=datetime.now(UTC))  # fmt: skip
    assert client.open(genuine.key, genuine.value, list(genuine.headers)).payload == (
        notice.to_json()
    )


def test_the_owner_memo_gives_the_plain_keyed_hash(w: World) -> None:
    """The hot path asks a store for a person's owner per message; the memo must give exactly
    the HMAC its spec says (docs/erasure.md), cold or warm."""
    import base64
    import hashlib
    import hmac

    store = w.channel(None)
    for subject in (channel_subject(BSN), channel_subject(OTHER), "case:MN-1", "é"):
        mac = hmac.new(SECRET, b"keystore|" + subject.encode(), hashlib.sha256).digest()
        spec = base64.urlsafe_b64encode(mac[:18]).decode("ascii")
        assert store.owner(subject) == spec  # cold
        assert store.owner(subject) == spec  # warm
    assert w.channel(None).owner(channel_subject(BSN)) == store.owner(channel_subject(BSN))


def test_a_write_back_never_brings_an_erased_key_back(w: World) -> None:
    """After a broker loss a process writes its live keys back (``snapshot``). One that did
    not see the erasure's records before the loss still holds the erased key in memory: it
    must not re-wrap it under the new KEK (that would make the person readable again); only
    keys whose newest wrap it saw is under a KEK still on disk are written back."""
    topic: Topic = []
    party = w.channel(w.zvh)
    _, made = sealed(party, BSN, b"Jansen", "m-1")
    _, made2 = sealed(party, OTHER, b"Pietersen", "m-2")
    assert made is not None and made2 is not None
    topic += [(r.dkid.encode(), r.value()) for r in (made, made2)]
    behind = w.channel(w.zvh).load(topic)  # will not see the erasure's records
    router = w.channel(w.router).load(topic)
    records, new = router.erase(router.owner(channel_subject(BSN)))
    KekRing(w.kek).destroy_older(than=new)
    assert behind.live_keys(behind.owner(channel_subject(BSN)))  # still in its memory
    assert behind.snapshot() == []  # neither the erased key nor the unseen survivor
    for r in records:  # a process that saw the erasure writes the survivor back
        party.apply(r.dkid.encode(), r.value())
    assert [r.dkid for r in party.snapshot()] == [made2.dkid]
