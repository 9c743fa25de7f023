"""A payer adapter: claims delivered on ``out.<payer>`` become declaration files in the payer's
format in its outbox; answer files the payer drops in its inbox become ClaimResponse messages,
sealed for the router and addressed to the claimant.

The adapter knows which claim an answer is about from its claim index (file reference → claim),
rebuilt at start by replaying its own ``out.<payer>`` topic: no database. An answer that cannot
be matched, names another person, or breaks a rule is refused per item, with the line or
element; the rest of the file goes through. Logs and events carry ids, parties and reasons only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

from pydantic import ValidationError

from adapters.common.inbox import Inbox
from adapters.common.limits import safe_detail
from adapters.common.runtime import error_document
from adapters.common.service import AdapterService, ServiceOptions, item_error
from adapters.financing.desk import message_id_for, short_id
from adapters.financing.topiclog import replay
from adapters.payer.answers import expand_declarations
from adapters.payer.formats import FORMATS
from adapters.payer.formats.common import AnswerItem, FormatError, alnum_reference, reference
from broker.config import Settings
from broker.trust import Opened, TrustError
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import MessageError
from schemas.flows.assessment import InclusionNotice, inclusion_notice_from_message
from schemas.flows.claim import (
    Claim,
    ClaimResponse,
    Payer,
    claim_from_message,
    claim_response_message,
)
from schemas.messaging import BasisDetail, MessageMeta, ParsedMessage, parse_message, validate_fhir
from schemas.vocab import (
    ClaimOutcome,
    ClaimRejectionReason,
    ClaimService,
    EventCode,
    FinancingRegime,
    LegalBasis,
    PartyRole,
    PurposeOfUse,
)

log = logging.getLogger(__name__)

# The legal basis a payer answers on (the policy accepts these for claim responses).
ANSWER_BASIS: dict[PartyRole, tuple[LegalBasis, str]] = {
    PartyRole.MUNICIPALITY: (LegalBasis.LEGAL_OBLIGATION, "Wmo 2015"),
    PartyRole.HEALTH_INSURER: (LegalBasis.LEGAL_OBLIGATION, "Zvw"),
    PartyRole.CARE_OFFICE: (LegalBasis.LEGAL_OBLIGATION, "Wlz"),
    PartyRole.DJI: (LegalBasis.LEGAL_OBLIGATION, "Wfz"),
    PartyRole.VWS: (LegalBasis.PUBLIC_TASK, "Noodregeling VWS"),
}


# The regime a payer pays under, named in its record of an inclusion notice.
PAYER_REGIME: dict[PartyRole, FinancingRegime] = {
    PartyRole.MUNICIPALITY: FinancingRegime.WMO,
    PartyRole.HEALTH_INSURER: FinancingRegime.ZVW,
    PartyRole.CARE_OFFICE: FinancingRegime.WLZ,
    PartyRole.DJI: FinancingRegime.JUSTICE,
    PartyRole.VWS: FinancingRegime.VWS_EMERGENCY,
}

SEND_BATCH = 500
"""At most this many answers of one file are sealed under one batch signature."""


@dataclass(frozen=True)
class _Answer:
    bundle: dict[str, Any]
    bsn: str
    message_id: str
    note: str  # for the adapter event log: outcome and claim id, nothing about the person


class PayerAdapter(AdapterService):
    """A payer's system: claims out as declaration files in its format, its answer files in as
    claim responses."""

    poll_task = "answers"

    def __init__(
        self,
        settings: Settings,
        client: PartyClient,
        inbox_dir: Path,
        outbox_dir: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        **options: Unpack[ServiceOptions],
    ) -> None:
        party = client.registry.get(client.party_id)
        if party.role not in FORMATS:
            raise ValueError(f"party {party.id} has role {party.role}, not a payer role")
        self.role = party.role
        self.format = FORMATS[party.role]
        ids = party.identifiers
        identifier = {
            PartyRole.MUNICIPALITY: ids.municipality,
            PartyRole.HEALTH_INSURER: ids.uzovi,
            PartyRole.CARE_OFFICE: ids.uzovi,
            PartyRole.DJI: ids.oin,
            PartyRole.VWS: ids.oin,
        }[party.role]
        if identifier is None:
            raise ValueError(f"payer {party.id} has no identifier for its role in the registry")
        self.payer = Payer(party_id=party.id, role=party.role, identifier=identifier)
        inbox = Inbox(inbox_dir, patterns=self.format.answer_patterns)
        super().__init__(settings, client, outbox_dir, inbox, **options)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.index: dict[str, Claim] = {}  # file reference (and claim id) -> claim
        # declaration number (iWmo DeclaratieNummer) -> the file references of its claims
        self.declarations: dict[str, list[str]] = {}
        self.inclusions: dict[str, InclusionNotice] = {}  # episode id -> inclusion notice
        self.answered = 0

    # --- claims in ------------------------------------------------------------------------

    def _remember(self, claim: Claim) -> None:
        ref = reference(claim.claim_id)
        self.index[ref] = claim
        self.index[claim.claim_id] = claim
        refs = self.declarations.setdefault(alnum_reference(claim.claim_id), [])
        if ref not in refs:
            refs.append(ref)

    def _expand(self, items: list[AnswerItem | MessageError]) -> list[AnswerItem | MessageError]:
        return expand_declarations(items, self.index, self.declarations)

    def _replayed(self, record: Any) -> None:
        try:
            opened = self.client.open(record.key, record.value or b"", list(record.headers or ()))
            msg = parse_message(opened.payload, full=False)
            if msg.meta.event is EventCode.CLAIM:
                self._remember(claim_from_message(msg))
            elif msg.meta.event is EventCode.ASSESSMENT_OUTCOME:
                self._inclusion(msg)
        except (TrustError, MessageError):
            return  # the live path dead-letters what it cannot read

    def _inclusion(self, msg: ParsedMessage) -> InclusionNotice | None:
        """Record an inclusion notice (issue 15 point 7); None when the message is none."""
        try:
            notice = inclusion_notice_from_message(msg)
        except MessageError:
            return None
        self.inclusions[notice.episode_id] = notice
        return notice

    async def _delivered(self, opened: Opened, msg: ParsedMessage) -> None:
        m = msg.meta
        if m.event is EventCode.ASSESSMENT_OUTCOME:
            notice = self._inclusion(msg)
            if notice is None:
                await self.runtime.dead_letter(
                    opened.payload, None, "inclusion-notice", "unreadable", source="notice"
                )
                self.runtime.event("invalid", m.message_id, "inclusion notice unreadable")
                return
            record = {
                "kind": "inclusion-notice",
                "episode": notice.episode_id,
                "inclusion_date": notice.inclusion_date.isoformat(),
                "regime": PAYER_REGIME[self.role].value,
                "provider": notice.provider,
                "bsn": notice.bsn,
                "message_id": m.message_id,
            }
            body = json.dumps(record, indent=2) + "\n"
            self.outbox.write(m.message_id, body.encode())
            self.runtime.event(
                "delivered", m.message_id, f"inclusion notice {notice.episode_id} from {m.sender}"
            )
            return
        if m.event is not EventCode.CLAIM:
            body = json.dumps(msg.bundle, indent=2, ensure_ascii=False) + "\n"
            self.outbox.write(m.message_id, body.encode())
            self.runtime.event("delivered", m.message_id, f"{m.event.value} from {m.sender}")
            return
        try:
            claim = claim_from_message(msg)
        except MessageError as err:
            await self.runtime.dead_letter(
                opened.payload, None, err.reason, safe_detail(err), source="claim"
            )
            self.runtime.event("invalid", m.message_id, f"claim unreadable: {err.reason}")
            return
        if claim.payer.party_id != self.party_id:
            self.runtime.event(
                "refused", m.message_id, f"claim {claim.claim_id} is for another payer"
            )
            return
        notice = self.inclusions.get(claim.episode_id or "")
        if (
            claim.service is ClaimService.COORDINATION_DAY
            and notice is not None
            and claim.period_start < notice.inclusion_date
        ):
            # Coordination days start at the notified inclusion date (implementation plan 2022).
            await self._reject(
                claim,
                ClaimRejectionReason.NOT_INCLUDED,
                f"included from {notice.inclusion_date.isoformat()}",
            )
            self.runtime.event("refused", m.message_id, f"claim {claim.claim_id}: before inclusion")
            return
        try:
            document = self.format.write(claim)
        except FormatError as err:
            # The payer's system could not take it: a technical rejection back to the claimant.
            await self._reject(claim, ClaimRejectionReason.INVALID, f"{self.format.name}: {err}")
            self.runtime.event("refused", m.message_id, f"claim {claim.claim_id}: {err}")
            return
        self._remember(claim)
        self.outbox.write(m.message_id, document, self.format.suffix_for(document))
        self.runtime.event(
            "delivered", m.message_id, f"claim {claim.claim_id} from {claim.provider} written"
        )

    # --- answers out ----------------------------------------------------------------------

    def _response(self, claim: Claim, item: AnswerItem) -> ClaimResponse:
        rejected = item.outcome is ClaimOutcome.REJECTED
        approved = item.approved_cents
        if not rejected and approved is None:
            approved = claim.amount_cents  # an acceptance without an amount accepts the claim
        response_id = short_id(
            "ANS", claim.claim_id, item.outcome.value, f"{item.decided_on:%Y%m%d}"
        )
        return ClaimResponse(
            response_id=response_id,
            claim_id=claim.claim_id,
            provider=claim.provider,
            payer=self.payer,
            person_bsn=claim.person.bsn,
            decided_on=item.decided_on,
            outcome=item.outcome,
            approved_cents=None if rejected else approved,
            paid_cents=item.paid_cents,
            paid_on=item.paid_on,
            rejection_reason=item.rejection_reason,
            rejection_note=item.rejection_note,
        )

    async def _reject(self, claim: Claim, reason: ClaimRejectionReason, note: str) -> None:
        """A rejection of ``claim`` decided here, today, answered to its claimant at once."""
        await self._answer(
            claim,
            AnswerItem(
                reference=reference(claim.claim_id),
                bsn=claim.person.bsn,
                decided_on=self.clock().astimezone(UTC).date(),
                outcome=ClaimOutcome.REJECTED,
                approved_cents=None,
                rejection_reason=reason,
                rejection_note=note,
            ),
        )

    async def _answer(self, claim: Claim, item: AnswerItem) -> str:
        answer = self._answer_message(claim, item)
        await self._send_answers([answer])
        return answer.message_id

    def _answer_message(self, claim: Claim, item: AnswerItem) -> _Answer:
        """The claim-response message for one answer, validated where it is made."""
        resp = self._response(claim, item)
        basis, citation = ANSWER_BASIS[self.role]
        meta = MessageMeta(
            message_id=message_id_for(self.party_id, "claim-response", resp.response_id),
            event=EventCode.CLAIM_RESPONSE,
            sender=self.party_id,
            timestamp=datetime.now(UTC),  # real time: the router's replay window
            purpose=PurposeOfUse.HPAYMT,
            legal_basis=basis,
            destinations=(claim.provider,),
            basis_detail=BasisDetail(citation=citation),
        )
        bundle = claim_response_message(resp, meta)
        validate_fhir(bundle)
        return _Answer(
            bundle,
            claim.person.bsn,
            meta.message_id,
            f"claim-response {resp.outcome.value} for {claim.claim_id}",
        )

    async def _send_answers(self, answers: list[_Answer]) -> None:
        """Seal ``answers`` under one signature (docs/trust.md 3.4.1) and send them in order."""
        topic = topics.inbound_for(EventCode.CLAIM_RESPONSE.value).name
        for start in range(0, len(answers), SEND_BATCH):
            chunk = answers[start : start + SEND_BATCH]
            sealed = self.client.seal_messages([(a.bundle, a.bsn) for a in chunk])
            for a, (key, value, headers) in zip(chunk, sealed, strict=True):
                await self.runtime.send(topic, key, value, headers)
                self.answered += 1
                self.runtime.event("sent", a.message_id, a.note)

    def _claim_for(self, item: AnswerItem) -> Claim:
        claim = self.index.get(item.reference)
        if claim is None:
            raise item_error(
                item.where,
                "no claim with this reference was received",
                "unknown-claim",
            )
        if claim.person.bsn != item.bsn:
            raise item_error(item.where, "the BSN differs from the claim's", "bsn-mismatch")
        return claim

    async def process_file(self, path: Path) -> dict[str, Any]:
        """Read one answer file; returns the receipt (or the file's error report)."""
        raw = path.read_bytes()
        try:
            items = self._expand(self.format.read(raw))
        except MessageError as err:
            return await self.refuse_file(path, raw, err)
        accepted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        answers: list[_Answer] = []  # sent together, under one batch signature
        for index, item in enumerate(items):
            try:
                if isinstance(item, MessageError):
                    raise item
                claim = self._claim_for(item)
                try:
                    answer = self._answer_message(claim, item)
                except ValidationError as err:
                    first = err.errors()[0]
                    raise item_error(item.where, str(first.get("msg")), "answer") from None
                answers.append(answer)
                accepted.append(
                    {
                        "index": index,
                        "where": item.where,
                        "claim": claim.claim_id,
                        "outcome": item.outcome.value,
                        "message_id": answer.message_id,
                    }
                )
            except MessageError as err:
                self.refused += 1
                errors.append({"index": index, **error_document(err, path.name)})
        await self._send_answers(answers)
        return await self.settle_file(
            path, raw, accepted, errors, items_refused="answer-items-refused"
        )

    async def start(self) -> None:
        outbound = self.client.registry.get(self.party_id).outbound_topic
        replayed = await replay(self.settings, outbound, self._replayed)
        log.info("%s: claim index rebuilt from %d records", self.party_id, replayed)
        await super().start()
