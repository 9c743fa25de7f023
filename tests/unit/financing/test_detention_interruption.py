"""Detention and interruption of care as transition kinds of their own (issue 15 point 7).

What they mean, and where it is decided (docs/financing.md, "Detention and interruption"):
* the two-year follow-up ("te volgen voor een periode van tenminste 2 jaar", letter VWS/JenV
  6 Nov 2020, seed 004) runs on through both: neither is an end of care;
* the EUR 20/day client-bound coordination (implementation plan 2022, seed 002: "vanaf moment
  van includeren ... 20 euro per dag") is not claimed for the days of a detention: the sources
  are silent, and the conservative reading claims no public money for days on which the justice
  system holds the person; an interruption does not stop the coordinator's work, so it is
  claimed on.
"""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from adapters.financing.accrual import Episode, coordination_segments
from adapters.financing.desk import ClaimsDesk, Coverage
from adapters.financing.payers import PayerDirectory
from adapters.financing.rules import Facts, default_rules
from schemas.errors import MessageError
from schemas.flows.registry import read_flow
from schemas.flows.transition import CareTransition, transition_message
from schemas.messaging import MessageMeta, dumps, parse_message
from schemas.vocab import (
    ClaimService,
    EventCode,
    LegalBasis,
    PurposeOfUse,
    SecurityLevel,
    TransitionKind,
)
from tests.unit.financing import parties as P
from tests.unit.financing.test_financing_desk import at, desk, outcome, person, refer

D = date.fromisoformat


def move(
    kind: TransitionKind, on: str, tid: str, episode: str = "EP-C9", **kw: object
) -> CareTransition:
    data: dict[str, object] = {
        "transition_id": tid,
        "episode_id": episode,
        "kind": kind,
        "effective_on": D(on),
        "person": person(),
        "provider": P.PROVIDER,
        "security_level": SecurityLevel.AMBULANT,
    }
    data.update(kw)
    return CareTransition.model_validate(data)


@pytest.fixture(scope="module")
def directory() -> PayerDirectory:
    return PayerDirectory(P.registry())


def _coordination(d: ClaimsDesk, on: str) -> list[tuple[str, str]]:
    return sorted(
        (c.claim.period_start.isoformat(), c.claim.period_end.isoformat())
        for c in d.due(at(on)).claims
        if c.claim.service is ClaimService.COORDINATION_DAY
    )


def test_no_coordination_claim_for_the_days_of_a_detention(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C9", "2022-01-03")
    # the 2022-2023 coordination is the insurer's for a Zvw client (issue 18: no DJI fallback)
    d.coverage(P.ZVH, "C9", Coverage(health_insurer="3311"))
    d.assessment(outcome("C9", "2022-01-20", "2022-02-01"))
    d.transition(move(TransitionKind.DETENTION, "2022-02-10", "T1"))
    d.transition(move(TransitionKind.DETENTION_END, "2022-03-05", "T2"))
    assert _coordination(d, "2022-04-01") == [
        ("2022-02-01", "2022-02-09"),
        ("2022-03-05", "2022-03-31"),
    ]
    case = d.case_of_episode("EP-C9")
    assert case is not None and case.end is None, "a detention is no end of care"


def test_an_open_detention_pauses_every_later_day(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C9", "2022-01-03")
    # the 2022-2023 coordination is the insurer's for a Zvw client (issue 18: no DJI fallback)
    d.coverage(P.ZVH, "C9", Coverage(health_insurer="3311"))
    d.assessment(outcome("C9", "2022-01-20", "2022-02-01"))
    d.transition(move(TransitionKind.DETENTION, "2022-02-15", "T1"))
    assert _coordination(d, "2022-05-01") == [("2022-02-01", "2022-02-14")]


def test_an_interruption_is_claimed_on_and_is_not_an_end(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C9", "2022-01-03")
    # the 2022-2023 coordination is the insurer's for a Zvw client (issue 18: no DJI fallback)
    d.coverage(P.ZVH, "C9", Coverage(health_insurer="3311"))
    d.assessment(outcome("C9", "2022-01-20", "2022-02-01"))
    d.transition(move(TransitionKind.INTERRUPTION, "2022-02-10", "T1"))
    d.transition(move(TransitionKind.INTERRUPTION_END, "2022-02-20", "T2"))
    assert _coordination(d, "2022-04-01") == [
        ("2022-02-01", "2022-02-28"),
        ("2022-03-01", "2022-03-31"),
    ]
    case = d.case_of_episode("EP-C9")
    assert case is not None and case.end is None, "the episode and its follow-up run on"


def test_accrual_cuts_paused_days_out_of_month_segments() -> None:
    ep = Episode("E", D("2022-01-10"), None, ((D("2022-01-20"), D("2022-02-05")),))
    segs = coordination_segments(default_rules(), ep, Facts(), D("2022-03-01"))
    assert [(s.start.isoformat(), s.end.isoformat()) for s in segs] == [
        ("2022-01-10", "2022-01-19"),
        ("2022-02-06", "2022-02-28"),
    ]
    assert sum(s.days for s in segs) == 10 + 23


@pytest.mark.parametrize("kind", [TransitionKind.DETENTION, TransitionKind.INTERRUPTION])
def test_away_from_care_the_provider_holds_no_bed(kind: TransitionKind) -> None:
    with pytest.raises(ValidationError) as err:
        move(kind, "2022-02-10", "T1", security_level=SecurityLevel.LEVEL_3, location_id="L1")
    assert err.value.errors()[0]["type"] == "on-leave"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (TransitionKind.DETENTION, "onleave"),
        (TransitionKind.INTERRUPTION, "onleave"),
        (TransitionKind.DETENTION_END, "in-progress"),
        (TransitionKind.INTERRUPTION_END, "in-progress"),
    ],
)
def test_the_kinds_travel_as_codes_and_encounter_status(kind: TransitionKind, status: str) -> None:
    t = move(kind, "2022-02-10", "T1")
    meta = MessageMeta.new(
        EventCode.CARE_TRANSITION, P.PROVIDER, PurposeOfUse.TREAT, LegalBasis.CONSENT
    )
    bundle = transition_message(t, meta)
    [enc] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"]
    assert enc["status"] == status and enc["type"][0]["coding"][0]["code"] == kind.value
    assert read_flow(parse_message(dumps(bundle))) == t
    # an Encounter that says in-progress for a detention (or onleave for its end) is refused
    enc["status"] = "in-progress" if status == "onleave" else "onleave"
    with pytest.raises(MessageError) as err:
        read_flow(parse_message(dumps(bundle)))
    assert err.value.reason == "status"
