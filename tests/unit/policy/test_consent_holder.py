"""Consent bound to the data holder and the case (issue 16 §3).

Mitz models a consent as: whose data (the person), held by which organisation (the data holder),
shared with which kind of recipient, for which purpose. A consent for the data provider A holds
does not let provider B disclose; a consent for case X does not cover case Y; revocation works
as before; a consent naming a holder that is not a registry party is refused by the router."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime

import pytest

from adapters.zvh.format import parse_document
from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.policy import ConsentView, decide, default_policy
from broker.policy.decision import DecisionRequest, ReasonCode
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from schemas import topics
from schemas.flows.common import case_of
from schemas.flows.consent import (
    ConsentRecord,
    ConsentStatus,
    consent_from_message,
    consent_message,
    revoke,
)
from schemas.messaging import MessageMeta, parse_message
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse
from tests.unit.policy.policy_support import consent

POLICY = default_policy()
PERSON = "pseudo-1"


def _request(sender: str, case: str | None = None) -> DecisionRequest:
    return DecisionRequest(
        event=EventCode.ASSESSMENT_OUTCOME, sender=sender,
        sender_role=PartyRole.COORDINATING_PROVIDER, recipient="zvh-a",
        recipient_role=PartyRole.ZVH, purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.CONSENT, basis_detail=None,
        categories=frozenset({DataCategory.IDENTITY, DataCategory.CARE_EPISODE}),
        pseudonym=PERSON, on=date(2024, 6, 1), case=case,
    )  # fmt: skip


def _view(*records: ConsentRecord) -> ConsentView:
    view = ConsentView()
    for r in records:
        view.apply(PERSON, r)
    return view


def test_a_consent_for_holder_a_does_not_admit_holder_b() -> None:
    view = _view(consent(roles=(PartyRole.ZVH,), holders=("provider-a",)))
    a = decide(_request("provider-a"), POLICY, view)
    b = decide(_request("provider-b"), POLICY, view)
    assert a.permit, a
    assert not b.permit and b.reason is ReasonCode.NO_CONSENT
    assert "held by other organisations than provider-b" in b.detail


def test_without_holders_the_recorder_is_the_holder() -> None:
    rec = consent(roles=(PartyRole.ZVH,), holders=())
    assert rec.data_holders == ("zvh-utrecht",)
    view = _view(rec)
    assert decide(_request("zvh-utrecht"), POLICY, view).permit
    assert not decide(_request("provider-a"), POLICY, view).permit


def test_a_consent_for_case_x_does_not_admit_case_y() -> None:
    view = _view(consent(roles=(PartyRole.ZVH,), holders=("provider-a",), case_id="ZVH-X"))
    assert decide(_request("provider-a", "ZVH-X"), POLICY, view).permit
    y = decide(_request("provider-a", "ZVH-Y"), POLICY, view)
    none = decide(_request("provider-a", None), POLICY, view)
    assert not y.permit and "limited to another case" in y.detail
    assert not none.permit


def test_revocation_still_works_with_a_holder() -> None:
    given = consent(roles=(PartyRole.ZVH,), holders=("provider-a",))
    view = _view(given)
    assert decide(_request("provider-a"), POLICY, view).permit
    view.apply(PERSON, revoke(given, datetime(2024, 2, 1, tzinfo=UTC)))
    d = decide(_request("provider-a"), POLICY, view)
    assert not d.permit and d.reason is ReasonCode.CONSENT_REVOKED


def test_holders_and_case_travel_as_mitz_maps_them() -> None:
    """FHIR R4 Consent: provision.actor role CST (custodian) per data holder, role IRCP per
    recipient, provision.data (related) for the case (docs/flows/consent.md)."""
    rec = consent(recipients=("zvh-a",), holders=("provider-a", "zvh-a"), case_id="ZVH-X")
    meta = MessageMeta.new(EventCode.CONSENT, "zvh-utrecht", PurposeOfUse.COC, LegalBasis.CONSENT)
    bundle = consent_message(rec, meta)
    prov = bundle["entry"][1]["resource"]["provision"]
    roles = [(a["role"]["coding"][0]["code"], a["reference"]["identifier"]["value"])
             for a in prov["actor"]]  # fmt: skip
    assert roles == [("IRCP", "zvh-a"), ("CST", "provider-a"), ("CST", "zvh-a")]
    assert prov["data"][0]["reference"]["identifier"]["value"] == "ZVH-X"
    back = consent_from_message(parse_message(json.dumps(bundle)))
    assert (back.holders, back.case_id, back.recipients) == (
        ("provider-a", "zvh-a"), "ZVH-X", ("zvh-a",)
    )
    assert back.status is ConsentStatus.ACTIVE


def test_the_case_of_a_message_is_its_zvh_case_number() -> None:
    from schemas.examples import EXAMPLES_DIR

    referral = parse_message((EXAMPLES_DIR / "referral.json").read_bytes())
    assessment = parse_message((EXAMPLES_DIR / "assessment-outcome.json").read_bytes())
    assert case_of(referral) == "ZVH-2024-0042" == case_of(assessment)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(tmp_path_factory.mktemp("holders"), list(demo.PARTIES))


@pytest.mark.parametrize("holder", ["provider-nergens", "fivoor"])
def test_a_consent_naming_a_holder_that_is_no_party_is_refused(
    deployment: Deployment, holder: str
) -> None:
    zvh = "zvh-midden-nederland"
    client = deployment.party_client(zvh)
    person = synthetic_bsn(random.Random(11))
    doc = demo.consent("c-holder", person, date.today())
    doc["holders"] = [zvh, holder]
    rec = parse_document(doc).to_record(zvh)  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.CONSENT, zvh, PurposeOfUse.COC, LegalBasis.CONSENT)
    key, value, headers = client.seal_message(consent_message(rec, meta), person)
    result = Pipeline(deployment.router_state(POLICY)).route(
        Incoming(topics.IN_CONSENT.name, key, value, headers)
    )
    kinds = {f.kind: f for f in result.facts}
    if holder == "fivoor":  # a registered provider: recorded
        assert FactKind.CONSENT_CHANGE in kinds, result.facts
    else:
        assert kinds[FactKind.REFUSAL].reason == "unknown-data-holder"
        assert any(r.topic == topics.REJECTED.name for r in result.records)
