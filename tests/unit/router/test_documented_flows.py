"""Every documented example routes as its flow page says (issue 15 point 5).

Each example under ``schemas/examples/`` (the ones ``docs/flows/*.md`` embed) is routed as it is
committed — only its timestamp moved to now, so the replay window accepts it — through the real
``Pipeline`` with the shipped policy, and what the router does is compared with the example's
declared ``Routed`` (the "Who receives it" section of its flow page): the recipient roles with the
categories found in what each one can open, the denials with their reasons, a refusal, a consent
change. A policy with one rule removed must make the check fail, so documentation and code cannot
drift apart again.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.generate.examples import (
    INSURER,
    MUNICIPALITY,
    PARTY_ROLES,
    PROVIDER_B,
    REGION,
    ROUTER,
    ZVH,
    Example,
    Routed,
    example_meta,
    examples,
)
from broker.apps.generate.flowdocs import DOCS, who_receives_md
from broker.policy import Policy, default_policy, load_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline, RouteResult
from broker.router.records import Incoming
from schemas.examples import EXAMPLES_DIR
from schemas.flows.consent import ConsentRecord
from schemas.flows.registry import FLOWS
from schemas.messaging import BasisDetail, category_of, dumps, new_id, parse_message
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

POLICY_FILE = Path(__file__).parents[3] / "broker" / "policy" / "default-policy.yaml"
REGIONAL = {PartyRole.ZVH, PartyRole.COORDINATING_PROVIDER, PartyRole.EXECUTING_PROVIDER}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    parties = [
        LocalParty(pid, pid, role, REGION if role in REGIONAL else None)
        for pid, role in PARTY_ROLES.items()
        if pid != ROUTER  # create_local adds the router itself
    ]
    return create_local(tmp_path_factory.mktemp("documented"), parties)


def _committed(ex: Example, now: datetime) -> dict[str, Any]:
    """The example as committed, assembled ``now`` (keys made at run time are valid from now)."""
    bundle: dict[str, Any] = json.loads((EXAMPLES_DIR / f"{ex.name}.json").read_text("utf-8"))
    bundle["timestamp"] = now.isoformat()
    return bundle


def _consent_in_force(now: datetime) -> dict[str, Any]:
    """The consent example with its period moved around today: what "in force" means."""
    ex = next(e for e in examples() if e.flow.event is EventCode.CONSENT)
    record: ConsentRecord = ex.model
    moved = record.model_copy(
        update={
            "period_start": now.date() - timedelta(days=30),
            "period_end": now.date() + timedelta(days=365),
        }
    )
    meta = dataclasses.replace(example_meta(ex), timestamp=now, message_id=new_id())
    return ex.flow.to_message(moved, meta)


def _send(pipe: Pipeline, dep: Deployment, bundle: dict[str, Any], now: datetime) -> RouteResult:
    msg = parse_message(dumps(bundle))
    client = dep.party_client(msg.meta.sender)
    key, value, headers = client.seal_message(bundle, msg.subject_bsn(), now=now)
    return pipe.route(Incoming("in.example", key, value, headers), now)


def _observed(result: RouteResult, dep: Deployment, sender: str) -> Routed:
    """What the router did, read from what each recipient can open and from the facts."""
    receives = []
    for rec in result.records:
        party = rec.topic.removeprefix("out.")
        if not rec.topic.startswith("out.") or party == sender:
            continue  # the sender's own response, the parked copy of a refusal
        opened = dep.party_client(party).open(rec.key, rec.value, rec.headers)
        found = {category_of(e["resource"]) for e in json.loads(opened.payload)["entry"]}
        cats = tuple(sorted((c for c in found if c is not None), key=lambda c: c.value))
        receives.append((dep.registry.get(party).role, cats))
    denied = [(f.recipient_role, f.reason) for f in result.facts if f.kind is FactKind.DENY]
    refused = [f.reason for f in result.facts if f.kind is FactKind.REFUSAL]
    consent = [f.reason for f in result.facts if f.kind is FactKind.CONSENT_CHANGE]
    return _normal(
        Routed(
            receives=tuple(receives),
            denied=tuple((r, why) for r, why in denied if r is not None),
            refused=refused[0] if refused else None,
            consent=consent[0] if consent else None,
        )
    )


def _normal(r: Routed) -> Routed:
    cats = tuple(sorted((role, tuple(sorted(c, key=lambda x: x.value))) for role, c in r.receives))
    return Routed(cats, tuple(sorted(r.denied)), r.refused, r.consent)


def route_example(ex: Example, policy: Policy, dep: Deployment) -> Routed:
    """Route one example on a fresh router: a consent example after the consent examples before
    it, any other example with the consent example in force."""
    now = datetime.now(UTC).replace(microsecond=0)
    pipe = Pipeline(dep.router_state(policy))
    consents = [e for e in examples() if e.flow.event is EventCode.CONSENT]
    if ex in consents:
        for before in consents[: consents.index(ex)]:
            _send(pipe, dep, _committed(before, now), now)
    else:
        _send(pipe, dep, _consent_in_force(now), now)
    if ex.flow.event in (EventCode.ESCALATION, EventCode.ESCALATION_ANSWER):
        # the ladder knows a case from its referral, an answer from its escalation
        answer = ex.flow.event is EventCode.ESCALATION_ANSWER
        before = ["referral"] + (["escalation"] if answer else [])
        for name in before:
            _send(pipe, dep, _committed(next(e for e in examples() if e.name == name), now), now)
    return _observed(_send(pipe, dep, _committed(ex, now), now), dep, ex.sender)


def mismatches(policy: Policy, dep: Deployment) -> list[str]:
    """Every example whose routing differs from what its flow page states."""
    out = []
    for ex in examples():
        got, said = route_example(ex, policy, dep), _normal(ex.routed)
        if got != said:
            out.append(f"{ex.name}: documented {said}, routed {got}")
    return out


def test_every_documented_example_routes_as_documented(deployment: Deployment) -> None:
    assert mismatches(default_policy(), deployment) == []


def test_every_example_is_routed_and_documents_an_outcome() -> None:
    committed = {p.stem for p in EXAMPLES_DIR.glob("*.json")}
    assert committed == {e.name for e in examples()}  # nothing in schemas/examples goes untested
    for ex in examples():
        r = ex.routed
        assert r.receives or r.denied or r.refused or r.consent, ex.name


def _without(tmp_path: Path, *path: str, value: str | None = None) -> Policy:
    """A copy of the shipped policy with the rule at ``path`` removed (or one list item)."""
    doc = yaml.safe_load(POLICY_FILE.read_text("utf-8"))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]].remove(value)
    copy = tmp_path / "policy.yaml"
    copy.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    return load_policy(copy)


def _documented_rules() -> list[tuple[str, str]]:
    """(flow, recipient role) of every rule a documented example is delivered under."""
    return sorted(
        {(ex.flow.event.value, role.value) for ex in examples() for role, _ in ex.routed.receives}
    )


@pytest.mark.parametrize(("flow", "role"), _documented_rules())
def test_removing_a_documented_recipient_rule_breaks_the_check(
    deployment: Deployment, tmp_path: Path, flow: str, role: str
) -> None:
    policy = _without(tmp_path, "flows", flow, "recipients", role)
    broken = mismatches(policy, deployment)
    assert any(m.split(":")[0] in _names(flow) for m in broken), broken


@pytest.mark.parametrize(
    ("flow", "sender"),
    sorted(
        {(ex.flow.event.value, PARTY_ROLES[ex.sender].value) for ex in examples()}
        - {
            ("response", "router"),  # the router makes responses; no policy entry to remove
            # a withdrawal is authorised by being the original's sender, not by the policy
            ("withdrawal", "coordinating-provider"),
        }
    ),
)
def test_removing_a_documented_sender_breaks_the_check(
    deployment: Deployment, tmp_path: Path, flow: str, sender: str
) -> None:
    policy = _without(tmp_path, "flows", flow, "senders", value=sender)
    broken = mismatches(policy, deployment)
    assert any(m.split(":")[0] in _names(flow) for m in broken), broken


def _names(flow: str) -> set[str]:
    return {ex.name for ex in examples() if ex.flow.event.value == flow}


def test_categories_are_the_wire_codes() -> None:
    # the declared categories are DataCategory members (a typo fails here, not silently)
    for ex in examples():
        for _, cats in ex.routed.receives:
            assert all(isinstance(c, DataCategory) for c in cats)


def _variant(ex_name: str, now: datetime, **meta: Any) -> dict[str, Any]:
    """An example's model sent with other message metadata (sender, destinations, basis)."""
    ex = next(e for e in examples() if e.name == ex_name)
    header = dataclasses.replace(example_meta(ex), timestamp=now, message_id=new_id(), **meta)
    model = ex.model
    if "raised_by" in type(model).model_fields and "sender" in meta:
        model = model.model_copy(update={"raised_by": meta["sender"]})  # raised in its own name
    return ex.flow.to_message(model, header)


