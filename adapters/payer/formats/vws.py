"""VWS under the emergency rule: a documented CSV (UTF-8, ``;``-separated, header row), one
claim per file out, any number of answers per file in. VWS has no national standard for this;
the columns are specified in docs/adapters/payers.md and defined here, once.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from adapters.payer.formats.common import (
    Answer,
    AnswerItem,
    collect,
    decode_text,
    explanation_lines,
    file_error,
    item_error,
    parse_bsn,
    parse_cents,
    parse_date,
    reference,
)
from schemas.csvsafe import neutralise
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome, ClaimRejectionReason

SUFFIX = ".csv"
DELIMITER = ";"
CLAIM_COLUMNS = (
    "reference",
    "claim_id",
    "claimant",
    "claimant_agb",
    "bsn",
    "birth_date",
    "service",
    "period_start",
    "period_end",
    "quantity",
    "unit_price_cents",
    "amount_cents",
    "created",
    "advance_due_on",
    "zvh",
    "case_id",
    "rule",
    "explanation",
)
ANSWER_COLUMNS = (
    "reference",
    "bsn",
    "decided_on",
    "outcome",
    "approved_cents",
    "paid_cents",
    "paid_on",
    "rejection_reason",
    "note",
)
REQUIRED_ANSWER = ("reference", "bsn", "decided_on", "outcome")


def write_declaration(claim: Claim, advance_after_days: int | None = None) -> bytes:
    """One claim as a VWS CSV; ``advance_due_on`` is when VWS advances it if still unpaid:
    more than the emergency rule's ``advance_after_days`` (rules.yaml; "vier weken", Kamerbrief
    VWS/JenV 6 Nov 2020) after the claim was made."""
    if advance_after_days is None:
        from adapters.financing.rules import default_rules

        advance_after_days = default_rules().emergency.advance_after_days
    e = claim.explanation
    row = {
        "reference": reference(claim.claim_id),
        "claim_id": claim.claim_id,
        "claimant": claim.provider,
        "claimant_agb": claim.provider_agb or "",
        "bsn": claim.person.bsn,
        "birth_date": claim.person.birth_date.isoformat(),
        "service": claim.service.value,
        "period_start": claim.period_start.isoformat(),
        "period_end": claim.period_end.isoformat(),
        "quantity": str(claim.quantity),
        "unit_price_cents": str(claim.unit_price_cents),
        "amount_cents": str(claim.amount_cents),
        "created": claim.created.isoformat(),
        "advance_due_on": (claim.created + timedelta(days=advance_after_days + 1)).isoformat(),
        "zvh": claim.zvh or "",
        "case_id": claim.referral_id or "",
        "rule": f"{e.rule}@{e.version}" if e else "",
        "explanation": " | ".join(explanation_lines(claim)[1:]),
    }
    buf = io.StringIO()
    w = csv.DictWriter(buf, CLAIM_COLUMNS, delimiter=DELIMITER, lineterminator="\r\n")
    w.writeheader()
    w.writerow({k: neutralise(str(v)) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")


def read_answer(raw: bytes) -> Answer:
    """Answers: one per row; a missing column refuses the file, a bad row only itself."""
    text = decode_text(raw, "utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=DELIMITER)
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_ANSWER if c not in header]
    if missing:
        raise file_error(f"missing column(s): {', '.join(missing)}", "missing-column", "line 1")
    unknown = [c for c in header if c not in ANSWER_COLUMNS]
    if unknown:
        raise file_error(f"unknown column(s): {', '.join(unknown)}", "unknown-column", "line 1")
    rows = list(reader)
    if not rows:
        raise file_error("the file holds no answers", "empty")

    def read(row: dict[str, str | None], i: int) -> AnswerItem:
        where = f"line {i + 2}"
        if None in row or any(v is None for v in row.values()):
            raise item_error(where, "wrong number of fields", "fields")
        cell = {k: (v or "").strip() for k, v in row.items() if k is not None}
        for c in REQUIRED_ANSWER:
            if not cell.get(c):
                raise item_error(f"{where}: {c}", f"{c} is required", "required")
        try:
            outcome = ClaimOutcome(cell["outcome"])
        except ValueError:
            raise item_error(f"{where}: outcome", "is not an outcome", "outcome") from None
        reason = None
        if cell.get("rejection_reason"):
            try:
                reason = ClaimRejectionReason(cell["rejection_reason"])
            except ValueError:
                raise item_error(
                    f"{where}: rejection_reason", "not a rejection reason", "rejection-reason"
                ) from None

        def cents(col: str) -> int | None:
            return parse_cents(cell[col], f"{where}: {col}") if cell.get(col) else None

        def day(col: str) -> date | None:
            return parse_date(cell[col], f"{where}: {col}") if cell.get(col) else None

        return AnswerItem(
            reference=cell["reference"],
            bsn=parse_bsn(cell["bsn"], f"{where}: bsn"),
            decided_on=parse_date(cell["decided_on"], f"{where}: decided_on"),
            outcome=outcome,
            approved_cents=cents("approved_cents"),
            paid_cents=cents("paid_cents"),
            paid_on=day("paid_on"),
            rejection_reason=reason,
            rejection_note=cell.get("note") or None,
            where=where,
        )

    return collect(rows, read)


def write_answer(rows: list[dict[str, str]]) -> bytes:
    """An answer file (tests, demos, VWS tooling); absent columns are empty."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, ANSWER_COLUMNS, delimiter=DELIMITER, lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: neutralise(str(r.get(c, ""))) for c in ANSWER_COLUMNS})
    return buf.getvalue().encode("utf-8")
