"""The business rules of each flow model: what a valid model is, and that refusals name the
field (in the model) or the FHIR path (when read from a message) and a machine reason."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from broker.apps.generate.examples import EXAMPLES_DIR, PERSON, examples
from schemas.errors import MessageError
from schemas.flows.assessment import AssessmentOutcome
from schemas.flows.capacity import CapacityReport, LevelCapacity
from schemas.flows.claim import Claim, ClaimResponse, Payer
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor, revoke
from schemas.flows.escalation import Escalation
from schemas.flows.registry import BY_NAME, read_flow
from schemas.flows.response import MessageResponse, response_from_message, response_message
from schemas.flows.transition import CareTransition
from schemas.messaging import ResponseCode, dumps, parse_message
from schemas.vocab import (
    AssessmentDecision,
    ClaimOutcome,
    ClaimService,
    CriterionResult,
    EscalationReason,
    PartyRole,
    SecurityLevel,
    TransitionKind,
)


def _model(name: str) -> Any:
    return next(ex.model for ex in examples() if ex.name == name)


def _reason(err: ValidationError) -> str:
    return err.errors()[0]["type"]


def _refuse(model: Any, **changes: Any) -> str:
    data = {**model.model_dump(), **changes}
    with pytest.raises(ValidationError) as err:
        type(model).model_validate(data)
    return _reason(err.value)


def test_assessment_rules() -> None:
    inc: AssessmentOutcome = _model("assessment-outcome")
    crit = [c.model_dump() for c in inc.criteria]
    crit[2]["result"] = CriterionResult.NOT_MET
    assert _refuse(inc, criteria=crit) == "inclusion-criteria"
    assert _refuse(inc, criteria=[c.model_dump() for c in inc.criteria[:3]]) == "criteria"
    assert (
        _refuse(inc, criteria=[c.model_dump() for c in (*inc.criteria[:3], inc.criteria[0])])
        == "criteria"
    )
    assert _refuse(inc, inclusion_date=None) == "inclusion-date"
    assert _refuse(inc, episode_id=None) == "episode"
    assert _refuse(inc, alternative="none") == "alternative"
    no: AssessmentOutcome = _model("assessment-outcome-not-included")
    assert _refuse(no, alternative=None) == "alternative"
    assert _refuse(no, inclusion_date=date(2024, 1, 1)) == "inclusion-date"
    assert _refuse(no, unknown_field=1) == "extra_forbidden"
    assert no.decision is AssessmentDecision.NOT_INCLUDED


def test_transition_rules() -> None:
    up: CareTransition = _model("care-transition")
    assert _refuse(up, previous_level=None) == "previous-level"
    assert _refuse(up, previous_level=SecurityLevel.LEVEL_4) == "scale-up"
    assert _refuse(up, location_id=None, location_name=None) == "location"
    assert _refuse(up, location_id=None) == "location"
    down = up.model_copy(update={"kind": TransitionKind.SCALE_DOWN})
    assert _refuse(down) == "scale-down"
    tr: CareTransition = _model("care-transition-transfer")
    assert _refuse(tr, previous_provider=None) == "transfer"
    assert _refuse(tr, previous_provider=tr.provider) == "transfer"


def test_capacity_cannot_hold_personal_data() -> None:
    cap: CapacityReport = _model("capacity-report")
    assert _refuse(cap, location_id="bsn-999990019") == "value_error"
    assert _refuse(cap, patient="Jan") == "extra_forbidden"
    assert _refuse(cap, measured_at=datetime(2024, 1, 1)) == "timezone_aware"
    with pytest.raises(ValidationError, match="in service"):
        LevelCapacity(security_level=SecurityLevel.LEVEL_2, in_service=1, occupied=1, available=1)
    with pytest.raises(ValidationError, match="secure beds"):
        LevelCapacity(security_level=SecurityLevel.AMBULANT, in_service=1, occupied=0, available=0)
    with pytest.raises(ValidationError):
        LevelCapacity(security_level=SecurityLevel.LEVEL_2, in_service=1.0, occupied=0, available=0)
    double = [lv.model_dump() for lv in (cap.levels[0], cap.levels[0])]
    assert _refuse(cap, levels=double) == "levels"


def test_capacity_message_with_a_patient_is_refused() -> None:
    from schemas.messaging import category_of

    bundle = json.loads((EXAMPLES_DIR / "capacity-report.json").read_text())
    report = bundle["entry"][1]["resource"]
    assert category_of(report).value == "aggregate"
    assert "Patient" not in json.dumps(bundle)


def test_claim_amounts_are_integer_cents() -> None:
    claim: Claim = _model("claim-coordination")
    assert _refuse(claim, amount_cents=58_000.0) == "int_type"
    assert _refuse(claim, unit_price_cents="2000") == "int_type"
    assert _refuse(claim, amount_cents=57_999) == "amount"
    assert _refuse(claim, quantity=28, amount_cents=56_000) == "quantity"
    assert _refuse(claim, episode_id=None) == "episode"
    assert _refuse(claim, period_end=date(2024, 3, 1)) == "period"
    reg: Claim = _model("claim")
    assert _refuse(reg, referral_id=None, zvh=None) == "case"
    assert _refuse(reg, zvh=None) == "case"
    assert _refuse(reg, quantity=2, amount_cents=400_000) == "quantity"
    assert reg.service is ClaimService.REGISTRATION


def test_money_reads_back_exactly() -> None:
    for cents in (0, 1, 5, 10, 99, 100, 2_000, 200_000, 123_456_789, 10**13 - 1, 10**13):
        claim = _model("claim").model_copy(
            update={"unit_price_cents": cents, "amount_cents": cents}
        )
        flow = BY_NAME["claim"]
        meta = next(e for e in examples() if e.name == "claim")
        from broker.apps.generate.examples import example_meta

        msg = parse_message(dumps(flow.to_message(claim, example_meta(meta))))
        assert flow.from_message(msg).amount_cents == cents


def test_payer_identifier_fits_role() -> None:
    assert Payer(party_id="dji", role=PartyRole.DJI, identifier="0" * 20).system.endswith(".9.1")
    with pytest.raises(ValidationError) as err:
        Payer(party_id="cz", role=PartyRole.HEALTH_INSURER, identifier="12345")
    assert _reason(err.value) == "uzovi-format"
    assert "identifier" in str(err.value)
    with pytest.raises(ValidationError) as err:
        Payer(party_id="x", role=PartyRole.ZVH, identifier="1234")
    assert _reason(err.value) == "payer-role"
    with pytest.raises(ValidationError) as err:
        Payer(party_id="g", role=PartyRole.MUNICIPALITY, identifier=" 0363")
    assert _reason(err.value) == "identifier"


def test_claim_response_rules() -> None:
    paid: ClaimResponse = _model("claim-response")
    assert _refuse(paid, paid_on=None) == "payment"
    assert _refuse(paid, approved_cents=None) == "approved"
    assert _refuse(paid, outcome=ClaimOutcome.ACCEPTED) == "payment"
    assert _refuse(paid, rejection_reason="other") == "rejection"
    rej: ClaimResponse = _model("claim-response-rejected")
    assert _refuse(rej, rejection_reason=None, rejection_note=None) == "rejection"
    assert _refuse(rej, approved_cents=100) == "approved"


def test_consent_rules_and_revocation() -> None:
    c: ConsentRecord = _model("consent")
    later = datetime(2024, 12, 1, tzinfo=UTC)
    r = revoke(c, later, "zvh-voorbeeld")
    assert (r.consent_id, r.status, r.recorded_at, r.recorded_by) == (
        c.consent_id,
        ConsentStatus.INACTIVE,
        later,
        "zvh-voorbeeld",
    )
    assert not r.in_force(date(2025, 1, 1)) and c.in_force(date(2025, 1, 1))
    assert _refuse(c, grantor=Grantor.PERSON) == "value_error"
    assert _refuse(c, recipients=(), recipient_roles=()) == "value_error"
    assert _refuse(c, recorded_at=datetime(2024, 1, 1)) == "value_error"
    assert _refuse(c, purposes=()) == "too_short"


def test_escalation_rules() -> None:
    e: Escalation = _model("escalation")
    assert _refuse(e, reason=EscalationReason.OTHER, explanation=None) == "explanation"
    assert _refuse(e, stuck_since=date(2024, 6, 6)) == "stuck-since"
    # the rule compares the UTC date, so it holds the same after a round trip
    late = datetime(2024, 6, 6, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # 5 June in UTC
    assert _refuse(e, raised_at=late, stuck_since=date(2024, 6, 6)) == "stuck-since"


def test_response_without_issues_round_trips() -> None:
    for code in ResponseCode:
        resp = MessageResponse("0d3c1e2f-0000-4000-8000-000000000001", code)
        msg = parse_message(dumps(response_message(resp, "router", "zvh-a")))
        assert response_from_message(msg) == resp
        assert msg.meta.response is not None and msg.meta.response.request_id == resp.request_id
        if code is not ResponseCode.OK:
            assert msg.resources("OperationOutcome")  # fatal-error SHALL describe the issue


def test_response_from_a_non_response_message() -> None:
    msg = parse_message((EXAMPLES_DIR / "referral.json").read_bytes())
    with pytest.raises(MessageError) as err:
        response_from_message(msg)
    assert err.value.issues[0].path == "MessageHeader.response"


def test_errors_name_the_fhir_path() -> None:
    bundle = json.loads((EXAMPLES_DIR / "care-transition.json").read_text())
    bad = copy.deepcopy(bundle)
    enc = next(e["resource"] for e in bad["entry"] if e["resource"]["resourceType"] == "Encounter")
    enc["period"]["start"] = "2024"
    with pytest.raises(MessageError) as err:
        read_flow(parse_message(dumps(bad), full=False))
    assert err.value.issues[0].path == "Encounter.period.start"
    assert err.value.reason == "date"
    bad = copy.deepcopy(bundle)
    patient = next(
        e["resource"] for e in bad["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["name"][0]["family"] = 42
    with pytest.raises(MessageError) as err:
        read_flow(parse_message(dumps(bad), full=False))
    assert err.value.issues[0].path == "Patient.name[0].family"
    assert "string" in err.value.issues[0].message


def test_person_is_used_unchanged() -> None:
    assert PERSON.bsn.startswith("9999")
