"""The national scenario: synthetic parties and year at the rates of the domain brief."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date

from broker.apps.scenarios.national_parties import REGIONS, parties
from broker.apps.scenarios.national_plan import make_plan, month_ranges, payer_fate
from schemas.vocab import PartyRole


def test_parties_cover_the_country() -> None:
    roles = Counter(p.role for p in parties())
    assert len(REGIONS) == 11
    assert roles[PartyRole.ZVH] == 25
    assert roles[PartyRole.COORDINATING_PROVIDER] == 11
    assert roles[PartyRole.HEALTH_INSURER] == 4 and roles[PartyRole.CARE_OFFICE] >= 1
    assert roles[PartyRole.DJI] == roles[PartyRole.VWS] == 1
    assert roles[PartyRole.NATIONAL_COORDINATION] == roles[PartyRole.CAPACITY_DASHBOARD] == 1
    ids = [p.id for p in parties()]
    assert len(ids) == len(set(ids))
    pilots = {r.code: (r.provider, r.insurer) for r in REGIONS if r.pilot}
    assert pilots == {
        "oost-nederland": ("transfore", "menzis"),
        "midden-nederland": ("fivoor", "zilveren-kruis"),
        "limburg": ("de-rooyse-wissel", "cz"),
        "oost-brabant": ("de-woenselse-poort", "vgz"),
    }


def test_a_year_at_the_rates_of_the_brief() -> None:
    plan = make_plan(7, date(2023, 1, 1), 12)
    cases = plan.cases
    assert plan.end == date(2023, 12, 31)
    assert 340 <= len(cases) <= 410
    included = [c for c in cases if c.included]
    assert 0.4 <= len(included) / len(cases) <= 0.6
    assert 0.33 <= sum(c.care_avoider for c in included) / len(included) <= 0.57
    assert all(c.basis != "none" for c in included), "nobody is included without a basis"
    assert {c.basis for c in cases} == {"consent", "conflict-of-duties", "none"}
    assert len({c.case_id for c in cases}) == len(cases)
    assert len({c.person["bsn"] for c in cases}) == len(cases)
    kinds = Counter(t.kind for c in cases for t in c.transitions)
    assert kinds["start"] > 100 and kinds["scale-up"] > 10 and kinds["scale-down"] > 0


def test_transitions_are_ordered_and_alternate() -> None:
    for c in make_plan(3, date(2023, 1, 1), 12).cases:
        ts = c.transitions
        assert [t.on for t in ts] == sorted(t.on for t in ts)
        if ts:
            assert ts[0].kind == "start" and c.inclusion_date and ts[0].on >= c.inclusion_date
            for a, b in itertools.pairwise(ts):
                assert b.previous in (None, a.level)
                assert (a.level == "ambulant") == (b.kind in ("scale-up", "end"))


def test_the_same_seed_makes_the_same_year() -> None:
    a, b = make_plan(11, date(2023, 1, 1), 3), make_plan(11, date(2023, 1, 1), 3)
    assert [(c.case_id, c.person, c.included) for c in a.cases] == [
        (c.case_id, c.person, c.included) for c in b.cases
    ]
    assert make_plan(12, date(2023, 1, 1), 3).cases != a.cases


def test_payers_pay_most_claims_and_leave_some_unpaid() -> None:
    fates = Counter(payer_fate(1, f"CO-{i}")[0] for i in range(2000))
    assert fates["paid"] > 1600 and fates["withheld"] > 100 and fates["rejected"] > 20
    assert payer_fate(1, "X") == payer_fate(1, "X")


def test_month_ranges() -> None:
    assert month_ranges(date(2023, 1, 15), date(2023, 3, 2)) == [
        (date(2023, 1, 15), date(2023, 1, 31)),
        (date(2023, 2, 1), date(2023, 2, 28)),
        (date(2023, 3, 1), date(2023, 3, 2)),
    ]
