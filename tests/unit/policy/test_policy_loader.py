"""The policy file: the shipped one is valid and realistic; broken ones are refused with the file,
the line and the rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from broker.policy import PolicyError, default_policy, load_policy, load_policy_text
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse
from schemas.vocab.citations import resolve_citation

GOOD = textwrap.dedent(
    """\
    version: 1
    name: test
    flows:
      referral:
        senders: [zvh]
        essential: [referral-signal]
        recipients:
          coordinating-provider:
            purposes: [COC]
            categories: [identity, referral-signal]
            legal_bases:
              - basis: consent
              - basis: legal-obligation
                citations: [wvggz]
    """
)


def test_good_policy_loads_with_rule_lines() -> None:
    policy = load_policy_text(GOOD, source="p.yaml")
    rule = policy.recipient_rule(EventCode.REFERRAL, PartyRole.COORDINATING_PROVIDER)
    assert rule is not None
    assert rule.basis_rule(LegalBasis.LEGAL_OBLIGATION) is not None
    assert policy.where("flows.referral.recipients.coordinating-provider") == "p.yaml:8"
    assert policy.where("flows.referral.recipients.coordinating-provider.legal_bases[1]") == (
        "p.yaml:13"
    )


def _error(text: str, tmp_path: Path) -> PolicyError:
    f = tmp_path / "bad-policy.yaml"
    f.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(f)
    return info.value


@pytest.mark.parametrize(
    ("old", "new", "line", "rule", "path"),
    [
        # legal-obligation without a statute
        ('            citations: [wvggz]\n', "", 13, "citation-required",
         "flows.referral.recipients.coordinating-provider.legal_bases[1]"),
        # an unknown purpose code
        ("purposes: [COC]", "purposes: [COC, GOSSIP]", 9, "schema:enum",
         "flows.referral.recipients.coordinating-provider.purposes[1]"),
        # an unknown field
        ("    essential: [referral-signal]\n",
         "    essential: [referral-signal]\n    priority: high\n", 7,
         "schema:extra_forbidden", "flows.referral.priority"),
        # an unknown flow
        ("  referral:", "  referal:", 4, "schema:enum", "flows.referal"),
        # an unknown recipient role
        ("coordinating-provider:", "coordinating-provder:", 8, "schema:enum",
         "flows.referral.recipients.coordinating-provder"),
        # a missing required field (reported at its parent)
        ("        purposes: [COC]\n", "", 8, "schema:missing",
         "flows.referral.recipients.coordinating-provider.purposes"),
        # a duplicated key
        ("    senders: [zvh]\n", "    senders: [zvh]\n    senders: [municipality]\n",
         6, "duplicate-key", "flows.referral.senders"),
        # consent is not cited
        ("          - basis: consent\n",
         "          - basis: consent\n            citations: [AVG]\n", 12,
         "citation-not-applicable",
         "flows.referral.recipients.coordinating-provider.legal_bases[0]"),
        # a basis may only narrow the purposes of its rule
        ("          - basis: consent\n",
         "          - basis: consent\n            purposes: [TREAT]\n", 13,
         "basis-purposes-subset",
         "flows.referral.recipients.coordinating-provider.legal_bases[0].purposes"),
        # a rule that can never deliver the essential category
        ("categories: [identity, referral-signal]", "categories: [identity]", 12,
         "essential-reachable",
         "flows.referral.recipients.coordinating-provider.legal_bases[0]"),
        # aggregate outside a counts-only flow
        ("categories: [identity, referral-signal]",
         "categories: [identity, referral-signal, aggregate]", 10, "aggregate-only",
         "flows.referral.recipients.coordinating-provider.categories"),
        # contact lives in the Patient
        ("categories: [identity, referral-signal]", "categories: [contact, referral-signal]", 10,
         "contact-needs-identity",
         "flows.referral.recipients.coordinating-provider.categories"),
        # YAML syntax
        ("purposes: [COC]", "purposes: [COC", 10, "yaml-syntax", ""),
    ],
)
def test_errors_name_file_line_and_rule(
    old: str, new: str, line: int, rule: str, path: str, tmp_path: Path
) -> None:
    assert old in GOOD
    err = _error(GOOD.replace(old, new, 1), tmp_path)
    problem = next((p for p in err.problems if p.rule == rule), None)
    assert problem is not None, str(err)
    assert problem.file.endswith("bad-policy.yaml")
    assert problem.line == line, str(err)
    assert problem.path == path
    assert f"bad-policy.yaml:{line}:" in str(err)
    assert f"[rule: {rule}]" in str(err)


def test_counts_only_flow_must_be_aggregate_only(tmp_path: Path) -> None:
    text = GOOD.replace("  referral:", "  capacity-report:").replace(
        "    essential: [referral-signal]\n",
        "    essential: [referral-signal]\n    aggregate_only: true\n",
    )
    err = _error(text, tmp_path)
    assert {p.rule for p in err.problems} == {"aggregate-only"}


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace("purposes: [COC]", "purposes: [COC, GOSSIP]").replace(
        "senders: [zvh]", "senders: [zvh, nobody]"
    )
    err = _error(text, tmp_path)
    assert [p.line for p in err.problems] == [5, 9]


# --- the shipped policy ------------------------------------------------------------------------


def test_shipped_policy_is_valid_and_covers_the_flows() -> None:
    policy = default_policy()
    flows = set(policy.document.flows)
    # consent: senders, no recipients; a withdrawal is authorised by being the original's
    # sender and goes to the original's recipients (docs/flows/correction.md), not by the policy
    assert flows == set(EventCode) - {EventCode.RESPONSE, EventCode.WITHDRAWAL}
    assert not policy.document.flows[EventCode.CONSENT].recipients
    # the reloaded file gives the same document (nothing hidden in the cache)
    path = Path(__file__).parents[3] / "broker" / "policy" / "default-policy.yaml"
    assert load_policy(path).document == policy.document


def test_shipped_policy_every_rule_has_a_line() -> None:
    policy = default_policy()
    for event, flow in policy.document.flows.items():
        for role in flow.recipients:
            assert policy.where(policy.rule_path(event, role)).startswith(
                "default-policy.yaml:"
            )


def test_municipality_never_gets_clinical_or_risk_assessment() -> None:
    for flow in default_policy().document.flows.values():
        rule = flow.recipients.get(PartyRole.MUNICIPALITY)
        if rule is not None:
            assert not {DataCategory.CLINICAL, DataCategory.RISK_ASSESSMENT} & set(rule.categories)


PAYERS = {
    PartyRole.MUNICIPALITY, PartyRole.HEALTH_INSURER, PartyRole.CARE_OFFICE, PartyRole.DJI,
    PartyRole.VWS,
}


def test_claims_go_to_payers_only_with_identity_and_financial_for_payment() -> None:
    flow = default_policy().flow(EventCode.CLAIM)
    assert flow is not None
    assert set(flow.recipients) == PAYERS
    for role, rule in flow.recipients.items():
        assert set(rule.categories) == {DataCategory.IDENTITY, DataCategory.FINANCIAL}, role
        assert rule.purposes == (PurposeOfUse.HPAYMT,)
        bases = {b.basis for b in rule.legal_bases}
        # VWS: the emergency rule and the 2022-2023 arrangement (public tasks); DJI also pays
        # for the municipalities on that arrangement (implementation plan 2022, 2.5)
        expected = {
            PartyRole.VWS: {LegalBasis.PUBLIC_TASK},
            PartyRole.DJI: {LegalBasis.LEGAL_OBLIGATION, LegalBasis.PUBLIC_TASK},
        }.get(role, {LegalBasis.LEGAL_OBLIGATION})
        assert bases == expected, role


def test_capacity_reports_are_counts_only_for_dashboard_and_coordination() -> None:
    flow = default_policy().flow(EventCode.CAPACITY_REPORT)
    assert flow is not None and flow.aggregate_only
    assert set(flow.recipients) == {PartyRole.CAPACITY_DASHBOARD, PartyRole.NATIONAL_COORDINATION}
    for rule in flow.recipients.values():
        assert rule.categories == (DataCategory.AGGREGATE,)
        assert rule.purposes == (PurposeOfUse.HOPERAT,)
        assert [(b.basis, b.requires_citation) for b in rule.legal_bases] == [
            (LegalBasis.PUBLIC_TASK, False)
        ]


def test_referral_to_coordinating_provider_on_consent_or_conflict_of_duties() -> None:
    rule = default_policy().recipient_rule(EventCode.REFERRAL, PartyRole.COORDINATING_PROVIDER)
    assert rule is not None
    assert set(rule.categories) == {
        DataCategory.IDENTITY, DataCategory.CONTACT, DataCategory.REFERRAL_SIGNAL,
        DataCategory.RISK_ASSESSMENT, DataCategory.LEGAL_TITLE, DataCategory.POLICE_DATA,
    }
    cod = rule.basis_rule(LegalBasis.CONFLICT_OF_DUTIES)
    assert cod is not None and cod.purposes == (PurposeOfUse.SAFETY,)
    assert rule.basis_rule(LegalBasis.CONSENT) is not None


def test_escalation_goes_to_the_steps_of_the_ladder() -> None:
    """The region's step (coordinating provider or ZVH), then the national point (issue 15)."""
    flow = default_policy().flow(EventCode.ESCALATION)
    assert flow is not None and set(flow.recipients) == {
        PartyRole.NATIONAL_COORDINATION, PartyRole.ZVH, PartyRole.COORDINATING_PROVIDER
    }


