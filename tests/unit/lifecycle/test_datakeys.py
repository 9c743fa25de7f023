"""The per-person data-key store (crypto-shredding, issue 16 §6; AVG art. 17).

Every test rebuilds the store from the records as a topic would hold them *all* -- the embedded
broker never compacts -- so forgetting is shown to survive a rebuild, and every KEK file left on
disk is given to the reader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.trust.datakeys import (
    DataKeyStore,
    ErasedKey,
    KekRing,
    KeyRecord,
    decrypt_layer,
    encrypt_layer,
)
from broker.trust.errors import TrustError
from broker.trust.keys import generate_party_keys
from broker.trust.registry import PartyRegistry, PartyRole, registry_entry

SECRET = os.urandom(32)
Topic = list[tuple[bytes | None, bytes | None]]


@pytest.fixture
def world(tmp_path: Path) -> tuple[PartyRegistry, object, object]:
    router = generate_party_keys("router")
    zvh = generate_party_keys("zvh-utrecht")
    registry = PartyRegistry(
        [
            registry_entry(router, role=PartyRole.ROUTER, name="router"),
            registry_entry(zvh, role=PartyRole.ZVH, name="ZVH"),
        ]
    )
    return registry, router, zvh


def store(tmp_path: Path, world: tuple, *, writer_keys: bool = True) -> DataKeyStore:
    registry, router, _ = world
    return DataKeyStore(
        KekRing(tmp_path / "kek"),
        registry,
        writer="router",
        keys=router if writer_keys else None,
        owner_secret=SECRET,
    )


def publish(topic: Topic, *records: KeyRecord | None) -> None:
    for r in records:
        if r is not None:
            topic.append((r.dkid.encode(), r.value()))


def test_a_key_survives_a_rebuild_and_opens_its_layer(tmp_path: Path, world: tuple) -> None:
    topic: Topic = []
    s = store(tmp_path, world)
    dkid, dk, rec = s.key_for(s.owner("999990019"))
    publish(topic, rec)
    blob = encrypt_layer(dkid, dk, b"Jansen 1990-01-01", context=b"consent")
    again = store(tmp_path, world, writer_keys=False).load(topic)
    assert decrypt_layer(again, blob, context=b"consent") == b"Jansen 1990-01-01"
    assert s.key_for(s.owner("999990019"))[2] is None  # one key per person, reused
    with pytest.raises(TrustError):
        decrypt_layer(again, blob, context=b"dead-letter")  # bound to where it is used


def test_erasure_survives_a_rebuild_from_the_whole_topic(tmp_path: Path, world: tuple) -> None:
    topic: Topic = []
    s = store(tmp_path, world)
    one, two = s.owner("999990019"), s.owner("999990020")
    d1, k1, r1 = s.key_for(one)
    d2, k2, r2 = s.key_for(two)
    publish(topic, r1, r2)
    b1 = encrypt_layer(d1, k1, b"person one", context=b"c")
    b2 = encrypt_layer(d2, k2, b"person two", context=b"c")
    records, new = s.erase(one)
    publish(topic, *records)
    s.kek.destroy_older(than=new)
    assert s.kek.generations() == [new]
    rebuilt = store(tmp_path, world, writer_keys=False).load(topic)  # nothing compacted
    with pytest.raises(ErasedKey):
        decrypt_layer(rebuilt, b1, context=b"c")
    assert decrypt_layer(rebuilt, b2, context=b"c") == b"person two"
    # even ignoring the tombstone: the erased key's only wraps are under the destroyed KEK
    no_tombstones = [(k, v) for k, v in topic if b'"gen":0' not in (v or b"")]
    forgetful = store(tmp_path, world, writer_keys=False).load(no_tombstones)
    with pytest.raises(ErasedKey):
        forgetful.key(d1)
    assert forgetful.key(d2) == k2


def test_a_new_key_after_erasure_is_new(tmp_path: Path, world: tuple) -> None:
    topic: Topic = []
    s = store(tmp_path, world)
    owner = s.owner("999990019")
    d1, _, r1 = s.key_for(owner)
    publish(topic, r1)
    records, new = s.erase(owner)
    publish(topic, *records)
    s.kek.destroy_older(than=new)
    d2, k2, r2 = s.key_for(owner)
    publish(topic, r2)
    assert d2 != d1
    assert store(tmp_path, world).load(topic).key(d2) == k2


def test_forged_records_with_another_valid_key_are_refused(tmp_path: Path, world: tuple) -> None:
    zvh = world[2]
    topic: Topic = []
    s = store(tmp_path, world)
    owner = s.owner("999990019")
    dkid, dk, rec = s.key_for(owner)
    publish(topic, rec)
    assert rec is not None
    # a tombstone that would erase the person, signed by the ZVH's own valid key
    forged = KeyRecord(dkid, owner, 0, b"", "router", rec.at).signed(zvh)
    # a tombstone claiming the ZVH as writer
    forged_writer = KeyRecord(dkid, owner, 0, b"", "zvh-utrecht", rec.at).signed(zvh)
    # a changed record: the router's signature over other bytes
    tampered = rec.value().replace(b'"gen":1', b'"gen":0')
    topic += [
        (dkid.encode(), forged.value()),
        (dkid.encode(), forged_writer.value()),
        (dkid.encode(), tampered),
        (dkid.encode(), None),  # an unsigned Kafka tombstone
        (dkid.encode(), b'{"dkid": "\\u0000"}'),
        (b"other-key", rec.value()),  # a record moved to another Kafka key
    ]
    rebuilt = store(tmp_path, world, writer_keys=False).load(topic)
    assert rebuilt.key(dkid) == dk
    assert rebuilt.refused == 5


def test_a_key_wrapped_without_the_kek_is_not_taken(tmp_path: Path, world: tuple) -> None:
    """Someone with the router's signing key but not the KEK cannot inject a key it knows."""
    registry, router, _ = world
    s = store(tmp_path, world)
    s.kek.current()  # the deployment's own KEK of generation 1
    owner = s.owner("999990019")
    other = DataKeyStore(
        KekRing(tmp_path / "other-kek"),
        registry,
        writer="router",
        keys=router,
        owner_secret=SECRET,
    )
    _, _, injected = other.key_for(owner)
    assert injected is not None
    rebuilt = store(tmp_path, world, writer_keys=False).load(
        [(injected.dkid.encode(), injected.value())]
    )
    assert rebuilt.unreadable == 1
    with pytest.raises(ErasedKey):
        rebuilt.key(injected.dkid)


