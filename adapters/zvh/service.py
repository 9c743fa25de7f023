"""The ZVH adapter process: inbox folder and HTTP endpoint in, outbox folder out."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from adapters.common.inbox import Inbox
from adapters.common.runtime import AdapterEvent, error_document
from adapters.common.service import AdapterService, ServiceOptions
from adapters.zvh.csvbatch import parse_csv
from adapters.zvh.format import ZvhConsent, ZvhReferral, parse_bytes, parse_document
from adapters.zvh.translate import to_zvh
from broker.config import Settings
from broker.trust import Opened
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import MessageError
from schemas.flows.consent import consent_message
from schemas.flows.referral import referral_message
from schemas.messaging import MessageMeta, ParsedMessage, validate_fhir
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

log = logging.getLogger(__name__)
FILE_NAMESPACE = uuid.UUID("6f1d0c1e-4b7a-5c3e-9a55-6b657465e275")


def file_message_id(party: str, name: str, content: bytes, index: int | None) -> str:
    """The same file content at the same place always yields the same message ids."""
    digest = hashlib.sha256(content).hexdigest()
    return str(uuid.uuid5(FILE_NAMESPACE, f"{party}/{name}/{digest}/{index}"))


@dataclass(frozen=True)
class Accepted:
    message_id: str
    event: str
    case: str


@dataclass(frozen=True)
class _Outgoing:
    bundle: dict[str, Any]
    bsn: str
    accepted: Accepted
    topic: str


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
        self.responses: dict[str, dict[str, Any]] = {}  # request message id -> response document
        self.response_arrived = asyncio.Event()
        self.accepted = 0

    # --- out: documents from the ZVH case system ----------------------------------------------

    async def submit(
        self, doc: ZvhReferral | ZvhConsent, message_id: str | None = None
    ) -> Accepted:
        """Turn one valid document into a FHIR message, seal it for the router and send it.

        ``message_id``: inbox documents get an id derived from the file, so re-processing a file
        after a crash re-sends the *same* messages, which the router and recipients de-duplicate.
        """
        return (await self._send([self._prepare(doc, message_id)]))[0]

    def _prepare(self, doc: ZvhReferral | ZvhConsent, message_id: str | None) -> _Outgoing:
        """The FHIR message for one document, validated where it is made."""
        if isinstance(doc, ZvhReferral):
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
                controller=self._controller(doc),
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
            )
            bundle = consent_message(rec, meta)
            bsn, case, topic = rec.person_bsn, doc.consent_id, topics.IN_CONSENT.name
        validate_fhir(bundle)  # validate where messages are made: the router can trust the form
        return _Outgoing(bundle, bsn, Accepted(meta.message_id, meta.event.value, case), topic)

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
            await self.runtime.dead_letter(raw, None, err.reason, str(err), source="http")
            self.runtime.event("invalid", None, f"HTTP input refused: {err.reason}")
            raise
        return await self.submit(doc)

    async def process_file(self, path: Path) -> dict[str, Any]:
        """Process one claimed inbox file; returns the receipt or error report written."""
        raw = path.read_bytes()
        csv_batch = path.suffix.lower() == ".csv"  # one referral per row, errors per line
        key = "line" if csv_batch else "index"
        try:
            items: list[tuple[int | None, ZvhReferral | ZvhConsent | MessageError]] = (
                list(parse_csv(raw)) if csv_batch else parse_bytes(raw)
            )
        except MessageError as err:
            return await self.refuse_file(path, raw, err)
        accepted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        pending: list[tuple[int | None, _Outgoing]] = []  # referrals to seal under one signature

        async def flush() -> None:
            if pending:
                sent = await self._send([o for _, o in pending])
                accepted.extend(
                    {key: i, "message_id": a.message_id, "event": a.event, "case": a.case}
                    for (i, _), a in zip(pending, sent, strict=True)
                )
                pending.clear()

        for index, item in items:
            if isinstance(item, MessageError):
                await flush()  # keep the file's order
                self.refused += 1
                item_raw = (
                    raw
                    if index is None or csv_batch
                    else json.dumps(json.loads(raw)[index]).encode()
                )
                await self.runtime.dead_letter(
                    item_raw, None, item.reason, str(item), source=path.name
                )
                errors.append({key: index, **error_document(item, path.name)})
                continue
            out = self._prepare(item, file_message_id(self.party_id, path.name, raw, index))
            if isinstance(item, ZvhReferral):
                pending.append((index, out))
                if len(pending) >= SEND_BATCH:
                    await flush()
                continue
            await flush()
            [a] = await self._send([out])
            # A consent applies to what the router routes after acknowledging it; consents and
            # referrals travel on different topics, so wait before sending what follows.
            if await self.wait_response(a.message_id, self.consent_ack_timeout) is None:
                log.warning("no acknowledgement of consent %s yet; continuing", a.case)
            accepted.append(
                {key: index, "message_id": a.message_id, "event": a.event, "case": a.case}
            )
        await flush()
        return await self.settle_file(path, raw, accepted, errors)

    # --- in: deliveries from the router ------------------------------------------------------

    async def _delivered(self, opened: Opened, msg: ParsedMessage) -> None:
        doc = to_zvh(msg)
        self.outbox.write(
            msg.meta.message_id, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
        )
        if doc["type"] == "response":
            self.responses[doc["in_reply_to"]] = doc
            self.response_arrived.set()
            kind = "response" if doc["status"] == "accepted" else "refused"
            why = ", ".join(r["code"] for r in doc["reasons"]) or "ok"
            self.runtime.event(kind, doc["in_reply_to"], f"{doc['status']}: {why}")
        else:
            self.runtime.event(
                "delivered", msg.meta.message_id, f"{doc['type']} from {msg.meta.sender}"
            )

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
