"""The ZVH adapter process: inbox folder and HTTP endpoint in, outbox folder out."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from adapters.common.batch import current_batch
from adapters.common.inbox import Inbox
from adapters.common.limits import read_json, safe_detail
from adapters.common.runtime import AdapterEvent, error_document, new_reference
from adapters.common.service import AdapterService, ServiceOptions
from adapters.zvh.csvbatch import parse_csv
from adapters.zvh.format import (
    ZvhConsent,
    ZvhEscalation,
    ZvhEscalationAnswer,
    ZvhInput,
    ZvhReferral,
    ZvhWithdrawal,
    parse_bytes,
    parse_document,
)
from adapters.zvh.translate import to_zvh
from broker.config import Settings
from broker.trust import Opened
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import Issue, MessageError
from schemas.flows.consent import consent_message
from schemas.flows.escalation import escalation_message
from schemas.flows.escalation_answer import answer_message
from schemas.flows.referral import Referral, referral_message
from schemas.flows.withdrawal import Withdrawal, withdrawal_message
from schemas.messaging import BasisDetail, MessageMeta, ParsedMessage, validate_fhir
from schemas.vocab import EventCode, LegalBasis, PartyRole, PurposeOfUse

log = logging.getLogger(__name__)
FILE_NAMESPACE = uuid.UUID("6f1d0c1e-4b7a-5c3e-9a55-6b657465e275")
CONTENT_NAMESPACE = uuid.UUID("2b8e7c43-4c1d-5f0a-8e61-6b6574656e62")


def file_message_id(party: str, name: str, content: bytes, index: int | None) -> str:
    """The same file content at the same place always yields the same message ids (kept for
    callers outside the adapter; the adapter names documents by :func:`content_key`)."""
    digest = hashlib.sha256(content).hexdigest()
    return str(uuid.uuid5(FILE_NAMESPACE, f"{party}/{name}/{digest}/{index}"))


def content_key(doc: ZvhInput) -> str:
    """A document's identity: the SHA-256 of its validated content in a canonical form (keys
    sorted, defaults filled in, whitespace stripped), whatever the file name, the channel (file
    or HTTP), the position in a batch or the JSON layout it came in (docs/adapters/zvh.md)."""
    # who sent it is not what it says: the same document from another employee is a repeat
    content = doc.model_dump(mode="json", exclude={"acting_person"})
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def attempt_message_id(party: str, key: str, attempt: int) -> str:
    """The message id of the ``attempt``-th sending of the document ``key`` (0 first)."""
    return str(uuid.uuid5(CONTENT_NAMESPACE, f"{party}/{key}/{attempt}"))


class RefusedInput(MessageError):
    """A refused document, already dead-lettered and audited under ``reference``."""

    def __init__(self, issues: Iterable[Issue], reference: str) -> None:
        super().__init__(issues)
        self.reference = reference


@dataclass(frozen=True)
class Accepted:
    message_id: str
    event: str
    case: str
    repeat: bool = False
    """The document was sent before and is in flight or was accepted: not sent again, and
    this is the original message id (its outcome is the original outcome)."""


@dataclass(frozen=True)
class _Outgoing:
    bundle: dict[str, Any]
    bsn: str | None
    accepted: Accepted
    topic: str


NOTICE_CITATION = "Wmo 2015"
"""The municipality's task a referral notice is shared for (the policy's referral →
municipality rule; docs/policy.md, "The municipality's part")."""
ESCALATION_CITATION = "task-lcp-levensloopaanpak"
"""Escalations travel on the approach's public task (the ZVH's procesregie), never with the
person's identity unless a consent says so: the case by its number, the reason, the step."""

SEND_BATCH = 500
"""At most this many referrals of one inbox file are sealed under one batch signature."""


