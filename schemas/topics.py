"""The topic catalogue: every Kafka topic ketenbus uses, its partitions, key and content.

One outbound topic per party (``out.<party-id>``) lets a production Kafka confine each party to its
own topic with ACLs. Messages about one person are keyed by a pseudonym of that person, so they
stay in order on one partition; the pseudonym differs per reader (see ``broker.trust``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

DAY_MS = 86_400_000


class KeyKind(StrEnum):
    """What a topic's record key means."""

    PERSON_PSEUDONYM = "pseudonym of the person, in the reader's pseudonym domain"
    PARTY = "party id"
    LOCATION = "location id (no personal data)"
    CHAIN = "audit chain id"
    MESSAGE = "sender and message id (sender/message-id)"
    DATA_KEY = "opaque data key id (no personal data)"
    SNAPSHOT = "snapshot writer and part (no personal data)"
    NONE = "no key"


@dataclass(frozen=True)
class Retention:
    """How long a topic keeps a kind of data, why, and on what source (``docs/retention.md``).

    ketenbus is a transport and an audit, not a care file: it keeps what delivery, the audit and
    complaint handling need and no longer (AVG art. 5(1)(e)). ``days=None`` means "no time
    limit": only for data without personal data in clear that must outlive any term (the audit
    trail's signed heads) or for a compacted topic whose latest record per key is the state.
    """

    days: int | None
    data: str
    reason: str
    source: str

    def ms(self, override_days: float | None = None) -> str:
        """``retention.ms`` for Kafka: the term in milliseconds, ``-1`` for no time limit."""
        days = self.days if override_days is None else override_days
        return "-1" if days is None or days < 0 else str(int(days * DAY_MS))


TRANSPORT = Retention(
    14,
    "sealed messages in transit to the router",
    "The router takes a message off its inbound topic within seconds; two weeks cover an outage "
    "over a long weekend and a reprocess after a restore, and nothing else reads these topics.",
    "AVG art. 5(1)(e) (storage limitation), art. 32 (availability after an incident)",
)
DELIVERY = Retention(
    30,
    "sealed deliveries waiting for a recipient's adapter",
    "The recipient's adapter copies a delivery into its own outbox (its record, under its own "
    "duties, e.g. Wgbo art. 7:454); a month covers an adapter that was down and the follow-up of "
    "a correction or withdrawal that must reach every recipient (AVG art. 19).",
    "AVG art. 5(1)(e), art. 19",
)
REFUSALS = Retention(
    30,
    "refused or unreadable input, sealed, with the reason in headers",
    "The sender got a specific refusal at once; operators need the parked input to find the "
    "fault and a sender to resubmit. A month covers that; the audit trail keeps the fact of the "
    "refusal for its own term.",
    "AVG art. 5(1)(e); NEN 7510-2 A.12.4 (incident handling)",
)
CONSENT_LOG = Retention(
    None,
    "checked consents and revocations (latest per consent, compacted)",
    "A consent is needed for as long as it is in force; compaction keeps its latest version and "
    "a revocation replaces it. Erasure does not wait for compaction: the payload is encrypted "
    "under the person's data key, which `ketenbus erase` destroys (docs/erasure.md).",
    "AVG art. 7(1) (the controller must be able to show consent), art. 17",
)
AUDIT_TERM = Retention(
    5 * 365,
    "audit events (pseudonyms, purpose, basis; legal detail sealed under a per-person key)",
    "Access and disclosure logs of health data are kept five years, so that a person's "
    "complaint and a supervisor's inquiry can be answered. The care file's 20 years (Wgbo art. "
    "7:454) is the recipient's, not ours. To confirm with the FG of each deployment.",
    "NEN 7513:2018 §7; MedMij afsprakenstelsel A.12.4.1 (five years); AVG art. 5(2), art. 30",
)
CHECKPOINT_TERM = Retention(
    5 * 365,
    "signed chain heads (no personal data)",
    "A checkpoint is evidence for the audit records it covers, so it is kept as long as they are.",
    "as the audit topic (NEN 7513:2018 §7)",
)
CAPACITY_TERM = Retention(
    90,
    "secure-bed counts per location (no personal data)",
    "Only the latest count matters for routing; a quarter gives the coordination point its "
    "trend reports.",
    "no personal data; kept short to keep the broker small",
)
ESCALATION_TERM = Retention(
    90,
    "escalations of stuck cases, sealed for the coordination point",
    "The coordination point takes up an escalation in days; a quarter covers the escalation "
    "ladder's longest step and the complaint that may follow.",
    "AVG art. 5(1)(e)",
)
LADDER_LOG_TERM = Retention(
    3 * 365,
    "the escalation ladder's log: case numbers, party ids, dates (no person)",
    "The watchdogs follow a case for the two years of follow-up the approach promises (end of "
    "care before two years, seed 004); three years keep that history with a year's margin for "
    "the escalations and complaints that follow.",
    "AVG art. 5(1)(e); letter VWS/JenV 6 Nov 2020 (two years of follow-up)",
)
DELIVERY_INDEX_TERM = Retention(
    5 * 365,
    "who received which message (message ids, party ids, categories; no person)",
    "A correction or withdrawal must reach every recipient of the original however late the "
    "error is found (AVG art. 19), so the index lives as long as the audit trail that records "
    "the disclosures.",
    "AVG art. 19; as the audit topic (NEN 7513:2018 §7)",
)
JOURNAL_TERM = Retention(
    7 * 365,
    "a provider's own claims journal, sealed for that provider",
    "The journal is the provider's claims administration, kept as long as bookkeeping must be.",
    "BW art. 2:10 lid 3 and AWR art. 52 lid 4 (seven years for financial records)",
)
KEY_STORE_TERM = Retention(
    None,
    "per-person data keys, wrapped under the key-encryption key of one generation",
    "A data key must live as long as the data it opens (up to the audit's five years). Every "
    "erasure re-wraps the surviving keys under a new generation and destroys the old KEK file, "
    "so older records on this topic are unreadable whatever the broker keeps; compaction only "
    "shortens the topic.",
    "AVG art. 17 (erasure), art. 32 (keys kept apart from data)",
)
CONSENT_SNAPSHOT_TERM = Retention(
    None,
    "signed snapshots of the consent view (latest per writer, compacted)",
    "A snapshot is a shortcut for a starting router, not a record of its own: compaction keeps "
    "each writer's latest and drops the ones it replaced. Each person's consents in it are "
    "encrypted under that person's data key, so an erasure makes every earlier snapshot "
    "unreadable for that person at once, whatever compaction has not removed yet "
    "(docs/consent-snapshot.md, docs/erasure.md).",
    "AVG art. 5(1)(e), art. 17; as the consent log",
)

