"""Compliance queries over decoded audit records, and their output formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from audit_support import T0, chain_records

from broker.audit.query import (
    AuditQuery,
    AuditRow,
    decode_rows,
    to_csv,
    to_json,
    to_text,
)

RECORDS = chain_records(24)
ROWS, BAD = decode_rows(RECORDS)


def test_rows_are_decoded_from_the_events() -> None:
    assert BAD == [] and len(ROWS) == 24
    row = ROWS[0]
    assert (row.position, row.chain, row.seq) == (0, "router-1", 0)
    assert row.kind == "decision-permit" and row.outcome == "0" and row.reason == "permitted"
    assert (row.sender, row.sender_role) == ("zvh-utrecht", "zvh")
    assert (row.recipient, row.recipient_role) == ("transfore", "coordinating-provider")
    assert (row.purpose, row.legal_basis, row.consent_id) == ("COC", "consent", "consent-0")
    assert row.pseudonym == "psn-0" and row.message_id == "msg-00000"
    assert row.flow == "referral"
    assert set(row.categories) == {"identity", "referral-signal"}
    assert row.recorded == T0


def test_malformed_records_are_skipped_with_their_position() -> None:
    rows, bad = decode_rows([RECORDS[0], b"garbage", RECORDS[1]])
    assert [r.position for r in rows] == [0, 2] and bad == [1]


def run(**filters: object) -> list[AuditRow]:
    return AuditQuery(**filters).run(ROWS)  # type: ignore[arg-type]


def test_everything_about_one_or_more_persons() -> None:
    assert {r.pseudonym for r in run(persons=frozenset({"psn-1"}))} == {"psn-1"}
    assert len(run(persons=frozenset({"psn-1"}))) == 8
    assert len(run(persons=frozenset({"psn-1", "psn-2"}))) == 16
    assert run(persons=frozenset({"nobody"})) == []


def test_everything_one_party_received() -> None:
    rows = run(party="menzis")
    assert rows and {r.recipient for r in rows} == {"menzis"}
    assert {r.purpose for r in rows} == {"HPAYMT"}
    assert run(sender="zvh-utrecht") == ROWS


def test_everything_refused() -> None:
    rows = run(refused=True)
    assert rows and {r.kind for r in rows} == {"decision-deny", "refusal"}
    assert len(rows) == 12
    assert {r.outcome for r in run(outcomes=frozenset({"serious-failure"}))} == {"8"}
    assert run(outcomes=frozenset({"4"})) == run(kinds=frozenset({"decision-deny"}))


def test_purpose_basis_reason_flow() -> None:
    assert {r.legal_basis for r in run(legal_bases=frozenset({"legal-obligation"}))} == {
        "legal-obligation"}
    assert {r.purpose for r in run(purposes=frozenset({"COC"}))} == {"COC"}
    assert {r.reason for r in run(reasons=frozenset({"no-consent"}))} == {"no-consent"}
    assert {r.flow for r in run(flows=frozenset({"claim"}))} == {"claim"}


def test_period_since_inclusive_until_exclusive() -> None:
    rows = run(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=10))
    assert [r.seq for r in rows] == [5, 6, 7, 8, 9]


def test_combined_filters() -> None:
    rows = run(persons=frozenset({"psn-0"}), refused=True, party="transfore")
    assert rows and all(r.pseudonym == "psn-0" and r.refused and r.recipient == "transfore"
                        for r in rows)


def test_json_csv_and_text_output() -> None:
    rows = run(persons=frozenset({"psn-2"}))
    data = json.loads(to_json(rows))
    assert [d["seq"] for d in data] == [r.seq for r in rows]
    assert data[0]["recorded"].startswith("2024-06-01T")
    assert data[0]["purpose_text"] == "healthcare payment (HPAYMT)"
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [int(p["seq"]) for p in parsed] == [r.seq for r in rows]
    assert parsed[0]["pseudonym"] == "psn-2" and parsed[0]["categories"]
    assert parsed[0]["verified"] == "NO", "decoded, never verified: not shown as verified"
    text = to_text(rows, width=250)
    assert "psn-2" in text and "menzis (Zorgverzekeraar)" in text


def test_query_describes_itself_for_the_compliance_search_record() -> None:
    q = AuditQuery(persons=frozenset({"b", "a"}), refused=True, since=T0)
    assert q.as_dict() == {"persons": ["a", "b"], "refused": True, "since": T0.isoformat()}
