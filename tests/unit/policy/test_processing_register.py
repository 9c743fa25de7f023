"""The processing register (AVG art. 30, issue 16 §2) is generated from the policy and the topic
catalogue and checked here: the committed ``docs/processing-register.md`` must be what the
generator writes, and the generator must follow the policy (a changed rule changes it)."""

from __future__ import annotations

from importlib import resources

from broker.apps.generate.register import REGISTER, RETENTION_UNSET, main, register_md
from broker.policy import default_policy
from broker.policy.loader import load_policy_text


def test_the_committed_register_is_the_generated_one() -> None:
    assert REGISTER.read_text(encoding="utf-8") == register_md(default_policy()), (
        "run `python -m broker.apps.generate.register`"
    )
    assert main(["--check"]) == 0


def test_the_register_follows_the_policy() -> None:
    text = resources.files("broker.policy").joinpath("default-policy.yaml").read_text()
    old = "[identity, contact, referral-signal, risk-assessment, legal-title, police-data]"
    assert old in text, "the referral's recipient categories"
    changed = load_policy_text(text.replace(old, "[identity, contact, referral-signal]", 1))
    assert register_md(changed) != register_md(default_policy())
    assert "| zvh | COC, safety |" in register_md(default_policy())


def test_every_flow_names_grounds_controller_and_retention() -> None:
    md = register_md(default_policy())
    for flow in default_policy().document.flows:
        section = md.split(f"## `{flow.value}`")[1].split("\n## ")[0]
        assert "- controller: " in section and "- retention: " in section, flow
    assert "AVG 6(1)(a)" in md and "art10-uavg-32" in md and "secrecy: conflict-of-duties" in md
    assert "the covenant partner that brought the case (the ZVH is its processor)" in md
    assert RETENTION_UNSET in md or "days" in md
