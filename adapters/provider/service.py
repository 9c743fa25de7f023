"""The provider adapter (the EPD side).

In: deliveries from the router (referrals, care transitions, claim responses, the router's
responses) → FHIR JSON files in the outbox. Out: the EPD's files in the inbox -- FHIR JSON or CSV
(docs/adapters/provider.md) -- validated per item, turned into messages with
``MessageHeader.destination`` set where the recipient is known (an assessment outcome → the ZVH
of the case; a care transition → that ZVH and the other provider of a transfer; a claim → the
payer), sealed for the router and sent to the flow's inbound topic.

The claims desk (``adapters.financing``) runs here, for this provider as claimant: it derives the
registration-phase and coordination claims from the case events, claims them per calendar month,
reconciles the payers' answers and escalates gaps and claims unpaid for more than four weeks. Its
state is rebuilt at start from the provider's journal topic (``adapters.provider.journal``).
Time for the desk comes from ``clock`` so tests can move it; message timestamps stay real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Unpack

import orjson

from adapters.common.attempts import AttemptLog, content_key
from adapters.common.batch import current_batch
from adapters.common.inbox import Inbox
from adapters.common.limits import refusal
from adapters.common.runtime import error_document
from adapters.common.service import AdapterService, ServiceOptions, item_error
from adapters.financing.desk import (
    Allocation,
    CareNoticeWriter,
    ClaimHeld,
    ClaimsDesk,
    ClaimToSend,
    Coverage,
    EscalationToRaise,
    NoticeToSend,
    Precondition,
    PreconditionReader,
)
from adapters.financing.payers import PayerDirectory
from adapters.financing.rules import RuleSet, default_rules
from adapters.provider.inputs import (
    DEFAULT_PURPOSE,
    ClaimInput,
    Items,
    Submission,
    parse_csv,
    parse_json,
)
from adapters.provider.journal import Journal
from broker.audit.keystore import TopicKeyStore
from broker.config import Settings
from broker.trust import Opened
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import MessageError
from schemas.flows.assessment import AssessmentOutcome, assessment_message
from schemas.flows.claim import claim_message
from schemas.flows.escalation import escalation_message
from schemas.flows.response import response_from_message
from schemas.flows.transition import CareTransition
from schemas.messaging import (
    MessageMeta,
    ParsedMessage,
    ResponseCode,
    parse_message,
    read_meta,
    validate_fhir,
)
from schemas.vocab import ClaimService, EventCode, TransitionKind

log = logging.getLogger(__name__)
DESK_EVENTS = frozenset(
    {
        EventCode.REFERRAL,
        EventCode.CARE_TRANSITION,
        EventCode.CLAIM_RESPONSE,
        EventCode.RESPONSE,
    }
)


SEND_BATCH = 500
"""At most this many claims due at one tick are sealed under one batch signature."""


class ProviderAdapter(AdapterService):
    """A provider's EPD, with the claims desk that claims for it."""

    def __init__(
        self,
        settings: Settings,
        client: PartyClient,
        outbox_dir: Path,
        *,
        inbox_dir: Path | None = None,
        tick_interval: float = 30.0,
        clock: Callable[[], datetime] | None = None,
        rules: RuleSet | None = None,
        datakeys: TopicKeyStore | None = None,
        preconditions: PreconditionReader | None = None,
        care_notices: CareNoticeWriter | None = None,
        **options: Unpack[ServiceOptions],
    ) -> None:
        # *.xml: the payers' allocation messages (WMO301, AW33, AW35), read by ``preconditions``
        inbox = Inbox(inbox_dir, patterns=("*.json", "*.csv", "*.xml")) if inbox_dir else None
        super().__init__(settings, client, outbox_dir, inbox, **options)
        self.tick_interval = tick_interval
        self.clock = clock or (lambda: datetime.now(UTC))
        party = client.registry.get(client.party_id)
        self.desk = ClaimsDesk(
            client.party_id,
            rules or default_rules(),
            PayerDirectory(client.registry),
            claimant_agb=party.identifiers.agb,
        )
        if datakeys is not None and self.runtime.channel is not None:
            # one store for the journal's keys and the channel's (the same topic and KEK): the
            # runtime follows it, so an erasure reaches the journal's keys without a restart,
            # and a write-back after a broker loss never brings an erased person back
            datakeys = self.runtime.channel
        self.journal = Journal(settings, client, datakeys)
        self.preconditions = preconditions
        self.care_notices = care_notices
        # a broker that lost its topics gets the journal back (docs/erasure.md)
        self.runtime.on_new_epoch = self._write_back_journal
        self.sent = 0
        self.attempts = AttemptLog(client.party_id)
        self._lock = asyncio.Lock()

    # --- in: deliveries from the router ------------------------------------------------------

    async def _delivered(self, opened: Opened, msg: ParsedMessage) -> None:
        # The EPD receives exactly what the router allowed this provider to see, as FHIR JSON.
        self.outbox.write(msg.meta.message_id, pretty_json(msg.bundle))
        self.runtime.event(
            "delivered", msg.meta.message_id, f"{msg.meta.event.value} from {msg.meta.sender}"
        )
        if msg.meta.event is EventCode.RESPONSE:
            self._answered(msg)
        if msg.meta.event in DESK_EVENTS:
            await self._record(msg, outgoing=False)
            if msg.meta.event is not EventCode.RESPONSE:
                batch = current_batch()
                if batch is None:
                    await self.tick()
                else:  # once per batch, after it is settled (issue 19)
                    batch.follow_up = True

    async def _after_batch(self) -> None:
        """The claims desk ticks once per settled batch of deliveries; a failure waits for the
        next tick (the ticker) and never holds up the batch's commit."""
        try:
            await self.tick()
        except Exception as err:
            log.error("claims tick after a delivery batch failed: %s", type(err).__name__)

    def _answered(self, msg: ParsedMessage, *, report: bool = True) -> None:
        """The router's outcome of one of our messages: a refused item sent again is a new
        attempt; a refusal after an acceptance is reported, never taken over it."""
        try:
            r = response_from_message(msg)
        except MessageError:
            return
        if not self.attempts.answered(r.request_id, r.code is ResponseCode.OK) and report:
            self.runtime.event(
                "conflict", r.request_id, "a refusal arrived after the acceptance; accepted kept"
            )

    async def _record(self, msg: ParsedMessage, *, outgoing: bool) -> None:
        """Journal a message the desk uses, then fold it (the journal is what a restart reads).
        For a delivery the journal record is acknowledged with its batch, before the batch's
        offsets are committed (``AdapterRuntime.send_in_batch``)."""
        await self.journal.append(
            self.runtime.send_in_batch,
            {"kind": "message", "outgoing": outgoing, "bundle": msg.bundle},
            msg.subject_bsn(),
        )
        self.desk.apply(msg, outgoing=outgoing)

    async def _record_coverage(self, zvh: str, case: str, coverage: Coverage, bsn: str) -> None:
        await self.journal.append(
            self.runtime.send,
            {
                "kind": "coverage",
                "zvh": zvh,
                "case": case,
                "health_insurer": coverage.health_insurer,
                "care_office": coverage.care_office,
                "municipal_placement": coverage.municipal_placement,
                "wmo_allocation": coverage.wmo_allocation,
                "wlz_allocation": coverage.wlz_allocation,
                "wlz_care_start": coverage.wlz_care_start.isoformat()
                if coverage.wlz_care_start
                else None,
            },
            bsn,
        )
        self.desk.coverage(zvh, case, coverage)

    def _replay(self, record: dict[str, Any]) -> None:
        if record.get("kind") == "coverage":
            self.desk.coverage(
                str(record["zvh"]),
                str(record["case"]),
                Coverage(
                    record.get("health_insurer"),
                    record.get("care_office"),
                    record.get("municipal_placement"),
                    record.get("wmo_allocation"),
                    record.get("wlz_allocation"),
                    date.fromisoformat(record["wlz_care_start"])
                    if record.get("wlz_care_start")
                    else None,
                ),
            )
        elif record.get("kind") == "allocation":
            self.desk.received_allocation(str(record["bsn"]), _allocation_from_record(record))
        elif record.get("kind") == "claim-held":
            # holds it again (ClaimHeld), or finds it sent already (ValueError): the desk
            # sends a held claim when its AW33 and AW35 are known
            with contextlib.suppress(ValueError):
                self._claim_input(
                    _input_from_record(record["input"]), datetime.fromisoformat(record["at"])
                )
        elif record.get("kind") == "message":
            bundle = record["bundle"]
            self.desk.apply(ParsedMessage(bundle, read_meta(bundle)), outgoing=record["outgoing"])

    # --- out: messages from the EPD ----------------------------------------------------------

    async def _send(self, bundle: dict[str, Any], bsn: str | None, event: EventCode) -> str:
        validate_fhir(bundle)  # validate where messages are made: the router can trust the form
        key, value, headers = self.client.seal_message(bundle, bsn)
        await self.runtime.send(topics.inbound_for(event.value).name, key, value, headers)
        self.sent += 1
        return str(bundle["id"])

    def _destinations(self, sub: Submission) -> tuple[str, ...]:
        wanted = list(sub.destinations)
        model = sub.model
        if isinstance(model, AssessmentOutcome):
            wanted.append(model.zvh)
        if isinstance(model, CareTransition):
            case = self.desk.case_of_episode(model.episode_id)
            if case is not None:
                wanted.append(case.zvh)
            if model.kind is TransitionKind.TRANSFER:
                wanted += [p for p in (model.provider, model.previous_provider) if p]
        return tuple(dict.fromkeys(d for d in wanted if d and d != self.party_id))

    async def submit(self, sub: Submission) -> str:
        """Send one validated submission; returns its message id (``MessageError`` when the
        claims desk cannot make the claim)."""
        async with self._lock:
            if isinstance(sub.model, ClaimInput):
                return await self._submit_claim(sub, sub.model)
            event = sub.event
            purpose, basis = DEFAULT_PURPOSE[event]
            message_id = sub.message_id
            if message_id is None:
                # by content: the same row or resource sent again is the same message
                message_id, repeat = self.attempts.identify(submission_key(sub))
                if repeat:
                    self.runtime.event("repeat", message_id, f"{event.value} sent before")
                    return message_id
            meta = MessageMeta(
                message_id=message_id,
                event=event,
                sender=self.party_id,
                timestamp=datetime.now(UTC),
                purpose=sub.purpose or purpose,
                legal_basis=sub.basis or basis,
                destinations=self._destinations(sub),
                basis_detail=sub.detail,
                refers_to=sub.refers_to,  # a correction goes to the original's recipients
                author=sub.acting_person,  # the NEN 7513 user (schemas.acting)
            )
            if isinstance(sub.model, AssessmentOutcome) and sub.coverage is not None:
                a = sub.model
                await self._record_coverage(a.zvh, a.referral_id, sub.coverage, a.person.bsn)
            bundle = sub.flow.to_message(sub.model, meta)
            person = getattr(sub.model, "person", None)
            mid = await self._send(bundle, person.bsn if person else None, event)
            self.attempts.sent(mid)
            if event in (EventCode.ASSESSMENT_OUTCOME, EventCode.CARE_TRANSITION):
                await self._record(parse_message(json.dumps(bundle), full=False), outgoing=True)
            if isinstance(sub.model, CareTransition):
                self._care_notice(sub.model, mid)
        self.runtime.event("sent", mid, f"{event.value} sent")
        await self.tick()
        return mid

    async def _submit_claim(self, sub: Submission, ci: ClaimInput) -> str:
        if sub.coverage is not None:
            case = self.desk.cases.get((ci.zvh, ci.case_id))
            if case is not None and case.person is not None:
                await self._record_coverage(ci.zvh, ci.case_id, sub.coverage, case.person.bsn)
        now = self.clock()
        try:
            send = self._claim_input(ci, now)
        except ClaimHeld:
            # held until the care office's AW33 and AW35 are known: journalled, so a restart
            # holds it again; the desk sends it when released (or escalates it)
            case = self.desk.cases.get((ci.zvh, ci.case_id))
            await self.journal.append(
                self.runtime.send,
                {"kind": "claim-held", "at": now.isoformat(), "input": _input_record(ci)},
                case.person.bsn if case is not None and case.person is not None else None,
            )
            self.runtime.event("held", ci.claim_id, f"claim {ci.claim_id} held")
            return f"held:{ci.claim_id}"
        except ValueError as err:
            raise item_error(sub.where, str(err), "claim") from None
        if ci.payer is not None and ci.payer != send.claim.payer.party_id:
            raise item_error(
                sub.where,
                f"the financing rules send this claim to {send.claim.payer.party_id}, "
                f"not {ci.payer}",
                "wrong-payer",
            )
        return await self._send_claim(send)

    def _claim_input(self, ci: ClaimInput, now: datetime) -> ClaimToSend:
        return self.desk.claim_for(
            ci.zvh,
            ci.case_id,
            ci.claim_id,
            ci.service,
            ci.period_start,
            ci.period_end,
            ci.quantity,
            ci.unit_price_cents,
            now,
            allocation=ci.allocation,
        )

    async def _send_claim(self, c: ClaimToSend) -> str:
        meta = replace(c.meta, timestamp=datetime.now(UTC))
        bundle = claim_message(c.claim, meta)
        mid = await self._send(bundle, c.claim.person.bsn, EventCode.CLAIM)
        await self._record(parse_message(json.dumps(bundle), full=False), outgoing=True)
        self.runtime.event(
            "sent",
            mid,
            f"claim {c.claim.claim_id} ({c.claim.service.value}) to {c.claim.payer.party_id}",
        )
        return mid

    async def _send_claims(self, due: Sequence[ClaimToSend]) -> int:
        """Send the claims due now, ``SEND_BATCH`` at a time under one batch signature
        (docs/trust.md 3.4.1), each journalled right after it is sent; returns how many were
        sent. A claim that fails is logged and tried again at the next tick."""
        ready: list[tuple[ClaimToSend, dict[str, Any]]] = []
        for c in due:
            try:
                bundle = claim_message(c.claim, replace(c.meta, timestamp=datetime.now(UTC)))
                validate_fhir(bundle)  # validate where messages are made
                ready.append((c, bundle))
            except Exception as err:
                log.error("claim %s not sent: %s", c.claim.claim_id, type(err).__name__)
        topic = topics.inbound_for(EventCode.CLAIM.value).name
        sent = 0
        for start in range(0, len(ready), SEND_BATCH):
            chunk = ready[start : start + SEND_BATCH]
            try:
                sealed = self.client.seal_messages([(b, c.claim.person.bsn) for c, b in chunk])
            except Exception as err:
                log.error("%d claim(s) not sealed: %s", len(chunk), type(err).__name__)
                continue
            for (c, bundle), (key, value, headers) in zip(chunk, sealed, strict=True):
                try:
                    await self.runtime.send(topic, key, value, headers)
                    self.sent += 1
                    await self._record(parse_message(json.dumps(bundle), full=False), outgoing=True)
                except Exception as err:
                    log.error("claim %s not sent: %s", c.claim.claim_id, type(err).__name__)
                    continue
                self.runtime.event(
                    "sent",
                    str(bundle["id"]),
                    f"claim {c.claim.claim_id} ({c.claim.service.value}) to "
                    f"{c.claim.payer.party_id}",
                )
                sent += 1
        return sent

    async def _raise(self, e: EscalationToRaise) -> str:
        meta = replace(e.meta, timestamp=datetime.now(UTC))
        bundle = escalation_message(e.escalation, meta)
        mid = await self._send(bundle, None, EventCode.ESCALATION)
        await self._record(parse_message(json.dumps(bundle), full=False), outgoing=True)
        self.runtime.event(
            "sent", mid, f"escalation {e.escalation.escalation_id} ({e.escalation.reason.value})"
        )
        return mid

    async def _notify(self, n: NoticeToSend) -> str:
        """Send the payer's inclusion notice and journal it (so it is sent once)."""
        meta = replace(n.meta, timestamp=datetime.now(UTC))
        bundle = assessment_message(n.outcome, meta)
        mid = await self._send(bundle, n.outcome.person.bsn, EventCode.ASSESSMENT_OUTCOME)
        await self._record(parse_message(json.dumps(bundle), full=False), outgoing=True)
        self.runtime.event("sent", mid, f"inclusion notice to {n.payer}")
        return mid

    async def tick(self) -> tuple[int, int]:
        """Make and send what the desk finds due now; returns (claims, escalations) sent."""
        async with self._lock:
            work = self.desk.due(self.clock())
            escalations = 0
            claims = await self._send_claims(work.claims)
            for n in work.notices:
                try:
                    await self._notify(n)
                except Exception as err:
                    log.error("inclusion notice to %s not sent: %s", n.payer, type(err).__name__)
            for e in work.escalations:
                try:
                    await self._raise(e)
                    escalations += 1
                except Exception as err:
                    log.error(
                        "escalation %s not sent: %s", e.escalation.escalation_id, type(err).__name__
                    )
            return claims, escalations

    # --- the inbox ---------------------------------------------------------------------------

    async def process_file(self, path: Path) -> dict[str, Any]:
        """Process one claimed inbox file; returns the receipt or the file's error report."""
        raw = path.read_bytes()
        if path.suffix.lower() == ".xml":
            return await self._allocation_file(path, raw)
        try:
            items: Items = (
                parse_csv(raw, self.party_id, self.limits)
                if path.suffix.lower() == ".csv"
                else parse_json(raw, self.party_id, self.limits)
            )
        except MessageError as err:
            return await self.refuse_file(path, raw, err)
        accepted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for where, item in items:
            try:
                if isinstance(item, MessageError):
                    raise item
                mid = await self.submit(item)
                accepted.append({"item": where, "event": item.event.value, "message_id": mid})
            except MessageError as err:
                self.refused += 1
                errors.append({"item": where, **error_document(err, path.name)})
        return await self.settle_file(path, raw, accepted, errors, items_refused="items-refused")

    async def _allocation_file(self, path: Path, raw: bytes) -> dict[str, Any]:
        """A payer's allocation message (iWmo WMO301; iWlz AW33/AW35) as the provider received
        it: every allocation in it is journalled and given to the claims desk, which then
        sends the claims it held for want of it (citing its number). The file is refused
        whole -- ``failed/`` with its reason, dead-lettered, audited -- when it cannot be read,
        is not such a message, or is addressed to another provider (Ontvanger)."""
        if self.preconditions is None:
            return await self.refuse_file(
                path, raw, refusal("unsupported", "this provider reads no payer messages")
            )
        try:
            found = self.preconditions(raw)
        except MessageError as err:
            return await self.refuse_file(path, raw, err)
        agb = self.desk.claimant_agb
        if agb is None or any(p.receiver != agb for p in found):
            return await self.refuse_file(
                path,
                raw,
                refusal(
                    "wrong-receiver",
                    "the message concerns another provider (its AGB code is not ours)",
                    "Header/Ontvanger",
                    "value",
                ),
            )
        accepted: list[dict[str, Any]] = []
        async with self._lock:
            for n, p in enumerate(found, start=1):
                await self._record_allocation(p)
                accepted.append(
                    {
                        "item": f"{p.source}[{n}]",
                        "event": "allocation",
                        "number": p.allocation.number,
                    }
                )
                self.runtime.event(
                    "received", None, f"{p.source} allocation {p.allocation.number} recorded"
                )
        await self.tick()
        return await self.settle_file(path, raw, accepted, [], items_refused="items-refused")

    def _care_notice(self, t: CareTransition, message_id: str) -> None:
        """The provider's own notice to a payer of a care transition it sent, where a payer's
        placement asks for one (DJI's FZ821: FZ823 at the start of care, FZ825 at its end;
        docs/adapters/payers.md), written to the outbox for the provider's channel to VECOZO,
        as ``fz-<transition id>.xml``."""
        agb = self.desk.claimant_agb
        if self.care_notices is None or agb is None:
            return
        day = t.effective_on
        placements = [
            a
            for a in self.desk.received.get(t.person.bsn, ())
            if a.kind == "fz821" and a.start <= day and (a.end is None or day <= a.end)
        ]
        if not placements:
            return
        document = self.care_notices(t, placements[-1], agb, message_id)
        if document is not None and self.outbox.write(f"fz-{t.transition_id}", document, ".xml"):
            self.runtime.event("notice", message_id, f"forensic care notice ({t.kind.value})")

    async def _record_allocation(self, p: Precondition) -> None:
        a = p.allocation
        await self.journal.append(
            self.runtime.send,
            {
                "kind": "allocation",
                "bsn": p.bsn,
                "source": p.source,
                "allocation": a.kind,
                "number": a.number,
                "payer": a.payer,
                "start": a.start.isoformat(),
                "end": a.end.isoformat() if a.end else None,
            },
            p.bsn,
        )
        self.desk.received_allocation(p.bsn, a)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                await self.tick()
            except Exception as err:
                log.error("claims tick failed: %s", type(err).__name__)

    # --- lifecycle -----------------------------------------------------------------------------

    def load_responses(self) -> int:
        """Rebuild the attempt log from the router's responses already in the outbox (they are
        delivered there): after a restart a row refused before is still known as refused, so
        the same row sent again after its cause was fixed is a new attempt and is routed again,
        and an accepted row is still not sent twice (issue 20 point 5). Returns how many."""
        n = 0
        for path in sorted(self.outbox.directory.glob("*.json")):
            if path.name.endswith(".status.json") or not path.is_file() or path.is_symlink():
                continue
            try:
                raw = path.read_bytes()
                if b'"response"' not in raw:  # cheap: most of the outbox is other flows
                    continue
                msg = parse_message(raw, full=False)
            except (OSError, MessageError):
                continue
            if msg.meta.event is EventCode.RESPONSE:
                self._answered(msg, report=False)
                n += 1
        return n

    async def _write_back_journal(self) -> None:
        n = await self.journal.write_back(self.runtime.restore_send)
        log.info("%s: %d journal records written back after the broker's loss", self.party_id, n)

    async def start(self) -> None:
        answered = self.load_responses()
        log.info("%s: %d responses read back from the outbox", self.party_id, answered)
        await self.journal.ensure()
        replayed = await self.journal.read(self._replay)
        log.info("%s: claims desk rebuilt from %d journal records", self.party_id, replayed)
        await super().start()
        self.spawn(self._ticker(), "claims")