def test_only_the_writer_writes(tmp_path: Path, world: tuple) -> None:
    reader = store(tmp_path, world, writer_keys=False)
    with pytest.raises(TrustError):
        reader.key_for(reader.owner("999990019"))


def test_kek_files_are_private(tmp_path: Path, world: tuple) -> None:
    s = store(tmp_path, world)
    gen = s.kek.current()
    path = tmp_path / "kek" / f"kek-{gen}.key"
    assert path.stat().st_mode & 0o077 == 0
    assert (tmp_path / "kek").stat().st_mode & 0o077 == 0


def test_owner_names_no_one(tmp_path: Path, world: tuple) -> None:
    s = store(tmp_path, world)
    owner = s.owner("999990019")
    assert "999990019" not in owner and owner == s.owner("999990019")
    assert owner != s.owner("case:999990019")


def test_sealed_detail_under_a_person_key_opens_then_reads_erased(
    tmp_path: Path, world: tuple
) -> None:
    """docs/audit-format.md 5.1: the detail is under the person's data key; after erasure the
    compliance view gets 'erased', not a guess, while the sealed text itself is unchanged."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from broker.audit.sealed import (
        SealedDetailErased,
        SealedDetailError,
        SealReader,
        open_detail,
        seal_detail,
    )

    topic: Topic = []
    s = store(tmp_path, world)
    compliance = X25519PrivateKey.generate()

    def datakey(person: str) -> tuple[str, bytes]:
        dkid, dk, rec = s.key_for(s.owner(person))
        publish(topic, rec)
        return dkid, dk

    reader = SealReader("web-k1", compliance.public_key(), datakey)
    detail = {"justification": "Jansen weigert contact"}
    one = seal_detail(detail, chain="router-1", event_id="e1", reader=reader, person="P1")
    two = seal_detail(detail, chain="router-1", event_id="e2", reader=reader, person="P2")
    keys = {"web-k1": compliance}
    rebuilt = store(tmp_path, world, writer_keys=False).load(topic)
    assert open_detail(one, chain="router-1", event_id="e1", keys=keys, datakeys=rebuilt) == detail
    with pytest.raises(SealedDetailError):  # needs the key store: the reader key alone is not it
        open_detail(one, chain="router-1", event_id="e1", keys=keys)
    with pytest.raises(SealedDetailError):  # moved to another event: the aad binds it
        open_detail(one, chain="router-1", event_id="e2", keys=keys, datakeys=rebuilt)
    records, new = s.erase(s.owner("P1"))
    publish(topic, *records)
    s.kek.destroy_older(than=new)
    after = store(tmp_path, world, writer_keys=False).load(topic)
    with pytest.raises(SealedDetailErased):
        open_detail(one, chain="router-1", event_id="e1", keys=keys, datakeys=after)
    assert open_detail(two, chain="router-1", event_id="e2", keys=keys, datakeys=after) == detail


def test_an_erasure_that_stopped_half_way_is_finished_by_the_next(
    tmp_path: Path, world: tuple
) -> None:
    """An erasure that made generation g+1 but stopped before destroying g (a crash, a broker
    that went away) must not leave g behind for ever: the next erasure destroys every older
    generation, so the first person's key is gone too."""
    topic: Topic = []
    s = store(tmp_path, world)
    one, two = s.owner("999990019"), s.owner("999990020")
    d1, _, r1 = s.key_for(one)
    d2, k2, r2 = s.key_for(two)
    publish(topic, r1, r2)
    records, _ = s.erase(one)  # published, but the KEK of generation 1 was never destroyed
    publish(topic, *records)
    again = store(tmp_path, world).load(topic)
    records, new = again.erase(again.owner("999990021"))  # the next erasure, of someone else
    publish(topic, *records)
    again.kek.destroy_older(than=new)
    assert again.kek.generations() == [new] == [3]
    no_tombstones = [(k, v) for k, v in topic if b'"gen":0' not in (v or b"")]
    rebuilt = store(tmp_path, world, writer_keys=False).load(no_tombstones)
    with pytest.raises(ErasedKey):
        rebuilt.key(d1)
    assert rebuilt.key(d2) == k2


