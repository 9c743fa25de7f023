"""Alerts that reach someone (issue 17): the shipped Alertmanager config
(docker/alertmanager/alertmanager.yml) passes ``amtool check-config`` and routes every alert rule
of docker/prometheus/alerts.yml to the receivers it should reach; the alert inbox its receivers
notify keeps each alert, codes only, and refuses what is not Alertmanager's webhook. ``amtool``
comes from Debian's ``prometheus-alertmanager`` package; ``make test`` installs it and sets
KETENBUS_TEST_REQUIRE_AMTOOL=1, so there a missing amtool fails instead of skipping."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from broker.apps.monitoring.alert_inbox import MAX_BODY, AlertInbox, create_app
from broker.apps.synthetic import synthetic_bsn
from tests.conftest import ROOT

CONFIG = ROOT / "docker" / "alertmanager" / "alertmanager.yml"
RULES = ROOT / "docker" / "prometheus" / "alerts.yml"
REQUIRED = os.environ.get("KETENBUS_TEST_REQUIRE_AMTOOL") == "1"
AUDIT_ALERTS = {"KetenbusAuditChainNotIntact", "KetenbusAuditNotVerified"}


def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        if REQUIRED:
            pytest.fail("amtool is missing (KETENBUS_TEST_REQUIRE_AMTOOL=1): "
                        "apt-get install prometheus-alertmanager")
        pytest.skip("amtool is missing (apt-get install prometheus-alertmanager)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool(), *args], capture_output=True, text=True, timeout=60)


def test_the_config_passes_amtool_check_config() -> None:
    result = run("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_config_is_caught(tmp_path: Path) -> None:
    """The check can fail: a route to a receiver that does not exist is refused."""
    bad = tmp_path / "alertmanager.yml"
    bad.write_text(CONFIG.read_text().replace("receiver: on-call", "receiver: nobody", 1))
    assert run("check-config", str(bad)).returncode != 0


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def expected(rule: dict[str, Any]) -> str:
    """Who must hear of it: critical wakes the one on call, the rest goes to operations, and the
    audit trail's integrity also to the compliance officer (NEN 7513, AVG art. 32)."""
    first = "on-call" if rule["labels"]["severity"] == "critical" else "operations"
    return f"compliance,{first}" if rule["alert"] in AUDIT_ALERTS else first


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_alert_rule_reaches_its_receivers(rule: dict[str, Any]) -> None:
    labels = [f"alertname={rule['alert']}", *(f"{k}={v}" for k, v in rule["labels"].items())]
    result = run("config", "routes", "test", f"--config.file={CONFIG}",
                 f"--verify.receivers={expected(rule)}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_receiver_notifies_and_the_broker_outage_holds_back_the_rest() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    for receiver in config["receivers"]:
        assert receiver.get("webhook_configs"), f"{receiver['name']} notifies no one"
    [inhibit] = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['alertname="KetenbusBrokerUnreachable"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert {r["labels"]["severity"] for r in rules()} == {"critical", "warning"}
    route = config["route"]
    assert route["group_by"] == ["alertname", "reason", "group"]
    assert route["repeat_interval"] == "4h"
    urgent = {r["receiver"]: r for r in route["routes"]}
    for name in ("on-call", "compliance"):
        assert (urgent[name]["group_wait"], urgent[name]["repeat_interval"]) == ("10s", "1h")


# --- the alert inbox ---------------------------------------------------------------------------


@pytest.fixture
def inbox(tmp_path: Path) -> AlertInbox:
    return AlertInbox(tmp_path / "alerts")


@pytest.fixture
def client(inbox: AlertInbox) -> TestClient:
    return TestClient(create_app(inbox))


def webhook(*alerts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Alertmanager's webhook payload, version 4 (prometheus.io/docs/alerting/latest/configuration
    /#webhook_config)."""
    return {"version": "4", "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0,
            "status": "firing", "receiver": "operations", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": list(alerts), **extra}


def alert(**labels: str) -> dict[str, Any]:
    return {"status": "firing", "labels": {"alertname": "KetenbusDeadLettersRising",
                                           "severity": "warning", **labels},
            "annotations": {"summary": "new dead letters"},
            "startsAt": "2026-12-07T01:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "c4f1d3a2b5e6f708"}


def test_an_alert_is_kept_and_listed(
    client: TestClient, inbox: AlertInbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "broker.apps.monitoring.alert_inbox")
    r = client.post("/alerts", json=webhook(alert(reason="not-json", job="ketenbus")))
    assert r.status_code == 200 and r.json() == {"status": "received", "alerts": 1}
    [line] = [json.loads(x) for x in inbox.path.read_text().splitlines()]
    assert line["labels"] == {"alertname": "KetenbusDeadLettersRising", "severity": "warning",
                              "reason": "not-json", "job": "ketenbus"}
    assert line["receiver"] == "operations" and line["status"] == "firing"
    assert client.get("/alerts").json()["alerts"] == [line]
    assert [r.getMessage() for r in caplog.records] == [
        "alert firing KetenbusDeadLettersRising (warning) for operations"
    ]


def test_no_person_and_no_free_text_is_kept(client: TestClient, inbox: AlertInbox) -> None:
    bsn = synthetic_bsn(random.Random())
    hostile = alert(person="Kees Testpersoon", bsn=bsn, reason="two words", topic="a\nb")
    hostile["annotations"] = {"summary": f"about {bsn}"}
    assert client.post("/alerts", json=webhook(hostile)).status_code == 200
    text = inbox.path.read_text()
    for leak in (bsn, "Kees", "two words", "a\\nb"):
        assert leak not in text


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{not json", 400, "not-json"),
    (b"[]", 422, "not-an-object"),
    (json.dumps(webhook(alert(), version="3")).encode(), 422, "version"),
    (json.dumps(webhook()).encode(), 422, "alerts"),
    (json.dumps(webhook({"status": "firing"})).encode(), 422, "alert"),
    (json.dumps(webhook({**alert(), "status": "maybe"})).encode(), 422, "status"),
    (json.dumps(webhook({**alert(), "labels": {"severity": "x"}})).encode(), 422, "alertname"),
    (json.dumps(webhook(*[{"status": "firing", "labels": {"alertname": "x"}}] * 1001)).encode(),
     413, "too-many"),
    (b"{" + b" " * MAX_BODY + b"}", 413, "too-large"),
])
def test_what_is_not_the_webhook_is_refused_and_nothing_is_kept(
    client: TestClient, inbox: AlertInbox, body: bytes, status: int, reason: str
) -> None:
    r = client.post("/alerts", content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["reason"]) == (status, reason)
    assert not inbox.path.exists()


def test_the_command_refuses_a_host_that_is_not_an_address() -> None:
    """``ketenbus alert-inbox`` (README) is wired and binds only to an IP address it is given."""
    from typer.testing import CliRunner

    from broker.apps.cli.main import app

    result = CliRunner().invoke(app, ["alert-inbox", "--host", "evil.example; rm"])
    assert result.exit_code == 2 and "--host" in result.output