INBOX_COPIES = Retention(
    30,
    "a counterpart's input files an adapter has processed (inbox processed/ and failed/)",
    "The file's content is on its way or refused, and the sender holds the original; a month "
    "covers a question about a receipt or a refusal.",
    "AVG art. 5(1)(e)",
)

FILE_RETENTION: dict[str, Retention] = {
    "inbox.processed": INBOX_COPIES,
    "inbox.failed": INBOX_COPIES,
}
"""What ketenbus itself keeps in files, by kind; ``ketenbus prune`` applies these terms.
A recipient's outbox is not here: it is that party's record, under its own duties."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, partition count, key meaning, what goes on it, its cleanup policy and its
    retention term (``None`` only for test and internal marker topics)."""

    name: str
    partitions: int
    key: KeyKind
    description: str
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)
    retention: Retention | None = None

    def topic_config(self, retention_days: Mapping[str, float] | None = None) -> dict[str, str]:
        """Kafka topic configs; ``retention_days`` overrides the term per topic name or
        prefix pattern (``"out.*"``), as ``Settings.retention_days`` does."""
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention is not None:
            cfg["retention.ms"] = self.retention.ms(retention_override(self.name, retention_days))
            if self.compacted:
                # a tombstone (erasure, revocation) leaves the log a day after compaction
                cfg["delete.retention.ms"] = str(DAY_MS)
        cfg.update(self.config)
        return cfg


def retention_override(name: str, retention_days: Mapping[str, float] | None) -> float | None:
    """The configured term for topic ``name``: exact name first, then the longest ``prefix*``."""
    if not retention_days:
        return None
    if name in retention_days:
        return retention_days[name]
    best: tuple[int, float] | None = None
    for pattern, days in retention_days.items():
        prefix = pattern.endswith("*") and name.startswith(pattern[:-1])
        if prefix and (best is None or len(pattern) > best[0]):
            best = (len(pattern), days)
    return None if best is None else best[1]


PERSON_PARTITIONS = 6

