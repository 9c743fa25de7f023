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
from schemas.messaging import BasisDetail
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

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
        event=EventCode.REFERRAL,
        sender="zvh-utrecht",
        reason="permitted",
        sender_role=PartyRole.ZVH,
        recipient="transfore",
        recipient_role=PartyRole.COORDINATING_PROVIDER,
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONSENT,
        consent_id=f"c-{i}",
        person=f"psn-{i}",
        categories=frozenset({DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL}),
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


def test_to_record_carries_the_typed_fields_and_seals_none_without_detail() -> None:
    r = to_record(fact(0, sender_role=None, recipient_role=None, event=None), "router-k1")
    assert r.actor_role is PartyRole.ROUTER and r.recipient_role is None and r.flow is None
    r = to_record(fact(1), "router-k1")
    assert r.purpose is PurposeOfUse.COC and r.legal_basis is LegalBasis.CONSENT
    assert r.categories == {DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL}
    assert r.pseudonym_system == PSEUDONYM_SYSTEM_PREFIX + "/audit"
    assert r.sealed is None and not r.decided_by_professional
    assert r == AuditRecord.model_validate(r.model_dump())  # a fully validated record


def test_basis_detail_without_a_reader_is_left_out_never_in_clear() -> None:
    detail = BasisDetail("Wvggz art. 8:32", "Acuut gevaar voor derden", "dr. Jansen")
    r = to_record(fact(0, basis_detail=detail), "router-k1")
    text = json.dumps(r.model_dump(mode="json"))
    assert "Jansen" not in text and "Acuut" not in text and "8:32" not in text
    assert r.sealed is None and r.decided_by_professional


def test_a_bsn_as_the_person_is_refused() -> None:
    with pytest.raises(ValueError, match="never by BSN"):
        to_record(fact(0, person="111222333"), "router-k1")


maybe_text = (
    st.none()
    | st.text(max_size=12)
    | st.sampled_from(["111222333", " 11222333 ", "\ud800", "ö\n", "", "1234567"])
)
CODES = {
    "event": list(EventCode),
    "sender_role": list(PartyRole),
    "recipient_role": list(PartyRole),
    "purpose": list(PurposeOfUse),
    "legal_basis": list(LegalBasis),
}


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(list(FactKind)),
    at=st.sampled_from([AT, datetime(2024, 6, 1, 10, 0), datetime(2030, 1, 1, tzinfo=UTC)]),
    texts=st.fixed_dictionaries(
        {k: maybe_text for k in ("recipient", "consent_id", "person", "message_id", "sender")}
    ),
    reason=st.text(max_size=5) | st.just("\udc00"),
    detail=st.text(max_size=5) | st.just(3),
    coded=st.fixed_dictionaries({k: st.none() | st.sampled_from(v) for k, v in CODES.items()}),
    categories=st.frozensets(st.sampled_from(list(DataCategory)), max_size=3),
    controls=st.none() | st.sampled_from(["TFTF", "FFFT", "TF"]),
)
def test_the_fast_record_is_the_validated_record(
    kind, at, texts, reason, detail, coded, categories, controls
) -> None:
    f = Fact(
        kind=kind,
        at=at,
        reason=reason,
        detail=detail,
        categories=categories,
        withheld=frozenset(DataCategory) - categories,
        controls=controls,
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
