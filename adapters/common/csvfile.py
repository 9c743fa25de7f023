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

from adapters.common.limits import InputLimits, too_large, too_many
from schemas.errors import Issue, MessageError

DEFAULT_LIMITS = InputLimits()
MAX_FILE_BYTES = DEFAULT_LIMITS.max_bytes
T = TypeVar("T")
Row = dict[str, str]


def file_error(message: str, reason: str, path: str = "") -> MessageError:
    return MessageError([Issue(path, "structure", message, reason)])


def row_error(line: int, column: str | None, message: str, reason: str) -> MessageError:
    where = f"line {line}" + (f": {column}" if column else "")
    return MessageError([Issue(where, "value", message, reason)])


def decode_text(raw: bytes, limits: InputLimits) -> str:
    """The file as text, or the file-level refusal: too large, empty, not UTF-8 (a UTF-16
    export and a binary file are refused here, before anything reads a header)."""
    if len(raw) > limits.max_bytes:
        raise too_large(len(raw), limits.max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise file_error(
            f"file is not UTF-8 text (byte {err.start}); save it as UTF-8", "encoding"
        ) from None
    if "\x00" in text:
        raise file_error("file holds NUL characters: it is not a text file", "encoding")
    if not text.strip():
        raise file_error("the file is empty", "empty")
    return text


def read_rows(
    raw: bytes,
    required: Iterable[str],
    allowed: Iterable[str],
    limits: InputLimits = DEFAULT_LIMITS,
) -> list[tuple[int, Row | MessageError]]:
    """(line number, row) for every data row; empty cells are absent. Raises ``MessageError``
    for a file-level problem. Limits (docs/adapters/limits.md) are checked before the CSV
    reader sees a line: the length of every line, then the number of rows; a cell over its
    limit refuses its row."""
    text = decode_text(raw, limits)
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if len(line) > limits.csv_row_bytes:
            raise file_error(
                f"a line is longer than {limits.csv_row_bytes} characters",
                "row-too-large",
                f"line {number}",
            )
    if len(lines) - 1 > limits.batch_items:
        raise too_many(len(lines) - 1, limits.batch_items)
    if not lines or not lines[0].strip():
        raise file_error("the file has no header row", "no-header", "line 1")
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    # the reader's own field limit (131,072 by default) would end a long cell with csv.Error
    # before ours names it: lines are bounded above, so let the reader take a whole line
    if csv.field_size_limit() <= limits.csv_row_bytes:
        csv.field_size_limit(limits.csv_row_bytes + 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _rows(reader, required, allowed, limits)
    except csv.Error:
        # a quoted cell that runs on past the reader's field limit, or broken quoting; the
        # exception's text could quote the cell, so only the line is named
        raise file_error(
            "the CSV cannot be read here (a quoted cell never ends or exceeds "
            f"{limits.csv_cell_bytes} characters)",
            "csv-syntax",
            f"line {reader.line_num}",
        ) from None


def _rows(
    reader: Any, required: Iterable[str], allowed: Iterable[str], limits: InputLimits
) -> list[tuple[int, Row | MessageError]]:
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise file_error(f"missing column(s): {', '.join(missing)}", "missing-column", "line 1")
    allowed_set = set(allowed)
    # positions, not names: a header is the sender's text (a name or a BSN has stood there)
    unknown = [str(n) for n, c in enumerate(header, start=1) if c not in allowed_set]
    if unknown:
        raise file_error(
            f"unknown column(s) at position(s) {', '.join(unknown)}", "unknown-column", "line 1"
        )
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
        big = next(
            (h for h, c in zip(header, cells, strict=True) if len(c) > limits.csv_cell_bytes), None
        )
        if big is not None:
            out.append(
                (
                    line,
                    row_error(
                        line,
                        big,
                        f"a cell is longer than {limits.csv_cell_bytes} characters",
                        "cell-too-large",
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
