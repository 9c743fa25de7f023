"""docs/policy.md shows the shipped rules: its tables must equal the generated ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broker.policy import default_policy
from broker.policy.report import flows_table, main, rules_table

DOC = (Path(__file__).parents[3] / "docs" / "policy.md").read_text(encoding="utf-8")


def section(name: str) -> str:
    m = re.search(rf"<!-- {name}:begin -->\n(.*?)\n<!-- {name}:end -->", DOC, re.S)
    assert m, f"markers {name}:begin/end missing in docs/policy.md"
    return m.group(1)


def test_the_documented_tables_are_the_shipped_policy() -> None:
    policy = default_policy()
    assert section("policy-flows") == flows_table(policy)
    assert section("policy-rules") == rules_table(policy)


def test_every_reason_code_is_documented() -> None:
    from broker.policy import ReasonCode

    missing = [r.value for r in ReasonCode if f"`{r.value}`" not in DOC]
    assert missing == []


def test_report_prints_the_shipped_policy(capsys: pytest.CaptureFixture[str]) -> None:
    main([])
    out = capsys.readouterr().out
    assert "| `claim` | health-insurer | HPAYMT |" in out
