"""The limits every adapter applies to outside input before it parses it
(docs/adapters/limits.md), and the refusals that name them.

A limit is checked before the work it bounds: the size of a file from its directory entry or
an HTTP body from its length as it streams in (never read whole), the nesting of JSON before
it is parsed, the length of a CSV line before the CSV reader sees it. Each refusal has its own
reason code, and names a rule and a number -- never the input's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.config import Settings
from schemas import jsontext
from schemas.errors import Issue, MessageError


@dataclass(frozen=True)
class InputLimits:
    """The input limits of ``Settings`` (``KETENBUS_MAX_*``), as one value for the parsers."""

    max_bytes: int = 5_000_000
    json_depth: int = 32
    csv_cell_bytes: int = 65_536
    csv_row_bytes: int = 262_144
    batch_items: int = 10_000

    @classmethod
    def of(cls, settings: Settings) -> InputLimits:
        return cls(
            max_bytes=settings.max_input_bytes,
            json_depth=settings.max_json_depth,
            csv_cell_bytes=settings.max_csv_cell_bytes,
            csv_row_bytes=settings.max_csv_row_bytes,
            batch_items=settings.max_batch_items,
        )


def refusal(reason: str, message: str, path: str = "", code: str = "structure") -> MessageError:
    """A whole input refused for one rule."""
    return MessageError([Issue(path, code, message, reason)])


def too_large(size: int, limit: int) -> MessageError:
    return refusal("too-large", f"{size} bytes is more than the limit of {limit}", code="too-long")


def too_many(count: int, limit: int) -> MessageError:
    return refusal("too-many-items", f"{count} items is more than the limit of {limit}")


def read_json(raw: bytes, limits: InputLimits) -> Any:
    """Outside JSON bytes, the same for a file and an HTTP body: size, UTF-8, depth, strict
    JSON; a ``MessageError`` with reason ``too-large``, ``encoding``, ``too-deep`` or
    ``not-json``."""
    if len(raw) > limits.max_bytes:
        raise too_large(len(raw), limits.max_bytes)
    try:
        return jsontext.loads_outside(raw, limits.json_depth)
    except jsontext.NotUtf8 as err:
        raise refusal("encoding", f"{err}; send it as UTF-8") from None
    except jsontext.TooDeep as err:
        raise refusal("too-deep", str(err)) from None
    except ValueError as err:
        line = getattr(err, "lineno", None)
        where = f" (line {line})" if line else ""
        raise refusal("not-json", f"not valid JSON{where}") from None


def safe_detail(err: MessageError, limit: int = 1000) -> str:
    """What may travel in a ``kb-detail`` header or a log line about refused input: each
    issue's rule (reason code) and path. Never the message text, which for some rules
    echoes what was sent."""
    return "; ".join(f"{i.reason or i.code} at {i.path or '(document)'}" for i in err.issues)[
        :limit
    ]
