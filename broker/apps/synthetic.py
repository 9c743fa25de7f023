"""Synthetic people for scenarios and tests: valid-looking BSNs and names, made at run time."""

from __future__ import annotations

import random
from datetime import date, timedelta

from schemas.identifiers import bsn_check

FAMILY = [
    "de Vries",
    "Jansen",
    "van Dijk",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
]
GIVEN = [
    "Daan",
    "Sem",
    "Lucas",
    "Levi",
    "Finn",
    "Noah",
    "Emma",
    "Julia",
    "Mila",
    "Tess",
    "Sophie",
    "Zoë",
    "Sara",
    "Anna",
    "Milan",
    "Jesse",
]


def synthetic_bsn(rng: random.Random) -> str:
    """A 9-digit number that passes the 11-check. Starts with 9 — a range not issued to
    persons' BSNs in practice is not guaranteed, so these are for test systems only."""
    while True:
        head = "9" + "".join(str(rng.randrange(10)) for _ in range(7))
        total = sum(int(d) * w for d, w in zip(head, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10:
            candidate = head + str(last)
            if bsn_check(candidate):
                return candidate


def synthetic_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(GIVEN), rng.choice(FAMILY)


def synthetic_birth_date(rng: random.Random, today: date) -> date:
    return today - timedelta(days=rng.randrange(18 * 365, 70 * 365))
