"""A WMO325 lists only the rejected prestaties (iWmo 3.2, as its iJw sister JW325): the payer
adapter turns the declaration's answer into one answer per claim, so a fully approved
declaration marks its claims paid and a partly rejected one marks exactly the rejected ones."""

from __future__ import annotations

from adapters.payer.answers import expand_declarations
from adapters.payer.formats import wmo
from adapters.payer.formats.common import AnswerItem, alnum_reference, reference
from schemas.errors import MessageError
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome, ClaimRejectionReason
from tests.unit.adapters import payer_samples as S


def _indexes(*claims: Claim) -> tuple[dict[str, Claim], dict[str, list[str]]]:
    index = {reference(c.claim_id): c for c in claims}
    decls: dict[str, list[str]] = {}
    for c in claims:
        decls.setdefault(alnum_reference(c.claim_id), []).append(reference(c.claim_id))
    return index, decls


def test_a_fully_approved_answer_marks_the_claim_paid() -> None:
    c = S.REGISTRATION
    [item] = expand_declarations(wmo.read_answer(wmo.write_answer(c, "2020-12-01")), *_indexes(c))
    assert isinstance(item, AnswerItem) and not item.declaration
    assert (item.reference, item.bsn, item.outcome, item.approved_cents, item.paid_cents) == (
        reference(c.claim_id),
        c.person.bsn,
        ClaimOutcome.PAID,
        200_000,
        200_000,
    )


def test_a_partly_rejected_declaration_marks_exactly_the_rejected_lines() -> None:
    """Two claims in one declaration (the declaration number of the first): the answer lists
    the second as rejected (9307), so the first is paid and the second rejected."""
    first = S.REGISTRATION
    second = first.model_copy(update={"claim_id": "REG-MN-2020-0043"})
    index, decls = _indexes(first, second)
    decls[alnum_reference(first.claim_id)].append(reference(second.claim_id))
    raw = wmo.write_answer(second, "2020-12-01", codes=("9307",)).decode()
    raw = (
        raw.replace(
            f"<iwmo:Identificatie>{alnum_reference(second.claim_id)}<",
            f"<iwmo:Identificatie>{alnum_reference(first.claim_id)}<",
        )
        .replace(
            f"<wmo325:DeclaratieNummer>{alnum_reference(second.claim_id)}<",
            f"<wmo325:DeclaratieNummer>{alnum_reference(first.claim_id)}<",
        )
        .replace(
            "<iwmo:TotaalBedrag>0</iwmo:TotaalBedrag>",
            "<iwmo:TotaalBedrag>200000</iwmo:TotaalBedrag>",
        )
    )
    items = expand_declarations(wmo.read_answer(raw.encode()), index, decls)
    got = sorted(
        (i.reference, i.outcome, i.rejection_reason) for i in items if isinstance(i, AnswerItem)
    )
    assert got == [
        (reference(first.claim_id), ClaimOutcome.PAID, None),
        (reference(second.claim_id), ClaimOutcome.REJECTED, ClaimRejectionReason.NOT_COVERED),
    ]


def test_an_approved_total_that_does_not_add_up_is_refused() -> None:
    c = S.REGISTRATION
    raw = wmo.write_answer(c, "2020-12-01").decode()
    raw = raw.replace(
        "<wmo325:TotaalToegekendBedrag>\n      <iwmo:TotaalBedrag>200000",
        "<wmo325:TotaalToegekendBedrag>\n      <iwmo:TotaalBedrag>999999",
    )
    [err] = expand_declarations(wmo.read_answer(raw.encode()), *_indexes(c))
    assert isinstance(err, MessageError) and err.reason == "total"


def test_an_answer_to_an_unknown_declaration_is_refused() -> None:
    c = S.REGISTRATION
    [err] = expand_declarations(wmo.read_answer(wmo.write_answer(c, "2020-12-01")), {}, {})
    assert isinstance(err, MessageError) and err.reason == "unknown-claim"
