"""The consent view snapshot (issue 19 point 7; ``docs/consent-snapshot.md``).

A router that loads a snapshot and then applies the consent log's tail must hold exactly the
view of a router that replays the whole log, through grants, new versions, late older versions,
revocations and erasures (AVG art. 17: an erased person's consents are unreadable in every
snapshot once the data key is destroyed, as on the consent log itself). A snapshot from any
other party, sealed and signed with that party's own valid key, is refused.

The records go through the real sealing, signing, hashing and data-key layers; only Kafka is
left out (``tests/integration/test_erasure.py`` runs the same with a router on a broker).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.config import Settings
from broker.policy import default_policy
from broker.policy.consent_view import ConsentView, SnapshotTables
from broker.router import consent_snapshot as cs
from broker.router.pipeline import AUDIT_DOMAIN, ROUTER_DOMAIN, RouterState
from broker.trust.datakeys import KeyRecord
from broker.trust.sealing import seal_for
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.vocab import DataCategory, LegalBasis, PartyRole, PurposeOfUse

ZVH = "zvh-midden-nederland"
PROVIDER = "fivoor"
BSNS = ("999990019", "999990020", "999990032", "999990044")
T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


@dataclass
class Rec:
    """A Kafka record as the loader sees it."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    offset: int = 0


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(
        tmp_path_factory.mktemp("snap"), demo.PARTIES, router_instances=("router-1", "router-2")
    )


def state_of(dep: Deployment, instance: str) -> RouterState:
    settings = Settings(bootstrap_servers="127.0.0.1:1")  # never contacted: no Kafka here
    return dep.router_state(default_policy(), instance=instance, settings=settings)


def consent(bsn: str, cid: int, seconds: int, active: bool, rep: bool, case: bool) -> ConsentRecord:
    return ConsentRecord.model_construct(
        consent_id=f"c-{bsn}-{cid}",
        person_bsn=bsn,
        status=ConsentStatus.ACTIVE if active else ConsentStatus.INACTIVE,
        grantor=Grantor.REPRESENTATIVE if rep else Grantor.PERSON,
        representative_name="Mr. T. Vertegenwoordiger" if rep else None,
        recipients=(PROVIDER,) if cid % 2 else (),
        recipient_roles=() if cid % 2 else (PartyRole.COORDINATING_PROVIDER,),
        purposes=(PurposeOfUse.COC,),
        categories=(DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL),
        period_start=date(2026, 1, 1),
        period_end=None if cid != 2 else date(2027, 1, 1),
        recorded_at=T0 + timedelta(seconds=seconds),
        recorded_by=ZVH,
        legal_basis=LegalBasis.CONSENT,
        holders=(),
        case_id=f"MN-{bsn[-3:]}" if case else None,
    )


# an event: ("c", record) a consent version on the log, ("e", bsn) an erasure
consent_events = st.builds(
    lambda b, c, s, a, r, k: ("c", consent(b, c, s, a, r, k)),
    st.sampled_from(BSNS), st.integers(0, 2), st.integers(0, 50), st.booleans(),
    st.booleans(), st.booleans(),
)  # fmt: skip
events = st.lists(
    st.one_of(consent_events, st.tuples(st.just("e"), st.sampled_from(BSNS))),
    min_size=1,
    max_size=30,
)


def contents(view: ConsentView) -> set[tuple[str, str]]:
    return {(p, r.model_dump_json()) for p, r in view}


class Router:
    """One router instance's consent view and key store, driven as the service drives them:
    a consent is applied under the person's data key, an erasure forgets the person."""

    def __init__(self, state: RouterState) -> None:
        self.state = state
        assert state.datakeys is not None
        self.keys = state.datakeys

    def audit(self, bsn: str) -> str:
        return self.state.pseudonyms.pseudonym(AUDIT_DOMAIN, bsn)

    def pseudo(self, bsn: str) -> str:
        return self.state.pseudonyms.pseudonym(ROUTER_DOMAIN, bsn)

    def consent(self, rec: ConsentRecord) -> str:
        dkid, _ = self.keys.for_person(self.audit(rec.person_bsn))
        self.state.consents.apply(self.pseudo(rec.person_bsn), rec)
        return dkid

    def erase(self, bsn: str) -> list[KeyRecord]:
        owner = self.keys.store.owner(self.audit(bsn))
        records, new = self.keys.store.erase(owner)
        self.keys.store.kek.destroy_older(new)
        self.state.consents.forget(self.pseudo(bsn))
        return records


