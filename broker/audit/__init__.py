"""Audit: NEN 7513 AuditEvents in an append-only, hash-chained, signed log on the ``audit`` topic,
with verification, queries and readers (Kafka or a JSONL export)."""

from broker.audit.canonical import CanonicalError, canonical
from broker.audit.chain import (
    AuditChain,
    ChainError,
    ChainRecord,
    FindingKind,
    MalformedRecord,
    VerifyReport,
    last_record_of,
    verify,
)
from broker.audit.event import (
    PSEUDONYM_SYSTEM_PREFIX,
    AuditKind,
    AuditRecord,
    build_audit_event,
    compliance_search_record,
    consent_change_record,
    controls_for,
    decision_record,
    looks_like_bsn,
    new_event_id,
    sealed_fields,
)
from broker.audit.keys import KeyLoadError, load_public_keys
from broker.audit.query import AuditQuery, AuditRow, decode_rows, to_csv, to_json, to_table
from broker.audit.reader import (
    DEFAULT_TOPIC,
    AuditReadError,
    read_jsonl,
    read_topic_sync,
    write_jsonl,
)
from broker.audit.sealed import SealedDetailError, SealReader, open_detail, seal_detail
from broker.audit.writer import ChainWriter, read_audit_topic

__all__ = [
    "DEFAULT_TOPIC",
    "PSEUDONYM_SYSTEM_PREFIX",
    "AuditChain",
    "AuditKind",
    "AuditQuery",
    "AuditReadError",
    "AuditRecord",
    "AuditRow",
    "CanonicalError",
    "ChainError",
    "ChainRecord",
    "ChainWriter",
    "FindingKind",
    "KeyLoadError",
    "MalformedRecord",
    "SealReader",
    "SealedDetailError",
    "VerifyReport",
    "build_audit_event",
    "canonical",
    "compliance_search_record",
    "consent_change_record",
    "controls_for",
    "decision_record",
    "decode_rows",
    "last_record_of",
    "load_public_keys",
    "looks_like_bsn",
    "new_event_id",
    "open_detail",
    "read_audit_topic",
    "read_jsonl",
    "read_topic_sync",
    "seal_detail",
    "sealed_fields",
    "to_csv",
    "to_json",
    "to_table",
    "verify",
    "write_jsonl",
]
