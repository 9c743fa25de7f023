"""The delivery index: who received each routed message, so that a correction or a withdrawal
reaches every one of them and no one else (AVG art. 19: the controller communicates a
rectification or erasure to each recipient to whom the data were disclosed).

There is no central database: the router writes one record per change to the compacted topic
``deliveries`` (sealed for itself) and every instance rebuilds the index from it at start
(``broker.router.delivery_log``), as it does the consent view. A record holds the whole entry
of one message, and entries *merge* (recipients and corrections are unions, a withdrawal
stays), so applying an older record after a newer one, or one instance's record after
another's, never loses what is known. Judging a follow-up is a pure function
(:func:`judge_follow_up`), each refusal with a stable reason.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from schemas.messaging import MessageMeta
from schemas.vocab import DataCategory, EventCode

INDEX_EVENT = "delivery-index"
"""The ``kb-event`` of a record on the ``deliveries`` topic (no message flow of its own)."""


@dataclass
class DeliveryEntry:
    """One routed message: its sender, flow, person (router-domain pseudonym), the recipients
    with the categories each got, and what followed it."""

    sender: str
    message_id: str
    event: EventCode
    subject: str | None
    recipients: dict[str, frozenset[DataCategory]] = field(default_factory=dict)
    corrections: list[str] = field(default_factory=list)
    withdrawn_by: str | None = None

    @property
    def key(self) -> str:
        return f"{self.sender}/{self.message_id}"

    def merge(self, other: DeliveryEntry) -> None:
        """Fold another record of the same message in: what either knows is kept."""
        for party, cats in other.recipients.items():
            self.recipients[party] = self.recipients.get(party, frozenset()) | cats
        for c in other.corrections:
            if c not in self.corrections:
                self.corrections.append(c)
        self.withdrawn_by = self.withdrawn_by or other.withdrawn_by
        self.subject = self.subject or other.subject

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "sender": self.sender,
                "message_id": self.message_id,
                "event": self.event.value,
                "subject": self.subject,
                "recipients": {
                    p: sorted(c.value for c in cats) for p, cats in sorted(self.recipients.items())
                },
                "corrections": self.corrections,
                "withdrawn_by": self.withdrawn_by,
            }
        )

    @staticmethod
    def from_json(raw: bytes) -> DeliveryEntry:
        """Read a record the router wrote; ``ValueError`` (or ``KeyError``/``TypeError``) on
        anything else."""
        d = orjson.loads(raw)
        subject = d.get("subject")
        withdrawn = d.get("withdrawn_by")
        return DeliveryEntry(
            sender=str(d["sender"]),
            message_id=str(d["message_id"]),
            event=EventCode(d["event"]),
            subject=str(subject) if subject is not None else None,
            recipients={
                str(p): frozenset(DataCategory(c) for c in cats)
                for p, cats in dict(d["recipients"]).items()
            },
            corrections=[str(c) for c in d.get("corrections") or []],
            withdrawn_by=str(withdrawn) if withdrawn is not None else None,
        )


class DeliveryIndex:
    """Every routed message's entry, by (sender, message id). Message ids are unique per
    sender only: another party may reuse an id, which never touches this sender's entry."""

    ECHOES = 100_000
    """Records written and not yet read back that are remembered (the oldest go first)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], DeliveryEntry] = {}
        self._senders: dict[str, set[str]] = {}
        # sealed values of index records this process wrote after applying them itself
        self._echoes: OrderedDict[bytes, None] = OrderedDict()

    def wrote(self, value: bytes) -> None:
        """The sealed value of a record this process wrote to ``deliveries`` for an entry it
        has applied already: when the log follower reads it back, there is nothing to apply."""
        self._echoes[value] = None
        if len(self._echoes) > self.ECHOES:
            self._echoes.popitem(last=False)

    def echo(self, value: bytes) -> bool:
        """Whether ``value`` is, byte for byte, a record this process wrote and applied (then
        forgotten: a second copy is read as any record). Every sealed value differs (a fresh
        nonce each), so another instance's record, or anyone's copy with a byte changed, is
        never taken for one."""
        if value in self._echoes:
            del self._echoes[value]
            return True
        return False

    def apply(self, entry: DeliveryEntry) -> DeliveryEntry:
        """Merge ``entry`` in; returns the entry as now known."""
        key = (entry.sender, entry.message_id)
        known = self._entries.get(key)
        if known is None:
            known = DeliveryEntry(
                entry.sender, entry.message_id, entry.event, entry.subject, {}, [], None
            )
            self._entries[key] = known
            self._senders.setdefault(entry.message_id, set()).add(entry.sender)
        known.merge(entry)
        return known

    def get(self, sender: str, message_id: str) -> DeliveryEntry | None:
        return self._entries.get((sender, message_id))

    def senders_of(self, message_id: str) -> frozenset[str]:
        return frozenset(self._senders.get(message_id, ()))

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[DeliveryEntry]:
        return iter(list(self._entries.values()))


class FollowUpRefused(Exception):
    """A correction or withdrawal that may not go ahead; ``reason`` is a stable code and
    ``code`` the FHIR issue type of the refusal."""

    def __init__(self, reason: str, detail: str, code: str) -> None:
        self.reason = reason
        self.code = code
        super().__init__(detail)


def judge_follow_up(index: DeliveryIndex, meta: MessageMeta, subject: str | None) -> DeliveryEntry:
    """The original a correction or withdrawal (``meta.refers_to``) is about, or a refusal:

    The same follow-up routed again (a restart lost the replay guard, not the index) is
    delivered again rather than refused. Otherwise:

    - ``unknown-original``: no message with that id was delivered to anyone;
    - ``not-original-sender``: it was another party's message (only the controller that sent
      it may correct or withdraw it, AVG art. 16/17);
    - ``already-withdrawn`` (a second withdrawal) and ``original-withdrawn`` (a correction of
      a withdrawn message): nothing is delivered again;
    - ``correction-event-mismatch``: a correction is a message of the original's own flow;
    - ``correction-changes-subject``: a correction is about the same person; a message about
      the wrong person is withdrawn and sent anew, so the new person's data are judged by the
      policy instead of following the old message's recipients.
    """
    original = meta.refers_to
    if original is None or original == meta.message_id:
        raise FollowUpRefused("unknown-original", "the message names no original", "required")
    entry = index.get(meta.sender, original)
    if entry is None:
        if index.senders_of(original):
            raise FollowUpRefused(
                "not-original-sender",
                f"message {original} was not sent by {meta.sender}",
                "security",
            )
        raise FollowUpRefused(
            "unknown-original", f"no delivered message {original} is known", "not-found"
        )
    if meta.message_id == entry.withdrawn_by or meta.message_id in entry.corrections:
        # this very follow-up, routed again after a router restart (at-least-once: its
        # deliveries may not all have been written): deliver it again, the adapters
        # de-duplicate on its message id
        return entry
    withdrawal = meta.event is EventCode.WITHDRAWAL
    if entry.withdrawn_by is not None:
        if withdrawal:
            raise FollowUpRefused(
                "already-withdrawn",
                f"message {original} was already withdrawn by {entry.withdrawn_by}",
                "duplicate",
            )
        raise FollowUpRefused(
            "original-withdrawn", f"message {original} was withdrawn: send a new one", "conflict"
        )
    if not withdrawal:
        if meta.event is not entry.event:
            raise FollowUpRefused(
                "correction-event-mismatch",
                f"a correction of a {entry.event.value} message must be a {entry.event.value}",
                "business-rule",
            )
        if subject != entry.subject:
            raise FollowUpRefused(
                "correction-changes-subject",
                "a correction may not change the person: withdraw the message and send a new one",
                "business-rule",
            )
    return entry
