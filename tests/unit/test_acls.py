"""The Kafka ACL set generated from the registry and the policy (issue 21, point 2): for every
role, exactly which topics its principal may read and write. The expected tables are written out
here from the policy's ``senders`` and docs/trust.md, not computed by the code under test."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from broker.apps.acls import ADMIN, Access, Op, Resource, acl_commands, acl_set, topic_access
from broker.apps.deployment import LocalParty, create_local
from broker.apps.monitoring.parties import with_monitoring_parties
from broker.apps.scenarios import demo
from broker.policy import default_policy
from broker.trust import PartyRegistry
from schemas.vocab import PartyRole

AUDIT_WRITER = {"audit", "audit-checkpoint"}
ADAPTER = AUDIT_WRITER | {"dead-letter"}

GEMEENTE = LocalParty(
    "gemeente-utrecht",
    "Gemeente Utrecht",
    PartyRole.MUNICIPALITY,
    "midden-nederland",
    {"municipality": "0344"},
)
CARE_OFFICE = LocalParty("zk-utrecht", "Zorgkantoor Utrecht", PartyRole.CARE_OFFICE)
DJI = LocalParty("dji", "DJI", PartyRole.DJI)
VWS = LocalParty("vws", "VWS", PartyRole.VWS)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> PartyRegistry:
    parties = [*with_monitoring_parties(demo.PARTIES), GEMEENTE, CARE_OFFICE, DJI, VWS]
    return create_local(tmp_path_factory.mktemp("acl"), parties).registry


@pytest.fixture(scope="module")
def table(registry: PartyRegistry) -> dict[str, Access]:
    return topic_access(registry, default_policy())


def test_a_zvh_sends_referrals_consents_and_escalations_and_reads_its_own_topic(
    table: dict[str, Access],
) -> None:
    zvh = table["zvh-midden-nederland"]
    assert zvh.writes == ADAPTER | {"in.referral", "in.consent", "in.escalation", "in.withdrawal",
                                    "keystore.zvh-midden-nederland"}  # fmt: skip
    # its channel keys with the router: the data layer of in.* and out.* (docs/erasure.md)
    assert zvh.reads == {"out.zvh-midden-nederland", "audit", "keystore.zvh-midden-nederland"}


def test_a_provider_sends_its_flows_and_keeps_its_journal(table: dict[str, Access]) -> None:
    fivoor = table["fivoor"]
    assert fivoor.writes == ADAPTER | {
        "in.referral",
        "in.assessment-outcome",
        "in.care-transition",
        "capacity",
        "in.claim",
        "in.consent",
        "in.escalation",
        "in.withdrawal",
        "journal.fivoor",
        "keystore.fivoor",  # the journal's data keys (docs/erasure.md)
    }
    assert fivoor.reads == {"out.fivoor", "audit", "journal.fivoor", "keystore.fivoor"}


@pytest.mark.parametrize("payer", ["zilveren-kruis", "zk-utrecht", "dji", "vws"])
def test_a_payer_only_answers_claims(table: dict[str, Access], payer: str) -> None:
    # claim responses travel on in.claim; a payer may withdraw its own answer
    assert table[payer].writes == ADAPTER | {"in.claim", "in.withdrawal", f"keystore.{payer}"}
    assert table[payer].reads == {f"out.{payer}", "audit", f"keystore.{payer}"}


def test_a_municipality_refers_answers_claims_and_escalates(table: dict[str, Access]) -> None:
    assert table["gemeente-utrecht"].writes == ADAPTER | {
        "in.referral",
        "in.claim",
        "in.escalation",  # escalations and, as a regional step, answers
        "in.withdrawal",
        "keystore.gemeente-utrecht",
    }
    assert table["gemeente-utrecht"].reads == {
        "out.gemeente-utrecht", "audit", "keystore.gemeente-utrecht"}  # fmt: skip


def test_the_web_app_reads_the_trail_and_the_refusals_but_sends_no_flow(
    table: dict[str, Access],
) -> None:
    web = table["capacity-dashboard"]
    assert web.writes == AUDIT_WRITER | {"keystore.capacity-dashboard"}
    assert web.reads == {
        "keystore.capacity-dashboard",
        "out.capacity-dashboard",
        "audit",
        "audit-checkpoint",
        "rejected",
        "dead-letter",
    }
    # the coordination point answers escalations (from the web app's escalation page)
    assert table["landelijk-coordinatiepunt"].writes == AUDIT_WRITER | {
        "in.escalation",
        "in.withdrawal",
        "keystore.landelijk-coordinatiepunt",
    }
    assert table["landelijk-coordinatiepunt"].reads == {
        "out.landelijk-coordinatiepunt", "audit", "keystore.landelijk-coordinatiepunt"}  # fmt: skip


def test_the_router_reads_what_it_routes_and_writes_every_outbound_topic(
    table: dict[str, Access], registry: PartyRegistry
) -> None:
    router = table[registry.router().id]
    assert router.reads == {
        "in.consent",
        "in.referral",
        "in.assessment-outcome",
        "in.care-transition",
        "in.claim",
        "in.escalation",
        "capacity",
        "consent",
        "audit",
        "escalation",  # the ladder log, read back at start
        "in.withdrawal",
        "deliveries",  # who received what (corrections, withdrawals)
        "keystore",  # the data keys (erasure)
        "consent-snapshot",  # the consent view's snapshot, loaded at start
        "keystore.",  # every party's channel keys (the in.* and out.* data layer)
    }
    assert router.writes == AUDIT_WRITER | {
        "out.",
        "consent",
        "consent-snapshot",
        "rejected",
        "dead-letter",
        "escalation",
        "deliveries",
        "keystore",
        "keystore.",
    }


def test_no_party_reads_another_partys_topic_or_writes_any_outbound_topic(
    registry: PartyRegistry,
) -> None:
    acls = acl_set(registry, default_policy())
    router = registry.router().id
    for acl in acls:
        if acl.resource is not Resource.TOPIC or not acl.name.startswith("out."):
            continue
        if acl.principal == router:
            assert acl.operation in (Op.WRITE, Op.DESCRIBE) and acl.prefixed
            continue
        assert acl.name == f"out.{acl.principal}", acl
        assert acl.operation in (Op.READ, Op.DESCRIBE), acl
    consent_readers = {a.principal for a in acls if a.name == "consent" and a.operation is Op.READ}
    assert consent_readers == {router}


def test_each_adapter_reads_only_in_its_own_group_and_only_the_admin_creates_topics(
    registry: PartyRegistry,
) -> None:
    acls = acl_set(registry, default_policy())
    groups = {(a.principal, a.name) for a in acls if a.resource is Resource.GROUP}
    router = registry.router().id
    for principal, group in groups:
        assert group == (
            "ketenbus-router" if principal == router else f"ketenbus-adapter-{principal}"
        )
    cluster = {a.principal for a in acls if a.resource is Resource.CLUSTER}
    assert cluster == {ADMIN}


def test_the_commands_are_kafka_acls_commands(registry: PartyRegistry, tmp_path: Path) -> None:
    lines = acl_commands(registry, default_policy(), "kafka:9092")
    assert len(lines) == len(set(lines))
    parsed = [shlex.split(line) for line in lines]
    assert all(
        p[:5] == ["kafka-acls.sh", "--bootstrap-server", "kafka:9092", "--add", "--allow-principal"]
        for p in parsed
    )
    read_own = [
        p
        for p in parsed
        if "User:fivoor" in p
        and "--topic" in p
        and p[p.index("--topic") + 1] == "out.fivoor"
        and p[p.index("--operation") + 1] == "Read"
    ]
    assert len(read_own) == 1
    outbound = [p for p in parsed if "--topic" in p and p[p.index("--topic") + 1] == "out."]
    assert outbound and all(p[-2:] == ["--resource-pattern-type", "prefixed"] for p in outbound)


def test_ketenbus_topics_acls_prints_the_set_and_refuses_a_missing_registry(
    registry: PartyRegistry, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from broker.apps.cli.main import app
    from broker.trust import dump_registry

    file = tmp_path / "registry.yaml"
    dump_registry(registry, file)
    runner = CliRunner()
    done = runner.invoke(app, ["topics", "--acls", "--registry", str(file)])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == acl_commands(registry, default_policy(), "kafka:9092")
    missing = runner.invoke(app, ["topics", "--acls", "--registry", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