def test_a_follower_is_told_of_each_erasure_once_and_knows_the_owner_erased(
    tmp_path: Path, world: tuple
) -> None:
    """A second router instance learns of an erasure from the tombstone: ``apply`` names the
    owner the first time only (a replayed tombstone must not erase a person who consented again
    since), and ``erased_owner`` holds until a new key is made (docs/erasure.md)."""
    topic: Topic = []
    s = store(tmp_path, world)
    owner, other = s.owner("999990019"), s.owner("999990020")
    publish(topic, s.key_for(owner)[2], s.key_for(other)[2])
    follower = store(tmp_path, world, writer_keys=False).load(topic)
    assert not follower.erased_owner(owner)
    records, _ = s.erase(owner)
    told = [follower.apply(k, v) for k, v in [(r.dkid.encode(), r.value()) for r in records]]
    assert told.count(owner) == 1 and other not in told
    assert follower.erased_owner(owner) and s.erased_owner(owner)
    assert not follower.erased_owner(other)
    assert follower.apply(records[0].dkid.encode(), records[0].value()) is None  # a replay
    s.key_for(owner)  # the person consents again after the erasure: a new key, not erased
    assert not s.erased_owner(owner)


def test_a_forged_tombstone_names_no_one(tmp_path: Path, world: tuple) -> None:
    """A tombstone signed with another valid key (the ZVH's) is refused and not reported as an
    erasure: it would otherwise make every router drop a person's consents (denial of service)."""
    _, _, zvh = world
    s = store(tmp_path, world)
    owner = s.owner("999990019")
    dkid, _, rec = s.key_for(owner)
    assert rec is not None
    follower = store(tmp_path, world, writer_keys=False).load([(dkid.encode(), rec.value())])
    forged = KeyRecord(dkid, owner, 0, b"", "router", "2026-01-01T00:00:00+00:00").signed(zvh)
    assert follower.apply(dkid.encode(), forged.value()) is None
    assert not follower.erased_owner(owner) and follower.live_keys(owner)


