"""Render a policy as Markdown tables (used in ``docs/policy.md``; a test keeps them in sync).

``python -m broker.policy.report [POLICY.yaml]`` prints the tables of a policy file (default:
the shipped one), e.g. to review a change.
"""

from __future__ import annotations

import sys

from broker.policy.loader import default_policy, load_policy
from broker.policy.model import BasisRule, Policy


def _codes(values: tuple[object, ...] | None) -> str:
    return ", ".join(str(v) for v in values or ())


def _basis(rule: BasisRule) -> str:
    text = f"**{rule.basis}**"
    extras = []
    if rule.citations:
        extras.append("cite " + " / ".join(f"“{c}”" for c in rule.citations))
    elif rule.basis.value in ("legal-obligation", "public-task") and not rule.requires_citation:
        extras.append("no citation needed")
    if rule.basis.value == "conflict-of-duties":
        extras.append("justification + professional")
    if rule.purposes is not None:
        extras.append("only for " + _codes(rule.purposes))
    if rule.categories is not None:
        extras.append("only " + _codes(rule.categories))
    return text + (f" ({'; '.join(extras)})" if extras else "")


def flows_table(policy: Policy) -> str:
    lines = [
        "| Flow | Senders | Essential categories | Counts only |",
        "|---|---|---|---|",
    ]
    for event, flow in policy.document.flows.items():
        lines.append(
            f"| `{event}` | {_codes(flow.senders)} | {_codes(flow.essential)} | "
            f"{'yes: any personal data refuses the message' if flow.aggregate_only else 'no'} |"
        )
    return "\n".join(lines)


def rules_table(policy: Policy) -> str:
    lines = [
        "| Flow | Recipient role | Purposes | Legal bases | Permitted categories |",
        "|---|---|---|---|---|",
    ]
    for event, flow in policy.document.flows.items():
        for role, rule in flow.recipients.items():
            essential = "" if rule.essential is None else f" (essential: {_codes(rule.essential)})"
            lines.append(
                f"| `{event}` | {role} | {_codes(rule.purposes)} | "
                f"{'<br>'.join(_basis(b) for b in rule.legal_bases)} | "
                f"{_codes(rule.categories)}{essential} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    policy = load_policy(args[0]) if args else default_policy()
    print(flows_table(policy))
    print()
    print(rules_table(policy))


if __name__ == "__main__":
    main()