def test_a_municipality_refers_to_the_zvh_on_its_public_task(deployment: Deployment) -> None:
    """docs/policy.md §5: a convenantpartner brings a case to the ZVH on its public task, then
    without the risk assessment and the legal title. The router takes the policy's senders, so a
    municipality's referral is no longer refused at the door."""
    now = datetime.now(UTC).replace(microsecond=0)
    pipe = Pipeline(deployment.router_state(default_policy()))
    bundle = _variant(
        "referral",
        now,
        sender=MUNICIPALITY,
        destinations=(ZVH,),
        purpose=PurposeOfUse.COC,
        legal_basis=LegalBasis.PUBLIC_TASK,
        basis_detail=BasisDetail(citation="wmo-2015"),
    )
    got = _observed(_send(pipe, deployment, bundle, now), deployment, MUNICIPALITY)
    assert got == _normal(
        Routed(receives=((PartyRole.ZVH, (DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL)),))
    )


@pytest.mark.parametrize(
    ("sender", "allowed"), [(PROVIDER_B, True), (MUNICIPALITY, True), (INSURER, False)]
)
def test_who_may_escalate_is_the_policy_s_senders(
    deployment: Deployment, sender: str, allowed: bool
) -> None:
    """The router used to refuse an executing provider's escalation that the policy allows;
    now the policy's ``senders`` decide (a health insurer is not among them)."""
    now = datetime.now(UTC).replace(microsecond=0)
    pipe = Pipeline(deployment.router_state(default_policy()))
    referral = next(e for e in examples() if e.name == "referral")
    _send(pipe, deployment, _committed(referral, now), now)  # the ladder knows the case
    got = _observed(
        _send(pipe, deployment, _variant("escalation", now, sender=sender), now), deployment, sender
    )
    if allowed:
        assert got.receives == ((PartyRole.NATIONAL_COORDINATION, (DataCategory.PROCESS,)),)
    else:
        assert got == Routed(refused="sender-not-authorised")


def test_each_flow_page_states_its_examples_routing() -> None:
    """The declared routing is what the pages say: the committed page holds the section."""
    for flow in FLOWS:
        page = (DOCS / "flows" / f"{flow.name}.md").read_text("utf-8")
        assert "\n".join(who_receives_md(flow)) in page, flow.name