def pretty_json(doc: Any) -> bytes:
    """``json.dumps(doc, indent=2, ensure_ascii=False)`` and a newline, as UTF-8, written by
    orjson: the standard library's indenting encoder is pure Python and was the provider's
    largest cost per delivery (issue 19). A value orjson does not write (an integer beyond 64
    bits) falls back to the standard library, so every message is still written."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    except (TypeError, orjson.JSONEncodeError):
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _input_record(ci: ClaimInput) -> dict[str, Any]:
    """A claim input as a journal record (dates as text)."""
    return {
        k: (v.isoformat() if isinstance(v, date) else v.value if isinstance(v, Enum) else v)
        for k, v in vars(ci).items()
    }


def _allocation_from_record(r: dict[str, Any]) -> Allocation:
    return Allocation(
        r["allocation"],
        str(r["number"]),
        str(r["payer"]),
        date.fromisoformat(r["start"]),
        date.fromisoformat(r["end"]) if r.get("end") else None,
    )


def _input_from_record(r: dict[str, Any]) -> ClaimInput:
    return ClaimInput(
        claim_id=r["claim_id"],
        zvh=r["zvh"],
        case_id=r["case_id"],
        service=ClaimService(r["service"]),
        period_start=date.fromisoformat(r["period_start"]),
        period_end=date.fromisoformat(r["period_end"]),
        quantity=int(r["quantity"]),
        unit_price_cents=int(r["unit_price_cents"]),
        payer=r.get("payer"),
        allocation=r.get("allocation"),
    )


def submission_key(sub: Submission) -> str:
    """What makes two submissions the same document: the flow, the business content, and how
    it is to travel (purpose, basis, destinations); not where it came from."""
    model = sub.model
    content = model.model_dump(mode="json") if hasattr(model, "model_dump") else repr(model)
    return content_key(
        {
            "event": sub.event.value,
            "model": content,
            "purpose": sub.purpose.value if sub.purpose else None,
            "basis": sub.basis.value if sub.basis else None,
            "destinations": sorted(sub.destinations),
        }
    )
