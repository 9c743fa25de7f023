"""Answers that speak for a whole declaration (iWmo WMO325 lists only the rejected prestaties):
turned into one answer per claim of the declaration, so the claims desk sees each claim's fate.
"""

from __future__ import annotations

from adapters.common.service import item_error
from adapters.payer.formats.common import AnswerItem, reference
from schemas.errors import MessageError
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome


def expand_declarations(
    items: list[AnswerItem | MessageError],
    index: dict[str, Claim],
    declarations: dict[str, list[str]],
) -> list[AnswerItem | MessageError]:
    """A declaration item (iWmo WMO325) answers every claim of its declaration that no
    rejected line of the same file names: approved as claimed, and the approved total must
    be the sum of those claims (else the item is refused)."""
    rejected = {
        i.reference
        for i in items
        if isinstance(i, AnswerItem) and not i.declaration and i.outcome is ClaimOutcome.REJECTED
    }
    out: list[AnswerItem | MessageError] = []
    for item in items:
        if not isinstance(item, AnswerItem) or not item.declaration:
            out.append(item)
            continue
        refs = declarations.get(item.reference)
        if not refs:
            out.append(
                item_error(item.where, "no declaration with this number was sent", "unknown-claim")
            )
            continue
        answered = [index[r] for r in refs if r not in rejected]
        if item.outcome is not ClaimOutcome.REJECTED:
            total = sum(c.amount_cents for c in answered)
            if item.approved_cents is not None and item.approved_cents != total:
                out.append(
                    item_error(
                        item.where,
                        f"TotaalToegekendBedrag {item.approved_cents} is not the declaration "
                        f"less its rejected lines ({total})",
                        "total",
                    )
                )
                continue
        for c in answered:
            approved = None if item.outcome is ClaimOutcome.REJECTED else c.amount_cents
            out.append(
                AnswerItem(
                    reference=reference(c.claim_id),
                    bsn=c.person.bsn,
                    decided_on=item.decided_on,
                    outcome=item.outcome,
                    approved_cents=approved,
                    paid_cents=approved if item.paid_on else None,
                    paid_on=item.paid_on if approved is not None else None,
                    rejection_reason=item.rejection_reason,
                    rejection_note=item.rejection_note,
                    where=item.where,
                )
            )
    return out
