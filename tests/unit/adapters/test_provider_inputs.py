"""The provider's inbox formats (CSV per flow, FHIR JSON messages and plain resources) and the
ZVH-format outbox documents made from what the router lets a ZVH see."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from adapters.provider.inputs import ClaimInput, Submission, parse_csv, parse_json
from adapters.zvh.translate import to_zvh
from broker.apps.generate.examples import EXAMPLES_DIR as EXAMPLES
from broker.policy import project
from schemas.errors import MessageError
from schemas.flows.assessment import (
    AssessmentOutcome,
    assessment_entries,
    assessment_from_message,
)
from schemas.flows.capacity import CapacityReport
from schemas.flows.transition import CareTransition
from schemas.messaging import MessageMeta, build_message, dumps, parse_message
from schemas.vocab import (
    AssessmentDecision,
    ClaimService,
    DataCategory,
    EventCode,
    LegalBasis,
    PurposeOfUse,
)

ME = "fivoor"
A_HEADER = (
    "assessment_id;zvh;case_id;assessed_on;bsn;family_name;birth_date;decision;"
    "dangerous_behaviour;multi_problem;structure_need;legal_title;reasons;alternative;"
    "inclusion_date;episode_id;insurer_uzovi;basis;basis_justification;basis_decided_by"
)
A_ROW = (
    "B-1;zvh-mn;C-1;2023-11-10;999990019;Jansen;1990-01-02;included;met;met;met;met;"
    "Alle criteria vervuld.;;2023-11-15;EP-1;3311;;;"
)


def csv(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def ok(items: list[tuple[str, Submission | MessageError]]) -> list[Submission]:
    assert all(isinstance(i, Submission) for _, i in items), items
    return [i for _, i in items if isinstance(i, Submission)]


def test_assessment_rows_with_coverage_and_basis() -> None:
    row = A_ROW.replace(";;;", ";conflict-of-duties;Acuut gevaar voor derden.;dr. X")
    [sub] = ok(parse_csv(csv(A_HEADER, row), ME))
    assert sub.event is EventCode.ASSESSMENT_OUTCOME
    assert isinstance(sub.model, AssessmentOutcome) and sub.model.provider == ME
    assert sub.model.decision is AssessmentDecision.INCLUDED
    assert sub.coverage is not None and sub.coverage.health_insurer == "3311"
    assert sub.basis is LegalBasis.CONFLICT_OF_DUTIES and sub.detail is not None


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (("2023-11-15;EP-1", ";EP-1"), "line 2: inclusion_date"),  # an inclusion needs a date
        (("met;met;met;met", "met;not-met;met;met"), "line 2: criteria"),
        (("2023-11-10", "10-11-2023"), "line 2: assessed_on"),
        (("3311", "33110"), "line 2: insurer_uzovi"),
        (("999990019", "999990018"), "line 2: bsn"),
    ],
)
def test_a_bad_assessment_row_is_refused_with_line_and_column(
    change: tuple[str, str], path: str
) -> None:
    items = parse_csv(csv(A_HEADER, A_ROW.replace(*change, 1), A_ROW.replace("B-1", "B-2")), ME)
    (_, err), (_, good) = items
    assert isinstance(err, MessageError) and err.issues[0].path == path, err
    assert isinstance(good, Submission)


def test_transition_capacity_and_claim_rows() -> None:
    [t] = ok(
        parse_csv(
            csv(
                "transition_id;episode_id;kind;effective_on;bsn;family_name;birth_date;"
                "security_level;previous_level;location_id;notify",
                "T-1;EP-1;scale-up;2024-01-05;999990019;Jansen;1990-01-02;3;ambulant;"
                "unit-3;gemeente-utrecht|zvh-mn",
            ),
            ME,
        )
    )
    assert isinstance(t.model, CareTransition) and t.model.provider == ME
    assert t.destinations == ("gemeente-utrecht", "zvh-mn")
    [c] = ok(
        parse_csv(
            csv(
                "report_id;location_id;region;measured_at;level_3_in_service;level_3_occupied;"
                "level_3_available",
                "CAP-1;unit-3;midden-nederland;2024-01-05T08:00:00+01:00;12;11;1",
            ),
            ME,
        )
    )
    assert isinstance(c.model, CapacityReport) and c.model.levels[0].available == 1
    [claim] = ok(
        parse_csv(
            csv(
                "claim_id;zvh;case_id;service;period_start;period_end;quantity;unit_price_cents;"
                "wlz_care_office",
                "T-9;zvh-mn;C-1;treatment;2024-03-01;2024-03-31;4;12550;5507",
            ),
            ME,
        )
    )
    assert claim.model == ClaimInput(
        "T-9",
        "zvh-mn",
        "C-1",
        ClaimService.TREATMENT,
        date(2024, 3, 1),
        date(2024, 3, 31),
        4,
        12550,
    )
    assert claim.coverage is not None and claim.coverage.care_office == "5507"


def test_claim_rows_carry_the_allocations_the_payers_standards_need() -> None:
    """iWmo WMO323 cites the WMO301 ToewijzingNummer; a care office pays after AW33 and AW35."""
    [wmo, wlz] = ok(
        parse_csv(
            csv(
                "claim_id;zvh;case_id;service;period_start;period_end;quantity;unit_price_cents;"
                "allocation;wlz_care_office;wlz_allocation;wlz_care_start;municipal_placement",
                "S-1;zvh-mn;C-1;support;2024-03-01;2024-03-31;1;90000;20072;;;;",
                "T-1;zvh-mn;C-1;treatment;2024-03-01;2024-03-31;4;12550;;5507;A33;2024-02-01;0344",
            ),
            ME,
        )
    )
    assert isinstance(wmo.model, ClaimInput) and wmo.model.allocation == "20072"
    assert wlz.coverage is not None
    assert (wlz.coverage.wlz_allocation, wlz.coverage.wlz_care_start) == ("A33", date(2024, 2, 1))
    assert wlz.coverage.municipal_placement == "0344"
    [(_, err)] = parse_csv(
        csv(
            "claim_id;zvh;case_id;service;period_start;period_end;quantity;unit_price_cents;"
            "allocation",
            "S-2;zvh-mn;C-1;support;2024-03-01;2024-03-31;1;90000;12-34",
        ),
        ME,
    )
    assert isinstance(err, MessageError) and "allocation" in err.issues[0].path


@pytest.mark.parametrize(
    ("row", "path", "reason"),
    [
        (
            "T-1;zvh-mn;C-1;treatment;2024-03-01;2024-03-31;4;-100;",
            "line 2: unit_price_cents",
            None,
        ),
        ("T-1;zvh-mn;C-1;treatment;2024-03-31;2024-03-01;4;100;", "line 2: period_end", "period"),
        ("T-1;zvh-mn;C-1;massage;2024-03-01;2024-03-31;4;100;", "line 2: service", None),
    ],
)
def test_bad_claim_rows(row: str, path: str, reason: str | None) -> None:
    header = (
        "claim_id;zvh;case_id;service;period_start;period_end;quantity;unit_price_cents;"
        "wlz_care_office"
    )
    [(_, err)] = parse_csv(csv(header, row), ME)
    assert isinstance(err, MessageError) and err.issues[0].path == path
    if reason:
        assert err.reason == reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"foo;bar\n1;2\n", "no-flow"),
        (csv("claim_id;zvh"), "missing-column"),
        (csv(A_HEADER + ";colour", A_ROW + ";red"), "unknown-column"),
        (csv(A_HEADER, A_ROW.replace("Jansen", "Jänsen")).decode().encode("cp1252"), "encoding"),
    ],
)
def test_unreadable_csv_files_are_refused_whole(raw: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_csv(raw, ME)
    assert err.value.reason == reason


def _assessment_bundle(sender: str = ME) -> dict[str, Any]:
    """The example assessment outcome, sent by ``sender``."""
    raw = (EXAMPLES / "assessment-outcome.json").read_bytes()
    a = assessment_from_message(parse_message(raw, full=False)).model_copy(
        update={"provider": sender}
    )
    meta = MessageMeta.new(
        EventCode.ASSESSMENT_OUTCOME, sender, PurposeOfUse.COC, LegalBasis.CONSENT
    )
    return build_message(meta, assessment_entries(a))


def test_json_messages_and_plain_resources() -> None:
    bundle = _assessment_bundle()
    [msg] = ok(parse_json(json.dumps(bundle).encode(), ME))
    assert msg.message_id == bundle["id"] and msg.purpose is PurposeOfUse.COC
    resources = [e["resource"] for e in bundle["entry"][1:]]
    for r in resources:
        r.pop("meta", None)
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
    batch = json.dumps([collection, {"resourceType": "Basic"}, bundle | {"type": "searchset"}])
    items = parse_json(batch.encode(), ME)
    assert isinstance(items[0][1], Submission) and items[0][1].event is EventCode.ASSESSMENT_OUTCOME
    assert isinstance(items[0][1].model, AssessmentOutcome)
    assert isinstance(items[1][1], MessageError) and items[1][1].reason == "no-flow"
    assert isinstance(items[2][1], MessageError)
    [(_, other)] = parse_json(json.dumps(_assessment_bundle("someone-else")).encode(), ME)
    assert isinstance(other, MessageError) and other.reason == "sender"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{not json", "not-json"), ("{}".encode("utf-16"), "encoding")],
)
def test_unreadable_json_is_refused_whole(raw: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_json(raw, ME)
    assert err.value.reason == reason


def test_the_zvh_gets_the_decision_in_its_own_format_without_clinical_grounds() -> None:
    bundle = _assessment_bundle()
    allowed = frozenset({DataCategory.IDENTITY, DataCategory.PROCESS, DataCategory.CARE_EPISODE})
    delivered = parse_message(dumps(project(bundle, allowed)), full=False)
    doc = to_zvh(delivered)
    assert doc["type"] == "assessment-outcome" and "fhir" not in doc
    assert doc["decision"] in ("included", "not-included") and doc["case_id"]
    assert "criteria" not in doc, "the ClinicalImpression (risk-assessment) was withheld"
    full = to_zvh(parse_message(dumps(bundle), full=False))
    assert set(full["criteria"]) == {
        "dangerous-behaviour",
        "multi-problem",
        "structure-need",
        "legal-title",
    }
    transition = to_zvh(parse_message((EXAMPLES / "care-transition.json").read_bytes(), full=False))
    assert transition["type"] == "care-transition" and transition["kind"] == "scale-up"
    escalation = to_zvh(parse_message((EXAMPLES / "escalation.json").read_bytes(), full=False))
    assert escalation["reason"] == "payment-overdue" and "fhir" not in escalation
