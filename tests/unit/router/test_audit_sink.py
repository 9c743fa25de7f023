"""``AuditSink.prepare``: one routed batch's facts become batch-signed audit records (one Ed25519
signature), and the NEN 7513 record of each fact is what ``to_record`` made of it before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.audit import AuditChain, verify
from broker.audit.event import PSEUDONYM_SYSTEM_PREFIX, AuditRecord
from broker.config import Settings
from broker.router.audit_sink import AuditSink, to_record
from broker.router.facts import Fact, FactKind
from broker.trust import PartyKeys

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
    report = verify(values + one, {KEYS.key_id: KEYS.signing.public_key()})
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
