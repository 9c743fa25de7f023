"""The claims desk: claims and escalations derived from case events, the state folded from
messages (so a replay derives the same and nothing twice), reconciliation and the watchdog --
with the clock moved by the test."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.financing.desk import Allocation, ClaimsDesk, Coverage, ReferralFacts, Work
from adapters.financing.payers import PayerDirectory
from adapters.financing.rules import TitlePeriod, default_rules
from schemas.flows.assessment import AssessmentOutcome, CriterionAssessment
from schemas.flows.claim import ClaimResponse, claim_from_message, claim_message
from schemas.flows.common import BSN_SYSTEM, Person, one, person_from_patient
from schemas.flows.transition import CareTransition
from schemas.messaging import ParsedMessage, ResponseCode, dumps, parse_message
from schemas.vocab import (
    AdvisedAlternative,
    AssessmentDecision,
    ClaimOutcome,
    ClaimRejectionReason,
    ClaimService,
    CriterionResult,
    EscalationReason,
    FinancingRegime,
    InclusionCriterion,
    LegalTitleKind,
    PartyRole,
    SecurityLevel,
    TransitionKind,
)
from tests.conftest import ROOT
from tests.unit.financing import parties as P

D = date.fromisoformat
EXAMPLES = ROOT / "schemas" / "examples"
BSN = "999990019"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)


def person(**kw: object) -> Person:
    base: dict[str, object] = {
        "bsn": BSN,
        "family_name": "Testpersoon",
        "birth_date": D("1985-04-03"),
        "residence_municipality": "0344",
    }
    base.update(kw)
    return Person.model_validate(base)


def outcome(
    case: str, assessed: str, inclusion: str | None, p: Person | None = None
) -> AssessmentOutcome:
    included = inclusion is not None
    result = CriterionResult.MET if included else CriterionResult.NOT_MET
    return AssessmentOutcome(
        assessment_id=f"A-{case}",
        zvh=P.ZVH,
        referral_id=case,
        provider=P.PROVIDER,
        assessed_on=D(assessed),
        person=p or person(),
        decision=AssessmentDecision.INCLUDED if included else AssessmentDecision.NOT_INCLUDED,
        criteria=tuple(CriterionAssessment(criterion=c, result=result) for c in InclusionCriterion),
        reasons="Beoordeeld.",
        alternative=None if included else AdvisedAlternative.MENTAL_HEALTH,
        inclusion_date=D(inclusion) if inclusion else None,
        episode_id=f"EP-{case}" if included else None,
    )


@pytest.fixture(scope="module")
def directory() -> PayerDirectory:
    return PayerDirectory(P.registry())


def desk(directory: PayerDirectory) -> ClaimsDesk:
    return ClaimsDesk(P.PROVIDER, default_rules(), directory, claimant_agb=P.PROVIDER_AGB)


WMO301 = Allocation("wmo301", "20072", "0344", D("2019-01-01"))  # Utrecht's allocation


def refer(d: ClaimsDesk, case: str, registered: str, *titles: TitlePeriod, **kw: object) -> None:
    """A referral; the municipality (0344) has sent the provider its WMO301 allocation."""
    d.referral(ReferralFacts(P.ZVH, case, D(registered), person(**kw), tuple(titles)))
    d.allocation(P.ZVH, case, WMO301)


def send_all(d: ClaimsDesk, work: Work, on: str) -> None:
    """What the adapter does after sending: fold its own messages back (as on a replay)."""
    for c in work.claims:
        d.apply(parse_message(dumps(claim_message(c.claim, c.meta)), full=False), outgoing=True)
    for e in work.escalations:
        d.escalation_raised(e.escalation.escalation_id)


def test_a_not_included_registration_in_2020_is_claimed_from_the_municipality(
    directory: PayerDirectory,
) -> None:
    d = desk(directory)
    refer(d, "C1", "2020-10-01")
    d.assessment(outcome("C1", "2020-11-20", None))
    work = d.due(at("2020-11-20"))
    assert not work.escalations
    [c] = [x.claim for x in work.claims]
    assert (c.claim_id, c.service, c.amount_cents) == ("REG-C1", ClaimService.REGISTRATION, 200_000)
    assert (c.period_start, c.period_end) == (D("2020-10-01"), D("2020-11-20"))
    assert (c.payer.party_id, c.regime) == (P.MUNICIPALITY, FinancingRegime.WMO)
    assert c.allocation == "20072", "a Wmo claim cites its WMO301 allocation"
    assert c.explanation is not None and c.explanation.rule == "registration-pilot"
    assert work.claims[0].meta.destinations == (P.MUNICIPALITY,)
    assert work.claims[0].meta.basis_detail is not None
    assert work.claims[0].meta.basis_detail.citation == "Wmo 2015"
    send_all(d, work, "2020-11-20")
    assert not d.due(at("2020-11-21")).claims, "claimed once"


def test_coordination_is_claimed_per_month_split_by_title_and_gaps_escalate_once(
    directory: PayerDirectory,
) -> None:
    d = desk(directory)
    refer(d, "C2", "2023-10-01", TitlePeriod(LegalTitleKind.CRIMINAL, D("2023-12-10")))
    d.assessment(outcome("C2", "2023-11-10", "2023-11-15"))
    d.coverage(P.ZVH, "C2", Coverage(health_insurer="3311"))
    work = d.due(at("2023-12-01"))
    got = sorted((c.claim.claim_id, c.claim.payer.party_id, c.claim.quantity) for c in work.claims)
    assert got == [("CO-EP-C2-20231115-20231130", P.INSURER, 16)]
    # registration 2023: the ministries VWS and JenV cover it, no tariff: held, not escalated
    assert not work.escalations
    held = d.held["REG-C2"]
    assert (held.reason, held.ruling.regime) == ("no-price", FinancingRegime.MINISTRIES)
    assert "seed 002" in held.text and "2.2" in held.text
    send_all(d, work, "2023-12-01")

    work = d.due(at("2024-03-05"))
    got = sorted(
        (c.claim.period_start.isoformat(), c.claim.period_end.isoformat(), c.claim.payer.party_id)
        for c in work.claims
    )
    assert got == [("2023-12-01", "2023-12-09", P.INSURER), ("2023-12-10", "2023-12-31", P.DJI)]
    dji = next(c for c in work.claims if c.claim.payer.party_id == P.DJI)
    assert dji.claim.amount_cents == 22 * 2_000 and dji.claim.regime is FinancingRegime.JUSTICE
    assert dji.claim.explanation is not None
    assert ("criminal-law-title", "in force") in [
        (i.name, i.value) for i in dji.claim.explanation.inputs
    ]
    by_reason = {e.escalation.reason: e for e in work.escalations}
    assert len(work.escalations) == 2
    # the November claim is unpaid after more than four weeks
    assert by_reason[EscalationReason.PAYMENT_OVERDUE].escalation.claim_id == (
        "CO-EP-C2-20231115-20231130"
    )
    late_gap = by_reason[EscalationReason.NO_PAYER]  # 2024: no rule, one for Jan + Feb
    assert late_gap.escalation.stuck_since == D("2024-01-01")
    assert "2024-01-01..2024-02-29" in (late_gap.escalation.explanation or "")
    send_all(d, work, "2024-03-05")
    later = d.due(at("2024-05-02"))
    assert not later.claims and not [
        e for e in later.escalations if e.escalation.reason is EscalationReason.NO_PAYER
    ], "the growing 2024 gap is the same escalation"


def test_end_of_care_stops_accrual_and_transfer_hands_over(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C3", "2022-01-03")
    d.assessment(outcome("C3", "2022-01-20", "2022-02-01"))
    d.coverage(P.ZVH, "C3", Coverage(municipal_placement="0344"))
    d.transition(
        CareTransition(
            transition_id="T1",
            episode_id="EP-C3",
            kind=TransitionKind.TRANSFER,
            effective_on=D("2022-03-11"),
            person=person(),
            provider="other-provider",
            previous_provider=P.PROVIDER,
            security_level=SecurityLevel.AMBULANT,
        )
    )
    work = d.due(at("2022-06-01"))
    periods = sorted(
        (c.claim.period_start.isoformat(), c.claim.period_end.isoformat())
        for c in work.claims
        if c.claim.service is ClaimService.COORDINATION_DAY
    )
    assert periods == [("2022-02-01", "2022-02-28"), ("2022-03-01", "2022-03-10")]
    # placed for a municipality, no criminal-law title: DJI pays on behalf of the municipalities
    assert {c.claim.payer.party_id for c in work.claims if c.claim.episode_id} == {P.DJI}
    dji = next(c for c in work.claims if c.claim.episode_id)
    assert dji.meta.basis_detail is not None
    assert dji.meta.basis_detail.citation == "Tijdelijke regeling Levensloopaanpak 2022-2023"
    assert dji.claim.explanation is not None
    assert "(Wfz)" not in (dji.claim.explanation.text or ""), "no Wfz without a criminal title"


def test_a_payer_without_a_party_is_a_gap_not_a_claim(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C4", "2020-03-01", residence_municipality="0599")  # Rotterdam: no party here
    d.assessment(outcome("C4", "2020-04-01", None, person(residence_municipality="0599")))
    work = d.due(at("2020-04-02"))
    assert not work.claims
    [e] = work.escalations
    assert "municipality 0599" in (e.escalation.explanation or "")


def test_a_homeless_person_without_municipality_is_billed_to_the_zvh_central_municipality(
    directory: PayerDirectory,
) -> None:
    d = desk(directory)
    p = person(residence_municipality=None, homeless=True)
    refer(d, "C5", "2020-03-01", residence_municipality=None, homeless=True)
    d.assessment(outcome("C5", "2020-04-01", None, p))
    [c] = d.due(at("2020-04-02")).claims
    assert c.claim.payer.party_id == P.MUNICIPALITY
    assert c.claim.explanation is not None
    assert (
        "homeless: central municipality of zvh-midden-nederland"
        in c.claim.explanation.inputs[0].value
    )


def test_an_unclear_regime_goes_to_vws_and_its_overdue_escalation_says_vws_advances(
    directory: PayerDirectory,
) -> None:
    d = desk(directory)
    refer(d, "C6", "2020-06-01", residence_municipality=None)
    d.assessment(outcome("C6", "2020-07-01", None, person(residence_municipality=None)))
    work = d.due(at("2020-07-01"))
    [c] = work.claims
    assert (c.claim.payer.party_id, c.claim.regime) == (P.VWS, FinancingRegime.VWS_EMERGENCY)
    assert c.meta.legal_basis.value == "public-task"
    send_all(d, work, "2020-07-01")
    assert not d.due(at("2020-07-29")).escalations, "28 days is not more than four weeks"
    [late] = d.due(at("2020-07-30")).escalations
    assert late.escalation.reason is EscalationReason.PAYMENT_OVERDUE
    assert late.escalation.claim_id == "REG-C6"
    assert "VWS advances it" in (late.escalation.explanation or "")


def _response(
    claim_id: str, payer: str, role: PartyRole, ident: str, **kw: object
) -> ClaimResponse:
    from schemas.flows.claim import Payer

    data: dict[str, object] = {
        "response_id": f"R-{claim_id}-{kw.get('outcome')}",
        "claim_id": claim_id,
        "provider": P.PROVIDER,
        "payer": Payer(party_id=payer, role=role, identifier=ident),
        "person_bsn": BSN,
        "decided_on": D("2020-12-01"),
    }
    data.update(kw)
    return ClaimResponse.model_validate(data)


def test_payment_closes_the_claim_and_answers_are_reconciled(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C7", "2020-10-01")
    d.assessment(outcome("C7", "2020-11-02", None))
    work = d.due(at("2020-11-02"))
    send_all(d, work, "2020-11-02")
    mid = work.claims[0].meta.message_id
    d.router_response(mid, ResponseCode.OK)
    assert d.book.entries["REG-C7"].status.value == "delivered"
    findings = d.claim_response(
        _response(
            "REG-C7",
            P.MUNICIPALITY,
            PartyRole.MUNICIPALITY,
            "0344",
            outcome=ClaimOutcome.PAID,
            approved_cents=150_000,
            paid_cents=150_000,
            paid_on=D("2020-12-03"),
        )
    )
    assert findings == ["approved 150000 of 200000 cents"]
    assert d.book.entries["REG-C7"].closed
    assert not d.due(at("2021-06-01")).escalations, "paid what was approved: not overdue"
    assert d.claim_response(
        _response(
            "NOPE",
            P.MUNICIPALITY,
            PartyRole.MUNICIPALITY,
            "0344",
            outcome=ClaimOutcome.ACCEPTED,
            approved_cents=1,
        )
    ) == ["answer R-NOPE-accepted is for unknown claim NOPE"]
    wrong = d.claim_response(
        _response(
            "REG-C7",
            P.OTHER_MUNICIPALITY,
            PartyRole.MUNICIPALITY,
            "0307",
            outcome=ClaimOutcome.ACCEPTED,
            approved_cents=300_000,
            decided_on=D("2020-11-30"),
        )
    )
    assert any("answered by gemeente-amersfoort" in f for f in wrong)
    assert any("more than the 200000 claimed" in f for f in wrong)


def _refused(directory: PayerDirectory, decided_on: str) -> tuple[ClaimsDesk, Work]:
    d = desk(directory)
    refer(d, "C8", "2021-03-01")
    d.assessment(outcome("C8", "2021-03-20", None))
    send_all(d, d.due(at("2021-03-20")), "2021-03-20")
    d.claim_response(
        _response(
            "REG-C8",
            P.MUNICIPALITY,
            PartyRole.MUNICIPALITY,
            "0344",
            outcome=ClaimOutcome.REJECTED,
            rejection_reason=ClaimRejectionReason.WRONG_PAYER,
            decided_on=D(decided_on),
        )
    )
    return d, d.due(at(decided_on))


def test_an_other_regime_refusal_on_the_last_day_of_march_2021_goes_to_vws(
    directory: PayerDirectory,
) -> None:
    """Kamerbrief VWS/JenV 6 Nov 2020 (seed 004): "bij onduidelijkheid over het wettelijk
    regime ... bij VWS de rekening wordt ingediend en de aangestelde bestuurlijk adviseur alsnog
    met betrokken partij, gemeente of verzekeraar, in overleg treedt" -- "maximaal tot en met
    maart 2021". A municipality that refuses the registration phase because another regime
    applies makes the regime unclear: a claim to VWS plus an escalation, not "nobody pays"."""
    _, work = _refused(directory, "2021-03-31")
    [c] = work.claims
    assert (c.claim.claim_id, c.claim.payer.party_id) == ("EM-REG-C8", P.VWS)
    assert c.claim.regime is FinancingRegime.VWS_EMERGENCY and c.claim.amount_cents == 200_000
    assert c.meta.basis_detail is not None and c.meta.basis_detail.citation == "Noodregeling VWS"
    [e] = work.escalations
    assert e.escalation.reason is EscalationReason.NO_PAYER and e.escalation.claim_id == "REG-C8"
    text = e.escalation.explanation or ""
    assert "bestuurlijk adviseur" in text and "EM-REG-C8" in text and "seed 004" in text


def test_an_other_regime_refusal_from_april_2021_is_a_financing_gap(
    directory: PayerDirectory,
) -> None:
    """Seed 004: the emergency rule "geldt maximaal tot en met maart 2021": a refusal on
    1 April 2021 is a gap to escalate, and no claim goes to VWS."""
    d, work = _refused(directory, "2021-04-01")
    assert not work.claims
    [e] = work.escalations
    assert e.escalation.reason is EscalationReason.NO_PAYER and e.escalation.claim_id == "REG-C8"
    assert "Nobody pays" in (e.escalation.explanation or "")
    assert "does not apply" in (e.escalation.explanation or "")
    d.escalation_raised(e.escalation.escalation_id)
    assert not [x for x in d.due(at("2021-06-01")).escalations if x.escalation.claim_id == "REG-C8"]


def test_a_replay_of_the_sent_messages_derives_nothing_new(directory: PayerDirectory) -> None:
    d = desk(directory)
    refer(d, "C9", "2022-01-03")
    d.assessment(outcome("C9", "2022-01-20", "2022-02-01"))
    d.coverage(P.ZVH, "C9", Coverage(health_insurer="3311"))
    first = d.due(at("2022-05-01"))
    assert len(first.claims) == 3 and not first.escalations  # Feb-Apr; registration held
    bundles = [dumps(claim_message(c.claim, c.meta)) for c in first.claims]
    again = desk(directory)
    refer(again, "C9", "2022-01-03")
    again.assessment(outcome("C9", "2022-01-20", "2022-02-01"))
    again.coverage(P.ZVH, "C9", Coverage(health_insurer="3311"))
    for raw in bundles:
        again.apply(parse_message(raw, full=False), outgoing=True)
    for e in first.escalations:
        again.escalation_raised(e.escalation.escalation_id)
    assert not again.due(at("2022-05-01")).claims
    ids = {c.meta.message_id for c in first.claims}
    assert ids == {c.meta.message_id for c in desk_due(directory, "2022-05-01").claims}
    # the claim travels with its explanation
    read = claim_from_message(parse_message(bundles[0], full=True))
    assert read.explanation == first.claims[0].claim.explanation


def desk_due(directory: PayerDirectory, day: str) -> Work:
    d = desk(directory)
    refer(d, "C9", "2022-01-03")
    d.assessment(outcome("C9", "2022-01-20", "2022-02-01"))
    d.coverage(P.ZVH, "C9", Coverage(health_insurer="3311"))
    return d.due(at(day) + timedelta(hours=3))


def test_a_claim_entered_by_the_provider_is_judged_by_the_rules(
    directory: PayerDirectory,
) -> None:
    d = desk(directory)
    refer(d, "C10", "2022-01-03")
    d.assessment(outcome("C10", "2022-01-20", "2022-02-01"))
    d.coverage(
        P.ZVH,
        "C10",
        Coverage(
            health_insurer="3311",
            care_office="5507",
            wlz_allocation="AW33-1",
            wlz_care_start=D("2022-02-01"),
        ),
    )
    c = d.claim_for(
        P.ZVH,
        "C10",
        "T-1",
        ClaimService.TREATMENT,
        D("2022-03-01"),
        D("2022-03-31"),
        4,
        12_500,
        at("2022-04-02"),
    )
    assert (c.claim.payer.party_id, c.claim.regime, c.claim.amount_cents) == (
        P.CARE_OFFICE,
        FinancingRegime.WLZ,
        50_000,
    )
    with pytest.raises(ValueError, match="fixes the unit price"):
        d.claim_for(
            P.ZVH,
            "C10",
            "X",
            ClaimService.COORDINATION_DAY,
            D("2022-03-01"),
            D("2022-03-02"),
            2,
            1_000,
            at("2022-04-02"),
        )
    with pytest.raises(ValueError, match="not known"):
        d.claim_for(
            P.ZVH,
            "C99",
            "X",
            ClaimService.TREATMENT,
            D("2022-03-01"),
            D("2022-03-02"),
            1,
            1,
            at("2022-04-02"),
        )


def test_a_claim_made_at_half_past_midnight_dutch_time_is_dated_that_day(
    directory: PayerDirectory,
) -> None:
    """The chain's dates are Dutch calendar dates (Europe/Amsterdam): 2020-11-19T23:30Z is
    00:30 on 20 November in the Netherlands, so the claim is made on the 20th."""
    d = desk(directory)
    refer(d, "C11", "2020-10-01")
    d.assessment(outcome("C11", "2020-11-20", None))
    [c] = d.due(datetime(2020, 11, 19, 23, 30, tzinfo=UTC)).claims
    assert c.claim.created == D("2020-11-20")


def test_a_wmo_claim_without_its_allocation_is_held_then_escalated_then_released(
    directory: PayerDirectory,
) -> None:
    """iWmo 3.2 WMO323: a Prestatie cites the ToewijzingNummer of the municipality's WMO301
    allocation. Without one the claim is held; held more than the rules file's
    ``holds.allocation_escalate_after_days`` (28) it is escalated, once; the allocation's
    arrival releases it with the number."""
    d = desk(directory)
    d.referral(ReferralFacts(P.ZVH, "C12", D("2020-10-01"), person(), ()))
    d.assessment(outcome("C12", "2020-11-02", None))
    first = d.due(at("2020-11-02"))
    assert not first.claims and not first.escalations
    assert d.held["REG-C12"].reason == "allocation"
    assert not d.due(at("2020-11-30")).escalations, "28 days held is not more than 28"
    [e] = d.due(at("2020-12-01")).escalations
    assert e.escalation.reason is EscalationReason.NO_PAYER and e.escalation.claim_id == "REG-C12"
    assert "WMO301" in (e.escalation.explanation or "")
    d.escalation_raised(e.escalation.escalation_id)
    d.allocation(P.ZVH, "C12", WMO301)
    [c] = d.due(at("2020-12-02")).claims
    assert c.claim.allocation == "20072" and "REG-C12" not in d.held


def test_a_wmo301_received_for_the_person_releases_the_held_claim(
    directory: PayerDirectory,
) -> None:
    """iWmo 3.2: the municipality's WMO301 reaches the provider as a message about a client
    (its BSN), not about a ketenbus case; the desk holds it for every case of that person,
    whether it arrives before or after the case, and only for its municipality and period."""
    d = desk(directory)
    d.referral(ReferralFacts(P.ZVH, "C40", D("2020-10-01"), person(), ()))
    d.assessment(outcome("C40", "2020-11-02", None))
    assert not d.due(at("2020-11-02")).claims and d.held["REG-C40"].reason == "allocation"
    bsn = person().bsn
    # another municipality's allocation, and one that starts after the claim's period: no
    assert d.received_allocation(bsn, Allocation("wmo301", "31", "0307", D("2019-01-01")))
    assert d.received_allocation(bsn, Allocation("wmo301", "32", "0344", D("2020-10-02")))
    assert not d.due(at("2020-11-03")).claims and "REG-C40" in d.held
    assert d.received_allocation(bsn, Allocation("wmo301", "33", "0344", D("2020-01-01")))
    assert not d.received_allocation(bsn, Allocation("wmo301", "33", "0344", D("2020-01-01")))
    work = d.due(at("2020-11-04"))
    [c] = work.claims
    assert c.claim.allocation == "33" and "REG-C40" not in d.held
    send_all(d, work, "2020-11-04")
    # received before the case exists: the case's claim goes at once
    d.received_allocation("999990032", Allocation("wmo301", "34", "0344", D("2020-01-01")))
    d.referral(ReferralFacts(P.ZVH, "C41", D("2020-10-01"), person(bsn="999990032"), ()))
    d.assessment(outcome("C41", "2020-11-02", None, p=person(bsn="999990032")))
    [c] = d.due(at("2020-11-04")).claims
    assert (c.claim.claim_id, c.claim.allocation) == ("REG-C41", "34")


def test_a_claim_to_dji_cites_the_placement_decision_dji_sent(directory: PayerDirectory) -> None:
    """VECOZO's GDS801 check VC041: "Indien Ontvanger = 9992 (= DJI/FZ), dan moet
    Plaatsingsbesluit voorkomen": DJI's FZ821 placement received for the person rides on its
    claims (``Claim.allocation``); a claim to DJI does not wait for one (the EI form has no
    place for it)."""
    d = desk(directory)
    refer(d, "C42", "2023-10-01", TitlePeriod(LegalTitleKind.CRIMINAL, D("2023-11-01")))
    d.assessment(outcome("C42", "2023-11-10", "2023-11-15"))
    work = d.due(at("2023-12-01"))
    [c] = [x.claim for x in work.claims if x.claim.payer.party_id == P.DJI]
    assert c.allocation is None, "no placement received: the claim goes without one"
    d2 = desk(directory)
    refer(d2, "C42", "2023-10-01", TitlePeriod(LegalTitleKind.CRIMINAL, D("2023-11-01")))
    d2.assessment(outcome("C42", "2023-11-10", "2023-11-15"))
    d2.received_allocation(BSN, Allocation("fz821", "4711", "9992", D("2023-11-01")))
    d2.received_allocation(BSN, Allocation("fz821", "4712", "9992", D("2024-01-01")))  # later
    [c] = [x.claim for x in d2.due(at("2023-12-01")).claims if x.claim.payer.party_id == P.DJI]
    assert c.allocation == "4711"


def test_a_rule_without_a_price_holds_the_claim_never_nothing(directory: PayerDirectory) -> None:
    """Seed 002, 2.2: the ministries VWS and JenV cover the registration phase in 2022-2023,
    at no tariff the sources give: the desk holds the claim, attributed to the ministries."""
    d = desk(directory)
    refer(d, "C13", "2022-03-01")
    d.assessment(outcome("C13", "2022-03-20", None))
    work = d.due(at("2022-03-20"))
    assert not work.claims and not work.escalations
    h = d.held["REG-C13"]
    assert (h.reason, h.ruling.target.value) == ("no-price", "ministries")
    assert not d.due(at("2022-12-01")).escalations, "a cost the ministries cover is no gap"


def test_a_wmo_claim_entered_without_an_allocation_is_refused_with_the_reason(
    directory: PayerDirectory,
) -> None:
    """iWmo WMO323: a support claim to the municipality cites its WMO301 ToewijzingNummer."""
    d = desk(directory)
    d.referral(ReferralFacts(P.ZVH, "C14", D("2024-01-03"), person(), ()))
    d.assessment(outcome("C14", "2024-01-20", "2024-02-01"))
    args = (P.ZVH, "C14", "S-1", ClaimService.SUPPORT, D("2024-03-01"), D("2024-03-31"), 1, 90_000)
    with pytest.raises(ValueError, match="WMO301"):
        d.claim_for(*args, at("2024-04-02"))
    c = d.claim_for(*args, at("2024-04-02"), allocation="4711")
    assert (c.claim.payer.party_id, c.claim.allocation) == (P.MUNICIPALITY, "4711")


def test_a_care_office_claim_waits_for_its_aw33_and_aw35(directory: PayerDirectory) -> None:
    """iWlz: a care office pays only after its allocation (AW33) and the provider's
    start-of-care notice (AW35, Melding aanvang zorg). Without them the entered claim is held,
    released when both are known, and escalated when held more than
    ``holds.wlz_escalate_after_days`` (28)."""
    from adapters.financing.desk import ClaimHeld

    d = desk(directory)
    refer(d, "C15", "2022-01-03")
    d.assessment(outcome("C15", "2022-01-20", "2022-02-01"))
    d.coverage(P.ZVH, "C15", Coverage(care_office="5507"))
    with pytest.raises(ClaimHeld, match=r"AW33.*AW35"):
        d.claim_for(
            P.ZVH, "C15", "T-15", ClaimService.TREATMENT, D("2022-03-01"), D("2022-03-31"),
            4, 12_500, at("2022-04-02"),
        )  # fmt: skip
    assert d.held["T-15"].reason == "wlz-allocation"
    early = d.due(at("2022-04-30")).escalations
    assert not [x for x in early if x.escalation.claim_id == "T-15"], "28 days is not more"
    [e] = [x for x in d.due(at("2022-05-01")).escalations if x.escalation.claim_id == "T-15"]
    assert "AW35" in (e.escalation.explanation or "")
    d.escalation_raised(e.escalation.escalation_id)
    d.coverage(P.ZVH, "C15", Coverage(care_office="5507", wlz_allocation="A1"))
    assert not [c for c in d.due(at("2022-05-02")).claims if c.claim.claim_id == "T-15"]
    d.coverage(
        P.ZVH,
        "C15",
        Coverage(care_office="5507", wlz_allocation="A1", wlz_care_start=D("2022-02-01")),
    )
    [c] = [c for c in d.due(at("2022-05-03")).claims if c.claim.claim_id == "T-15"]
    assert c.claim.payer.party_id == P.CARE_OFFICE and "T-15" not in d.held


def test_an_aw33_and_aw35_received_as_messages_release_the_held_claim(
    directory: PayerDirectory,
) -> None:
    """The same hold, met by the iWlz messages themselves (read from the provider's inbox,
    ``adapters/payer/formats/iwlz.py``): an AW35 starting after the claim's first day does not
    meet it, nor an AW33 of another care office."""
    from adapters.financing.desk import ClaimHeld

    d = desk(directory)
    refer(d, "C16", "2022-01-03")
    d.assessment(outcome("C16", "2022-01-20", "2022-02-01"))
    d.coverage(P.ZVH, "C16", Coverage(care_office="5507"))
    with pytest.raises(ClaimHeld):
        d.claim_for(
            P.ZVH, "C16", "T-16", ClaimService.TREATMENT, D("2022-03-01"), D("2022-03-31"),
            4, 12_500, at("2022-04-02"),
        )  # fmt: skip
    d.received_allocation(BSN, Allocation("aw33", "77", "5501", D("2022-02-01")))
    d.received_allocation(BSN, Allocation("aw35", "77", "5507", D("2022-03-02")))
    assert not [c for c in d.due(at("2022-04-03")).claims if c.claim.claim_id == "T-16"]
    d.received_allocation(BSN, Allocation("aw33", "78", "5507", D("2022-02-01")))
    assert not [c for c in d.due(at("2022-04-04")).claims if c.claim.claim_id == "T-16"]
    d.received_allocation(BSN, Allocation("aw35", "78", "5507", D("2022-03-01")))
    [c] = [c for c in d.due(at("2022-04-05")).claims if c.claim.claim_id == "T-16"]
    assert c.claim.payer.party_id == P.CARE_OFFICE and "T-16" not in d.held


def test_the_allocation_travels_as_pre_auth_ref_and_a_forged_one_is_refused(
    directory: PayerDirectory,
) -> None:
    """The WMO301 ToewijzingNummer rides in FHIR Claim.insurance.preAuthRef (one, digits)."""
    import json

    from schemas.errors import MessageError

    d = desk(directory)
    refer(d, "C16", "2020-10-01")
    d.assessment(outcome("C16", "2020-11-20", None))
    [c] = d.due(at("2020-11-20")).claims
    bundle = claim_message(c.claim, c.meta)
    assert claim_from_message(parse_message(dumps(bundle), full=True)).allocation == "20072"
    for forged in (["20072", "1"], [20072], "20072", ["12-34"]):
        raw = json.loads(dumps(bundle))
        claim = next(
            e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Claim"
        )
        claim["insurance"][0]["preAuthRef"] = forged
        with pytest.raises(MessageError):
            claim_from_message(parse_message(json.dumps(raw), full=False))


# --- a referral the desk only has to remember (issue 19 point 4) --------------------------------


def _referral_with_patient(patient: dict[str, object] | None = None) -> ParsedMessage:
    """The example referral as delivered, with its Patient replaced by ``patient``."""
    bundle = json.loads((EXAMPLES / "referral.json").read_text("utf-8"))
    if patient is not None:
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Patient":
                kept = {k: entry["resource"][k] for k in ("resourceType", "id", "meta")}
                entry["resource"] = {**patient, **kept}
    return parse_message(dumps(bundle), full=False)


def test_a_referrals_person_is_read_when_first_needed_and_is_the_same(
    directory: PayerDirectory,
) -> None:
    """Folding a referral keeps its Patient unread (the provider delivers faster, issue 19);
    the person read later is exactly the one the Patient describes."""
    msg = _referral_with_patient()
    d = desk(directory)
    d.apply(msg, outgoing=False)
    [case] = d.cases.values()
    assert case.patient is not None and case.known is None, "read at the delivery already"
    assert case.person == person_from_patient(one(msg, "Patient").data)
    assert case.patient is None, "read once"
    d.apply(msg, outgoing=False)  # the same referral again: folded once
    assert len(d.cases) == 1


@pytest.mark.parametrize(
    "patient",
    [
        {"identifier": [{"system": BSN_SYSTEM, "value": "999990018"}]},  # fails the eleven test
        {"identifier": [{"system": BSN_SYSTEM, "value": "999990019"}], "birthDate": 19900101},
        {"identifier": "999990019", "name": [{"family": 5}]},  # not a list, not a string
        {"identifier": [{"system": BSN_SYSTEM, "value": "999990019"}], "gender": ["male"]},
    ],
)
def test_a_referral_whose_patient_cannot_be_read_claims_nothing_and_breaks_nothing(
    directory: PayerDirectory, patient: dict[str, object]
) -> None:
    """Read late, a hostile Patient still never raises out of the desk: the case has no
    person, so nothing is claimed for it (as when the referral was ignored whole), until the
    provider's own assessment gives the person."""
    d = desk(directory)
    d.apply(_referral_with_patient(patient), outgoing=False)
    [case] = d.cases.values()
    assert case.person is None
    assert not d.due(at("2030-01-01")).claims
    d.assessment(outcome(case.referral_id, "2024-03-01", None).model_copy(update={"zvh": case.zvh}))
    assert case.person == person()
