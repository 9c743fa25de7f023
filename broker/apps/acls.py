"""Who may touch which topic on Apache Kafka: the complete ACL set, generated from the registry,
the policy and the topic catalogue (issue 21, point 2).

Each party connects as its own principal (``User:<party-id>``: the common name of its client
certificate, or its SASL/SCRAM user). The rules, in the order the tables below apply them:

* a party **writes** the inbound topic of every flow its role may send (the policy's
  ``senders``, the one source of truth the router also judges by) and **reads** only its own
  ``out.<party>``, in its own consumer group;
* every audit writer (the router, each adapter, the web app) writes ``audit`` and
  ``audit-checkpoint`` and reads ``audit``: a writer resumes its chain from its last record there
  (``broker/audit/writer.py``). That read is wider than the issue asks (audit only for the router
  and the compliance role); confining it needs writers that resume from their own checkpoint;
* an adapter dead-letters refused input, watches the broker epoch and, for a provider, keeps its
  journal ``journal.<party>``;
* the router reads every routed topic and the consent log, writes every ``out.`` topic, the
  consent log, ``rejected``, ``dead-letter``, its escalation-ladder log ``escalation``, its
  delivery index ``deliveries`` and its data-key store ``keystore`` (all three read back at
  start), and creates the epoch (and its claim) on first start;
* a party that may send any flow may also withdraw what it sent (``in.withdrawal``);
* the web app's party (the capacity dashboard) reads ``audit`` and ``audit-checkpoint`` for the
  compliance search and ``rejected``/``dead-letter`` for the operations counts;
* the administrator (``ketenbus topics``) creates topics.

Nothing else is allowed: Kafka denies what no ACL allows once an authorizer is configured
(``allow.everyone.if.no.acl.found=false``). Signatures stay the second line: a record a party
could write to a topic it may write is still refused by the router if its signature or sender
does not verify.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from broker.kafka.epoch import CLAIM_TOPIC, EPOCH_PREFIX
from broker.policy import Policy
from broker.trust import PartyRegistry
from schemas import topics
from schemas.vocab import EventCode, PartyRole

ADMIN = "ketenbus-admin"  # the principal that runs `ketenbus topics`
ROUTER_GROUP = "ketenbus-router"
ADAPTER_GROUP_PREFIX = "ketenbus-adapter-"
PROVIDER_ROLES = (PartyRole.COORDINATING_PROVIDER, PartyRole.EXECUTING_PROVIDER)
ADAPTER_ROLES = (
    PartyRole.ZVH,
    *PROVIDER_ROLES,
    PartyRole.MUNICIPALITY,
    PartyRole.HEALTH_INSURER,
    PartyRole.CARE_OFFICE,
    PartyRole.DJI,
    PartyRole.VWS,
)


class Op(StrEnum):
    """Kafka ACL operations (``kafka-acls.sh --operation``)."""

    READ = "Read"
    WRITE = "Write"
    DESCRIBE = "Describe"
    CREATE = "Create"
    DELETE = "Delete"
    DESCRIBE_CONFIGS = "DescribeConfigs"


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"
    CLUSTER = "cluster"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW entry. ``prefixed`` matches every name that starts with ``name``."""

    principal: str
    resource: Resource
    name: str
    operation: Op
    prefixed: bool = False

    def command(self, bootstrap: str = "kafka:9092", command_config: str | None = None) -> str:
        """The ``kafka-acls.sh`` command that adds this entry (``command_config``: the client
        configuration of the principal that applies it, on a cluster with TLS or SASL)."""
        parts = ["kafka-acls.sh", "--bootstrap-server", bootstrap]
        if command_config:
            parts += ["--command-config", command_config]
        parts += [
            "--add",
            "--allow-principal",
            f"User:{self.principal}",
            "--operation",
            self.operation.value,
        ]
        if self.resource is Resource.CLUSTER:
            parts.append("--cluster")
        else:
            parts += [f"--{self.resource.value}", self.name]
        if self.prefixed:
            parts += ["--resource-pattern-type", "prefixed"]
        return shlex.join(parts)


@dataclass(frozen=True)
class Access:
    """What one principal may read and write, as topic names (``out.`` ends with a dot when it
    stands for every party's outbound topic)."""

    reads: frozenset[str]
    writes: frozenset[str]


def sendable(policy: Policy, role: PartyRole) -> list[EventCode]:
    """The flows ``role`` may send, by the policy's ``senders``."""
    return [e for e, flow in policy.document.flows.items() if role in flow.senders]


