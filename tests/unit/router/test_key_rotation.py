"""Key rotation through the router: a new ZVH key overlaps the old one; during the overlap both
are accepted; after the old key's end date, messages signed with it are refused (and audited)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.zvh.format import parse_document
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from broker.trust import KeyEntry, Keyring, generate_party_keys
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.referral import referral_message
from schemas.messaging import MessageMeta
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

ZVH = "zvh-midden-nederland"
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
OVERLAP_END = T0 + timedelta(days=7)


@pytest.fixture
def world(tmp_path):  # type: ignore[no-untyped-def]
    dep = create_local(tmp_path, demo.PARTIES)
    zvh_party = dep.registry.get(ZVH)
    old_keys = dep.keyring(ZVH).current
    new_keys = generate_party_keys(ZVH, f"{ZVH}-new", now=T0)
    old_entry = zvh_party.keys[0].model_copy(
        update={"valid_from": T0 - timedelta(days=365), "valid_until": OVERLAP_END}
    )
    new_entry = KeyEntry(
        key_id=new_keys.key_id,
        signing_public=new_keys.public().signing_public,
        encryption_public=new_keys.public().encryption_public,
        valid_from=T0,
    )
    registry = dep.registry.with_party(
        zvh_party.model_copy(update={"keys": [old_entry, new_entry]})
    )
    # the router's own keys must be valid at these (past) times too
    router = registry.router()
    registry = registry.with_party(
        router.model_copy(
            update={
                "keys": [
                    k.model_copy(update={"valid_from": T0 - timedelta(days=365)})
                    for k in router.keys
                ]
            }
        )
    )
    dep.registry = registry
    state = dep.router_state(default_policy())
    base = dep.party_client(ZVH)
    ring = Keyring([old_keys, new_keys])

    def client(keys):  # type: ignore[no-untyped-def]
        return PartyClient(ZVH, keys, ring, registry, base.pseudonyms, router_id=router.id)

    return Pipeline(state), client(old_keys), client(new_keys)


def referral(client: PartyClient, at: datetime) -> Incoming:
    p = {"bsn": synthetic_bsn(random.Random()), "family_name": "T", "birth_date": "1980-01-01"}
    ref = parse_document(demo.referral("C-1", "midden-nederland", p, date.today())).to_referral(ZVH)  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.REFERRAL, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT, now=at)
    key, value, headers = client.seal_message(referral_message(ref, meta), p["bsn"], now=at)
    return Incoming(topics.IN_REFERRAL.name, key, value, headers)


def verdict(pipeline: Pipeline, rec: Incoming, now: datetime) -> str:
    facts = pipeline.route(rec, now=now).facts
    refusal = [f for f in facts if f.kind is FactKind.REFUSAL]
    return refusal[0].reason if refusal else "accepted"


def test_both_keys_work_during_the_overlap(world) -> None:  # type: ignore[no-untyped-def]
    pipeline, old, new = world
    during = T0 + timedelta(days=3)
    # "accepted" by trust: the policy may still deny for lack of consent, which is not a refusal
    assert verdict(pipeline, referral(old, during), during) == "accepted"
    assert verdict(pipeline, referral(new, during), during) == "accepted"


def test_the_old_key_is_refused_after_its_end_date(world) -> None:  # type: ignore[no-untyped-def]
    pipeline, old, new = world
    after = OVERLAP_END + timedelta(hours=1)
    assert verdict(pipeline, referral(old, after), after) == "key-expired"
    assert verdict(pipeline, referral(new, after), after) == "accepted"


def test_the_new_key_is_refused_before_it_starts(world) -> None:  # type: ignore[no-untyped-def]
    pipeline, _, new = world
    before = T0 - timedelta(days=1)
    assert verdict(pipeline, referral(new, before), before) == "key-not-yet-valid"
