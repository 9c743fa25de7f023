"""The claim book: the state of every claim, folded from events that travel on topics (the claim
sent, the router's response to it, the payer's claim responses) -- never stored elsewhere.

Folding is idempotent (a redelivered event changes nothing), so the book can be rebuilt at any
time by replaying the events. Responses are reconciled against their claim: an answer for an
unknown claim, from another payer, approving more than was claimed or paying other than was
approved is recorded as a finding, never silently accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from schemas.flows.claim import Claim, ClaimResponse
from schemas.messaging import ResponseCode
from schemas.vocab import ClaimOutcome, ClaimRejectionReason


class ClaimStatus(StrEnum):
    """Where a claim stands, from the events seen so far."""

    SENT = "sent"  # sent to the router, no answer yet
    REFUSED = "refused"  # the router refused it (fatal-error response)
    DELIVERED = "delivered"  # the router delivered it; the payer has not answered
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PAID = "paid"
    ADVANCED = "advanced"  # VWS advanced it under the emergency rule


# Rejections that mean "nobody pays": a financing gap to raise, not a claim to correct.
GAP_REJECTIONS = frozenset(
    {
        ClaimRejectionReason.NO_PAYMENT_TITLE,
        ClaimRejectionReason.WRONG_PAYER,
        ClaimRejectionReason.NOT_COVERED,
    }
)


@dataclass
class ClaimEntry:
    claim: Claim
    message_id: str
    sent_on: date
    router: ResponseCode | None = None
    responses: list[ClaimResponse] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def last(self) -> ClaimResponse | None:
        """The latest answer (by decision date, then arrival)."""
        if not self.responses:
            return None
        return max(enumerate(self.responses), key=lambda p: (p[1].decided_on, p[0]))[1]

    @property
    def status(self) -> ClaimStatus:
        last = self.last
        if last is not None:
            return ClaimStatus(last.outcome.value)
        if self.router is ResponseCode.FATAL_ERROR:
            return ClaimStatus.REFUSED
        if self.router is ResponseCode.OK:
            return ClaimStatus.DELIVERED
        return ClaimStatus.SENT

    @property
    def paid_cents(self) -> int:
        last = self.last
        return last.paid_cents or 0 if last is not None else 0

    @property
    def closed(self) -> bool:
        """Paid (or advanced) in full of what was approved, rejected, or refused by the router."""
        status = self.status
        if status in (ClaimStatus.REJECTED, ClaimStatus.REFUSED):
            return True
        last = self.last
        if status in (ClaimStatus.PAID, ClaimStatus.ADVANCED) and last is not None:
            return (last.paid_cents or 0) >= (last.approved_cents or 0)
        return False


class ClaimBook:
    """Every claim one claimant sent, by claim id."""

    def __init__(self) -> None:
        self.entries: dict[str, ClaimEntry] = {}
        self.by_message: dict[str, str] = {}
        self.unmatched: list[ClaimResponse] = []
        self._responses: set[str] = set()

    def __contains__(self, claim_id: object) -> bool:
        return claim_id in self.entries

    def get(self, claim_id: str) -> ClaimEntry | None:
        return self.entries.get(claim_id)

    def sent(self, claim: Claim, message_id: str, on: date) -> ClaimEntry:
        """A claim left for the router (idempotent on the claim id)."""
        entry = self.entries.get(claim.claim_id)
        if entry is None:
            entry = ClaimEntry(claim, message_id, on)
            self.entries[claim.claim_id] = entry
            self.by_message[message_id] = claim.claim_id
        return entry

    def router_response(self, request_id: str, code: ResponseCode) -> ClaimEntry | None:
        """The router's ok / fatal-error for a claim message (other requests are ignored)."""
        claim_id = self.by_message.get(request_id)
        if claim_id is None:
            return None
        entry = self.entries[claim_id]
        if entry.router is not ResponseCode.OK:  # a delivery, once made, stays made
            entry.router = code
        return entry

    def answer(self, resp: ClaimResponse) -> list[str]:
        """Reconcile a payer's answer with its claim; returns the findings (empty: clean)."""
        if resp.response_id in self._responses:
            return []
        self._responses.add(resp.response_id)
        entry = self.entries.get(resp.claim_id)
        if entry is None:
            self.unmatched.append(resp)
            return [f"answer {resp.response_id} is for unknown claim {resp.claim_id}"]
        c = entry.claim
        findings = []
        if resp.payer.party_id != c.payer.party_id:
            findings.append(f"answered by {resp.payer.party_id}, but claimed at {c.payer.party_id}")
        if resp.person_bsn != c.person.bsn:
            findings.append("answer names another person than the claim")
        if resp.approved_cents is not None and resp.approved_cents > c.amount_cents:
            findings.append(
                f"approved {resp.approved_cents} cents, more than the {c.amount_cents} claimed"
            )
        elif resp.approved_cents is not None and resp.approved_cents < c.amount_cents:
            findings.append(f"approved {resp.approved_cents} of {c.amount_cents} cents")
        if resp.paid_cents is not None and resp.paid_cents != (resp.approved_cents or 0):
            findings.append(f"paid {resp.paid_cents} cents of {resp.approved_cents} approved")
        entry.responses.append(resp)
        entry.findings.extend(findings)
        return findings

    def overdue(self, today: date, after_days: int) -> list[ClaimEntry]:
        """Open claims sent more than ``after_days`` days before ``today``."""
        return [
            e
            for e in self.entries.values()
            if not e.closed and (today - e.sent_on).days > after_days
        ]

    def gap_rejections(self) -> list[ClaimEntry]:
        """Claims rejected because nobody pays them: financing gaps to raise."""
        out = []
        for e in self.entries.values():
            last = e.last
            if (
                last is not None
                and last.outcome is ClaimOutcome.REJECTED
                and last.rejection_reason in GAP_REJECTIONS
            ):
                out.append(e)
        return out