def to_topic(state: RouterState, snap: cs.Snapshot) -> tuple[Rec, list[Rec]]:
    """The head and chunks as the topic would hold them (chunk offsets 0..n-1)."""
    chunks = [Rec(c.key, c.value, c.headers, i) for i, c in enumerate(snap.chunks)]
    head = cs.head_record(state, snap, [c.offset for c in chunks])
    return Rec(head.key, head.value, head.headers), chunks


async def load(state: RouterState, head_rec: Rec, chunks: list[Rec]) -> cs.Loaded:
    head = cs.Head.parse(cs.open_record(state, head_rec, cs.HEAD_EVENT))
    by_offset = {c.offset: c for c in chunks}
    bodies = []
    for offset, digest in head.chunks:
        rec = by_offset[offset]
        assert hashlib.sha256(rec.value).hexdigest() == digest
        bodies.append(cs.open_record(state, rec, cs.CHUNK_EVENT))
    return await cs.decode(state, head, bodies)


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(evs=events, split=st.integers(0, 30))
async def test_snapshot_plus_tail_is_the_full_replay(
    dep: Deployment, evs: list[tuple[str, Any]], split: int
) -> None:
    writer = Router(state_of(dep, "router-1"))
    keystore: list[KeyRecord] = []  # the key-store topic, whole (the embedded broker's way)
    log: list[tuple[int, ConsentRecord, str]] = []  # the consent log: index, record, data key
    k = min(split, len(evs))
    snap: cs.Snapshot | None = None
    for i, (kind, item) in enumerate(evs):
        if i == k:
            snap = await cs.build(writer.state, {0: len(log)})
            keystore += writer.keys.pending
            writer.keys.pending.clear()
        if kind == "c":
            log.append((i, item, writer.consent(item)))
        else:
            keystore += writer.erase(item)
        keystore += writer.keys.pending
        writer.keys.pending.clear()
    if snap is None:
        snap = await cs.build(writer.state, {0: len(log)})
        keystore += writer.keys.pending

    # a router that starts now: the key store first (the whole topic), then the consents
    def starting() -> Router:
        r = Router(state_of(dep, "router-2"))
        r.keys.store.load((rec.dkid.encode(), rec.value()) for rec in keystore)
        return r

    full = starting()
    for _, rec, dkid in log:  # a record under an erased key does not open: skipped
        if not full.keys.store.erased(dkid):
            full.state.consents.apply(full.pseudo(rec.person_bsn), rec)

    fast = starting()
    head, chunks = to_topic(writer.state, snap)
    loaded = await load(fast.state, head, chunks)
    fast.state.consents = loaded.view
    for _, rec, dkid in log[snap.positions[0] :]:
        if not fast.keys.store.erased(dkid):
            fast.state.consents.apply(fast.pseudo(rec.person_bsn), rec)

    assert contents(fast.state.consents) == contents(full.state.consents)
    assert len(fast.state.consents) == len(full.state.consents)
    assert fast.state.consents.active_count == full.state.consents.active_count