IN_REFERRAL = TopicSpec(
    "in.referral",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Referrals (aanmeldingen) from ZVH adapters, signed and encrypted for the router.",
    retention=TRANSPORT,
)
IN_ASSESSMENT = TopicSpec(
    "in.assessment-outcome",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Assessment outcomes (inclusiebesluiten) from provider adapters, for the router.",
    retention=TRANSPORT,
)
IN_TRANSITION = TopicSpec(
    "in.care-transition",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Care transitions (start, scale up/down, transfer, end) from provider adapters.",
    retention=TRANSPORT,
)
IN_CLAIM = TopicSpec(
    "in.claim",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Claims and claim responses, for the router.",
    retention=TRANSPORT,
)
IN_ESCALATION = TopicSpec(
    "in.escalation",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Escalations of stuck cases and the answers of the ladder's steps (regional step, national "
    "coordination point), for the router.",
    retention=TRANSPORT,
)
IN_CONSENT = TopicSpec(
    "in.consent",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "Consents and revocations recorded by a party, for the router to check, acknowledge and "
    "append to the consent log.",
    retention=TRANSPORT,
)
IN_WITHDRAWAL = TopicSpec(
    "in.withdrawal",
    PERSON_PARTITIONS,
    KeyKind.NONE,
    "Withdrawals (intrekkingen) of a message by its sender, for the router; a withdrawal names "
    "only the original's message id, so it carries no person and no key.",
    retention=TRANSPORT,
)
CONSENT = TopicSpec(
    "consent",
    PERSON_PARTITIONS,
    KeyKind.PERSON_PSEUDONYM,
    "The consent log: checked consents and revocations (FHIR Consent messages sealed for the "
    "router), keyed by router-domain pseudonym and consent id so compaction on Apache Kafka keeps "
    "the latest version of each consent. Every router instance rebuilds its consent view from it.",
    compacted=True,
    retention=CONSENT_LOG,
)
DELIVERIES = TopicSpec(
    "deliveries",
    PERSON_PARTITIONS,
    KeyKind.MESSAGE,
    "The delivery index: per routed message (key: sender/message id) who received it and which "
    "categories each got, and whether it was corrected or withdrawn, sealed for the router. Every "
    "router instance rebuilds from it whom a correction or withdrawal goes to (AVG art. 19).",
    compacted=True,
    retention=DELIVERY_INDEX_TERM,
)
CAPACITY = TopicSpec(
    "capacity",
    3,
    KeyKind.LOCATION,
    "Secure-bed capacity reports (MeasureReport); counts only, never personal data.",
    retention=CAPACITY_TERM,
)
AUDIT = TopicSpec(
    "audit",
    1,
    KeyKind.CHAIN,
    "Hash-chained, signed FHIR AuditEvents of every decision, delivery and refusal. Append-only.",
    retention=AUDIT_TERM,
)
AUDIT_CHECKPOINT = TopicSpec(
    "audit-checkpoint",
    1,
    KeyKind.CHAIN,
    "Signed heads (seq and hash) of every audit chain, published at a fixed cadence so a cut-off "
    "tail of the audit topic is seen; keep an export of them out of the broker operators' reach.",
    retention=CHECKPOINT_TERM,
)
REJECTED = TopicSpec(
    "rejected",
    3,
    KeyKind.PARTY,
    "Messages the router refused (unauthorised, unsigned, no legal basis), keyed by sender, with "
    "the reason in headers; the payload stays encrypted.",
    retention=REFUSALS,
)
DEAD_LETTER = TopicSpec(
    "dead-letter",
    3,
    KeyKind.PARTY,
    "Input that could not be parsed or routed, keyed by the component that received it, with the "
    "reason in headers.",
    retention=REFUSALS,
)
ESCALATION = TopicSpec(
    "escalation",
    3,
    KeyKind.PERSON_PSEUDONYM,
    "The router's ladder log: what changed in the escalation ladder and the watchdogs' fold "
    "(cases routed, decisions, care starts and ends, escalations and answers: case numbers and "
    "party ids, no person), sealed for the router under the constant key 'ladder' (one "
    "partition, kept in order), so a restarted router folds the same state again.",
    retention=LADDER_LOG_TERM,
)
KEY_STORE = TopicSpec(
    "keystore",
    1,
    KeyKind.DATA_KEY,
    "The per-person data keys (crypto-shredding), each wrapped under the key-encryption key of "
    "one generation and signed by the writer; erasure writes a tombstone, re-wraps the others "
    "under a new generation and destroys the old KEK file (docs/erasure.md).",
    compacted=True,
    retention=KEY_STORE_TERM,
)

CONSENT_SNAPSHOT = TopicSpec(
    "consent-snapshot",
    2,
    KeyKind.SNAPSHOT,
    "Signed, sealed snapshots of the router's consent view with the consent log position each "
    "reflects: partition 0 holds each writer's head (key '<writer>/head'), partition 1 the "
    "chunks it lists by hash (key '<writer>/<n>'). A starting router loads the newest valid one "
    "and replays only the consent log after it (docs/consent-snapshot.md).",
    compacted=True,
    retention=CONSENT_SNAPSHOT_TERM,
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
    CONSENT_SNAPSHOT,
    DELIVERIES,
    CAPACITY,
    AUDIT,
    AUDIT_CHECKPOINT,
    REJECTED,
    DEAD_LETTER,
    ESCALATION,
    KEY_STORE,
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
        retention=DELIVERY,
    )


def party_key_store(party_id: str) -> TopicSpec:
    """A party's own key store, beside the router's ``keystore``: its journal's data keys and
    its channel keys with the router (the data layer inside its ``in.*`` and ``out.<party>``
    envelopes); one topic per party, so a production Kafka can confine each to its own."""
    return TopicSpec(
        f"{KEY_STORE.name}.{party_id}",
        1,
        KeyKind.DATA_KEY,
        f"The per-person data keys of {party_id}'s own records (its journal) and of its "
        f"messages to and from the router, wrapped under {party_id}'s key-encryption key "
        "(docs/erasure.md).",
        compacted=True,
        retention=KEY_STORE_TERM,
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
    """Every topic for a deployment with these parties: each party's outbound topic and its
    key store (also its channel with the router: the data layer of ``in.*`` and ``out.*``)."""
    return (
        *INBOUND,
        *SHARED,
        *(outbound(p) for p in party_ids),
        *(party_key_store(p) for p in party_ids),
    )
