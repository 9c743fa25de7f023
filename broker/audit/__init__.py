"""Audit: NEN 7513 AuditEvents in an append-only, hash-chained, signed log on the ``audit`` topic,
with verification, queries and readers (Kafka or a JSONL export)."""

from broker.audit.canonical import CanonicalError, canonical
from broker.audit.chain import (
    AuditChain,
    ChainError,
    ChainRecord,
    Finding,
    FindingKind,
    MalformedRecord,
    VerifyReport,
    last_record_of,
    verify,
)
from broker.audit.event import (
    AuditAction,
    AuditKind,
    AuditOutcome,
    AuditRecord,
    build_audit_event,
    compliance_search_record,
    consent_change_record,
    decision_record,
)

__all__ = [
    "AuditAction",
    "AuditChain",
    "AuditKind",
    "AuditOutcome",
    "AuditRecord",
    "CanonicalError",
    "ChainError",
    "ChainRecord",
    "Finding",
    "FindingKind",
    "MalformedRecord",
    "VerifyReport",
    "build_audit_event",
    "canonical",
    "compliance_search_record",
    "consent_change_record",
    "decision_record",
    "last_record_of",
    "verify",
]
