"""What the router observed and decided, as typed facts. The audit layer turns each fact into a
FHIR AuditEvent (``broker.router.audit_sink``); the console turns it into a line; the metrics
count its kind, flow and reason. Facts carry pseudonyms, never a BSN.

Every code is an enum and the basis detail travels as it came (``BasisDetail``), so the audit
record is made from the decision itself, without a string round trip in between (issue 14).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.messaging import BasisDetail
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse


class FactKind(StrEnum):
    PERMIT = "decision-permit"
    DENY = "decision-deny"
    DELIVERY = "delivery"  # a (minimised) message written to a recipient's out.<party>
    CONSENT_CHANGE = "consent-change"
    REFUSAL = "refusal"  # refused before any recipient decision (trust, format, routing)
    DUPLICATE = "duplicate"
    REPROCESS = "reprocess"  # an operator's deliberate re-process reached the router
    CORRECTION = "correction"  # a correction forwarded to one recipient of the original
    WITHDRAWAL = "withdrawal"  # a withdrawal forwarded to one recipient of the original


@dataclass(frozen=True, slots=True)
class Fact:
    kind: FactKind
    at: datetime
    message_id: str | None
    event: EventCode | None
    sender: str | None
    reason: str
    detail: str = ""
    sender_role: PartyRole | None = None
    recipient: str | None = None
    recipient_role: PartyRole | None = None
    purpose: PurposeOfUse | None = None
    legal_basis: LegalBasis | None = None
    basis_detail: BasisDetail | None = None  # citation, justification, who decided: sealed
    consent_id: str | None = None  # the consent relied on
    person: str | None = None  # pseudonym in the audit domain
    categories: frozenset[DataCategory] = frozenset()  # disclosed (present, for a denial)
    withheld: frozenset[DataCategory] = frozenset()  # what the recipient's role did not get
    controls: str | None = None  # NEN 7513 controles: four T/F (broker.audit.controls_for)
    topic: str | None = None
    refers_to: str | None = None  # a correction's or withdrawal's original message id
    controller: str | None = None  # MessageHeader.responsible, else the sender (AVG art. 4(7))
    processor: str | None = None  # the sender, when it processes for the controller (art. 28)
    acting_person: str | None = None  # who acted at the sender (MessageHeader.author): NEN 7513

    @property
    def refused(self) -> bool:
        return self.kind in (FactKind.DENY, FactKind.REFUSAL)


def event_code(text: str | None) -> EventCode | None:
    """The flow named by an (untrusted) envelope header, or None when it names none."""
    if text is None:
        return None
    return EventCode._value2member_map_.get(text)  # type: ignore[return-value]
