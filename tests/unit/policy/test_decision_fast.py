"""``decide`` with its caches decides exactly as without them.

The cached parts of a decision's text (category names, the permit's head, the rule's place)
are each compared with their plain spec; and ``decide`` runs on the same requests (every flow,
role, purpose and basis of the shipped policy, random category sets, basis details, persons
with and without consents) with every cache emptied and again with them warm, and must return
equal decisions, detail text included. (Until the caches moved out of the rule module, a copy
of the previous ``decide`` served as the oracle here.)
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import ON, PSEUDONYM, consent

from broker.policy import (
    ConsentView,
    DecisionRequest,
    consent_view,
    decide,
    decision,
    default_policy,
)
from broker.policy.decision import _names
from schemas.messaging import BasisDetail
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

POLICY = default_policy()
_ROLES = list(PartyRole)


def names_spec(categories: frozenset[DataCategory] | set[DataCategory]) -> str:
    return ", ".join(sorted(categories)) or "none"


def cold() -> None:
    """Empty every cache ``decide`` reads through."""
    decision._joined.cache_clear()
    decision._permit_head.cache_clear()
    consent_view._categories.cache_clear()
    POLICY.__dict__.pop("_places", None)  # a cached_property


def decide_cold_and_warm(req: DecisionRequest, view: ConsentView) -> Any:
    cold()
    first = decide(req, POLICY, view)
    assert decide(req, POLICY, view) == first  # with the caches warm
    if first.permit:  # the cached head and names, as their spec has them
        head = f"{req.event} to {req.recipient} ({req.recipient_role}) for {req.purpose} on "
        assert first.detail.startswith(f"{head}{first.legal_basis}")
        assert f"; categories: {names_spec(first.allowed_categories)}" in first.detail
    assert first.rule in (POLICY.source, POLICY.where(POLICY.rule_path(req.event)),
                          POLICY.where(POLICY.rule_path(req.event, req.recipient_role)))
    return first


def _view(consents: list[dict[str, Any]]) -> ConsentView:
    view = ConsentView()
    for i, kwargs in enumerate(consents):
        view.apply(PSEUDONYM, consent(f"c-{i}", **kwargs))
    return view


_consents = st.lists(
    st.fixed_dictionaries(
        {
            "roles": st.lists(st.sampled_from(list(PartyRole)), min_size=1, max_size=2).map(tuple),
            "recipients": st.sampled_from([(), ("party-under-test",), ("other",)]),
            "purposes": st.lists(st.sampled_from(list(PurposeOfUse)), min_size=1, max_size=2).map(
                tuple
            ),
            "categories": st.frozensets(st.sampled_from(list(DataCategory)), min_size=1),
            "end": st.sampled_from([None, date(2024, 3, 1), date(2030, 1, 1)]),
            "start": st.sampled_from([date(2023, 1, 1), date(2024, 7, 1)]),
        }
    ).filter(lambda d: d["end"] is None or d["end"] >= d["start"]),
    max_size=3,
)
_details = st.none() | st.builds(
    BasisDetail,
    citation=st.sampled_from([None, "", "Wvggz art. 8:27", "Wet x", "Wmo 2015 art. 2.3.2"]),
    justification=st.sampled_from([None, "kort", "Ernstig gevaar voor derden; delen nodig."]),
    decided_by=st.sampled_from([None, "", "dr. P. Bakker"]),
)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(list(EventCode)),
    st.sampled_from(list(PartyRole)),
    st.sampled_from(list(PartyRole)),
    st.sampled_from(list(PurposeOfUse)),
    st.sampled_from(list(LegalBasis)),
    _details,
    st.frozensets(st.sampled_from(list(DataCategory))),
    st.sampled_from([None, PSEUDONYM, "p-nobody"]),
    st.sampled_from(["party-under-test", "other"]),
    _consents,
    st.lists(st.sampled_from(["Patient", "birthDate"]), max_size=2).map(tuple),
)
def test_decide_decides_alike_with_caches_cold_and_warm(
    event: EventCode,
    sender_role: PartyRole,
    recipient_role: PartyRole,
    purpose: PurposeOfUse,
    basis: LegalBasis,
    detail: BasisDetail | None,
    categories: frozenset[DataCategory],
    pseudonym: str | None,
    recipient: str,
    consents: list[dict[str, Any]],
    personal_data: tuple[str, ...],
) -> None:
    flow = POLICY.flow(event)
    if flow is not None and recipient_role not in flow.recipients and flow.recipients:
        # half the time, take a role the flow has a rule for (else nearly all are denials)
        recipient_role = sorted(flow.recipients)[
            _ROLES.index(recipient_role) % len(flow.recipients)
        ]
    if flow is not None and sender_role not in flow.senders and _ROLES.index(sender_role) % 2:
        sender_role = flow.senders[0]
    req = DecisionRequest(
        event=event,
        sender="sender-1",
        sender_role=sender_role,
        recipient=recipient,
        recipient_role=recipient_role,
        purpose=purpose,
        legal_basis=basis,
        basis_detail=detail,
        categories=categories,
        pseudonym=pseudonym,
        on=ON,
        personal_data=personal_data,
    )
    decide_cold_and_warm(req, _view(consents))


RULES = [
    (event, role, basis_rule, purpose)
    for event, flow in POLICY.document.flows.items()
    for role, rule in flow.recipients.items()
    for basis_rule in rule.legal_bases
    for purpose in rule.purposes
]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(RULES),
    st.frozensets(st.sampled_from(list(DataCategory))),
    st.booleans(),
    st.frozensets(st.sampled_from(list(DataCategory)), min_size=1),
    _consents,
)
def test_decide_permits_alike_with_caches_cold_and_warm(
    case: tuple[Any, ...],
    extra: frozenset[DataCategory],
    with_detail: bool,
    consented: frozenset[DataCategory],
    others: list[dict[str, Any]],
) -> None:
    """Requests a rule of the policy lets through (the first test mostly meets denials)."""
    event, role, basis_rule, purpose = case
    flow = POLICY.flow(event)
    assert flow is not None
    rule = flow.recipients[role]
    detail = None
    if with_detail:
        citation = basis_rule.citations[0] if basis_rule.citations else None
        detail = BasisDetail(citation, "Ernstig gevaar voor derden; delen nodig.", "dr. P. Bakker")
    categories = frozenset(rule.categories) | (frozenset() if flow.aggregate_only else extra)
    req = DecisionRequest(
        event=event,
        sender="sender-1",
        sender_role=flow.senders[0],
        recipient="party-under-test",
        recipient_role=role,
        purpose=purpose,
        legal_basis=basis_rule.basis,
        basis_detail=detail,
        categories=categories,
        pseudonym=None if flow.aggregate_only else PSEUDONYM,
        on=ON,
    )
    mine = {"roles": (role,), "purposes": (purpose,), "categories": consented}
    view = _view([mine, *others])
    PERMITS.append(decide_cold_and_warm(req, view).permit)


PERMITS: list[bool] = []


def test_the_permit_cases_do_permit() -> None:
    """The property above met permits (run after it; pytest keeps file order)."""
    assert not PERMITS or sum(PERMITS) > len(PERMITS) // 4


def test_names_of_sets_and_frozensets() -> None:
    cats = {DataCategory.IDENTITY, DataCategory.CLINICAL}
    assert _names(cats) == _names(frozenset(cats)) == names_spec(cats) == "clinical, identity"
    assert _names(frozenset()) == "none"


@given(st.frozensets(st.sampled_from(list(DataCategory))), st.booleans())
def test_names_are_their_spec(categories: frozenset[DataCategory], as_set: bool) -> None:
    given_as = set(categories) if as_set else categories
    assert _names(given_as) == names_spec(categories)
    assert _names(given_as) == names_spec(categories)  # warm


@given(
    st.sampled_from(list(EventCode)),
    st.text(max_size=12),
    st.sampled_from(list(PartyRole)),
    st.sampled_from(list(PurposeOfUse)),
    st.sampled_from(list(LegalBasis)),
)
def test_permit_head_is_its_spec(
    event: EventCode, recipient: str, role: PartyRole, purpose: PurposeOfUse, basis: LegalBasis
) -> None:
    spec = f"{event} to {recipient} ({role}) for {purpose} on {basis}"
    assert decision._permit_head(event, recipient, role, purpose, basis) == spec
    assert decision._permit_head(event, recipient, role, purpose, basis) == spec  # warm


@given(st.integers(0, (1 << len(DataCategory)) - 1))
def test_category_sets_of_masks_are_their_spec(mask: int) -> None:
    spec = frozenset(c for c in DataCategory if mask & consent_view._CATEGORY_BIT[c])
    assert consent_view._categories(mask) == spec
    assert consent_view.category_mask(spec) == mask


def test_rule_places_are_their_spec() -> None:
    for event, flow in POLICY.document.flows.items():
        for role in (None, *flow.recipients):
            spec = POLICY.where(POLICY.rule_path(event, role))
            assert POLICY.rule_where(event, role) == spec == POLICY.rule_where(event, role)
