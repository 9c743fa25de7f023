"""Free text carries the category of what it may contain (issue 16 §4): the router counts it,
decides on it and minimisation drops it for roles the policy does not give that category.

What a role "may receive" is read from the policy file here (the rule's ``categories``), never
from the minimiser. Hostile senders put clinical text where no flow writes any (a ``note``).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.policy import ConsentView, DecisionRequest, decide, default_policy, project
from broker.policy.minimise import message_categories
from schemas.flows.registry import FLOWS
from schemas.free_text import FREE_TEXT, free_text_categories, strip_free_text
from schemas.messaging import parse_message
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

EXAMPLES = Path(__file__).parents[3] / "schemas" / "examples"
POLICY = default_policy()
CLINICAL_TEXT = "Psychotische decompensatie, clozapine gestart"  # synthetic, no person


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def _texts(bundle: dict[str, Any]) -> list[tuple[str, str, DataCategory]]:
    """(resourceType, text, category) of every listed free-text value in ``bundle``."""
    found = []
    for e in bundle["entry"][1:]:
        r = e["resource"]
        for f in FREE_TEXT:
            if f.resource not in ("*", r.get("resourceType")) or f.element not in r:
                continue
            value = r[f.element]
            for item in value if isinstance(value, list) else [value]:
                codes = {c.get("code") for c in (item.get("type") or {}).get("coding", [])}
                if f.code is not None and f.code not in codes:
                    continue
                text: Any = item
                for key in f.text or ():
                    text = text.get(key) if isinstance(text, dict) else None
                if text is not None:
                    found.append((r["resourceType"], json.dumps(text), f.category))
    return found


def test_every_free_text_is_documented_with_its_category() -> None:
    """The flow pages (generated from FieldMap) state the same category as the minimiser uses."""
    by_flow = {spec.event.value: spec for spec in FLOWS}
    for f in FREE_TEXT:
        if f.flow == "*":
            continue
        mapped = {
            name.strip(): m.category for m in by_flow[f.flow].mapping for name in m.field.split(",")
        }
        assert mapped.get(f.field) == f.category.value, (f.flow, f.field)


@pytest.mark.parametrize(
    "name",
    [
        "referral.json",
        "assessment-outcome-not-included.json",
        "care-transition.json",
        "escalation.json",
        "claim-response-rejected.json",
    ],
)
def test_no_role_gets_free_text_of_a_category_its_rule_does_not_list(name: str) -> None:
    bundle = _example(name)
    msg = parse_message(json.dumps(bundle))
    flow = POLICY.flow(msg.meta.event)
    assert flow is not None
    texts = _texts(bundle)
    assert texts, "the example carries free text"
    for role, rule in flow.recipients.items():
        may = frozenset(rule.categories)  # from the policy file, not from the minimiser
        out = json.dumps(project(bundle, may))
        for rtype, text, category in texts:
            if category not in may:
                assert text not in out, (role, rtype, category)


def test_the_reasons_and_the_alternative_note_do_not_reach_the_zvh() -> None:
    bundle = _example("assessment-outcome-not-included.json")
    zvh = POLICY.recipient_rule(EventCode.ASSESSMENT_OUTCOME, PartyRole.ZVH)
    assert zvh is not None and DataCategory.CLINICAL not in zvh.categories
    out = project(bundle, frozenset(zvh.categories))
    task = next(e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "Task")
    kinds = [o["type"]["coding"][0]["code"] for o in task["output"]]
    assert "reasons" not in kinds and "decision" in kinds
    alt = next(o for o in task["output"] if o["type"]["coding"][0]["code"] == "advised-alternative")
    assert "text" not in alt["valueCodeableConcept"] and alt["valueCodeableConcept"]["coding"]
    assert DataCategory.CLINICAL in message_categories(bundle)


def _transition_with(reason: str) -> dict[str, Any]:
    bundle = _example("care-transition.json")
    for e in bundle["entry"][1:]:
        if e["resource"]["resourceType"] == "Encounter":
            e["resource"]["reasonCode"] = [{"text": reason}]
    return bundle


def _request(bundle: dict[str, Any], role: PartyRole) -> DecisionRequest:
    msg = parse_message(json.dumps(bundle))
    return DecisionRequest(
        event=msg.meta.event,
        sender="aanbieder-voorbeeld",
        sender_role=PartyRole.COORDINATING_PROVIDER,
        recipient="gemeente-x",
        recipient_role=role,
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONSENT,
        basis_detail=None,
        categories=msg.categories(),
        pseudonym="p1",
        on=date(2026, 1, 2),
    )


def _assessment_with_note(note: str) -> dict[str, Any]:
    bundle = _example("assessment-outcome.json")
    for e in bundle["entry"][1:]:
        if e["resource"]["resourceType"] == "Task":
            e["resource"]["note"] = [{"text": note}]  # hostile: no flow writes a note
    return bundle


@pytest.mark.parametrize("kind", ["transition reason", "hostile note"])
def test_clinical_free_text_is_withheld_from_a_municipality(kind: str) -> None:
    if kind == "transition reason":
        bundle = _transition_with(CLINICAL_TEXT)
    else:
        bundle = _assessment_with_note(CLINICAL_TEXT)
    consents = ConsentView()
    from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor  # the real model

    consents.apply(
        "p1",
        ConsentRecord(
            consent_id="c1",
            person_bsn="999990020",
            status=ConsentStatus.ACTIVE,
            grantor=Grantor.PERSON,
            recipient_roles=(PartyRole.MUNICIPALITY,),
            purposes=(PurposeOfUse.COC,),
            categories=tuple(DataCategory),
            period_start=date(2026, 1, 1),
            recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
            recorded_by="aanbieder-voorbeeld",
        ),
    )
    request = _request(bundle, PartyRole.MUNICIPALITY)
    assert DataCategory.CLINICAL in request.categories
    d = decide(request, POLICY, consents)
    assert d.permit and DataCategory.CLINICAL in d.withheld_categories, d
    out = json.dumps(project(bundle, d.allowed_categories))
    assert "clozapine" not in out
    assert '"MessageHeader"' in out and len(json.loads(out)["entry"]) > 2  # the message goes


def test_the_police_facts_go_only_where_the_policy_gives_police_data() -> None:
    bundle = _example("referral.json")
    cats = message_categories(bundle)
    assert DataCategory.POLICE_DATA in cats
    for role in (PartyRole.ZVH, PartyRole.COORDINATING_PROVIDER):
        rule = POLICY.recipient_rule(EventCode.REFERRAL, role)
        assert rule is not None and DataCategory.POLICE_DATA in rule.categories
        assert "BVH" in json.dumps(project(bundle, frozenset(rule.categories)))
    without = frozenset(DataCategory) - {DataCategory.POLICE_DATA}
    out = project(bundle, without)
    assert "BVH" not in json.dumps(out)
    sr = next(
        e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )
    assert "supportingInfo" not in sr  # no dangling reference to the dropped facts


def test_strip_leaves_its_input_alone_and_empties_nothing_else() -> None:
    encounter = {"resourceType": "Encounter", "reasonCode": [{"text": "x"}], "status": "finished"}
    before = copy.deepcopy(encounter)
    assert strip_free_text(encounter, frozenset()) == {
        "resourceType": "Encounter",
        "status": "finished",
    }
    assert encounter == before
    assert strip_free_text(encounter, frozenset({DataCategory.CLINICAL})) is encounter
    assert free_text_categories(encounter) == {DataCategory.CLINICAL}
    odd: dict[str, Any] = {"resourceType": "Task", "output": ["x", 1, None], "note": "n"}
    assert strip_free_text(odd, frozenset()) == {"resourceType": "Task", "output": ["x", 1, None]}


def test_the_permit_detail_names_no_citation() -> None:
    """The detail is the audit record's description, in clear: "claim to dji … (wfz)" next to a
    pseudonym reveals a criminal-law title; the citation stays in the sealed detail."""
    from schemas.messaging import BasisDetail

    bundle = _example("claim.json")
    msg = parse_message(json.dumps(bundle))
    d = decide(
        DecisionRequest(
            event=EventCode.CLAIM,
            sender="aanbieder-voorbeeld",
            sender_role=PartyRole.COORDINATING_PROVIDER,
            recipient="dji",
            recipient_role=PartyRole.DJI,
            purpose=PurposeOfUse.HPAYMT,
            legal_basis=LegalBasis.LEGAL_OBLIGATION,
            basis_detail=BasisDetail("wfz"),
            categories=msg.categories(),
            pseudonym="p1",
            on=date(2026, 1, 2),
        ),
        POLICY,
        ConsentView(),
    )
    assert d.permit, d
    assert "wfz" not in d.detail.lower() and d.grounds is not None
    assert d.grounds.citation is not None and d.grounds.citation.id == "wfz"
