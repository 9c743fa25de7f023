"""A query that verifies before it answers (issue 14 point 4): hostile trails, plain words,
80 columns, and exports that read back into the same rows.

The forgeries are made as an insider would: a denial rewritten into a permit, left as it is or
re-hashed and re-signed with *another valid key* (one the verifier trusts, generated here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

from audit_support import audit_signers, chain_records, key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit import AuditKind, canonical
from broker.audit.query import (
    AuditQuery,
    AuditRow,
    TrailTrust,
    answer,
    decode_rows,
    rows_from_csv,
    rows_from_json,
    to_csv,
    to_json,
    to_text,
)

DENIAL = 6  # record(6) is a decision-deny (no-consent) about psn-0 to transfore
RECORDS = chain_records(12)
OTHER = Ed25519PrivateKey.generate()  # another party's valid key, e.g. the web app's
TRUST = TrailTrust(audit_signers({"router-1": key(1).public_key(),
                                  "capacity-dashboard": OTHER.public_key()}))
DENIALS = AuditQuery(kinds=frozenset({"decision-deny"}))
EVERYTHING = AuditQuery()


def into_permit(raw: bytes, *, signer: Ed25519PrivateKey | None = None, kid: str = "") -> bytes:
    """The record with its denial rewritten into a permit; with ``signer``, re-hashed and
    re-signed so that it verifies on its own."""
    rec = json.loads(raw)
    event = rec["event"]
    assert event["type"]["code"] == "decision-deny"
    event["type"] = {**event["type"], "code": "decision-permit",
                     "display": AuditKind.DECISION_PERMIT.display}
    event["outcome"], event["outcomeDesc"] = "0", "permitted"
    if signer is not None:
        body = {k: rec[k] for k in ("chain", "seq", "prev", "event")}
        rec["hash"] = hashlib.sha256(canonical(body)).hexdigest()
        rec["sig"] = signer.sign(bytes.fromhex(rec["hash"])).hex()
        rec["kid"] = kid
    return canonical(rec)


def with_forgery(forged: bytes) -> list[bytes]:
    return [*RECORDS[:DENIAL], forged, *RECORDS[DENIAL + 1:]]


def test_an_intact_trail_answers_with_every_row_verified() -> None:
    result = answer(RECORDS, DENIALS, TRUST)
    assert not result.tampered and result.banner() is None
    assert [r.position for r in result.rows] == [2, DENIAL, 10]
    assert all(r.verified for r in result.rows)


def test_a_denial_changed_into_a_permit_no_longer_drops_out_silently() -> None:
    records = with_forgery(into_permit(RECORDS[DENIAL]))
    result = answer(records, DENIALS, TRUST)
    assert [r.position for r in result.rows] == [2, 10], "the denial is gone from the answer"
    assert result.tampered and result.finding_positions == [DENIAL]
    banner = result.banner()
    assert banner is not None and banner.startswith("TAMPERED")
    assert f"position(s) {DENIAL}." in banner
    everything = answer(records, EVERYTHING, TRUST)
    assert [r.position for r in everything.rows if not r.verified] == [DENIAL]
    assert everything.rows[DENIAL].kind == "decision-permit", "shown, but marked"


def test_a_denial_re_signed_as_a_permit_under_another_valid_key_is_caught() -> None:
    forged = into_permit(RECORDS[DENIAL], signer=OTHER, kid="capacity-dashboard")
    records = with_forgery(forged)
    result = answer(records, EVERYTHING, TRUST)
    assert result.tampered
    # signer binding: the other chain's key may not sign this chain (wrong-signer), so the
    # forgery itself is the finding, and its genuine successor still verifies
    assert result.finding_positions == [DENIAL]
    assert [r.position for r in result.rows if not r.verified] == [DENIAL]
    assert result.banner() is not None


def test_a_permit_re_signed_with_an_unknown_key_under_the_routers_key_id() -> None:
    stranger = Ed25519PrivateKey.generate()
    records = with_forgery(into_permit(RECORDS[DENIAL], signer=stranger, kid="router-1"))
    result = answer(records, EVERYTHING, TRUST)
    assert result.tampered and DENIAL in result.finding_positions
    assert not result.rows[DENIAL].verified


def test_a_chain_continued_under_another_valid_key_from_the_denial_on() -> None:
    """The forger re-signs the denial and every later record with the other key: every link
    holds, and only the rule "this chain is signed by its declared key" can catch it."""
    from broker.audit import AuditChain
    from broker.audit.chain import ChainRecord

    head = ChainRecord.decode(RECORDS[DENIAL - 1])
    chain = AuditChain("router-1", OTHER, "capacity-dashboard", (head.seq, head.hash))
    rest = [json.loads(into_permit(RECORDS[DENIAL]))["event"]]
    rest += [ChainRecord.decode(r).event for r in RECORDS[DENIAL + 1:]]
    records = RECORDS[:DENIAL] + [chain.append(e) for e in rest]
    assert answer(records, EVERYTHING, TRUST).tampered


def test_garbage_and_a_removed_record_are_findings_but_a_gap_does_not_unmark_its_neighbour(
) -> None:
    records = [*RECORDS[:3], b"{not json", *RECORDS[5:]]
    result = answer(records, EVERYTHING, TRUST)
    assert result.tampered and result.malformed == 1
    assert 3 in result.finding_positions
    assert all(r.verified for r in result.rows), "every row comes from a record that verified"


def test_rows_speak_plain_words() -> None:
    rows = {r.seq: r for r in answer(RECORDS, EVERYTHING, TRUST).rows}
    assert rows[0].decision_text == "permitted"
    assert rows[1].decision_text == "delivered"
    assert rows[2].decision_text == "denied: no consent"
    assert rows[3].decision_text == "refused: no consent"
    assert rows[0].purpose_text == "coordination of care (COC)"
    assert rows[2].purpose_text == "healthcare payment (HPAYMT)"
    assert rows[0].basis_text == "Toestemming (consent)"
    assert rows[1].basis_text == "Publieke taak (public-task)"
    cited = replace(rows[2], citation="wvggz-art-8:1")
    assert cited.basis_text == "Wettelijke verplichting (legal-obligation), wvggz-art-8:1"
    odd = replace(rows[0], kind="key-rotation", reason="", purpose="XYZ", legal_basis="made-up")
    assert (odd.decision_text, odd.purpose_text, odd.basis_text) == (
        "unknown event", "XYZ", "made-up"), "unknown codes are shown as they stand"


def test_text_output_fits_80_columns_and_marks_what_did_not_verify() -> None:
    records = with_forgery(into_permit(RECORDS[DENIAL]))
    result = answer(records, EVERYTHING, TRUST)
    long = replace(result.rows[0], detail="x" * 300, sender="zvh-" + "a" * 90,
                   categories=tuple(f"category-{i}" for i in range(20)))
    text = to_text([long, *result.rows[1:]], width=80, banner=result.banner(), title="t")
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80, [x for x in lines if len(x) > 80]
    assert lines[0].startswith("!! TAMPERED")
    assert [x for x in lines if x.startswith("!! ")] == [lines[0]] * 2, "at the top and the end"
    assert f"#{DENIAL} 2024-06-01 08:06:00 UTC  PERMITTED  NOT VERIFIED" in text
    assert "DENIED: NO CONSENT" in text and "coordination of care (COC)" in text
    assert "legal basis: Toestemming (consent); consent consent-0" in text
    assert text.count("NOT VERIFIED") == 1


def test_a_value_that_looks_like_markup_is_printed_as_it_stands() -> None:
    row = replace(decode_rows(RECORDS)[0][0], recipient="[bold red]evil[/]")
    assert "[bold red]evil[/]" in to_text([row])


HOSTILE = [
    "=HYPERLINK(\"http://x\",\"click\")", "+1", "-1", "@SUM(A1)", "\tx", "'quoted", "''",
    "comma, \"quote\"\nnewline", "Coördinatie ‘ö’", "", " spaced ",
]


def hostile_rows() -> list[AuditRow]:
    rows = answer(with_forgery(into_permit(RECORDS[DENIAL])), EVERYTHING, TRUST).rows
    out = [replace(r, detail=HOSTILE[i % len(HOSTILE)]) for i, r in enumerate(rows)]
    return [*out, replace(rows[0], recorded=None, pseudonym=None, categories=(), withheld=(
        "contact", "identity"), consent_id="=cmd|' /C calc'!A0")]


def test_csv_and_json_read_back_into_the_same_rows() -> None:
    rows = hostile_rows()
    assert {r.verified for r in rows} == {True, False}
    assert rows_from_json(to_json(rows)) == rows
    assert rows_from_csv(to_csv(rows)) == rows


def test_no_csv_cell_starts_a_spreadsheet_formula() -> None:
    import csv
    import io

    for line in csv.reader(io.StringIO(to_csv(hostile_rows()))):
        for cell in line:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
