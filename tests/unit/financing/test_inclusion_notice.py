"""The paying party's inclusion notice (issue 15 point 7): the payer of client-bound coordination
on the inclusion date receives, once per episode, who is included from when -- for payment, on
its financing law -- and nothing of the criteria, the reasons or the risk assessment. Coordination
claims start from that date (implementation plan 2022, seed 002: "vanaf moment van includeren
... 20 euro per dag").
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from adapters.financing.desk import NOTICE_REASONS, ClaimsDesk, Coverage
from adapters.financing.payers import PayerDirectory
from adapters.financing.rules import TitlePeriod
from broker.policy import ConsentView, DecisionRequest, decide, default_policy, project
from schemas.flows.assessment import assessment_message, inclusion_notice_from_message
from schemas.messaging import BasisDetail, category_of, dumps, parse_message
from schemas.vocab import (
    DataCategory,
    EventCode,
    LegalBasis,
    LegalTitleKind,
    PartyRole,
    PurposeOfUse,
    SpecialException,
)
from tests.unit.financing import parties as P
from tests.unit.financing.test_financing_desk import at, desk, outcome, refer

D = date.fromisoformat


@pytest.fixture(scope="module")
def directory() -> PayerDirectory:
    return PayerDirectory(P.registry())


def _included(d: ClaimsDesk, insurer: str | None, *titles: TitlePeriod) -> None:
    refer(d, "C7", "2022-03-01", *titles)
    a = outcome("C7", "2022-03-20", "2022-03-21")
    notes = tuple(c.model_copy(update={"note": "klinische onderbouwing"}) for c in a.criteria)
    d.assessment(a.model_copy(update={"criteria": notes, "reasons": "Psychose, agressie."}))
    if insurer:
        d.coverage(P.ZVH, "C7", Coverage(health_insurer=insurer))


def test_the_insurer_gets_one_minimised_notice(directory: PayerDirectory) -> None:
    d = desk(directory)
    _included(d, "3311")
    [n] = d.due(at("2022-03-22")).notices
    assert n.payer == P.INSURER and n.meta.destinations == (P.INSURER,)
    assert n.meta.event is EventCode.ASSESSMENT_OUTCOME and n.meta.purpose is PurposeOfUse.HPAYMT
    assert n.meta.legal_basis is LegalBasis.LEGAL_OBLIGATION
    assert n.meta.basis_detail is not None and n.meta.basis_detail.citation == "Zvw"
    assert n.meta.basis_detail.exceptions == (SpecialException.CARE,)
    assert n.outcome.reasons == NOTICE_REASONS
    assert all(c.note is None for c in n.outcome.criteria)
    assert n.outcome.inclusion_date == D("2022-03-21")
    # folded back as the adapter journals it: never sent twice
    bundle = assessment_message(n.outcome, n.meta)
    d.apply(parse_message(dumps(bundle), full=False), outgoing=True)
    assert d.due(at("2022-03-23")).notices == []
    case = d.case_of_episode("EP-C7")
    assert case is not None and case.assessment is not None
    assert case.assessment.reasons == "Psychose, agressie.", "the notice is not the decision"


def test_under_a_criminal_title_dji_gets_it_on_the_wfz(directory: PayerDirectory) -> None:
    d = desk(directory)
    _included(d, None, TitlePeriod(LegalTitleKind.CRIMINAL, D("2022-01-01")))
    [n] = d.due(at("2022-03-22")).notices
    assert n.payer == P.DJI and n.meta.basis_detail is not None
    assert n.meta.basis_detail.citation == "Wfz" and n.meta.basis_detail.exceptions == ()


def test_without_an_insurer_or_a_title_nobody_is_told(directory: PayerDirectory) -> None:
    """No DJI fallback without a criminal title (issue 18): the coordination claims escalate
    the gap instead, so no payer is sent a notice it has no ground to receive."""
    d = desk(directory)
    _included(d, None)
    assert d.due(at("2022-03-22")).notices == []


def test_no_rule_on_the_inclusion_date_means_no_notice(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C8", "2021-03-01")
    d.assessment(outcome("C8", "2021-03-20", "2021-03-21"))  # before the 2022 arrangement
    assert d.due(at("2021-03-22")).notices == []


def test_the_policy_gives_the_payer_identity_and_episode_only(directory: PayerDirectory) -> None:
    """Routed as the router decides it: the ClinicalImpression (criteria) never reaches the
    payer, and what it gets still reads as a notice."""
    d = desk(directory)
    _included(d, "3311")
    [n] = d.due(at("2022-03-22")).notices
    bundle = json.loads(dumps(assessment_message(n.outcome, n.meta)))
    cats = frozenset(c for e in bundle["entry"][1:] if (c := category_of(e["resource"])))
    assert DataCategory.RISK_ASSESSMENT in cats
    request = DecisionRequest(
        event=EventCode.ASSESSMENT_OUTCOME,
        sender=P.PROVIDER,
        sender_role=PartyRole.COORDINATING_PROVIDER,
        recipient=P.INSURER,
        recipient_role=PartyRole.HEALTH_INSURER,
        purpose=PurposeOfUse.HPAYMT,
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        basis_detail=n.meta.basis_detail,
        categories=cats,
        pseudonym="p-1",
        on=D("2022-03-22"),
    )
    decision = decide(request, default_policy(), ConsentView())
    assert decision.permit, decision
    assert decision.allowed_categories == {DataCategory.IDENTITY, DataCategory.CARE_EPISODE}
    out = project(bundle, decision.allowed_categories)
    kinds = sorted(e["resource"]["resourceType"] for e in out["entry"][1:])
    assert kinds == ["EpisodeOfCare", "Patient", "Task"]
    assert "klinische" not in json.dumps(out) and "Psychose" not in json.dumps(out)
    notice = inclusion_notice_from_message(parse_message(dumps(out), full=False))
    assert (notice.episode_id, notice.inclusion_date) == ("EP-C7", D("2022-03-21"))
    # without the stated exception the Zvw gives no ground for health data: refused
    bare_request = dataclasses.replace(request, basis_detail=BasisDetail(citation="Zvw"))
    bare = decide(bare_request, default_policy(), ConsentView())
    assert not bare.permit and bare.reason.value == "special-category-exception-missing"