async def test_an_erased_person_is_absent_from_the_next_snapshot_and_from_a_loaded_one(
    dep: Deployment,
) -> None:
    writer = Router(state_of(dep, "router-1"))
    gone, kept = BSNS[0], BSNS[1]
    for bsn in (gone, kept):
        writer.consent(consent(bsn, 1, 1, True, True, True))
    keystore = list(writer.keys.pending)
    before = await cs.build(writer.state, {0: 2})
    keystore += writer.keys.pending
    keystore += writer.erase(gone)

    after = await cs.build(writer.state, {0: 2})  # the next snapshot
    assert after.persons == 1 and after.consents == 1

    reader = Router(state_of(dep, "router-2"))
    reader.keys.store.load((r.dkid.encode(), r.value()) for r in keystore)
    for snap in (before, after):
        loaded = await load(reader.state, *to_topic(writer.state, snap))
        assert loaded.view.person_bsn(reader.pseudo(gone)) is None
        assert loaded.view.person_bsn(reader.pseudo(kept)) == kept
        assert [r.representative_name for _, r in loaded.view] == ["Mr. T. Vertegenwoordiger"]
    assert (await load(reader.state, *to_topic(writer.state, before))).erased == 1
    # nothing of the erased person in clear in any record of either snapshot
    for snap in (before, after):
        for c in snap.chunks:
            assert gone.encode() not in c.value
            assert b"Vertegenwoordiger" not in c.value


async def test_an_erased_person_who_is_not_in_the_view_gets_no_new_key(dep: Deployment) -> None:
    """The view may still hold the person for a moment (the tombstone seen before the consent
    view forgot them): the snapshot leaves them out instead of making a new data key."""
    writer = Router(state_of(dep, "router-1"))
    writer.consent(consent(BSNS[2], 0, 1, True, False, False))
    owner = writer.keys.store.owner(writer.audit(BSNS[2]))
    writer.keys.store.erase(owner)  # the view has not forgotten yet
    snap = await cs.build(writer.state, {})
    assert snap.persons == 0 and snap.left_out == 1
    assert not writer.keys.store.live_keys(owner)


async def test_a_snapshot_of_another_party_is_refused_even_with_its_own_valid_key(
    dep: Deployment,
) -> None:
    writer = Router(state_of(dep, "router-1"))
    writer.consent(consent(BSNS[3], 1, 1, True, False, False))
    snap = await cs.build(writer.state, {0: 1})
    head, chunks = to_topic(writer.state, snap)
    starting = Router(state_of(dep, "router-2"))
    starting.keys.store.load((r.dkid.encode(), r.value()) for r in writer.keys.pending)
    reader = starting.state
    zvh = dep.keyring(ZVH).current
    now = datetime.now(UTC)
    # the same payloads, sealed for the router and signed by the ZVH with its own valid key
    forged_head = seal_for(
        cs.open_record(reader, head, cs.HEAD_EVENT), zvh, dep.registry, dep.router_id,
        event=cs.HEAD_EVENT, message_id="x", pseudonym="router-1/head", timestamp=now,
    )  # fmt: skip
    with pytest.raises(cs.SnapshotRefused, match="not written by the router"):
        cs.open_record(reader, Rec(forged_head.key, forged_head.value, forged_head.headers),
                       cs.HEAD_EVENT)  # fmt: skip
    # the router's name in the header, the ZVH's signature: the signature does not verify
    headers = [
        (k, dep.router_id.encode() if k == "kb-sender" else v) for k, v in forged_head.headers
    ]
    with pytest.raises(cs.SnapshotRefused, match="refused"):
        cs.open_record(reader, Rec(forged_head.key, forged_head.value, headers), cs.HEAD_EVENT)
    # a chunk swapped for another: its hash is not the one the signed head lists
    other = await cs.build(writer.state, {0: 1})
    swapped = [Rec(c.key, c.value, c.headers, 0) for c in other.chunks]
    with pytest.raises(KeyError):
        await load(reader, head, [])
    with pytest.raises(AssertionError):
        await load(reader, head, swapped)
    # the genuine one loads
    assert len((await load(reader, head, chunks)).view) == 1


def test_restore_refuses_bytes_that_are_not_an_export() -> None:
    view, tables = ConsentView(), SnapshotTables()
    source = ConsentView()
    source.apply("p", consent(BSNS[0], 1, 1, True, True, False))
    blob = source.export_person("p", tables)
    for bad in (blob[:-3], blob[:10], b"\xff\xff" + blob, blob + b"\x01"):
        with pytest.raises(ValueError):
            view.restore_person("p", bad, tables)
    assert len(view) == 0
    assert view.restore_person("p", blob, tables) == 1
    assert contents(view) == contents(source)
