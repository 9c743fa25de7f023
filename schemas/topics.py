"""The topic catalogue: every Kafka topic ketenbus uses, its partitions, key and content.

One outbound topic per party (``out.<party-id>``) lets a production Kafka confine each party to its
own topic with ACLs. Messages about one person are keyed by a pseudonym of that person, so they
stay in order on one partition; the pseudonym differs per reader (see ``broker.trust``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class KeyKind(StrEnum):
    """What a topic's record key means."""

    PERSON_PSEUDONYM = "pseudonym of the person, in the reader's pseudonym domain"
    PARTY = "party id"
    LOCATION = "location id (no personal data)"
    CHAIN = "audit chain id"
    MESSAGE = "sender and message id (sender/message-id)"
    NONE = "no key"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, partition count, key meaning, what goes on it and its cleanup policy."""

    name: str
    partitions: int
    key: KeyKind
    description: str
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete"}
        cfg.update(self.config)
        return cfg


PERSON_PARTITIONS = 6

IN_REFERRAL = TopicSpec(
    "in.referral",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Referrals (aanmeldingen) from ZVH adapters, signed and encrypted for the router.",
)
IN_ASSESSMENT = TopicSpec(
    "in.assessment-outcome",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Assessment outcomes (inclusiebesluiten) from provider adapters, for the router.",
)
IN_TRANSITION = TopicSpec(
    "in.care-transition",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Care transitions (start, scale up/down, transfer, end) from provider adapters.",
)
IN_CLAIM = TopicSpec(
    "in.claim",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Claims and claim responses, for the router.",
)
IN_ESCALATION = TopicSpec(
    "in.escalation",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Escalations of stuck cases and the answers of the ladder's steps (regional step, national "
    "coordination point), for the router.",
)
IN_CONSENT = TopicSpec(
    "in.consent",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Consents and revocations recorded by a party, for the router to check, acknowledge and "
    "append to the consent log.",
)
IN_WITHDRAWAL = TopicSpec(
    "in.withdrawal",
    PERSON_PARTITIONS,
    KeyKind.NONE,
    "Withdrawals (intrekkingen) of a message by its sender, for the router; a withdrawal names "
    "only the original's message id, so it carries no person and no key.",
)
CONSENT = TopicSpec(
    "consent",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "The consent log: checked consents and revocations (FHIR Consent messages sealed for the "
    "router), keyed by router-domain pseudonym and consent id so compaction on Apache Kafka keeps "
    "the latest version of each consent. Every router instance rebuilds its consent view from it.",
    compacted=True,
)
DELIVERIES = TopicSpec(
    "deliveries",
    PERSON_PARTITIONS,
    KeyKind.MESSAGE,
    "The delivery index: per routed message (key: sender/message id) who received it and which "
    "categories each got, and whether it was corrected or withdrawn, sealed for the router. Every "
    "router instance rebuilds from it whom a correction or withdrawal goes to (AVG art. 19).",
    compacted=True,
)
CAPACITY = TopicSpec(
    "capacity",
    3,
    KeyKind.LOCATION,
    "Secure-bed capacity reports (MeasureReport); counts only, never personal data.",
)
AUDIT = TopicSpec(
    "audit",
    1,
    KeyKind.CHAIN,
    "Hash-chained, signed FHIR AuditEvents of every decision, delivery and refusal. Append-only.",
    config={"retention.ms": "-1"},
)
AUDIT_CHECKPOINT = TopicSpec(
    "audit-checkpoint",
    1,
    KeyKind.CHAIN,
    "Signed heads (seq and hash) of every audit chain, published at a fixed cadence so a cut-off "
    "tail of the audit topic is seen; keep an export of them out of the broker operators' reach.",
    config={"retention.ms": "-1"},
)
REJECTED = TopicSpec(
    "rejected",
    3,
    KeyKind.PARTY,
    "Messages the router refused (unauthorised, unsigned, no legal basis), keyed by sender, with "
    "the reason in headers; the payload stays encrypted.",
)
DEAD_LETTER = TopicSpec(
    "dead-letter",
    3,
    KeyKind.PARTY,
    "Input that could not be parsed or routed, keyed by the component that received it, with the "
    "reason in headers.",
)
ESCALATION = TopicSpec(
    "escalation",
    3,
    KeyKind.PERSON_PSEUDONYM,
    "The router's ladder log: what changed in the escalation ladder and the watchdogs' fold "
    "(cases routed, decisions, care starts and ends, escalations and answers: case numbers and "
    "party ids, no person), sealed for the router under the constant key 'ladder' (one "
    "partition, kept in order), so a restarted router folds the same state again.",
)

INBOUND: tuple[TopicSpec, ...] = (
    IN_CONSENT,
    IN_REFERRAL,
    IN_ASSESSMENT,
    IN_TRANSITION,
    IN_CLAIM,
    IN_ESCALATION,
    IN_WITHDRAWAL,
)
SHARED: tuple[TopicSpec, ...] = (
    CONSENT,
    DELIVERIES,
    CAPACITY,
    AUDIT,
    AUDIT_CHECKPOINT,
    REJECTED,
    DEAD_LETTER,
    ESCALATION,
)
# What the router consumes: every inbound topic, plus capacity reports (sealed for the router).
ROUTED: tuple[TopicSpec, ...] = (*INBOUND, CAPACITY)

OUTBOUND_PREFIX = "out."
OUTBOUND_PARTITIONS = PERSON_PARTITIONS


def outbound(party_id: str) -> TopicSpec:
    """The party's own outbound topic; only that party may read it."""
    return TopicSpec(
        OUTBOUND_PREFIX + party_id,
        OUTBOUND_PARTITIONS,
        KeyKind.PERSON_PSEUDONYM,
        f"Messages delivered to party {party_id}, encrypted for it and signed by the router; "
        "keyed by that party's pseudonym of the person.",
    )


def inbound_for(event: str) -> TopicSpec:
    """The inbound topic for a message event code (see ``schemas.vocab.EventCode``)."""
    table = {
        "consent": IN_CONSENT,
        "referral": IN_REFERRAL,
        "assessment-outcome": IN_ASSESSMENT,
        "care-transition": IN_TRANSITION,
        "claim": IN_CLAIM,
        "claim-response": IN_CLAIM,
        "escalation": IN_ESCALATION,
        "escalation-answer": IN_ESCALATION,
        "capacity-report": CAPACITY,
        "withdrawal": IN_WITHDRAWAL,
    }
    try:
        return table[event]
    except KeyError:
        raise ValueError(f"no inbound topic for event {event!r}") from None


def catalogue(party_ids: list[str] | tuple[str, ...] = ()) -> tuple[TopicSpec, ...]:
    """Every topic for a deployment with these parties."""
    return (*INBOUND, *SHARED, *(outbound(p) for p in party_ids))
