"""Issue 16, in the national scenario: conflict of duties is a per-occasion disclosure with its
own justification and a short validity, never a standing basis for two years of transitions;
a care episode's transitions travel on consent or on the person's legal title.

The rows are the scenario's own, read by the provider adapter's real CSV parser and judged by
the shipped policy on the router's day (``router_today``), as the router judges them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from adapters.provider.inputs import Submission, parse_csv
from broker.apps.scenarios.national import (
    CONFLICT_VALIDITY_DAYS,
    _csv,
    router_today,
    transition_row,
)
from broker.apps.scenarios.national_parties import DJI
from broker.apps.scenarios.national_plan import Case, Transition, make_plan
from broker.policy import ConsentView, Decision, DecisionRequest, ReasonCode, decide
from broker.policy.loader import default_policy
from schemas.errors import MessageError
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

POLICY = default_policy()
CARRIED = frozenset({DataCategory.IDENTITY, DataCategory.CARE_EPISODE, DataCategory.PROCESS})


def _cases(basis: str, criminal: bool) -> list[Case]:
    plan = make_plan(2023, date(2023, 1, 1), 24)
    return [
        c
        for c in plan.cases
        if c.basis == basis and bool(c.criminal_title) is criminal and len(c.transitions) > 1
    ]


def _submission(c: Case, t: Transition) -> Submission:
    [(_, item)] = parse_csv(_csv([transition_row(c, t)]), c.region.provider)
    assert not isinstance(item, MessageError), item
    return item


def _decide(sub: Submission, role: PartyRole, recipient: str, on: date) -> Decision:
    request = DecisionRequest(
        event=EventCode.CARE_TRANSITION,
        sender="provider",
        sender_role=PartyRole.COORDINATING_PROVIDER,
        recipient=recipient,
        recipient_role=role,
        purpose=sub.purpose or PurposeOfUse.COC,
        legal_basis=sub.basis or LegalBasis.CONSENT,
        basis_detail=sub.detail,
        categories=CARRIED,
        pseudonym="person-1",
        on=on,
    )
    return decide(request, POLICY, ConsentView())


@pytest.mark.parametrize("criminal", [True, False])
def test_a_conflict_case_never_carries_a_standing_conflict_of_duties(criminal: bool) -> None:
    cases = _cases("conflict-of-duties", criminal)
    assert cases, "the plan has conflict-of-duties cases with several transitions"
    for c in cases:
        for t in c.transitions:
            sub = _submission(c, t)
            if sub.basis is LegalBasis.CONFLICT_OF_DUTIES:
                assert t.kind == "scale-up" and t.level in {"3", "4"}, (c.case_id, t)
                detail = sub.detail
                assert detail is not None and detail.valid_until is not None
                assert detail.decided_by and detail.justification
                assert t.on.isoformat() in detail.justification, "its own occasion"
                assert detail.valid_until - router_today() == timedelta(CONFLICT_VALIDITY_DAYS)
            else:
                assert sub.basis is LegalBasis.LEGAL_OBLIGATION, (c.case_id, t, sub.basis)
                assert sub.detail is not None
                assert sub.detail.citation == ("wfz" if criminal else "wvggz")
                assert (DJI in sub.destinations) is criminal


def test_the_occasion_decision_reaches_the_zvh_and_ends() -> None:
    """The scale-up decision is permitted to the ZVH today and refused once its week is over:
    a second occasion needs a new decision."""
    found = [
        (c, t)
        for c in _cases("conflict-of-duties", True) + _cases("conflict-of-duties", False)
        for t in c.transitions
        if t.kind == "scale-up" and t.level in {"3", "4"}
    ]
    assert found, "the plan has a safety scale-up without consent"
    sub = _submission(*found[0])
    today = router_today()
    assert _decide(sub, PartyRole.ZVH, "zvh", today).permit
    later = today + timedelta(days=CONFLICT_VALIDITY_DAYS + 1)
    refused = _decide(sub, PartyRole.ZVH, "zvh", later)
    assert not refused.permit and refused.reason is ReasonCode.CONFLICT_OF_DUTIES_EXPIRED
    # stretching the same decision over the episode (the old scenario) is refused as well
    assert sub.detail is not None
    standing = replace(sub, detail=replace(sub.detail, valid_until=today + timedelta(days=730)))
    too_long = _decide(standing, PartyRole.ZVH, "zvh", today)
    assert not too_long.permit and too_long.reason is ReasonCode.CONFLICT_OF_DUTIES_TOO_LONG


def test_routine_transitions_without_consent_travel_on_the_legal_title() -> None:
    """Wfz: DJI receives them; the ZVH, which has no basis of its own, does not."""
    c = _cases("conflict-of-duties", True)[0]
    t = next(t for t in c.transitions if not (t.kind == "scale-up" and t.level in {"3", "4"}))
    sub = _submission(c, t)
    today = router_today()
    to_dji = _decide(sub, PartyRole.DJI, DJI, today)
    assert to_dji.permit, to_dji.detail
    assert to_dji.grounds is not None and to_dji.grounds.citation is not None
    assert to_dji.grounds.citation.id == "wfz"
    to_zvh = _decide(sub, PartyRole.ZVH, "zvh", today)
    assert not to_zvh.permit and to_zvh.reason is ReasonCode.LEGAL_BASIS_NOT_ACCEPTED


def test_consent_cases_travel_on_consent() -> None:
    c = _cases("consent", False)[0]
    for t in c.transitions:
        sub = _submission(c, t)
        assert sub.basis is None and sub.detail is None, "the adapter's default: consent"
