"""Strict JSON text: what every reader of outside JSON accepts.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON) and makes ``1e400``
an infinity. None of these can be written back as JSON, so a message or document holding one
would reach its recipient as text no other JSON reader takes. Every parser of outside input
reads through :func:`loads`, which refuses them with a ``ValueError`` (as json refuses any other
text that is not JSON); :class:`OutOfRange` for a number beyond the float range.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


class OutOfRange(ValueError):
    """A number beyond the float range, which json would read as an infinity."""


def no_constant(name: str) -> Any:
    """``parse_constant`` for json: ``NaN`` and the infinities are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def finite_float(text: str) -> float:
    """``parse_float`` for json: a number beyond the float range (``1e400``) would be read as
    an infinity. The number is not quoted: errors reach logs and dead letters, and its digits
    could be anything the sender put there."""
    value = float(text)
    if math.isinf(value):
        raise OutOfRange("a number is beyond the range of a float (it would be read as infinite)")
    return value


def loads(raw: bytes | str) -> Any:
    """``json.loads`` that refuses what cannot be written back as JSON (``ValueError``)."""
    return json.loads(raw, parse_constant=no_constant, parse_float=finite_float)


class NotUtf8(ValueError):
    """Outside JSON text that is not UTF-8 (RFC 8259 §8.1: JSON exchanged between systems
    is UTF-8). ``json.loads`` on bytes would guess UTF-16 or UTF-32, so a file inbox and an
    HTTP intake that both read through :func:`loads_outside` accept the same bytes alike."""


class TooDeep(ValueError):
    """Objects and arrays nested deeper than allowed. Checked before parsing: json's recursive
    reader would otherwise fail with a ``RecursionError`` (not a ``ValueError``) near 1,000
    levels, and anything deep below that costs the validator as much again."""


# A JSON string, unrolled (no alternation per character, so long strings stay linear).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def nesting_depth(text: str, limit: int) -> int:
    """How deep objects and arrays nest in ``text`` (strings skipped), counting only up to
    ``limit + 1``: enough to tell that it is too deep without walking the rest."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


def loads_outside(raw: bytes, max_depth: int) -> Any:
    """Outside JSON bytes: UTF-8 (a byte-order mark tolerated), nested at most ``max_depth``
    levels, then :func:`loads`. ``NotUtf8``, ``TooDeep`` or another ``ValueError``."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise NotUtf8(f"not UTF-8 text (byte {err.start})") from None
    if nesting_depth(text, max_depth) > max_depth:
        raise TooDeep(f"objects and arrays nest deeper than {max_depth} levels")
    try:
        return loads(text)
    except RecursionError:  # cannot happen below the limit; never a crash if it does
        raise TooDeep(f"objects and arrays nest deeper than {max_depth} levels") from None
