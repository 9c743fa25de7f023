"""The generated ACL set on Apache Kafka itself (issue 21 point 2): a KRaft broker in a container,
mutual TLS only, the StandardAuthorizer with ``allow.everyone.if.no.acl.found=false`` and the
compose file's principal mapping (``CN=<name>`` is ``User:<name>``). The certificates come from
``broker.apps.pki`` as ``ketenbus provision`` makes them; the ACLs are exactly
``broker.apps.acls.acl_set`` of a provisioned registry, applied through the admin API by the
super user ``acl-admin``. A ZVH may write its inbound flow; a write to the router's consent log
or to another party's ``out.`` topic is refused by the broker (AVG art. 32: access confined per
party; the router's signature check stays the second line). Runs where a Docker engine exists;
elsewhere it is skipped with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.config import Settings
from broker.kafka import ensure_topics, make_producer
from broker.kafka.embedded import free_port
from tests.conftest import docker_engine_problem

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.timeout(240)]
IMAGE = "apache/kafka:3.8.0"
ZVH, PROVIDER = "zvh-midden-nederland", "fivoor"


@pytest.fixture(scope="module")
def acl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    problem = docker_engine_problem()
    if problem is not None:
        pytest.skip(f"no Docker engine: cannot start Apache Kafka with ACLs ({problem})")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from typer.testing import CliRunner

    from broker.apps.cli.main import app

    out = tmp_path_factory.mktemp("deployment")
    result = CliRunner().invoke(app, ["provision", "--out", str(out), "--routers", "2"])
    assert result.exit_code == 0, result.output
    pki = out / "pki"
    from broker.apps.pki import issue_all

    # the broker's certificate for the name the host reaches it by (the provisioned one says
    # "kafka", the compose network's name)
    issue_all(pki / "host", {}, {"localhost": ["localhost"]})
    for name in ("localhost.pem", "ca.pem"):
        (pki / "host" / name).chmod(0o644)
    port = free_port()
    container = (
        DockerContainer(IMAGE)
        .with_bind_ports(9093, port)
        .with_volume_mapping(str(pki / "host"), "/etc/kafka/tls", "ro")
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "SSL://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"SSL://localhost:{port}")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "SSL:SSL,CONTROLLER:SSL")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9094")
        .with_env("KAFKA_INTER_BROKER_LISTENER_NAME", "SSL")
        .with_env("KAFKA_SSL_CLIENT_AUTH", "required")
        .with_env("KAFKA_SSL_KEYSTORE_TYPE", "PEM")
        .with_env("KAFKA_SSL_KEYSTORE_LOCATION", "/etc/kafka/tls/localhost.pem")
        .with_env("KAFKA_SSL_TRUSTSTORE_TYPE", "PEM")
        .with_env("KAFKA_SSL_TRUSTSTORE_LOCATION", "/etc/kafka/tls/ca.pem")
        .with_env("KAFKA_SSL_PRINCIPAL_MAPPING_RULES", "RULE:^CN=([^,]+)$/$1/,DEFAULT")
        .with_env(
            "KAFKA_AUTHORIZER_CLASS_NAME", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        )
        .with_env("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "false")
        .with_env("KAFKA_SUPER_USERS", "User:localhost;User:acl-admin")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    )
    # the clients trust the CA that signed the broker's certificate; every client certificate
    # is from the provisioned CA, so the broker must trust both
    host_ca = (pki / "host" / "ca.pem").read_bytes()
    (pki / "host" / "ca.pem").chmod(0o644)
    (pki / "host" / "ca.pem").write_bytes(host_ca + (pki / "ca.pem").read_bytes())
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=180)
        yield f"localhost:{port}", out


def as_principal(bootstrap: str, out: Path, name: str, state: Path) -> Settings:
    return Settings(
        bootstrap_servers=bootstrap,
        security_protocol="SSL",
        ssl_cafile=out / "pki" / "host" / "ca.pem",
        ssl_certfile=out / "pki" / f"{name}.pem",
        state_dir=state,
    )


def apply_acls(bootstrap: str, out: Path) -> int:
    """The generated set, through the admin API as acl-admin (what acls.sh does in compose)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    from broker.apps.acls import acl_set
    from broker.apps.deployment import load
    from broker.policy import default_policy

    dep = load(out / "registry.yaml", out / "keys", out / "secrets")
    pki = out / "pki"
    admin = AdminClient({
        "bootstrap.servers": bootstrap, "security.protocol": "SSL",
        "ssl.ca.location": str(pki / "host" / "ca.pem"),
        "ssl.certificate.location": str(pki / "acl-admin.pem"),
        "ssl.key.location": str(pki / "acl-admin.pem"),
    })  # fmt: skip
    ops = {
        "Read": AclOperation.READ,
        "Write": AclOperation.WRITE,
        "Describe": AclOperation.DESCRIBE,
        "Create": AclOperation.CREATE,
        "Delete": AclOperation.DELETE,
        "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
    }
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
             "cluster": ResourceType.BROKER}  # fmt: skip
    bindings = [
        AclBinding(
            kinds[a.resource.value],
            a.name,
            ResourcePatternType.PREFIXED if a.prefixed else ResourcePatternType.LITERAL,
            f"User:{a.principal}",
            "*",
            ops[a.operation.value],
            AclPermissionType.ALLOW,
        )
        for a in acl_set(dep.registry, default_policy())
    ]
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result()
    return len(bindings)


async def test_the_generated_acls_refuse_a_forbidden_produce(
    acl_kafka: tuple[str, Path], tmp_path: Path
) -> None:
    from aiokafka.errors import TopicAuthorizationFailedError

    from broker.apps.deployment import load
    from schemas import topics

    bootstrap, out = acl_kafka
    assert apply_acls(bootstrap, out) > 50
    dep = load(out / "registry.yaml", out / "keys", out / "secrets")
    admin = as_principal(bootstrap, out, "ketenbus-admin", tmp_path)
    await ensure_topics(admin, topics.catalogue([p.id for p in dep.registry.parties]))

    zvh = make_producer(as_principal(bootstrap, out, ZVH, tmp_path))
    await zvh.start()
    try:
        await zvh.send_and_wait(topics.IN_REFERRAL.name, b"sealed", key=b"k")  # allowed
        for forbidden in (topics.CONSENT.name, topics.outbound(PROVIDER).name):
            with pytest.raises(TopicAuthorizationFailedError):
                await zvh.send_and_wait(forbidden, b"forged", key=b"k")
    finally:
        await zvh.stop()
