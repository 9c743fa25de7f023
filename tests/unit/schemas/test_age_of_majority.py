"""The age of majority as the implementation plan states it, judged on the decision date.

Source: implementation plan Levensloopaanpak 2022, 2.1 Doelgroepomschrijving (seed 002):
"Personen (18+) die agressief en/of gevaarlijk gedrag (dreigen te) vertonen als gevolg van een
psychische aandoening en/of een (licht) verstandelijke beperking en/of niet aangeboren
hersenletsel". A referral of someone about to turn 18 is registered and assessed; only an
inclusion needs an adult, on the day it is decided.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from broker.apps.generate.examples import examples
from schemas.errors import MessageError
from schemas.examples import EXAMPLES_DIR
from schemas.flows.assessment import AssessmentOutcome, adult_on, birthday
from schemas.flows.referral import Referral
from schemas.flows.registry import read_flow
from schemas.messaging import dumps, parse_message
from schemas.vocab import AssessmentDecision

BORN = date(2008, 5, 17)
EVE = date(2026, 5, 16)  # the day before the 18th birthday
BIRTHDAY = date(2026, 5, 17)


def _model(name: str) -> Any:
    return next(ex for ex in examples() if ex.name == name)


def _inclusion(on: date, born: date = BORN) -> dict[str, Any]:
    inc: AssessmentOutcome = _model("assessment-outcome").model
    person = inc.person.model_copy(update={"birth_date": born})
    return {**inc.model_dump(), "person": person, "assessed_on": on, "inclusion_date": on}


def test_an_inclusion_the_day_before_the_18th_birthday_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        AssessmentOutcome.model_validate(_inclusion(EVE))
    assert err.value.errors()[0]["type"] == "age-of-majority"


def test_an_inclusion_on_the_18th_birthday_is_accepted() -> None:
    a = AssessmentOutcome.model_validate(_inclusion(BIRTHDAY))
    assert a.decision is AssessmentDecision.INCLUDED


def test_a_non_inclusion_of_a_minor_is_a_valid_decision() -> None:
    no: AssessmentOutcome = _model("assessment-outcome-not-included").model
    person = no.person.model_copy(update={"birth_date": BORN})
    assert AssessmentOutcome.model_validate(
        {**no.model_dump(), "person": person, "assessed_on": EVE}
    )


def test_a_referral_of_someone_about_to_turn_18_is_not_refused_at_the_door() -> None:
    ref: Referral = _model("referral").model
    minor = ref.person.model_copy(update={"birth_date": BORN})
    assert Referral.model_validate({**ref.model_dump(), "person": minor, "registered_on": EVE})


def test_the_wire_refuses_an_underage_inclusion_at_the_birth_date() -> None:
    """Read from FHIR (as the router and adapters read it): the issue names Patient.birthDate."""
    bundle = json.loads((EXAMPLES_DIR / "assessment-outcome.json").read_text())
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Patient":
            res["birthDate"] = BORN.isoformat()
        if res["resourceType"] == "Task":
            res["authoredOn"] = EVE.isoformat()
    msg = parse_message(dumps(bundle))
    with pytest.raises(MessageError) as err:
        read_flow(msg)
    assert err.value.reason == "age-of-majority"
    assert "birthDate" in str(err.value)
    bundle_ok = json.loads(dumps(bundle))
    for entry in bundle_ok["entry"]:
        if entry["resource"]["resourceType"] == "Task":
            entry["resource"]["authoredOn"] = BIRTHDAY.isoformat()
    assert read_flow(parse_message(dumps(bundle_ok))).decision is AssessmentDecision.INCLUDED


@pytest.mark.parametrize(
    ("born", "on", "adult"),
    [
        (date(2008, 2, 29), date(2026, 2, 28), False),  # no 29 February in 2026: 1 March
        (date(2008, 2, 29), date(2026, 3, 1), True),
        (date(2000, 12, 31), date(2018, 12, 30), False),
        (date(2000, 12, 31), date(2018, 12, 31), True),
    ],
)
def test_adult_on(born: date, on: date, adult: bool) -> None:
    assert adult_on(born, on) is adult
    assert birthday(born, 18) > on or adult


def test_dates_are_dates_not_timestamps() -> None:
    """The decision date is a calendar date: no time zone can move it across the birthday."""
    now = datetime(2026, 5, 16, 23, 30, tzinfo=UTC)
    assert not adult_on(BORN, now.date())
    assert adult_on(BORN, (now + timedelta(hours=1)).date())
