"""Canonical JSON for hashing audit records.

``canonical(value)`` is, byte for byte::

    json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

restricted to the value types an audit record uses, so that the output is also exactly the
JSON Canonicalization Scheme (RFC 8785) of the value:

* objects with **ASCII string keys** only (then sorting by code point, as Python does, equals
  RFC 8785's sorting by UTF-16 code unit);
* strings of valid Unicode (no lone surrogates); non-ASCII characters are written as UTF-8, and
  only ``"``, ``\\`` and the control characters U+0000-U+001F are escaped (``\\b \\f \\n \\r \\t``
  short forms, otherwise ``\\u00xx`` in lower-case hex), as RFC 8785 requires;
* integers with magnitude below 2**53, ``true``, ``false``, ``null``, arrays;
* **no floating-point numbers** (their RFC 8785 form differs from Python's ``repr``).

Anything outside these rules raises :class:`CanonicalError` instead of hashing something a
second implementation could serialise differently.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    """A value that has no canonical form under our rules; the message names its path."""


def check(value: Any, path: str = "$") -> None:
    """Raise :class:`CanonicalError` when ``value`` breaks the rules in the module doc."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer {value} is outside +-(2**53 - 1)")
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floating-point numbers are not allowed")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalError(f"{path}: string is not valid Unicode ({exc.reason})") from exc
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise CanonicalError(f"{path}: object key {key!r} is not an ASCII string")
            check(item, f"{path}.{key}")
        return
    raise CanonicalError(f"{path}: {type(value).__name__} is not a JSON value")


def _fits(value: Any) -> bool:
    """:func:`check` without the paths (building them cost more than the check itself): True
    only for values ``check`` accepts; anything unusual is left to ``check`` (and its message)."""
    kind = type(value)
    if kind is str:
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not _fits(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_fits(item) for item in value)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    return value is None or kind is bool


def canonical(value: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``value`` (see the module documentation)."""
    if not _fits(value):
        check(value)  # raises CanonicalError naming the path (or accepts, e.g. a str subclass)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