def topic_access(registry: PartyRegistry, policy: Policy) -> dict[str, Access]:
    """Per principal, the topics it may read and write: the table every ACL comes from."""
    table: dict[str, Access] = {}
    router = registry.router().id
    routed = {t.name for t in topics.ROUTED}
    table[router] = Access(
        reads=frozenset(
            {
                *routed,
                topics.CONSENT.name,
                topics.CONSENT_SNAPSHOT.name,
                topics.AUDIT.name,
                topics.ESCALATION.name,
                topics.DELIVERIES.name,
                topics.KEY_STORE.name,
                f"{topics.KEY_STORE.name}.",  # every party's channel keys (docs/erasure.md)
            }
        ),
        writes=frozenset(
            {
                topics.OUTBOUND_PREFIX,
                topics.CONSENT.name,
                topics.CONSENT_SNAPSHOT.name,
                topics.AUDIT.name,
                topics.AUDIT_CHECKPOINT.name,
                topics.REJECTED.name,
                topics.DEAD_LETTER.name,
                topics.ESCALATION.name,
                topics.DELIVERIES.name,
                topics.KEY_STORE.name,
                f"{topics.KEY_STORE.name}.",
            }
        ),
    )
    for party in registry.parties:
        if party.id == router:
            continue
        # its own key store: its channel keys with the router (in.*, out.* data layer)
        channel = f"{topics.KEY_STORE.name}.{party.id}"
        reads = {party.outbound_topic, topics.AUDIT.name, channel}
        writes = {topics.AUDIT.name, topics.AUDIT_CHECKPOINT.name, channel}
        flows = sendable(policy, party.role)  # e.g. the coordination point's answers too
        writes |= {topics.inbound_for(e.value).name for e in flows}
        if flows:  # a sender may withdraw what it sent (not a policy flow: AVG art. 17, 19)
            writes.add(topics.IN_WITHDRAWAL.name)
        if party.role in ADAPTER_ROLES:
            writes.add(topics.DEAD_LETTER.name)
        if party.role in PROVIDER_ROLES:  # its journal, under its own data keys (erasure)
            own = {f"journal.{party.id}", f"{topics.KEY_STORE.name}.{party.id}"}
            reads |= own
            writes |= own
        if party.role is PartyRole.CAPACITY_DASHBOARD:  # the web app: compliance, operations
            reads |= {
                topics.AUDIT_CHECKPOINT.name,
                topics.REJECTED.name,
                topics.DEAD_LETTER.name,
            }
        table[party.id] = Access(frozenset(reads), frozenset(writes))
    return table


def _topic(principal: str, name: str, ops: Iterable[Op]) -> list[Acl]:
    prefixed = name.endswith(".")
    return [Acl(principal, Resource.TOPIC, name, op, prefixed) for op in ops]


def acl_set(registry: PartyRegistry, policy: Policy) -> list[Acl]:
    """Every ACL entry of a deployment, sorted and without duplicates."""
    acls: set[Acl] = set()
    router = registry.router().id
    for principal, access in topic_access(registry, policy).items():
        for name in access.reads:
            acls.update(_topic(principal, name, (Op.READ, Op.DESCRIBE)))
        for name in access.writes:
            acls.update(_topic(principal, name, (Op.WRITE, Op.DESCRIBE)))
        # every component watches the broker epoch (a topic listing shows only what it may see)
        acls.add(Acl(principal, Resource.TOPIC, EPOCH_PREFIX, Op.DESCRIBE, prefixed=True))
        if principal == router:
            acls.add(Acl(principal, Resource.GROUP, ROUTER_GROUP, Op.READ))
            for op in (Op.CREATE, Op.DESCRIBE):  # the epoch and its claim, on first start
                acls.add(Acl(principal, Resource.TOPIC, "ketenbus.epoch", op, prefixed=True))
            acls.add(Acl(principal, Resource.TOPIC, CLAIM_TOPIC, Op.DELETE))
        else:
            acls.add(Acl(principal, Resource.GROUP, ADAPTER_GROUP_PREFIX + principal, Op.READ))
            if any(n.startswith("journal.") for n in access.writes):
                for name in (f"journal.{principal}", f"{topics.KEY_STORE.name}.{principal}"):
                    acls.add(Acl(principal, Resource.TOPIC, name, Op.CREATE))
    for op in (Op.CREATE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS):
        acls.add(Acl(ADMIN, Resource.CLUSTER, "kafka-cluster", op))
    return sorted(acls)


def acl_commands(
    registry: PartyRegistry, policy: Policy, bootstrap: str, command_config: str | None = None
) -> list[str]:
    """The ``kafka-acls.sh`` commands that create :func:`acl_set` on a cluster."""
    return [acl.command(bootstrap, command_config) for acl in acl_set(registry, policy)]
