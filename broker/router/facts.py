"""What the router observed and decided, as plain facts. The audit layer turns each fact into a
FHIR AuditEvent; the console turns it into a line. Facts carry pseudonyms, never a BSN."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FactKind(StrEnum):
    PERMIT = "decision-permit"
    DENY = "decision-deny"
    DELIVERY = "delivery"
    CONSENT_CHANGE = "consent-change"
    REFUSAL = "refusal"  # refused before any recipient decision (trust, format, routing)
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    at: datetime
    message_id: str | None
    event: str | None
    sender: str | None
    reason: str
    detail: str = ""
    sender_role: str | None = None
    recipient: str | None = None
    recipient_role: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    consent_id: str | None = None
    person: str | None = None  # pseudonym in the audit domain
    categories: tuple[str, ...] = ()
    topic: str | None = None

    @property
    def refused(self) -> bool:
        return self.kind in (FactKind.DENY, FactKind.REFUSAL)
