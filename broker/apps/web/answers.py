"""Answering an escalation as a party of the ladder (the national coordination point, or a
region's step): the web app's actions and ``ketenbus escalation answer`` both send through here.

The answer is a FHIR ``escalation-answer`` message signed with the answering party's own key and
sealed for the router, sent to ``in.escalation``; the router checks that the party was asked and
that the escalation is still open, audits it, and delivers it to the escalating party.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from broker.config import Settings
from broker.kafka import make_producer
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.escalation_answer import EscalationAnswer, answer_message
from schemas.messaging import BasisDetail, MessageMeta, validate_fhir
from schemas.vocab import (
    EscalationAction,
    EscalationLevel,
    EventCode,
    LegalBasis,
    PurposeOfUse,
)

CITATION = "task-lcp-levensloopaanpak"


def make_answer(
    client: PartyClient,
    *,
    escalation_id: str,
    raised_by: str,
    zvh: str,
    case_id: str,
    action: EscalationAction,
    level: EscalationLevel = EscalationLevel.NATIONAL,
    assignee: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> tuple[EscalationAnswer, dict[str, object]]:
    """The answer and its FHIR message; ``pydantic.ValidationError`` when it breaks a rule
    (assign without an assignee, request-info without a note)."""
    now = now or datetime.now(UTC)
    answer = EscalationAnswer(
        answer_id=f"{action.value}-{uuid.uuid4().hex[:12]}",
        escalation_id=escalation_id,
        raised_by=raised_by,
        answered_by=client.party_id,
        answered_at=now,
        zvh=zvh,
        referral_id=case_id,
        action=action,
        level=level,
        assignee=assignee,
        note=note,
    )
    meta = MessageMeta.new(
        EventCode.ESCALATION_ANSWER,
        client.party_id,
        PurposeOfUse.ESCALATION,
        LegalBasis.PUBLIC_TASK,
        basis_detail=BasisDetail(citation=CITATION),
    )
    bundle = answer_message(answer, meta)
    validate_fhir(bundle)
    return answer, bundle


async def send_answer(settings: Settings, client: PartyClient, bundle: dict[str, object]) -> str:
    """Seal ``bundle`` for the router and send it to ``in.escalation``; its message id."""
    key, value, headers = client.seal_message(dict(bundle), None)
    producer = make_producer(settings)
    try:  # stopped also when it could not start (the broker away)
        await producer.start()
        await producer.send_and_wait(
            topics.IN_ESCALATION.name, value=value, key=key, headers=headers
        )
    finally:
        await producer.stop()
    return str(bundle["id"])
