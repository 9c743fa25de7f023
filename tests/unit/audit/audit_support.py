"""Builders for audit tests: deterministic keys, AuditRecords and signed chains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.audit import AuditChain, AuditKind, AuditRecord, build_audit_event
from broker.audit.signers import ChainSigners, SignerKey, dump_signers
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)


def key(n: int = 1) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


def write_public_key(path: Path, public: Ed25519PublicKey) -> Path:
    path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def record(i: int, **changes: object) -> AuditRecord:
    """A varied but deterministic record: decisions, deliveries and refusals about 3 persons."""
    kinds = [AuditKind.DECISION_PERMIT, AuditKind.DELIVERY, AuditKind.DECISION_DENY,
             AuditKind.REFUSAL]
    kind = kinds[i % len(kinds)]
    base: dict[str, object] = dict(
        kind=kind,
        event_id=f"ev-{i:05d}",
        recorded=T0 + timedelta(minutes=i),
        source="router-1",
        reason="permitted" if kind in (AuditKind.DECISION_PERMIT, AuditKind.DELIVERY)
        else "no-consent",
        detail=f"message {i} — ‘ö’ checked",
        flow=[EventCode.REFERRAL, EventCode.CLAIM, EventCode.ASSESSMENT_OUTCOME][i % 3],
        actor="zvh-utrecht",
        actor_role=PartyRole.ZVH,
        recipient=["transfore", "gemeente-0344", "menzis"][i % 3],
        recipient_role=[PartyRole.COORDINATING_PROVIDER, PartyRole.MUNICIPALITY,
                        PartyRole.HEALTH_INSURER][i % 3],
        purpose=[PurposeOfUse.COC, PurposeOfUse.COC, PurposeOfUse.HPAYMT][i % 3],
        legal_basis=[LegalBasis.CONSENT, LegalBasis.PUBLIC_TASK,
                     LegalBasis.LEGAL_OBLIGATION][i % 3],
        consent_id=f"consent-{i % 3}" if i % 3 == 0 else None,
        pseudonym=f"psn-{i % 3}",
        message_id=f"msg-{i:05d}",
        categories=frozenset({DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL}),
    )
    base.update(changes)
    return AuditRecord.model_validate(base)


def chain_records(n: int, *, chain_id: str = "router-1", signer: int = 1, kid: str = "router-1",
                  start: int = 0) -> list[bytes]:
    chain = AuditChain(chain_id, key(signer), kid)
    return [chain.append(build_audit_event(record(start + i))) for i in range(n)]


def batch_records(sizes: list[int], *, chain_id: str = "router-1", signer: int = 1,
                  kid: str = "router-1", start: int = 0) -> list[bytes]:
    """A chain written in batches of ``sizes`` records (one signature per batch), with the same
    records as :func:`chain_records`."""
    chain = AuditChain(chain_id, key(signer), kid)
    out: list[bytes] = []
    for size in sizes:
        out += chain.append_records([record(start + len(out) + i) for i in range(size)])
    return out


EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def audit_signers(keys: dict[str, Ed25519PublicKey]) -> dict[str, ChainSigners]:
    """One router chain per key id, named like it (as these tests' chains are), the key valid
    from 2000 on."""
    return {kid: ChainSigners(kid, "router", PartyRole.ROUTER, (SignerKey(kid, public, EPOCH),))
            for kid, public in keys.items()}


def write_signers(path: Path, signers: dict[str, ChainSigners]) -> Path:
    """The auditor's key export (what ``ketenbus audit keys`` writes)."""
    path.write_text(dump_signers(signers), encoding="utf-8")
    return path