def test_assessment_outcome_to_zvh_and_municipality() -> None:
    policy = default_policy()
    zvh = policy.recipient_rule(EventCode.ASSESSMENT_OUTCOME, PartyRole.ZVH)
    mun = policy.recipient_rule(EventCode.ASSESSMENT_OUTCOME, PartyRole.MUNICIPALITY)
    assert zvh is not None and mun is not None
    assert set(zvh.categories) == {
        DataCategory.PROCESS, DataCategory.CARE_EPISODE, DataCategory.IDENTITY
    }
    assert set(mun.categories) == {
        DataCategory.IDENTITY, DataCategory.CONTACT, DataCategory.CARE_EPISODE
    }


def test_citation_matching_is_by_the_closed_list() -> None:
    """A rule accepts listed provisions by id, a statute's id its articles too; free text and
    look-alikes resolve to nothing (issue 16: "Wvggz whatever" was accepted as a prefix)."""
    rule = default_policy().recipient_rule(
        EventCode.ASSESSMENT_OUTCOME, PartyRole.EXECUTING_PROVIDER
    )
    assert rule is not None
    lo = rule.basis_rule(LegalBasis.LEGAL_OBLIGATION)
    assert lo is not None
    for text in ("Wvggz art. 8:27", "  wvggz   ART. 8:27 ", "wvggz-art-8:27", "Wfz", "wzd"):
        cited = resolve_citation(text)
        assert cited is not None and lo.accepts_citation(cited), text
    for text in ("Wvggzx art. 1", "Wvggz whatever", "Wvggz art. 8:27 en verder", "AVG art. 6"):
        assert resolve_citation(text) is None, text
    zvw = resolve_citation("Zvw art. 11")
    assert zvw is not None and not lo.accepts_citation(zvw)


def test_a_citation_not_on_the_list_is_a_policy_error(tmp_path: Path) -> None:
    err = _error(GOOD.replace("citations: [wvggz]", 'citations: [wvggz, "Wvggz art. 1"]'),
                 tmp_path)
    assert [(p.rule, p.line, p.path) for p in err.problems] == [
        ("citation-not-listed", 14,
         "flows.referral.recipients.coordinating-provider.legal_bases[1].citations[1]")
    ]
