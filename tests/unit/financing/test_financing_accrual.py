"""Coordination days per calendar month: month ends, leap days, inclusion and end of care
mid-month, a title that starts mid-month, a rule that ends, and only finished months claimed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from adapters.financing.accrual import (
    Episode,
    coordination_segments,
    gap_periods,
    month_end,
    months,
)
from adapters.financing.rules import (
    DEFAULT_RULES,
    Facts,
    Gap,
    RuleSet,
    Ruling,
    TitlePeriod,
    default_rules,
    parse_rules,
)
from schemas.vocab import LegalTitleKind, PartyRole

D = date.fromisoformat
INSURED = Facts(health_insurer="3311")


def rows(segments: list[Any]) -> list[tuple[str, str, int, str]]:
    out = []
    for s in segments:
        who = s.outcome.payer_role.value if isinstance(s.outcome, Ruling) else "gap"
        out.append((s.start.isoformat(), s.end.isoformat(), s.days, who))
    return out


@pytest.mark.parametrize(
    ("day", "end"),
    [
        ("2024-02-10", "2024-02-29"),
        ("2023-02-01", "2023-02-28"),
        ("2100-02-14", "2100-02-28"),  # not a leap year (divisible by 100)
        ("2000-02-14", "2000-02-29"),  # a leap year (divisible by 400)
        ("2022-12-31", "2022-12-31"),
        ("2022-04-01", "2022-04-30"),
    ],
)
def test_month_end(day: str, end: str) -> None:
    assert month_end(D(day)) == D(end)


def test_months_cut_a_period_at_every_month_end() -> None:
    assert list(months(D("2023-12-15"), D("2024-03-01"))) == [
        (D("2023-12-15"), D("2023-12-31")),
        (D("2024-01-01"), D("2024-01-31")),
        (D("2024-02-01"), D("2024-02-29")),
        (D("2024-03-01"), D("2024-03-01")),
    ]


# inclusion, end of care, today -> claimable segments (start, end, days, payer role / gap)
TABLE = [
    # inclusion mid-month: the first claim runs from the inclusion date
    (
        "2022-03-15",
        None,
        "2022-05-01",
        [
            ("2022-03-15", "2022-03-31", 17, "health-insurer"),
            ("2022-04-01", "2022-04-30", 30, "health-insurer"),
        ],
    ),
    # a month is claimed only once it is over
    ("2022-03-15", None, "2022-04-30", [("2022-03-15", "2022-03-31", 17, "health-insurer")]),
    ("2022-03-15", None, "2022-03-31", []),
    ("2022-03-15", None, "2022-04-01", [("2022-03-15", "2022-03-31", 17, "health-insurer")]),
    # end of care mid-month: claimable the day after the end date, up to and including it
    (
        "2022-03-15",
        "2022-04-10",
        "2022-04-11",
        [
            ("2022-03-15", "2022-03-31", 17, "health-insurer"),
            ("2022-04-01", "2022-04-10", 10, "health-insurer"),
        ],
    ),
    (
        "2022-03-15",
        "2022-04-10",
        "2022-04-10",
        [("2022-03-15", "2022-03-31", 17, "health-insurer")],
    ),
    # inclusion and end in one month
    ("2022-06-30", "2022-06-30", "2022-07-01", [("2022-06-30", "2022-06-30", 1, "health-insurer")]),
    # the rule ends on 2023-12-31: January and the leap February of 2024 are a gap
    (
        "2023-12-15",
        None,
        "2024-03-01",
        [
            ("2023-12-15", "2023-12-31", 17, "health-insurer"),
            ("2024-01-01", "2024-01-31", 31, "gap"),
            ("2024-02-01", "2024-02-29", 29, "gap"),
        ],
    ),
    # inclusion before the rule starts
    (
        "2021-12-20",
        None,
        "2022-02-01",
        [
            ("2021-12-20", "2021-12-31", 12, "gap"),
            ("2022-01-01", "2022-01-31", 31, "health-insurer"),
        ],
    ),
]


@pytest.mark.parametrize(("inclusion", "end", "today", "expected"), TABLE)
def test_claimable_segments(
    inclusion: str, end: str | None, today: str, expected: list[tuple[str, str, int, str]]
) -> None:
    episode = Episode("E1", D(inclusion), D(end) if end else None)
    segments = coordination_segments(default_rules(), episode, INSURED, D(today))
    assert rows(segments) == expected


def test_a_criminal_title_from_mid_month_splits_the_month_between_payers() -> None:
    facts = Facts(
        health_insurer="3311",
        titles=(TitlePeriod(LegalTitleKind.CRIMINAL, D("2023-11-10"), D("2023-11-20")),),
    )
    segments = coordination_segments(
        default_rules(), Episode("E1", D("2023-11-01")), facts, D("2023-12-01")
    )
    assert rows(segments) == [
        ("2023-11-01", "2023-11-09", 9, "health-insurer"),
        ("2023-11-10", "2023-11-20", 11, "dji"),
        ("2023-11-21", "2023-11-30", 10, "health-insurer"),
    ]
    assert sum(s.days for s in segments) == 30


def test_gap_months_merge_into_one_gap_period() -> None:
    segments = coordination_segments(
        default_rules(), Episode("E1", D("2023-12-15")), INSURED, D("2024-04-01")
    )
    gaps = gap_periods(segments)
    assert [(g.start, g.end) for g in gaps] == [(D("2024-01-01"), D("2024-03-31"))]
    assert isinstance(gaps[0].outcome, Gap) and "2024" in gaps[0].outcome.text


def _leap_rules() -> RuleSet:
    """The shipped rules with the 2022-2023 coordination rule stretched over 2024 (a leap year)."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text())
    rule = next(r for r in data["rules"] if r["id"] == "coordination-temporary-2022-2023")
    rule["valid_until"] = date(2024, 12, 31)
    data["gaps"] = [
        g for g in data["gaps"] if g["service"] != "coordination-day" or "valid_until" in g
    ]
    return parse_rules(data)


def test_a_leap_february_is_claimed_for_29_days() -> None:
    segments = coordination_segments(
        _leap_rules(), Episode("E1", D("2024-02-01")), INSURED, D("2024-03-01")
    )
    assert rows(segments) == [("2024-02-01", "2024-02-29", 29, "health-insurer")]
    d = segments[0].outcome
    assert isinstance(d, Ruling) and d.price_cents is not None
    assert segments[0].days * d.price_cents == 58_000
    assert d.payer_role is PartyRole.HEALTH_INSURER
