"""The municipality's adapter (issue 15 point 3). A municipality pays Wmo claims, so the adapter is
the payer adapter (iWmo declarations out, answers in) plus the municipality's part in the chain:

* in: a **referral notice** from the ZVH about one of its residents (identity, that there is a
  referral, its case number and region; the policy withholds the risk assessment, legal titles
  and the ZVH's workflow) becomes a ``referral-notice`` document in the outbox;
* out (JSON documents in the inbox, ``adapters/municipality/documents.py``): what it knows about
  a case it was told of, back to the ZVH (``information``); a case it refers to the ZVH on its
  public task (``referral``); a stuck case for the national coordination point (``escalation``).

Which cases it knows is rebuilt at start by replaying its own ``out.<party>`` topic (no
database). Information on, or an escalation of, a case it was never told of (nor referred
itself) is refused per item (``unknown-case``), dead-lettered and reported, never sent.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Unpack

from pydantic import ValidationError

from adapters.common.inbox import Inbox
from adapters.common.runtime import error_document
from adapters.common.service import ServiceOptions, item_error
from adapters.financing.desk import ESCALATION_TASK
from adapters.municipality.documents import (
    Information,
    MunicipalityEscalation,
    MunicipalityReferral,
    parse_bytes,
)
from adapters.payer.service import PayerAdapter
from broker.config import Settings
from broker.trust import Opened, TrustError
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import MessageError
from schemas.flows.common import CASE_SYSTEM, Person, one, person_from_patient
from schemas.flows.escalation import Escalation, escalation_message
from schemas.flows.referral import (
    EXT_REGION,
    REGION_SYSTEM,
    Referral,
    referral_from_message,
    referral_message,
)
from schemas.messaging import (
    BasisDetail,
    MessageMeta,
    ParsedMessage,
    category_of,
    parse_message,
    validate_fhir,
)
from schemas.vocab import (
    DataCategory,
    EscalationReason,
    EventCode,
    LegalBasis,
    PartyRole,
    PurposeOfUse,
    SignalSource,
)

NAMESPACE = uuid.UUID("0b7c2f7e-8a51-5d1e-b3c4-6d756e696369")
PUBLIC_TASK_CITATION = "Wmo 2015"
"""The task the municipality refers and informs on (the policy's referral → zvh rule)."""

CaseKey = tuple[str, str]  # (zvh party, case number)


@dataclass(frozen=True)
class KnownCase:
    """A case the municipality was told of (a notice) or brought itself (a referral)."""

    zvh: str
    case: str
    region: str
    person: Person
    registered_on: date
    notified: bool  # True: from a ZVH notice; False: the municipality's own referral


def notice_of(msg: ParsedMessage) -> KnownCase:
    """Read a referral notice as delivered to a municipality (minimised: no Task, so the ZVH
    comes from the case identifier's system); ``MessageError`` when it cannot be read."""
    sr = one(msg, "ServiceRequest")
    ident = sr.first("identifier")
    system = ident.string("system")
    if not system.startswith(CASE_SYSTEM + "/"):
        raise ident.error("system", "value", f"must be {CASE_SYSTEM}/<zvh>", "case")
    region = sr.req_extension(EXT_REGION).coding_code("valueCoding", REGION_SYSTEM)
    return KnownCase(
        zvh=system.removeprefix(CASE_SYSTEM + "/"),
        case=ident.string("value"),
        region=region,
        person=person_from_patient(one(msg, "Patient").data),
        registered_on=sr.date("authoredOn"),
        notified=True,
    )


class MunicipalityAdapter(PayerAdapter):
    """A municipality's system: the payer's files, and its part in the registration phase."""

    poll_task = "municipality"

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
        super().__init__(settings, client, inbox_dir, outbox_dir, clock=clock, **options)
        if self.role is not PartyRole.MUNICIPALITY:
            raise ValueError(f"party {self.party_id} is no municipality")
        # answers in the payer's format, and the municipality's own JSON documents
        self.inbox = Inbox(inbox_dir, patterns=(*self.format.answer_patterns, "*.json"))
        self.cases: dict[CaseKey, KnownCase] = {}
        self.name = client.registry.get(client.party_id).name
        self.sent_documents = 0
        # escalations sent: reference -> (reason, the day the case got stuck)
        self.escalated: dict[str, tuple[EscalationReason, date]] = {}

    # --- in: notices --------------------------------------------------------------------------

    def _remember_case(self, msg: ParsedMessage, *, outgoing: bool) -> KnownCase | None:
        try:
            if not outgoing:
                known = notice_of(msg)
            else:
                ref = _referral_of(msg)
                if ref is None:
                    return None
                known = KnownCase(
                    ref.zvh, ref.referral_id, ref.region, ref.person, ref.registered_on, False
                )
        except MessageError:
            return None
        self.cases.setdefault((known.zvh, known.case), known)
        return known

    def _replayed(self, record: Any) -> None:
        super()._replayed(record)
        try:
            opened = self.client.open(record.key, record.value or b"", list(record.headers or ()))
            msg = parse_message(opened.payload, full=False)
        except (TrustError, MessageError):
            return
        if msg.meta.event is EventCode.REFERRAL:
            self._remember_case(msg, outgoing=False)

    async def _delivered(self, opened: Opened, msg: ParsedMessage) -> None:
        m = msg.meta
        if m.event is not EventCode.REFERRAL:
            await super()._delivered(opened, msg)
            return
        known = self._remember_case(msg, outgoing=False)
        if known is None:
            await self.runtime.dead_letter(
                opened.payload, None, "referral-notice", "unreadable", source="notice"
            )
            self.runtime.event("invalid", m.message_id, "referral notice unreadable")
            return
        p = known.person
        record = {
            "type": "referral-notice",
            "message_id": m.message_id,
            "from": m.sender,
            "zvh": known.zvh,
            "case": known.case,
            "region": known.region,
            "registered_on": known.registered_on.isoformat(),
            # what the router let through (data categories of the delivered entries)
            "categories": sorted(
                {c.value for e in msg.bundle.get("entry", [])[1:] if (c := _category(e))}
            ),
            "person": {
                "bsn": p.bsn,
                "family_name": p.family_name,
                "birth_date": p.birth_date.isoformat(),
            },
        }
        self.outbox.write(m.message_id, (json.dumps(record, indent=2) + "\n").encode())
        self.runtime.event("delivered", m.message_id, f"referral notice {known.case}")

    # --- out: the municipality's documents ----------------------------------------------------

    def _message(
        self, doc: Information | MunicipalityReferral | MunicipalityEscalation, message_id: str
    ) -> tuple[dict[str, Any], str | None, EventCode, str]:
        """The FHIR message of one document, its person's BSN, event and a note for the log."""
        if isinstance(doc, MunicipalityEscalation):
            known = self.cases.get((doc.zvh, doc.case))
            if known is None:
                raise item_error("case", "no case with this number is known", "unknown-case")
            esc = Escalation(
                escalation_id=doc.reference,
                raised_by=self.party_id,
                raised_at=datetime.now(UTC),
                zvh=doc.zvh,
                referral_id=doc.case,
                reason=doc.reason,
                stuck_since=doc.stuck_since,
                explanation=doc.explanation,
            )
            meta = MessageMeta.new(
                EventCode.ESCALATION,
                self.party_id,
                PurposeOfUse.ESCALATION,
                LegalBasis.PUBLIC_TASK,
                basis_detail=BasisDetail(citation=ESCALATION_TASK),
                message_id=message_id,
            )
            note = f"escalation {doc.reference} ({doc.reason.value})"
            return escalation_message(esc, meta), None, EventCode.ESCALATION, note
        if isinstance(doc, Information):
            known = self.cases.get((doc.zvh, doc.case))
            if known is None or not known.notified:
                raise item_error("case", "no notice of this case was received", "unknown-case")
            ref = self._referral(doc.zvh, doc.case, known.region, known.person, doc.information)
            note = f"information on {doc.case}"
        else:
            ref = self._referral(doc.zvh, doc.reference, doc.region, doc.person, doc.signal)
            ref = ref.model_copy(
                update={"registered_on": doc.registered_on, "care_avoider": doc.care_avoider}
            )
            note = f"referral {doc.reference}"
        meta = MessageMeta.new(
            EventCode.REFERRAL,
            self.party_id,
            PurposeOfUse.COC,
            LegalBasis.PUBLIC_TASK,
            destinations=(doc.zvh,),
            basis_detail=BasisDetail(citation=PUBLIC_TASK_CITATION),
            message_id=message_id,
        )
        return referral_message(ref, meta), ref.person.bsn, EventCode.REFERRAL, note

    def _referral(self, zvh: str, case: str, region: str, person: Person, text: str) -> Referral:
        return Referral(
            referral_id=case,
            zvh=zvh,
            region=region,
            registered_on=self.clock().astimezone(UTC).date(),
            person=person,
            signaller_name=self.name,
            signaller_source=SignalSource.MUNICIPALITY,
            signaller_party=self.party_id,
            signal=text,
        )

    async def _send_document(
        self, bundle: dict[str, Any], bsn: str | None, event: EventCode
    ) -> None:
        validate_fhir(bundle)  # validate where messages are made
        key, value, headers = self.client.seal_message(bundle, bsn)
        await self.runtime.send(topics.inbound_for(event.value).name, key, value, headers)
        self.sent_documents += 1

    async def process_file(self, path: Path) -> dict[str, Any]:
        """An answer file in the payer's format, or a JSON file of the municipality's
        documents; returns the receipt (or the file's error report)."""
        if path.suffix.lower() != ".json":
            return await super().process_file(path)
        raw = path.read_bytes()
        try:
            items = parse_bytes(raw)
        except MessageError as err:
            return await self.refuse_file(path, raw, err)
        digest = hashlib.sha256(raw).hexdigest()
        accepted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, item in items:
            try:
                if isinstance(item, MessageError):
                    raise item
                mid = str(uuid.uuid5(NAMESPACE, f"{self.party_id}/{path.name}/{digest}/{index}"))
                try:
                    bundle, bsn, event, note = self._message(item, mid)
                except ValidationError as err:  # a model rule (e.g. stuck_since ahead)
                    first = err.errors()[0]
                    raise item_error(
                        ".".join(str(x) for x in first.get("loc", ())) or "document",
                        str(first.get("msg")),
                        str(first.get("type")),
                    ) from None
                await self._send_document(bundle, bsn, event)
                if isinstance(item, MunicipalityEscalation):
                    self.escalated[item.reference] = (item.reason, item.stuck_since)
                if isinstance(item, MunicipalityReferral):
                    self._remember_case(
                        parse_message(json.dumps(bundle), full=False), outgoing=True
                    )
                self.runtime.event("sent", mid, note)
                accepted.append({"index": index, "kind": item.kind, "message_id": mid})
            except MessageError as err:
                self.refused += 1
                errors.append({"index": index, **error_document(err, path.name)})
        return await self.settle_file(
            path, raw, accepted, errors, items_refused="municipality-items-refused"
        )


def _category(entry: Any) -> DataCategory | None:
    resource = entry.get("resource") if isinstance(entry, dict) else None
    return category_of(resource) if isinstance(resource, dict) else None


def _referral_of(msg: ParsedMessage) -> Referral | None:
    try:
        return referral_from_message(msg)
    except MessageError:
        return None