def _erase_as_the_command_does(
    tmp_path: Path, world: tuple, topic: Topic, owner: str
) -> DataKeyStore:
    """``ketenbus erase``'s order (broker/apps/cli/lifecycle.py): read the store, make g+1,
    ledger, tombstones and re-wraps on the topic, then destroy the old generations."""
    eraser = store(tmp_path, world).load(topic)
    records, new = eraser.erase(owner)
    eraser.kek.record_erasure(new, (r.dkid for r in records if r.erased))
    publish(topic, *records)
    eraser.kek.destroy_older(than=new)
    return eraser


def test_a_process_the_broker_loss_overtook_keeps_survivors_and_forgets_the_erased(
    tmp_path: Path, world: tuple
) -> None:
    """A running process that saw neither the tombstone nor the re-wraps (the broker lost them
    before it could read them) writes back the survivor and not the erased person: the
    erasure ledger decides. Before the ledger, the survivor was left out (data lost)."""
    topic: Topic = []
    running = store(tmp_path, world)
    one, two = running.owner("999990019"), running.owner("999990020")
    d1, k1, r1 = running.key_for(one)
    d2, k2, r2 = running.key_for(two)
    publish(topic, r1, r2)
    b1 = encrypt_layer(d1, k1, b"person one", context=b"c")
    b2 = encrypt_layer(d2, k2, b"person two", context=b"c")
    _erase_as_the_command_does(tmp_path, world, topic, one)
    # the broker loses every topic; the running process writes its store back
    restored: Topic = []
    publish(restored, *running.snapshot())
    assert running.erased_owner(one) and not running.erased_owner(two)
    reader = store(tmp_path, world, writer_keys=False).load(restored)
    assert decrypt_layer(reader, b2, context=b"c") == b"person two"
    with pytest.raises(ErasedKey):
        decrypt_layer(reader, b1, context=b"c")
    # and the old topic, with every KEK left, opens neither the erased key nor a write-back of it
    everything = store(tmp_path, world, writer_keys=False).load([*topic, *restored])
    with pytest.raises(ErasedKey):
        decrypt_layer(everything, b1, context=b"c")


def test_without_the_ledger_a_key_under_a_destroyed_kek_is_not_written_back(
    tmp_path: Path, world: tuple
) -> None:
    """Fail closed: with the ledger lost, a key under a destroyed generation may be an erased
    person's, so it stays out of the write-back (the survivor's data is lost, not the erased
    person's privacy)."""
    topic: Topic = []
    running = store(tmp_path, world)
    one, two = running.owner("999990019"), running.owner("999990020")
    _, _, r1 = running.key_for(one)
    _, _, r2 = running.key_for(two)
    publish(topic, r1, r2)
    _erase_as_the_command_does(tmp_path, world, topic, one)
    (tmp_path / "kek" / "erasures.jsonl").unlink()
    assert running.snapshot() == []


