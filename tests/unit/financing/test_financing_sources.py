"""Every boundary of the shipped financing rules, the day before and the day of each change, with
the sentence of the source it rests on (seeds in /work/shared/seeds: 000 = VNG ledenbrief 2020,
002 = implementatie- en onderhoudsplan Levensloopaanpak 2022, 004 = Kamerbrief VWS/JenV
6 november 2020)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.financing.rules import (
    Facts,
    Gap,
    PayTarget,
    Ruling,
    TitlePeriod,
    default_rules,
    dutch_date,
)
from schemas.vocab import ClaimService, FinancingRegime, LegalTitleKind, PartyRole

REG = ClaimService.REGISTRATION
CO = ClaimService.COORDINATION_DAY
D = date.fromisoformat
UTRECHT = Facts(municipality="0344")
NOBODY = Facts()
INSURED = Facts(health_insurer="3311")
PLACED = Facts(municipal_placement="0344", health_insurer="3311")


def ruling(service: ClaimService, day: str, facts: Facts) -> Ruling:
    d = default_rules().decide(service, D(day), facts)
    assert isinstance(d, Ruling), d
    return d


def gap(service: ClaimService, day: str, facts: Facts) -> Gap:
    d = default_rules().decide(service, D(day), facts)
    assert isinstance(d, Gap), d
    return d


def test_the_registration_tariff_runs_until_the_pilots_end() -> None:
    """Seed 000, section 5: "De vier pilots die reeds lopen, gaan door tot 1 april 2021." The
    EUR 2,000 is the pilots' tariff: 31 March 2021 is still in it, 1 April 2021 is not."""
    before = ruling(REG, "2021-03-31", UTRECHT)
    assert (before.rule, before.price_cents, before.payer_role) == (
        "registration-pilot",
        200_000,
        PartyRole.MUNICIPALITY,
    )
    after = gap(REG, "2021-04-01", UTRECHT)
    assert after.reason == "no-rule" and "1 April 2021" in after.text and "seed 000" in after.text


def test_the_registration_tariff_is_recalibrated_at_the_end_of_2020_not_ended() -> None:
    """Seed 000, section 3, footnote 4: "Als eind 2020 blijkt dat de kosten in tijd of personeel
    anders liggen, wordt het normbedrag van EUR 2000,00 herijkt / bijgesteld." A review date,
    not an end: 31 December 2020 and 1 January 2021 are judged alike, at EUR 2,000."""
    for day in ("2020-12-31", "2021-01-01"):
        d = ruling(REG, day, UTRECHT)
        assert (d.rule, d.price_cents) == ("registration-pilot", 200_000)
    rule = default_rules().rule_for(REG, D("2021-01-01"))
    assert rule is not None and rule.recalibration is not None
    assert rule.recalibration.review_on == D("2020-12-31")


def test_the_emergency_rule_covers_the_registration_phase_until_the_end_of_march_2021() -> None:
    """Seed 004: the emergency rule is for "de (financiering van de) benodigde voorzieningen,
    zoals de aanmeldfunctie of beveiligde zorg" and "geldt maximaal tot en met maart 2021". A
    registration with no municipality on 31 March 2021 is billed to VWS; on 1 April it is a
    gap (the pilot tariff and the emergency rule end together)."""
    d = ruling(REG, "2021-03-31", NOBODY)
    assert (d.rule, d.payer_role, d.regime) == (
        "vws-emergency-rule",
        PartyRole.VWS,
        FinancingRegime.VWS_EMERGENCY,
    )
    assert "bestuurlijk adviseur" in d.text and "seed 004" in d.text
    assert REG in default_rules().emergency.services
    assert isinstance(default_rules().decide(REG, D("2021-04-01"), NOBODY), Gap)


def test_the_emergency_rule_ends_with_march_2021_for_treatment_too() -> None:
    """Seed 004: "Voor nu is gesteld dat de regeling maximaal tot en met maart 2021 geldt.\""""
    assert ruling(ClaimService.TREATMENT, "2021-03-31", NOBODY).rule == "vws-emergency-rule"
    late = gap(ClaimService.TREATMENT, "2021-04-01", NOBODY)
    assert late.reason == "no-payer" and "does not apply" in late.text


def test_the_ministries_cover_the_registration_phase_in_2022_and_2023() -> None:
    """Seed 002, 2.2: "Over de betaling door de gemeenten aan de levensloopaanbieder voor de
    werkzaamheden van de coördinator voorafgaand aan een zorgtraject zijn nog geen structurele
    afspraken gemaakt. Deze kosten worden in de tijdelijke oplossing opgevangen door
    Ministeries VWS en J&V." 31 December 2021 is a gap; 1 January 2022 to 31 December 2023 the
    ministries (no tariff given: the desk holds the cost); 1 January 2024 open again."""
    assert gap(REG, "2021-12-31", UTRECHT).reason == "no-rule"
    for day in ("2022-01-01", "2023-12-31"):
        d = ruling(REG, day, NOBODY)
        assert (d.rule, d.target, d.regime, d.price_cents) == (
            "registration-ministries-2022-2023",
            PayTarget.MINISTRIES,
            FinancingRegime.MINISTRIES,
            None,
        )
        assert "seed 002" in d.source and "2.2" in d.source
    assert "2024" in gap(REG, "2024-01-01", UTRECHT).text


