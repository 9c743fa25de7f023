"""The shipped financing rules, table by table: who pays which service on which date, at which
price, by which rule -- and where no rule or payer applies, a gap instead of a tariff."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.financing.rules import (
    DEFAULT_RULES,
    Facts,
    Gap,
    RulesError,
    Ruling,
    TitlePeriod,
    default_rules,
    parse_rules,
)
from schemas.vocab import ClaimService, FinancingRegime, LegalTitleKind, PartyRole

REG = ClaimService.REGISTRATION
CO = ClaimService.COORDINATION_DAY
TREAT = ClaimService.TREATMENT
SUP = ClaimService.SUPPORT
D = date.fromisoformat

UTRECHT = Facts(municipality="0344")
HOMELESS = Facts(homeless=True, zvh="zvh-mn", zvh_municipality="0344")
HOMELESS_POSTAL = Facts(municipality="0363", homeless=True, zvh="zvh-mn", zvh_municipality="0344")
HOMELESS_NO_ZVH_CODE = Facts(homeless=True, zvh="zvh-mn")
NOBODY = Facts()
INSURED = Facts(health_insurer="3311", municipality="0344")
CRIMINAL = Facts(
    health_insurer="3311",
    titles=(TitlePeriod(LegalTitleKind.CRIMINAL, D("2021-06-01")),),
)
CRIMINAL_ENDED = Facts(
    health_insurer="3311",
    titles=(TitlePeriod(LegalTitleKind.CRIMINAL, D("2021-06-01"), D("2022-05-31")),),
)
WVGGZ = Facts(health_insurer="3311", titles=(TitlePeriod(LegalTitleKind.WVGGZ, D("2021-01-01")),))
WLZ = Facts(care_office="5507", health_insurer="3311")
PLACED = Facts(municipal_placement="0344")
CRIMINAL_WLZ = Facts(
    care_office="5507", titles=(TitlePeriod(LegalTitleKind.CRIMINAL, D("2020-01-01")),)
)

M, HI, CO_, DJI, VWS = (
    PartyRole.MUNICIPALITY,
    PartyRole.HEALTH_INSURER,
    PartyRole.CARE_OFFICE,
    PartyRole.DJI,
    PartyRole.VWS,
)

# service, date, facts -> rule, payer role, payer identifier, regime, price (None: agreed)
PAID = [
    # registration phase: EUR 2,000, municipality of residence, 2019-2020
    (REG, "2019-01-01", UTRECHT, "registration-pilot", M, "0344", "wmo", 200_000),
    (REG, "2020-02-29", UTRECHT, "registration-pilot", M, "0344", "wmo", 200_000),
    (REG, "2020-12-31", UTRECHT, "registration-pilot", M, "0344", "wmo", 200_000),
    # a homeless person: the BRP (postal) address counts, else the ZVH's central municipality
    (REG, "2020-05-04", HOMELESS, "registration-pilot", M, "0344", "wmo", 200_000),
    (REG, "2020-05-04", HOMELESS_POSTAL, "registration-pilot", M, "0363", "wmo", 200_000),
    # no municipality at all while the emergency rule runs: VWS
    (REG, "2020-06-01", NOBODY, "vws-emergency-rule", VWS, None, "vws-emergency", 200_000),
    (
        REG,
        "2020-06-01",
        HOMELESS_NO_ZVH_CODE,
        "vws-emergency-rule",
        VWS,
        None,
        "vws-emergency",
        200_000,
    ),
    # coordination: EUR 20 a day, 2022-2023; DJI under a criminal-law title, else the insurer
    (CO, "2022-01-01", INSURED, "coordination-temporary-2022-2023", HI, "3311", "zvw", 2_000),
    (CO, "2023-12-31", INSURED, "coordination-temporary-2022-2023", HI, "3311", "zvw", 2_000),
    (CO, "2022-01-01", CRIMINAL, "coordination-temporary-2022-2023", DJI, None, "justice", 2_000),
    (
        CO,
        "2022-05-31",
        CRIMINAL_ENDED,
        "coordination-temporary-2022-2023",
        DJI,
        None,
        "justice",
        2_000,
    ),
    (
        CO,
        "2022-06-01",
        CRIMINAL_ENDED,
        "coordination-temporary-2022-2023",
        HI,
        "3311",
        "zvw",
        2_000,
    ),
    (CO, "2022-07-01", WVGGZ, "coordination-temporary-2022-2023", HI, "3311", "zvw", 2_000),
    # placed for a municipality, no title: DJI pays on behalf of the municipalities
    (CO, "2023-03-01", PLACED, "coordination-temporary-2022-2023", DJI, None, "justice", 2_000),
    # registration 2022-2023: the ministries VWS and JenV (reached through VWS), no tariff
    (
        REG,
        "2023-06-30",
        UTRECHT,
        "registration-ministries-2022-2023",
        VWS,
        None,
        "ministries",
        None,
    ),
    # treatment: by title and indication, at the agreed price
    (TREAT, "2024-02-29", CRIMINAL_WLZ, "treatment", DJI, None, "justice", None),
    (TREAT, "2024-02-29", WLZ, "treatment", CO_, "5507", "wlz", None),
    (TREAT, "2024-02-29", INSURED, "treatment", HI, "3311", "zvw", None),
    (TREAT, "2021-03-31", NOBODY, "vws-emergency-rule", VWS, None, "vws-emergency", None),
    (TREAT, "2019-01-01", NOBODY, "vws-emergency-rule", VWS, None, "vws-emergency", None),
    # support: the municipality of residence
    (SUP, "2024-05-01", UTRECHT, "support", M, "0344", "wmo", None),
    (SUP, "2024-05-01", HOMELESS, "support", M, "0344", "wmo", None),
]

# service, date, facts -> gap reason, words the explanation must contain
GAPS = [
    (REG, "2018-12-31", UTRECHT, "no-rule", "no financing rule covers this date"),
    (REG, "2021-04-01", UTRECHT, "no-rule", "pilots ended on 1 April 2021"),
    (CO, "2023-03-01", NOBODY, "no-payer", "health-insurer unknown"),
    (REG, "2024-02-29", UTRECHT, "no-rule", "2024 was still open"),
    (CO, "2021-12-31", INSURED, "no-rule", "no payment title"),
    (CO, "2024-01-01", INSURED, "no-rule", "2024 was still open"),
    (CO, "2024-02-29", CRIMINAL, "no-rule", "2024 was still open"),
    (TREAT, "2021-04-01", NOBODY, "no-payer", "emergency rule"),
    (TREAT, "2018-06-01", INSURED, "no-rule", "no financing rule"),
    (SUP, "2024-05-01", NOBODY, "no-payer", "municipality none"),
    (SUP, "2024-05-01", HOMELESS_NO_ZVH_CODE, "no-payer", "municipality homeless, none"),
]


@pytest.mark.parametrize(
    ("service", "day", "facts", "rule", "role", "identifier", "regime", "price"), PAID
)
def test_who_pays(
    service: ClaimService,
    day: str,
    facts: Facts,
    rule: str,
    role: PartyRole,
    identifier: str | None,
    regime: str,
    price: int | None,
) -> None:
    d = default_rules().decide(service, D(day), facts)
    assert isinstance(d, Ruling), d
    assert (d.rule, d.payer_role, d.payer_identifier, d.regime, d.price_cents) == (
        rule,
        role,
        identifier,
        FinancingRegime(regime),
        price,
    )
    shipped = {r.id: r.version for r in default_rules().rules}
    shipped[default_rules().emergency.id] = default_rules().emergency.version
    assert d.version == shipped[d.rule]
    assert "[source: " in d.text and d.source, "a ruling cites its source"
    assert d.rule in d.text or d.rule == "vws-emergency-rule"


@pytest.mark.parametrize(("service", "day", "facts", "reason", "words"), GAPS)
def test_gaps_are_raised_not_priced(
    service: ClaimService, day: str, facts: Facts, reason: str, words: str
) -> None:
    g = default_rules().decide(service, D(day), facts)
    assert isinstance(g, Gap), g
    assert g.reason == reason
    assert words in g.text


def test_a_decision_names_the_inputs_it_used_in_order() -> None:
    d = default_rules().decide(CO, D("2022-06-01"), CRIMINAL_ENDED)
    assert isinstance(d, Ruling)
    assert d.inputs == (
        ("criminal-law-title", "none"),
        ("municipal-placement", "none"),
        ("health-insurer", "3311"),
    )
    assert "EUR 20.00" in d.text and "health-insurer pays under zvw" in d.text
    homeless = default_rules().decide(REG, D("2020-05-04"), HOMELESS)
    assert isinstance(homeless, Ruling)
    assert homeless.inputs == (("municipality", "0344 (homeless: central municipality of zvh-mn)"),)
    emergency = default_rules().decide(TREAT, D("2020-01-01"), NOBODY)
    assert isinstance(emergency, Ruling)
    assert emergency.inputs[0] == ("service-rule", "treatment@1")
    assert "advances" in emergency.text and emergency.option == -1


def test_the_homeless_policy_is_data(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_RULES.read_text())
    data["residence"]["homeless_without_municipality"] = "none"
    rules = parse_rules(data)
    assert isinstance(rules.decide(SUP, D("2024-05-01"), HOMELESS), Gap)
    assert isinstance(rules.decide(REG, D("2020-05-04"), HOMELESS), Ruling)  # VWS emergency


def _data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text())
    return data


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["rules"].append(dict(d["rules"][1], id="coordination-bis")), "overlaps"),
        (lambda d: d["rules"].append(dict(d["rules"][0])), "appears twice"),
        (lambda d: d["rules"][0]["payers"][0].update(regime="zvw"), "pays under wmo"),
        (lambda d: d["rules"][0]["payers"][0].update(when="moon-phase"), "when"),
        (lambda d: d["rules"][0].update(price_cents=-1), "price_cents"),
        (lambda d: d["rules"][0].update(price_cents=2000.5), "price_cents"),
        (lambda d: d["rules"][0].update(valid_until="2018-01-01"), "before valid_from"),
        (
            lambda d: d["gaps"].append(
                {"service": "registration", "note": "x", "cite": {"document": "d", "section": "1"}}
            ),
            "overlaps rule",
        ),
        (lambda d: d["rules"][0].pop("cite"), "cite"),
        (lambda d: d["products"][0].update(category="99"), "category"),
        (lambda d: d["emergency"].pop("advance_after_days"), "advance_after_days"),
        (lambda d: d.update(surprise=1), "surprise"),
    ],
)
def test_a_broken_rules_file_is_refused_naming_the_entry(change: Any, words: str) -> None:
    data = _data()
    change(data)
    with pytest.raises(RulesError, match=words):
        parse_rules(data, "rules.yaml")


def test_the_shipped_file_loads_and_every_rule_cites_its_source() -> None:
    rules = default_rules()
    assert {r.service for r in rules.rules} == set(ClaimService)
    assert all(r.source.strip() for r in rules.rules)
    assert rules.overdue_after_days == 28 and rules.emergency.advance_after_days == 28
    assert rules.emergency.valid_until == D("2021-03-31")
