"""The ZVH CSV batch: one referral (aanmelding) per row -- or, in a file whose header has the
column ``escalation_id``, one escalation per row -- for case systems that export spreadsheets
rather than JSON. Each row becomes the JSON referral document of
``adapters.zvh.format`` and is validated by exactly the same rules; an error names the line and
the column. The columns are specified in docs/adapters/zvh.md.
"""

from __future__ import annotations

from typing import Any

from adapters.common.csvfile import DEFAULT_LIMITS, each, read_rows, split_list, to_bool
from adapters.common.limits import InputLimits
from adapters.zvh.format import ZvhEscalation, ZvhReferral, parse_document
from schemas.errors import Issue, MessageError

REQUIRED = (
    "case_id",
    "region",
    "registered_on",
    "bsn",
    "family_name",
    "birth_date",
    "signaller_name",
    "signaller_sector",
    "signal",
)
OPTIONAL = (
    "given_names",
    "gender",
    "municipality",
    "homeless",
    "address_line",
    "postal_code",
    "city",
    "police_facts",
    "risk_level",
    "risk_summary",
    "legal_titles",
    "care_avoider",
    "basis",
    "basis_citation",
    "basis_justification",
    "basis_decided_by",
    "controller",
    "acting_person",
)
COLUMNS = REQUIRED + OPTIONAL

# document path -> column, to report a problem where the user can find it
_COLUMN_OF = {
    "case_id": "case_id",
    "region": "region",
    "registered_on": "registered_on",
    "person.bsn": "bsn",
    "person.family_name": "family_name",
    "person.given_names": "given_names",
    "person.birth_date": "birth_date",
    "person.gender": "gender",
    "person.municipality": "municipality",
    "person.homeless": "homeless",
    "person.address.line": "address_line",
    "person.address.postal_code": "postal_code",
    "person.address.city": "city",
    "signaller.name": "signaller_name",
    "signaller.sector": "signaller_sector",
    "signal": "signal",
    "police_facts": "police_facts",
    "risk.level": "risk_level",
    "risk.summary": "risk_summary",
    "care_avoider": "care_avoider",
    "controller": "controller",
    "acting_person": "acting_person",
    "basis": "basis",
    "basis.kind": "basis",
    "basis.citation": "basis_citation",
    "basis.justification": "basis_justification",
    "basis.decided_by": "basis_decided_by",
}


class CellError(ValueError):
    """A cell that cannot be read, with its column."""

    def __init__(self, column: str, message: str) -> None:
        self.column = column
        super().__init__(message)


def _flag(row: dict[str, str], column: str) -> bool:
    try:
        return to_bool(row.get(column))
    except ValueError as err:
        raise CellError(column, str(err)) from None


def _titles(value: str | None) -> list[dict[str, str]]:
    """``kind/start/end`` items separated by ``|``; the end may be left out."""
    out = []
    for item in split_list(value):
        parts = [p.strip() for p in item.split("/")]
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise CellError("legal_titles", "an item is not kind/start[/end]")
        title = {"kind": parts[0], "start": parts[1]}
        if len(parts) == 3 and parts[2]:
            title["end"] = parts[2]
        out.append(title)
    return out


def row_document(row: dict[str, str]) -> dict[str, Any]:
    """The JSON referral document a row stands for (``CellError`` for a malformed cell)."""
    person: dict[str, Any] = {
        "bsn": row.get("bsn"),
        "family_name": row.get("family_name"),
        "given_names": split_list(row.get("given_names")),
        "birth_date": row.get("birth_date"),
        "homeless": _flag(row, "homeless"),
    }
    for key in ("gender", "municipality"):
        if key in row:
            person[key] = row[key]
    address = {
        k: row[c]
        for k, c in (("line", "address_line"), ("postal_code", "postal_code"), ("city", "city"))
        if c in row
    }
    if address:
        person["address"] = address
    doc: dict[str, Any] = {
        "type": "referral",
        "case_id": row.get("case_id"),
        "region": row.get("region"),
        "registered_on": row.get("registered_on"),
        "person": person,
        "signaller": {"name": row.get("signaller_name"), "sector": row.get("signaller_sector")},
        "signal": row.get("signal"),
        "care_avoider": _flag(row, "care_avoider"),
    }
    for key in ("controller", "acting_person"):
        if row.get(key):
            doc[key] = row[key]
    if row.get("police_facts"):
        doc["police_facts"] = row["police_facts"]
    if "risk_level" in row or "risk_summary" in row:
        doc["risk"] = {"level": row.get("risk_level", "unknown")}
        if "risk_summary" in row:
            doc["risk"]["summary"] = row["risk_summary"]
    if "legal_titles" in row:
        doc["legal_titles"] = _titles(row["legal_titles"])
    basis = {
        k: row[c]
        for k, c in (
            ("kind", "basis"),
            ("citation", "basis_citation"),
            ("justification", "basis_justification"),
            ("decided_by", "basis_decided_by"),
        )
        if c in row
    }
    if basis:
        doc["basis"] = basis
    return doc


def _referral(line: int, row: dict[str, str]) -> ZvhReferral:
    try:
        doc = row_document(row)
    except CellError as err:
        raise MessageError(
            [Issue(f"line {line}: {err.column}", "value", str(err), "value")]
        ) from None
    try:
        referral = parse_document(doc)
    except MessageError as err:
        issues = []
        for i in err.issues:
            path = i.path
            head = path.split("[")[0]
            column = _COLUMN_OF.get(head) or (
                "legal_titles" if head.startswith("legal_titles") else head
            )
            issues.append(Issue(f"line {line}: {column}", i.code, i.message, i.reason))
        raise MessageError(issues) from None
    assert isinstance(referral, ZvhReferral)  # the row document's type is "referral"
    return referral


ESCALATION_REQUIRED = ("escalation_id", "case_id", "reason", "stuck_since")
ESCALATION_COLUMNS = (
    *ESCALATION_REQUIRED,
    "security_level",
    "explanation",
    "level",
    "episode_id",
    "acting_person",
)


def _escalation(line: int, row: dict[str, str]) -> ZvhEscalation:
    try:
        doc = parse_document({"type": "escalation", **row})
    except MessageError as err:
        raise MessageError(
            [
                Issue(f"line {line}: {i.path or 'row'}", i.code, i.message, i.reason)
                for i in err.issues
            ]
        ) from None
    assert isinstance(doc, ZvhEscalation)
    return doc


def is_escalation_csv(raw: bytes) -> bool:
    """Whether the file's header names ``escalation_id`` (an escalation batch)."""
    head = raw[:4096].decode("utf-8-sig", "replace").splitlines()[:1]
    return bool(head) and "escalation_id" in head[0].replace(",", ";").split(";")


def parse_csv(
    raw: bytes, limits: InputLimits = DEFAULT_LIMITS
) -> list[tuple[int, ZvhReferral | ZvhEscalation | MessageError]]:
    """Every row of a referral or escalation CSV, each a document or its error; file errors
    raise."""
    if is_escalation_csv(raw):
        rows = read_rows(raw, ESCALATION_REQUIRED, ESCALATION_COLUMNS, limits)
        return list(each(rows, _escalation))
    return list(each(read_rows(raw, REQUIRED, COLUMNS, limits), _referral))