class ZvhAdapter(AdapterService):
    """A ZVH case system: referral and consent documents (JSON, CSV, HTTP) in, ZVH documents
    (deliveries and the router's responses) out."""

    def __init__(
        self,
        settings: Settings,
        client: PartyClient,
        inbox_dir: Path,
        outbox_dir: Path,
        **options: Unpack[ServiceOptions],
    ) -> None:
        inbox = Inbox(inbox_dir, patterns=("*.json", "*.csv"))
        super().__init__(settings, client, outbox_dir, inbox, **options)
        self.consent_ack_timeout = 30.0
        # request message id -> its outcome: the accepted response once there is one (a later
        # refusal never replaces it), else the latest refusal; every response in the outbox
        self.responses: dict[str, dict[str, Any]] = {}
        self.in_flight: set[str] = set()  # sent, no response yet (this process)
        self.repeats = 0
        self.conflicts = 0
        self.response_arrived = asyncio.Event()
        self.accepted = 0
        self.notices = 0
        self.notify_municipality = True  # send the municipality of residence a referral notice

    # --- out: documents from the ZVH case system ----------------------------------------------

    async def submit(
        self, doc: ZvhInput, message_id: str | None = None
    ) -> Accepted:
        """Turn one valid document into a FHIR message, seal it for the router and send it.

        ``message_id``: by default the document's own (:meth:`identify`): a document already
        in flight or accepted is not sent again (``Accepted.repeat``), one that was refused is
        sent as a new attempt.
        """
        if message_id is None:
            message_id, repeat = self.identify(doc)
            if repeat:
                return self._repeat(doc, message_id)
        [accepted] = await self._send([self._prepare(doc, message_id)])
        if isinstance(doc, ZvhReferral):
            await self._send_notices([(doc, accepted.message_id)])
        return accepted

    def identify(self, doc: ZvhInput) -> tuple[str, bool]:
        """(message id, repeat) for a document: the id of its first attempt that was not
        refused, and whether that attempt is in flight or accepted already. The rule shared with
        the router's replay guard (``broker/trust/replay.py``): the same document sent again is
        the same message (de-duplicated, its original outcome repeated); a document that was
        refused and is sent again (after its cause was fixed) is a new attempt with a new id."""
        key = content_key(doc)
        attempt = 0
        while True:
            mid = attempt_message_id(self.party_id, key, attempt)
            outcome = self.responses.get(mid)
            if outcome is None:
                return mid, mid in self.in_flight
            if outcome["status"] == "accepted":
                return mid, True
            attempt += 1

    def _repeat(self, doc: ZvhInput, message_id: str) -> Accepted:
        event: EventCode
        case: str
        if isinstance(doc, ZvhReferral):
            event, case = EventCode.REFERRAL, doc.case_id
        elif isinstance(doc, ZvhConsent):
            event, case = EventCode.CONSENT, doc.consent_id
        elif isinstance(doc, ZvhEscalation):
            event, case = EventCode.ESCALATION, doc.escalation_id
        elif isinstance(doc, ZvhEscalationAnswer):
            event, case = EventCode.ESCALATION_ANSWER, doc.answer_id
        else:
            event, case = EventCode.WITHDRAWAL, doc.message_id
        self.repeats += 1
        self.runtime.event("repeat", message_id, f"{event.value} {case} sent before; not again")
        return Accepted(message_id, event.value, case, repeat=True)

    def _prepare(self, doc: ZvhInput, message_id: str | None) -> _Outgoing:
        """The FHIR message for one document, validated where it is made."""
        bsn: str | None
        if isinstance(doc, ZvhWithdrawal):
            # AVG art. 17/19: the router forwards it to every recipient of the original
            meta = MessageMeta.new(
                EventCode.WITHDRAWAL,
                self.party_id,
                PurposeOfUse.COC,
                LegalBasis.LEGAL_OBLIGATION,
                message_id=message_id,
                author=doc.acting_person,
            )
            w = Withdrawal(
                original_id=doc.message_id, withdrawn_by=self.party_id, withdrawn_at=meta.timestamp
            )
            bundle = withdrawal_message(w, meta)
            bsn, case, topic = None, doc.message_id, topics.IN_WITHDRAWAL.name
        elif isinstance(doc, ZvhEscalation | ZvhEscalationAnswer):
            event = (
                EventCode.ESCALATION
                if isinstance(doc, ZvhEscalation)
                else EventCode.ESCALATION_ANSWER
            )
            meta = MessageMeta.new(
                event,
                self.party_id,
                PurposeOfUse.ESCALATION,
                LegalBasis.PUBLIC_TASK,
                basis_detail=BasisDetail(citation=ESCALATION_CITATION),
                message_id=message_id,
                author=doc.acting_person,
            )
            if isinstance(doc, ZvhEscalation):
                bundle = escalation_message(doc.to_escalation(self.party_id), meta)
                case = doc.escalation_id
            else:
                bundle = answer_message(doc.to_answer(self.party_id), meta)
                case = doc.answer_id
            bsn, topic = None, topics.IN_ESCALATION.name
        elif isinstance(doc, ZvhReferral):
            ref = doc.to_referral(self.party_id)
            meta = MessageMeta.new(
                EventCode.REFERRAL,
                self.party_id,
                PurposeOfUse.SAFETY
                if doc.basis.kind is LegalBasis.CONFLICT_OF_DUTIES
                else PurposeOfUse.COC,
                doc.basis.kind,
                basis_detail=doc.basis.detail(),
                message_id=message_id,
                refers_to=doc.corrects,  # a correction: to the original's recipients only
                controller=self._controller(doc),
                author=doc.acting_person,  # the NEN 7513 user (schemas/acting.py)
            )
            bundle = referral_message(ref, meta)
            bsn, case, topic = ref.person.bsn, doc.case_id, topics.IN_REFERRAL.name
        else:
            rec = doc.to_record(self.party_id)
            meta = MessageMeta.new(
                EventCode.CONSENT,
                self.party_id,
                PurposeOfUse.COC,
                LegalBasis.CONSENT,
                message_id=message_id,
                author=doc.acting_person,
            )
            bundle = consent_message(rec, meta)
            bsn, case, topic = rec.person_bsn, doc.consent_id, topics.IN_CONSENT.name
        validate_fhir(bundle)  # validate where messages are made: the router can trust the form
        return _Outgoing(bundle, bsn, Accepted(meta.message_id, meta.event.value, case), topic)

    def _municipality_of(self, ref: Referral) -> str | None:
        """The party of the person's municipality of residence; for a homeless person without
        one, this ZVH's central municipality (as the financing rules read the
        woonplaatsbeginsel). None when that municipality is no ketenbus party."""
        registry = self.client.registry
        code = ref.person.residence_municipality
        if code is None and ref.person.homeless:
            code = registry.get(self.party_id).identifiers.municipality
        if code is None:
            return None
        for party in registry.by_role(PartyRole.MUNICIPALITY):
            if party.identifiers.municipality == code:
                return party.id
        return None

    def _notice(self, doc: ZvhReferral, referral_id: str) -> _Outgoing | None:
        """The referral notice for the person's municipality (issue 15 point 3): the same
        referral addressed to it, on its public task (Wmo 2015); the router passes identity and
        the referral signal only (the policy's municipality rule), never the risk assessment."""
        ref = doc.to_referral(self.party_id)
        municipality = self._municipality_of(ref)
        if municipality is None:
            return None
        meta = MessageMeta.new(
            EventCode.REFERRAL,
            self.party_id,
            PurposeOfUse.COC,
            LegalBasis.PUBLIC_TASK,
            destinations=(municipality,),
            basis_detail=BasisDetail(citation=NOTICE_CITATION),
            message_id=str(uuid.uuid5(FILE_NAMESPACE, f"{referral_id}/municipality")),
            # a copy of the referral: the same controller (AVG art. 4(7)), not the ZVH
            controller=self._controller(doc),
        )
        bundle = referral_message(ref, meta)
        validate_fhir(bundle)
        accepted = Accepted(meta.message_id, "referral-notice", doc.case_id)
        return _Outgoing(bundle, ref.person.bsn, accepted, topics.IN_REFERRAL.name)

    async def _send_notices(self, sent: list[tuple[ZvhReferral, str]]) -> None:
        """Send the municipality's notice of each referral just sent (after it: the referral
        is the ZVH's registration, the notice a copy of it). A notice that cannot be made is
        logged; the referral stands."""
        if not self.notify_municipality:
            return
        notices = []
        for doc, message_id in sent:
            try:
                notice = self._notice(doc, message_id)
            except Exception as err:
                log.error("referral notice for %s not made: %s", doc.case_id, type(err).__name__)
                continue
            if notice is not None:
                notices.append(notice)
        if notices:
            sealed = self.client.seal_messages([(o.bundle, o.bsn) for o in notices])
            for o, (key, value, headers) in zip(notices, sealed, strict=True):
                await self.runtime.send(o.topic, key, value, headers)
                self.notices += 1
                self.runtime.event("sent", o.accepted.message_id, f"notice {o.accepted.case}")

    def _controller(self, doc: ZvhReferral) -> str | None:
        """Whose referral this is (AVG art. 4(7)): the ZVH has no legal basis of its own and
        processes for the covenant partner that brought the case (Handvat gegevensdeling ZVH);
        the document names it, else the first partner the registry lists for this ZVH."""
        if doc.controller is not None:
            return doc.controller
        partners = self.client.registry.get(self.party_id).processes_for
        return partners[0] if partners else None

    async def _send(self, batch: list[_Outgoing]) -> list[Accepted]:
        """Seal ``batch`` under one signature (docs/trust.md 3.4.1) and send it in order."""
        sealed = self.client.seal_messages([(o.bundle, o.bsn) for o in batch])
        for o, (key, value, headers) in zip(batch, sealed, strict=True):
            await self.runtime.send(o.topic, key, value, headers)
            self.in_flight.add(o.accepted.message_id)
            self.accepted += 1
            a = o.accepted
            self.runtime.event("sent", a.message_id, f"{a.event} {a.case} sent")
        return [o.accepted for o in batch]

    async def submit_json(self, data: Any) -> Accepted:
        """For the HTTP endpoint: validate a decoded JSON document and submit it."""
        try:
            doc = parse_document(data)
        except MessageError as err:
            self.refused += 1
            raw = json.dumps(data, ensure_ascii=False).encode() if data is not None else b""
            ref = await self.runtime.dead_letter(
                raw, None, err.reason, safe_detail(err), source="http"
            )
            self.runtime.event("invalid", None, f"HTTP input refused: {err.reason}")
            raise RefusedInput(err.issues, ref) from None
        return await self.submit(doc)

    async def process_file(self, path: Path) -> dict[str, Any]:
        """Process one claimed inbox file; returns the receipt or error report written."""
        raw = path.read_bytes()
        csv_batch = path.suffix.lower() == ".csv"  # one referral per row, errors per line
        key = "line" if csv_batch else "index"
        try:
            items: list[tuple[int | None, ZvhInput | MessageError]] = (
                list(parse_csv(raw, self.limits)) if csv_batch else parse_bytes(raw, self.limits)
            )
        except MessageError as err:
            return await self.refuse_file(path, raw, err)
        accepted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        pending: list[tuple[int | None, _Outgoing]] = []  # referrals to seal under one signature
        docs: list[ZvhReferral] = []  # the documents of ``pending``, for their notices
        in_file: set[str] = set()  # message ids already taken by this file
        whole: Any = None  # the JSON, read again only when an item of it is refused

        def entry(i: int | None, a: Accepted) -> dict[str, Any]:
            out = {key: i, "message_id": a.message_id, "event": a.event, "case": a.case}
            return {**out, "repeat": True} if a.repeat else out

        corrections: dict[str, list[str]] = {}  # original id -> corrections sent from this file

        async def flush() -> None:
            if pending:
                sent = await self._send([o for _, o in pending])
                accepted.extend(entry(i, a) for (i, _), a in zip(pending, sent, strict=True))
                await self._send_notices(
                    [(d, a.message_id) for d, a in zip(docs, sent, strict=True)]
                )
                pending.clear()
                docs.clear()

        for index, item in items:
            if isinstance(item, MessageError):
                await flush()  # keep the file's order
                self.refused += 1
                if index is not None and not csv_batch and whole is None:
                    whole = read_json(raw, self.limits)
                item_raw = raw if whole is None else json.dumps(whole[index]).encode()
                ref = await self.runtime.dead_letter(
                    item_raw, None, item.reason, safe_detail(item), source=new_reference()
                )
                errors.append({key: index, **error_document(item, path.name), "reference": ref})
                continue
            mid, repeat = self.identify(item)
            if repeat or mid in in_file:
                accepted.append(entry(index, self._repeat(item, mid)))
                continue
            in_file.add(mid)
            out = self._prepare(item, mid)
            if isinstance(item, ZvhReferral):
                if item.corrects is not None:
                    corrections.setdefault(item.corrects, []).append(out.accepted.message_id)
                pending.append((index, out))
                docs.append(item)
                if len(pending) >= SEND_BATCH:
                    await flush()
                continue
            await flush()
            if isinstance(item, ZvhWithdrawal):
                # a correction of the same message earlier in this file travels on another
                # topic: let the router route it first, else it finds the original withdrawn
                for sent_id in corrections.get(item.message_id, ()):
                    await self.wait_response(sent_id, self.consent_ack_timeout)
            [a] = await self._send([out])
            if not isinstance(item, ZvhConsent):
                accepted.append(entry(index, a))
                continue
            # A consent applies to what the router routes after acknowledging it; consents and
            # referrals travel on different topics, so wait before sending what follows.
            if await self.wait_response(a.message_id, self.consent_ack_timeout) is None:
                log.warning("no acknowledgement of %s %s yet; continuing", a.event, a.case)
            accepted.append(entry(index, a))
        await flush()
        return await self.settle_file(path, raw, accepted, errors)

    # --- in: deliveries from the router ------------------------------------------------------

    async def _delivered(self, opened: Opened, msg: ParsedMessage) -> None:
        doc = to_zvh(msg)
        self.outbox.write(
            msg.meta.message_id, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
        )
        if doc["type"] == "response":
            batch = current_batch()
            if batch is None:
                self._response_known(doc)
            else:  # known once its file is in the outbox (wait_response promises that)
                batch.when_durable(lambda: self._response_known(doc))
        else:
            self.runtime.event(
                "delivered", msg.meta.message_id, f"{doc['type']} from {msg.meta.sender}"
            )

    def _response_known(self, doc: dict[str, Any]) -> None:
        self._record_response(doc)
        self.response_arrived.set()
        kind = "response" if doc["status"] == "accepted" else "refused"
        why = ", ".join(r["code"] for r in doc["reasons"]) or "ok"
        self.runtime.event(kind, doc["in_reply_to"], f"{doc['status']}: {why}")

    def _record_response(self, doc: dict[str, Any]) -> None:
        """Keep a response as the outcome of its request, except that a refusal never replaces
        an accepted response: that is a conflict, said out loud (event ``conflict``, counted),
        while the case system keeps the accepted outcome. Every response stays in the outbox."""
        request = doc["in_reply_to"]
        self.in_flight.discard(request)
        before = self.responses.get(request)
        if before is not None and before["status"] == "accepted" and doc["status"] != "accepted":
            self.conflicts += 1
            self.runtime.event(
                "conflict", request, "a refusal arrived after the acceptance; accepted kept"
            )
            return
        self.responses[request] = doc

    def load_responses(self) -> int:
        """Read the responses already in the outbox, so a document refused before a restart
        is still known as refused (and sent again as a new attempt); returns how many."""
        n = 0
        for path in sorted(self.outbox.directory.glob("*.json")):
            try:
                doc = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and doc.get("type") == "response" and "in_reply_to" in doc:
                self._record_response(doc)
                n += 1
        return n

    async def start(self) -> None:
        self.load_responses()
        await super().start()

    async def wait_response(self, message_id: str, timeout: float) -> dict[str, Any] | None:
        """Wait until the router's response to one of our messages is in the outbox."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while message_id not in self.responses:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self.response_arrived.clear()
            try:
                await asyncio.wait_for(self.response_arrived.wait(), remaining)
            except TimeoutError:
                return self.responses.get(message_id)
        return self.responses[message_id]


__all__ = ["AdapterEvent", "ZvhAdapter"]
