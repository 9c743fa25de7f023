"""CSV batch files from counterpart systems: one record per row, judged row by row.

A file is UTF-8 (a byte-order mark is tolerated), ``;`` or ``,`` separated (decided by the
header line), with a header row naming the columns. What makes the whole file unreadable -- the
encoding, no header, a missing required column, an unknown column (a typo must never silently
drop data) -- refuses the file; a bad row refuses only that row, with its line number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import date
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from schemas.errors import Issue, MessageError

MAX_FILE_BYTES = 5_000_000
T = TypeVar("T")
Row = dict[str, str]


def file_error(message: str, reason: str, path: str = "") -> MessageError:
    return MessageError([Issue(path, "structure", message, reason)])


def row_error(line: int, column: str | None, message: str, reason: str) -> MessageError:
    where = f"line {line}" + (f": {column}" if column else "")
    return MessageError([Issue(where, "value", message, reason)])


def read_rows(
    raw: bytes, required: Iterable[str], allowed: Iterable[str]
) -> list[tuple[int, Row | MessageError]]:
    """(line number, row) for every data row; empty cells are absent. Raises ``MessageError``
    for a file-level problem."""
    if len(raw) > MAX_FILE_BYTES:
        raise file_error("file exceeds 5 MB", "too-large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise file_error(
            f"file is not UTF-8 text (byte {err.start}); save it as UTF-8", "encoding"
        ) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise file_error("the file has no header row", "no-header", "line 1")
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise file_error(f"missing column(s): {', '.join(missing)}", "missing-column", "line 1")
    allowed_set = set(allowed)
    unknown = [c for c in header if c not in allowed_set]
    if unknown:
        raise file_error(f"unknown column(s): {', '.join(unknown)}", "unknown-column", "line 1")
    if len(set(header)) != len(header):
        raise file_error("a column appears twice", "duplicate-column", "line 1")
    out: list[tuple[int, Row | MessageError]] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # blank line
        if len(cells) != len(header):
            out.append(
                (
                    line,
                    row_error(
                        line, None, f"{len(cells)} fields, the header has {len(header)}", "fields"
                    ),
                )
            )
            continue
        out.append((line, {h: c.strip() for h, c in zip(header, cells, strict=True) if c.strip()}))
    if not out:
        raise file_error("the file holds no rows", "empty")
    return out


def parse_row(line: int, model: type[BaseModel], row: Row) -> Any:
    """Validate a row against a model whose field names are the columns; ``MessageError``
    names the line and column of every problem."""
    try:
        return model.model_validate(row)
    except ValidationError as err:
        issues = []
        for e in err.errors():
            column = ".".join(str(p) for p in e["loc"]) or None
            where = f"line {line}" + (f": {column}" if column else "")
            msg = str(e["msg"]).removeprefix("Value error, ")
            issues.append(Issue(where, "value", msg, _reason(e)))
        raise MessageError(issues) from None


def _reason(e: Any) -> str:
    kind = str(e.get("type", "invalid"))
    ctx = e.get("ctx") or {}
    err = ctx.get("error")
    code = getattr(err, "reason", None) if err is not None else None
    if code:
        return str(code)
    return {"date_from_datetime_parsing": "date", "date_parsing": "date"}.get(kind, kind)


def split_list(value: str | None) -> list[str]:
    """A list inside one cell: items separated by ``|``."""
    return [v.strip() for v in (value or "").split("|") if v.strip()]


def to_bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    v = value.strip().lower()
    if v in ("true", "ja", "yes", "1", "j", "y"):
        return True
    if v in ("false", "nee", "no", "0", "n"):
        return False
    raise ValueError("is not yes/no (true/false, ja/nee, 1/0)")


def iso_date(value: str) -> date:
    """A strict ISO date (``YYYY-MM-DD``): ``ValueError`` naming the expected form."""
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date (YYYY-MM-DD)") from None


def each(
    rows: list[tuple[int, Row | MessageError]], build: Callable[[int, Row], T]
) -> list[tuple[int, T | MessageError]]:
    """Build every row on its own; a failure stays with its line."""
    out: list[tuple[int, T | MessageError]] = []
    for line, row in rows:
        if isinstance(row, MessageError):
            out.append((line, row))
            continue
        try:
            out.append((line, build(line, row)))
        except MessageError as err:
            out.append((line, err))
    return out


IsoDate = Annotated[date, BeforeValidator(lambda v: iso_date(v) if isinstance(v, str) else v)]
"""A date column: ``YYYY-MM-DD`` only."""
