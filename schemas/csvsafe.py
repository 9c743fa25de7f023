"""Cells that a spreadsheet would run as a formula (CSV injection, OWASP "CSV Injection"):
every CSV ketenbus writes passes its cells through :func:`neutralise`.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel and LibreOffice (``=HYPERLINK(...)`` leaks data, ``=cmd|...`` has run programs). Such a
cell is written with a leading apostrophe, which the spreadsheet shows as text. A plain number
(``-12.50``) is left as it is: it is no formula, and amounts must stay numbers.
"""

from __future__ import annotations

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def neutralise(value: str) -> str:
    """``value`` safe to open in a spreadsheet (see the module)."""
    if value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value
