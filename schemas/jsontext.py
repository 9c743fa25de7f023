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
