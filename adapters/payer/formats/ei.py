"""The Vektis EI fixed-width conventions every EI message shares (the 300-series to insurers
and DJI, AW319/AW320 to and from care offices): records of a fixed length named by their first
two characters, ``N`` fields right-aligned and zero-filled, ``AN`` fields left-aligned and
space-filled, ASCII, CR LF. One layout table per message, in its own module; the record
arithmetic here."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from adapters.payer.formats.common import FormatError, ascii_text


@dataclass(frozen=True)
class Field:
    name: str
    start: int  # 1-based position
    length: int
    kind: str  # "N" numeric, "AN" alphanumeric


Layouts = dict[str, tuple[Field, ...]]


def layout(*fields: tuple[str, int, int, str]) -> tuple[Field, ...]:
    """A record layout; the fields must tile the record without gaps or overlaps."""
    out = tuple(Field(*f) for f in fields)
    for a, b in pairwise(out):
        assert a.start + a.length == b.start, f"{a.name} and {b.name} do not meet"
    return out


def record(layouts: Layouts, length: int, kind: str, values: dict[str, str | int]) -> str:
    """One record of ``kind``; unknown names, or values too wide for their field, fail."""
    fields = layouts[kind]
    known = {f.name for f in fields}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"record {kind} has no field {sorted(unknown)}")
    out = []
    for f in fields:
        value = kind if f.name == "kenmerk" else values.get(f.name)
        if f.kind == "N":
            text = "0" * f.length if value in (None, "") else str(value)
            if not text.isdigit():
                raise FormatError(f"{kind}.{f.name} is not numeric")
            text = text.rjust(f.length, "0")
        else:
            text = ascii_text(str(value or "")).ljust(f.length)
        if len(text) > f.length:
            raise FormatError(f"{kind}.{f.name}: {len(text)} characters do not fit {f.length}")
        out.append(text)
    line = "".join(out)
    assert len(line) == length, (kind, len(line))
    return line


def fields(layouts: Layouts, line: str) -> dict[str, str]:
    """The fields of a record (by its kenmerk), stripped."""
    return {f.name: line[f.start - 1 : f.start - 1 + f.length].strip() for f in layouts[line[:2]]}
