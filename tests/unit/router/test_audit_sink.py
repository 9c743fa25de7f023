"""``AuditSink.prepare``: one routed batch's facts become batch-signed audit records (one Ed25519
signature), and the NEN 7513 record of each fact is what ``to_record`` made of it before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit import PSEUDONYM_SYSTEM_PREFIX, AuditChain, AuditRecord, verify
from broker.audit.signers import ChainSigners, SignerKey
from broker.config import Settings
from broker.router.audit_sink import AuditSink, to_record, validated_record
from broker.router.facts import Fact, FactKind
from broker.trust import PartyKeys
from schemas.vocab import PartyRole

KEYS = PartyKeys(
    "router",
    "router-k1",
    Ed25519PrivateKey.from_private_bytes(b"\x05" * 32),
    X25519PrivateKey.from_private_bytes(b"\x06" * 32),
)
AT = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)


def fact(i: int, **changes: object) -> Fact:
    base: dict[str, object] = dict(
        kind=[FactKind.PERMIT, FactKind.DENY, FactKind.DELIVERY, FactKind.DUPLICATE][i % 4],
        at=AT,
        message_id=f"m-{i}",
        event="referral",
        sender="zvh-utrecht",
        reason="permitted",
        sender_role="zvh",
        recipient="transfore",
        recipient_role="coordinating-provider",
        purpose="COC,HPAYMT",
        legal_basis="consent",
        consent_id=f"c-{i}",
        person=f"psn-{i}",
        categories=("identity", "referral-signal", "no-such-category"),
    )
    base.update(changes)
    return Fact(**base)  # type: ignore[arg-type]


def sink() -> AuditSink:
    s = AuditSink(Settings(), KEYS)
    s._chain = AuditChain(s.chain_id, KEYS.signing, KEYS.key_id)
    return s


def test_prepare_signs_a_batch_once() -> None:
    s = sink()
    values = s.prepare([fact(i) for i in range(6)])
    assert len({json.loads(v)["sig"] for v in values}) == 1
    assert all("proof" in json.loads(v) for v in values)
    one = s.prepare([fact(6)])
    assert "proof" not in json.loads(one[0])
    signer = SignerKey(KEYS.key_id, KEYS.signing.public_key(), AT - timedelta(days=1))
    declared = {s.chain_id: ChainSigners(s.chain_id, "router", PartyRole.ROUTER, (signer,))}
    report = verify(values + one, declared)
    assert report.ok and report.heads[KEYS.key_id][0] == 6
    assert s.prepare([]) == []


def test_to_record_maps_codes_and_drops_unknown_ones() -> None:
    r = to_record(
        fact(
            0,
            sender_role="nobody",
            recipient_role=None,
            purpose="nonsense",
            legal_basis="magic",
            event="no-such-flow",
        ),
        "router-k1",
    )
    assert r.actor_role.value == "router" and r.recipient_role is None
    assert r.purpose is None and r.legal_basis is None and r.flow is None
    r = to_record(fact(1), "router-k1")
    assert r.purpose is not None and r.purpose.value == "COC"
    assert {c.value for c in r.categories} == {"identity", "referral-signal"}
    assert r.pseudonym_system == PSEUDONYM_SYSTEM_PREFIX + "/audit"
    assert r == AuditRecord.model_validate(r.model_dump())  # a fully validated record


def test_a_bsn_as_the_person_is_refused() -> None:
    with pytest.raises(ValueError, match="never by BSN"):
        to_record(fact(0, person="111222333"), "router-k1")


maybe_text = (
    st.none()
    | st.text(max_size=12)
    | st.sampled_from(["111222333", " 11222333 ", "\ud800", "ö\n", "", "1234567"])
)
codes = st.none() | st.sampled_from(
    ["zvh", "municipality", "COC", "COC,HPAYMT", "consent", "referral", "nonsense", ""]
)


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(list(FactKind)),
    at=st.sampled_from([AT, datetime(2024, 6, 1, 10, 0), datetime(2030, 1, 1, tzinfo=UTC)]),
    texts=st.fixed_dictionaries(
        {k: maybe_text for k in ("recipient", "consent_id", "person", "message_id", "sender")}
    ),
    reason=st.text(max_size=5) | st.just("\udc00"),
    detail=st.text(max_size=5) | st.just(3),
    coded=st.fixed_dictionaries(
        {k: codes for k in ("event", "sender_role", "recipient_role", "purpose", "legal_basis")}
    ),
    categories=st.lists(st.sampled_from(["identity", "referral-signal", "x"]), max_size=3),
)
def test_the_fast_record_is_the_validated_record(
    kind, at, texts, reason, detail, coded, categories
) -> None:
    f = Fact(
        kind=kind,
        at=at,
        reason=reason,
        detail=detail,
        categories=tuple(categories),
        **texts,
        **coded,
    )
    try:
        expected = validated_record(f, "router-k1")
    except ValueError as exc:  # pydantic's ValidationError too
        with pytest.raises(type(exc)):
            to_record(f, "router-k1")
        return
    for _ in range(2):  # the prototype is made, then reused
        got = to_record(f, "router-k1")
        assert got.model_dump(exclude={"event_id"}) == expected.model_dump(exclude={"event_id"})
        assert got == AuditRecord.model_validate(got.model_dump())
        assert got.event_id != expected.event_id