def test_coordination_days_are_paid_from_2022_by_regime() -> None:
    """Seed 002, 2.5: "een vast bedrag van 20 euro per dag in rekening kan brengen voor de
    cliëntgebonden coördinatie bij óf DJI óf bij de zorgverzekeraar, waarbij DJI ook voor de
    gemeenten betaalt." 31 December 2021: no per-day fee; 1 January 2022: EUR 20 to the
    insurer (Zvw); 31 December 2023 the last day; 1 January 2024 open."""
    assert gap(CO, "2021-12-31", INSURED).reason == "no-rule"
    first = ruling(CO, "2022-01-01", INSURED)
    assert (first.payer_role, first.price_cents, first.citation) == (
        PartyRole.HEALTH_INSURER,
        2_000,
        "Zvw",
    )
    assert ruling(CO, "2023-12-31", INSURED).price_cents == 2_000
    assert gap(CO, "2024-01-01", INSURED).reason == "no-rule"


def test_dji_pays_under_a_criminal_title_from_its_first_day() -> None:
    """Seed 002, 2.5 ("bij óf DJI óf bij de zorgverzekeraar"): a criminal-law title makes it
    forensic care, DJI under the Wfz; the day before the title the insurer pays."""
    facts = Facts(
        health_insurer="3311",
        titles=(TitlePeriod(LegalTitleKind.CRIMINAL, D("2023-05-10")),),
    )
    assert ruling(CO, "2023-05-09", facts).payer_role is PartyRole.HEALTH_INSURER
    on = ruling(CO, "2023-05-10", facts)
    assert (on.payer_role, on.citation, on.regime) == (
        PartyRole.DJI,
        "Wfz",
        FinancingRegime.JUSTICE,
    )


def test_dji_pays_for_the_municipalities_without_citing_the_wfz() -> None:
    """Seed 002, 2.5: "waarbij DJI ook voor de gemeenten betaalt" -- for a person placed for a
    municipality, without a criminal title, DJI pays on the temporary arrangement, not the Wfz
    (the Wfz needs a criminal-law title)."""
    d = ruling(CO, "2022-01-01", PLACED)
    assert d.payer_role is PartyRole.DJI
    assert d.citation == "Tijdelijke regeling Levensloopaanpak 2022-2023"
    assert "(Wfz)" not in d.text


def test_a_missing_insurer_is_not_a_reason_for_dji() -> None:
    """Seed 002, 2.5 splits by regime: without a criminal title, a municipal placement or a
    known insurer nobody is named -- a no-payer gap to escalate, not DJI by default."""
    g = gap(CO, "2022-01-01", NOBODY)
    assert g.reason == "no-payer" and "health-insurer unknown" in g.text


def test_the_28_day_advance_and_watchdog_come_from_the_rules_file() -> None:
    """Seed 004: "Wanneer betaling over een langere periode van vier weken uitblijft zal VWS
    deze voorschieten." Four weeks = 28 days, in rules.yaml (not in code)."""
    rules = default_rules()
    assert rules.emergency.advance_after_days == 28 and rules.overdue_after_days == 28
    assert "seed 004" in rules.doc.watchdog.cite.label()


@pytest.mark.parametrize(
    ("instant", "dutch"),
    [
        ("2023-06-30T22:30:00+00:00", "2023-07-01"),  # 00:30 CEST
        ("2023-06-30T21:59:59+00:00", "2023-06-30"),  # 23:59:59 CEST
        ("2023-12-31T23:30:00+00:00", "2024-01-01"),  # 00:30 CET
        ("2023-12-31T22:59:59+00:00", "2023-12-31"),  # 23:59:59 CET
    ],
)
def test_dates_are_dutch_calendar_dates(instant: str, dutch: str) -> None:
    """The chain's dates are Dutch calendar dates (Europe/Amsterdam): a claim made at 00:30
    Dutch time is dated that day, not the UTC day before."""
    assert dutch_date(datetime.fromisoformat(instant)) == D(dutch)
    assert dutch_date(datetime.fromisoformat(instant).astimezone(UTC)) == D(dutch)


def test_the_vws_file_takes_its_advance_date_from_the_rules_file() -> None:
    """Seed 004: "Wanneer betaling over een langere periode van vier weken uitblijft zal VWS
    deze voorschieten." The VWS file's advance date is more than the rules file's
    ``advance_after_days`` after the claim, and follows the file when it changes."""
    import csv
    import io

    import yaml

    from adapters.financing import rules as rules_mod
    from adapters.payer.formats import vws
    from tests.unit.adapters.payer_samples import EMERGENCY_VWS

    def due() -> str:
        text = vws.write_declaration(EMERGENCY_VWS).decode()
        return next(csv.DictReader(io.StringIO(text), delimiter=";"))["advance_due_on"]

    created = EMERGENCY_VWS.created
    assert D(due()) == created + timedelta(days=29)
    data = yaml.safe_load(rules_mod.DEFAULT_RULES.read_text())
    data["emergency"]["advance_after_days"] = 35
    saved = rules_mod._default
    rules_mod._default = rules_mod.parse_rules(data)
    try:
        assert D(due()) == created + timedelta(days=36)
    finally:
        rules_mod._default = saved


def test_the_rules_file_can_name_jenv_and_the_ministries() -> None:
    """Seed 002, 2.2 and 2.5 name the ministries VWS and J&V and DJI; a rule may name JenV
    (its claims go to DJI, its agency) and the ministries jointly (through VWS)."""
    import yaml

    from adapters.financing.rules import DEFAULT_RULES, parse_rules

    data = yaml.safe_load(DEFAULT_RULES.read_text())
    rule = next(r for r in data["rules"] if r["id"] == "registration-ministries-2022-2023")
    rule["payers"][0].update(pay="jenv", regime="justice", basis="public-task")
    d = parse_rules(data).decide(REG, D("2022-05-01"), NOBODY)
    assert isinstance(d, Ruling) and (d.target, d.payer_role) == (PayTarget.JENV, PartyRole.DJI)
    rule["payers"][0].update(pay="ministries", regime="wmo")
    with pytest.raises(Exception, match="ministries"):
        parse_rules(data)
