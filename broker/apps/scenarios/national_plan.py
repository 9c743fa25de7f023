"""A synthetic year of the Levensloopaanpak at the rates of the domain brief, made from a seed.

Pure data (no I/O): the cases, who consents, who is included, each person's transitions between
ambulant care and secure beds, and what the providers' EPDs and the payers will do. The driver in
``broker.apps.scenarios.national`` feeds it to the real adapters day by day.

Rates *(from DOMAIN.md unless marked design choice)*: 165-200 inclusions a year, about half of
referrals included (so ~375 referrals a year), ~45% of the included people care avoiders,
usually registered by the municipality. Design choices: 82% of referrals with consent, 8% under
the ZVH's conflict of duties (a decision per occasion: the referral, the inclusion decision, a
scale-up to level 3 or 4; the other transitions of such a case travel on the person's legal
title, see ``national.transition_basis``), 10% without either (the router refuses them); per
ambulant month a 12% chance of scaling up to a secure bed (level 2/3/4 as 50/35/15%), stays of
3-16 weeks; 2% a month end of care; payers pay ~88% of claims, reject ~3% (no payment title)
and leave ~9% unpaid.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from broker.apps.scenarios.national_parties import CARE_OFFICES, INSURERS, REGIONS, Region
from broker.apps.synthetic import synthetic_birth_date, synthetic_bsn, synthetic_name

REFERRALS_PER_YEAR = 375
P_CONSENT, P_CONFLICT = 0.82, 0.08  # else: no basis, refused by the router
P_INCLUDED_IF_DELIVERED = 0.5 / (P_CONSENT + P_CONFLICT)
P_AVOIDER_INCLUDED, P_AVOIDER_OTHER = 0.45, 0.35
P_SCALE_UP_PER_MONTH, P_END_PER_MONTH = 0.12, 0.02
LEVELS = (("2", 0.50), ("3", 0.35), ("4", 0.15))
P_PAY, P_REJECT = 0.88, 0.03  # else withheld: the 28-day watchdog escalates
# Treatment: an agreed price per day by security level (eurocents; design choice)
DAY_RATE = {"ambulant": 9_000, "2": 45_000, "3": 60_000, "4": 75_000}
SUPPORT_MONTH = 120_000  # Wmo support (housing, day activities) per month, EUR 1,200
BEDS = {"2": 10, "3": 8, "4": 4}  # secure beds in service per provider and level
ALTERNATIVES = [
    "mental-health-care",
    "disability-care",
    "addiction-care",
    "forensic-care",
    "social-support",
    "zvh-case-work",
]
SIGNALLERS = {
    "municipality": "Gemeente (sociaal wijkteam)",
    "police": "Politie",
    "justice": "Reclassering",
    "care": "GGZ-instelling",
    "housing": "Woningcorporatie",
}


@dataclass
class Transition:
    on: date
    kind: str  # start | scale-up | scale-down | end
    level: str  # ambulant | 2 | 3 | 4
    previous: str | None = None


@dataclass
class Case:
    case_id: str
    zvh: str
    region: Region
    registered_on: date
    person: dict[str, Any]
    basis: str  # consent | conflict-of-duties | none
    care_avoider: bool
    criminal_title: date | None
    included: bool
    assessed_on: date
    alternative: str | None
    inclusion_date: date | None
    insurer: str | None  # party id
    care_office: str | None  # party id
    support: bool  # Wmo support claims while ambulant
    transitions: list[Transition] = field(default_factory=list)

    @property
    def episode_id(self) -> str:
        return "EP-" + self.case_id

    def level_on(self, day: date) -> str | None:
        """The security level on a day (None: not in care)."""
        level = None
        for t in self.transitions:
            if t.on > day:
                break
            level = None if t.kind == "end" else t.level
        return level


@dataclass
class Plan:
    start: date
    end: date  # last day of the simulated period
    cases: list[Case]


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x, acc = rng.random(), 0.0
    for value, w in weighted:
        acc += w
        if x < acc:
            return value
    return weighted[-1][0]


def _transitions(rng: random.Random, start: date, horizon: date) -> list[Transition]:
    out = [Transition(start, "start", "ambulant")]
    day, level, since = start, "ambulant", start
    stay_until: date | None = None
    while True:
        day += timedelta(days=1)
        if day > horizon:
            return out
        if level == "ambulant":
            if (day - since).days >= 90 and rng.random() < P_END_PER_MONTH / 30:
                out.append(Transition(day, "end", "ambulant"))
                return out
            if rng.random() < P_SCALE_UP_PER_MONTH / 30:
                new = _pick(rng, LEVELS)
                out.append(Transition(day, "scale-up", new, level))
                level, stay_until = new, day + timedelta(days=rng.randint(21, 112))
        elif stay_until is not None and day >= stay_until:
            out.append(Transition(day, "scale-down", "ambulant", level))
            level, since, stay_until = "ambulant", day, None


def make_plan(seed: int, start: date, months: int, per_year: int = REFERRALS_PER_YEAR) -> Plan:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    y, m = divmod(start.month - 1 + months, 12)
    end = date(start.year + y, m + 1, 1) - timedelta(days=1)
    span = (end - start).days + 1
    n = max(1, round(per_year * span / 365))
    zvhs = [(r, z) for r in REGIONS for z in r.zvhs]
    counters: dict[str, int] = {}
    cases: list[Case] = []
    for registered_on in sorted(start + timedelta(days=rng.randrange(span)) for _ in range(n)):
        region, zvh = rng.choice(zvhs)
        counters[zvh.id] = counters.get(zvh.id, 0) + 1
        case_id = f"{zvh.id.removeprefix('zvh-').upper()[:12]}-{start.year}-{counters[zvh.id]:04d}"
        x = rng.random()
        basis = (
            "consent"
            if x < P_CONSENT
            else "conflict-of-duties"
            if x < P_CONSENT + P_CONFLICT
            else "none"
        )
        included = basis != "none" and rng.random() < P_INCLUDED_IF_DELIVERED
        avoider = rng.random() < (P_AVOIDER_INCLUDED if included else P_AVOIDER_OTHER)
        homeless = avoider and rng.random() < 0.4
        given, family = synthetic_name(rng)
        person = {
            "bsn": synthetic_bsn(rng),
            "family_name": family,
            "given_names": [given],
            "birth_date": synthetic_birth_date(rng, registered_on).isoformat(),
            "gender": rng.choice(["male", "female", "male"]),
            "homeless": homeless,
        }
        if not homeless:
            person["municipality"] = region.municipality
        criminal = (
            registered_on - timedelta(days=rng.randint(30, 700)) if rng.random() < 0.4 else None
        )
        assessed_on = registered_on + timedelta(days=rng.randint(14, 42))
        inclusion = assessed_on + timedelta(days=rng.randint(0, 7)) if included else None
        insurer = (
            None
            if rng.random() < 0.1
            else region.insurer
            if rng.random() < 0.7
            else rng.choice(sorted(INSURERS))
        )
        case = Case(
            case_id=case_id,
            zvh=zvh.id,
            region=region,
            registered_on=registered_on,
            person=person,
            basis=basis,
            care_avoider=avoider,
            criminal_title=criminal,
            included=included,
            assessed_on=assessed_on,
            alternative=None if included else rng.choice(ALTERNATIVES),
            inclusion_date=inclusion,
            insurer=insurer,
            care_office=region.care_office if rng.random() < 0.15 else None,
            support=rng.random() < 0.4,
        )
        if inclusion is not None:
            start_care = inclusion + timedelta(days=rng.randint(0, 14))
            if start_care <= end:
                case.transitions = _transitions(rng, start_care, end)
        cases.append(case)
    assert all(c in CARE_OFFICES for c in {r.care_office for r in REGIONS})
    return Plan(start, end, cases)


def payer_fate(seed: int, claim_id: str) -> tuple[str, int]:
    """What the payer does with a claim: ("paid" | "rejected" | "withheld", days to decide);
    stable per seed and claim, whatever order claims arrive in."""
    h = hashlib.sha256(f"{seed}:{claim_id}".encode()).digest()
    x = int.from_bytes(h[:4], "big") / 2**32
    days = 3 + h[4] % 18
    if x < P_PAY:
        return "paid", days
    if x < P_PAY + P_REJECT:
        return "rejected", days
    return "withheld", days


def month_ranges(first: date, last: date) -> list[tuple[date, date]]:
    out, d = [], date(first.year, first.month, 1)
    while d <= last:
        nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        out.append((max(d, first), min(nxt - timedelta(days=1), last)))
        d = nxt
    return out