def test_a_key_made_after_erase_read_the_store_is_re_wrapped_not_lost(
    tmp_path: Path, world: tuple
) -> None:
    """The window of a running router: a key it makes under the old generation after
    ``erase`` read the store is not among erase's re-wraps; settling re-wraps it under the new
    generation, so a rebuild from the topic after a restart still opens it."""
    topic: Topic = []
    running = store(tmp_path, world)
    one = running.owner("999990019")
    publish(topic, running.key_for(one)[2])
    eraser = store(tmp_path, world).load(topic)
    late, late_key, late_rec = running.key_for(running.owner("999990021"))  # under g
    publish(topic, late_rec)
    records, new = eraser.erase(one)
    eraser.kek.record_erasure(new, (r.dkid for r in records if r.erased))
    publish(topic, *records)
    eraser.kek.destroy_older(than=new)
    running.load(topic[len(topic) - len(records) :])  # it sees the erasure's records
    owners, rewrapped = running.settle()
    assert owners == [] and [r.dkid for r in rewrapped] == [late]
    assert running.settle() == ([], [])  # decided once
    publish(topic, *rewrapped)
    blob = encrypt_layer(late, late_key, b"person three", context=b"c")
    rebuilt = store(tmp_path, world, writer_keys=False).load(topic)
    assert decrypt_layer(rebuilt, blob, context=b"c") == b"person three"
    assert rebuilt.erased_owner(one)


def test_the_ledger_names_no_one(tmp_path: Path, world: tuple) -> None:
    topic: Topic = []
    s = store(tmp_path, world)
    publish(topic, s.key_for(s.owner("999990019"))[2])
    _erase_as_the_command_does(tmp_path, world, topic, s.owner("999990019"))
    ledger = tmp_path / "kek" / "erasures.jsonl"
    assert "999990019" not in ledger.read_text()
    assert ledger.stat().st_mode & 0o077 == 0


def test_a_consent_layer_opens_before_its_key_is_read_from_the_topic(
    tmp_path: Path, world: tuple
) -> None:
    """The consent log carries its key's record (``TopicKeyStore.seal_for_person``): another
    router instance follows ``consent`` and ``keystore`` with two consumers and may read the
    consent first. It used to count that consent as erased, and its view missed it until a
    restart (found by the erasure restart test: one instance lacked the consent after 10 s)."""
    from broker.audit.keystore import TopicKeyStore
    from broker.config import Settings
    from broker.trust.datakeys import layer_context, open_layer

    writer = TopicKeyStore(Settings(), store(tmp_path, world))
    sealed = writer.seal_for_person(
        "pseudo-1", b"consent of 999990019", context=layer_context("consent")
    )
    assert len(writer.pending) == 1  # and the record goes to the topic too
    follower = store(tmp_path, world, writer_keys=False)  # has read nothing of ``keystore``
    assert open_layer(follower, sealed, "consent") == b"consent of 999990019"
    with pytest.raises(TrustError):
        open_layer(follower, sealed, "dead-letter")  # bound to its topic
    # an erased key is not brought back by the record a consent carries
    erased = store(tmp_path, world, writer_keys=False)
    erased.apply(None, writer.pending[0].value())
    owner = writer.store.owner("pseudo-1")
    eraser = store(tmp_path, world).load([(None, writer.pending[0].value())])
    for r in eraser.erase(owner)[0]:
        erased.apply(r.dkid.encode(), r.value())
    with pytest.raises(ErasedKey):
        open_layer(erased, sealed, "consent")


def test_a_carried_record_forged_with_another_valid_key_opens_nothing(
    tmp_path: Path, world: tuple
) -> None:
    """An attacker with write access to ``consent`` and a registered party's key cannot make a
    follower take a key of its own: the carried record must be signed by the store's writer."""
    from broker.trust.datakeys import CARRIED_PREFIX, layer_context, open_layer

    _, _, zvh = world
    forger = DataKeyStore(
        KekRing(tmp_path / "kek"),
        world[0],
        writer="zvh-utrecht",
        keys=zvh,
        owner_secret=SECRET,
    )
    dkid, dk, rec = forger.key_for(forger.owner("pseudo-1"))
    assert rec is not None
    record = rec.value()
    blob = encrypt_layer(dkid, dk, b"forged", context=layer_context("consent"))
    forged = CARRIED_PREFIX + len(record).to_bytes(4, "big") + record + blob
    follower = store(tmp_path, world, writer_keys=False)
    with pytest.raises(ErasedKey):
        open_layer(follower, forged, "consent")
    assert follower.refused == 1
