"""Trace: one message's whole path, from the topics and the audit trail, in order.

Where a message has been is read from two kinds of evidence: the topics (the sealed record on
``in.<flow>`` as the sending adapter wrote it, what the router parked on ``rejected`` or
``dead-letter``) and the audit trail (each decision per recipient with its reason and rule, each
delivery to ``out.<party>``, refusals, duplicates and re-processes). The trail is verified while
it is read (:func:`broker.audit.answer`), and a hop from a record that did not verify says so.
Nothing is decrypted: a hop carries codes, party ids, topics and pseudonyms, never personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.apps.operations.parked import PARKING_TOPICS, ParkedRecord, read_records
from broker.audit import AuditQuery, AuditRow, TrailTrust, answer, read_audit_topic
from broker.audit.signers import signers_from_registry
from broker.config import Settings
from broker.trust import PartyRegistry
from schemas import topics

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Hop:
    """One step of a message's path."""

    at: datetime | None
    where: str  # a topic, or the audit chain that recorded it
    what: str  # received, permitted, denied, delivered, refused, parked, re-processed...
    party: str | None = None  # who acted or received
    reason: str = ""
    detail: str = ""
    verified: bool = True  # False: an audit record that did not verify

    def line(self) -> str:
        when = self.at.isoformat(timespec="milliseconds") if self.at else "?"
        who = f" {self.party}" if self.party else ""
        why = f" [{self.reason}]" if self.reason else ""
        mark = "" if self.verified else "  (NOT VERIFIED)"
        return f"{when}  {self.what}{who}{why}  @{self.where}  {self.detail}{mark}".rstrip()


@dataclass(frozen=True)
class Trace:
    message_id: str
    hops: list[Hop]
    tampered: bool  # the audit trail did not verify as a whole

    @property
    def found(self) -> bool:
        """Whether the message was seen anywhere (a trace of it alone is not a sighting)."""
        return any(h.what != "searched" for h in self.hops)


_WHAT = {
    "decision-permit": "permitted",
    "decision-deny": "denied",
    "delivery": "delivered",
    "refusal": "refused",
    "consent-change": "consent changed",
    "reprocess": "re-processed",
    "compliance-search": "searched",
    "escalation-step": "escalation",
}


def hop_of_row(row: AuditRow) -> Hop:
    what = _WHAT.get(row.kind, row.kind)
    party = row.recipient if row.kind in ("decision-permit", "decision-deny", "delivery") else (
        row.sender)
    if row.kind == "reprocess" and row.chain.endswith("-cli"):
        what = "re-process requested"
    elif row.kind == "refusal" and row.reason in ("duplicate", "already-delivered"):
        what = "not sent again"
        party = row.recipient or row.sender
    detail = row.detail
    if row.kind == "delivery" and row.recipient:
        detail = f"{detail} (to {row.recipient})" if row.recipient not in detail else detail
    return Hop(row.recorded, f"audit:{row.chain}#{row.seq}", what, party, row.reason, detail,
               row.verified)


def hop_of_record(rec: ParkedRecord) -> Hop:
    if rec.topic in PARKING_TOPICS:
        return Hop(rec.refused_at or rec.at, rec.place, f"parked on {rec.topic}", rec.sender,
                   rec.reason, rec.detail)
    again = " (re-process)" if rec.reprocess_of else ""
    return Hop(rec.at, rec.place, f"received{again}", rec.sender, "",
               f"sealed {rec.event or '?'} message written by the {rec.sender} adapter")


def build(message_id: str, records: Sequence[ParkedRecord], rows: Sequence[AuditRow],
          tampered: bool = False) -> Trace:
    hops = [hop_of_record(r) for r in records if r.message_id == message_id]
    hops += [hop_of_row(r) for r in rows if r.message_id == message_id]
    hops.sort(key=lambda h: h.at or _EARLIEST)  # stable: the trail's order within one instant
    return Trace(message_id, hops, tampered)


async def trace(
    settings: Settings,
    registry: PartyRegistry,
    message_id: str,
    organisations: frozenset[str] | None = None,
) -> Trace:
    """The path of ``message_id``: its records on the routed and parking topics and its audit
    records (the trail verified against the chains the registry declares). ``organisations``:
    only what those organisations sent or received (a scoped console user)."""
    names = [t.name for t in topics.ROUTED] + list(PARKING_TOPICS)
    records = await read_records(settings, names)
    if organisations is not None:
        records = [r for r in records if r.sender in organisations]
    audit = await read_audit_topic(settings)
    query = AuditQuery(message_ids=frozenset({message_id}),
                       organisations=organisations or frozenset())
    if organisations is not None and not organisations:
        return Trace(message_id, [], False)
    result = answer(audit, query, TrailTrust(signers_from_registry(registry)))
    return build(message_id, records, result.rows, result.tampered)
