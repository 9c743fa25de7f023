"""The shipped alert rules (docker/prometheus/alerts.yml) are valid, do what their unit tests
say, and name only metrics the code exports. ``promtool`` comes from Debian's ``prometheus``
package; ``make test`` installs it when missing and sets KETENBUS_TEST_REQUIRE_PROMTOOL=1, so
there a missing promtool fails instead of skipping."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

RULES = ROOT / "docker" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "docker" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "ketenbus.json"
REQUIRED = os.environ.get("KETENBUS_TEST_REQUIRE_PROMTOOL") == "1"  # read before fixtures clear it
EXPORTERS = (ROOT / "broker" / "component" / "metrics.py",
             ROOT / "broker" / "apps" / "monitoring" / "figures.py")
NAME = re.compile(r"\bketenbus_[a-z_]+")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if REQUIRED:
            pytest.fail("promtool is missing (KETENBUS_TEST_REQUIRE_PROMTOOL=1): "
                        "apt-get install prometheus")
        pytest.skip("promtool is missing (apt-get install prometheus)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=RULES.parent, capture_output=True, text=True,
                          timeout=120)


def test_rules_pass_promtool_check() -> None:
    result = run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_their_unit_tests() -> None:
    result = run("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_rule_is_caught(tmp_path: Path) -> None:
    """The check can fail: a rule with a PromQL typo is refused."""
    bad = tmp_path / "bad.yml"
    bad.write_text(RULES.read_text().replace("> 300", "> > 300", 1))
    result = subprocess.run([promtool(), "check", "rules", str(bad)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0


def exported() -> set[str]:
    names: set[str] = set()
    for path in EXPORTERS:
        names |= set(NAME.findall(path.read_text()))
    return names


def _used(text: str) -> set[str]:
    # a counter is exported as <name> and scraped as <name>_total
    return {n.removesuffix("_total") for n in NAME.findall(text)}


def test_every_alert_names_a_metric_the_code_exports() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    assert {"KetenbusBrokerUnreachable", "KetenbusConsumerLagging", "KetenbusDeadLettersRising",
            "KetenbusRefusalsByReason", "KetenbusEscalationsStuck", "KetenbusClaimsOverdue",
            "KetenbusCapacityReportStale", "KetenbusAuditChainNotIntact"} <= set(alerts)
    unknown = {n for expr in alerts.values() for n in _used(expr)} - exported()
    assert not unknown, f"alert rules name metrics nothing exports: {sorted(unknown)}"


def test_the_dashboard_shows_the_same_figures() -> None:
    text = DASHBOARD.read_text()
    unknown = _used(text) - exported()
    assert not unknown, f"the dashboard names metrics nothing exports: {sorted(unknown)}"
    rules = yaml.safe_load(RULES.read_text())
    in_rules = {n for g in rules["groups"] for r in g["rules"] for n in _used(r["expr"])}
    assert in_rules <= _used(text), f"not on the dashboard: {sorted(in_rules - _used(text))}"
