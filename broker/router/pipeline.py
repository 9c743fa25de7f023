"""The routing pipeline as a pure function of (record, state, clock) → (records, facts).

Order of checks, each refusal going back to the sender when it can be told:
envelope headers → known sender → signature and key validity → decryption → replay window and
de-duplication → FHIR messaging rules → sender authorised for the event → recipients → per
recipient: policy decision (purpose × legal basis × consent × categories) → allow-list
projection → sealed for the recipient and signed by the router.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from broker.audit import controls_for
from broker.policy import (
    ConsentView,
    Decision,
    DecisionRequest,
    Policy,
    contains_personal_data,
    decide,
    project,
)
from broker.router.facts import Fact, FactKind, event_code
from broker.router.recipients import Recipient, Unroutable, resolve, sender_may_send
from broker.router.records import Incoming, Outgoing, header
from broker.trust import (
    EnvelopeMeta,
    Keyring,
    PartyKeys,
    PartyRegistry,
    Pseudonymiser,
    ReplayGuard,
    Sealed,
    TrustError,
    Verdict,
    is_valid_bsn,
    open_sealed,
    read_envelope,
    seal_for,
    sign_batch,
)
from schemas import topics
from schemas.errors import Issue, MessageError
from schemas.flows.common import case_of
from schemas.flows.consent import consent_from_message
from schemas.flows.response import MessageResponse, response_message
from schemas.messaging import MessageMeta, ParsedMessage, ResponseCode, dumps, parse_message
from schemas.vocab import EventCode, PartyRole

log = logging.getLogger(__name__)

AUDIT_DOMAIN = "audit"  # pseudonym domain of the audit log (compliance officers translate a BSN)
ROUTER_DOMAIN = "router"  # pseudonym domain of the consent view


@dataclass
class RouteResult:
    records: list[Outgoing] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)


@dataclass
class _Batch:
    """What ``route_batch`` settles once the batch is routed: records to sign under one batch
    signature, responses to remember once signed, duplicates of messages in the same batch."""

    unsigned: list[tuple[RouteResult, int, Sealed]] = field(default_factory=list)
    replies: list[tuple[str, RouteResult, int]] = field(default_factory=list)
    repeats: list[tuple[str, RouteResult]] = field(default_factory=list)

    def mark(self) -> tuple[int, int, int]:
        return len(self.unsigned), len(self.replies), len(self.repeats)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Forget what a record that failed (a bug) left: its result is thrown away."""
        del self.unsigned[mark[0] :], self.replies[mark[1] :], self.repeats[mark[2] :]


@dataclass
class RouterState:
    """Everything the router knows; rebuilt from topics at start (consents) or config."""

    registry: PartyRegistry
    keys: PartyKeys  # the router's current keys (it signs with these)
    keyring: Keyring  # all router keys, for decrypting messages sealed to an older key
    pseudonyms: Pseudonymiser
    policy: Policy
    consents: ConsentView
    replay: ReplayGuard
    # fhir.resources validation of every message: see Settings.router_full_validation
    full_validation: bool = False


class Refusal(Exception):
    """Internal: refuse the whole message with a reason, an issue and a target topic."""

    def __init__(
        self, reason: str, detail: str, topic: str, *, path: str = "", code: str = "security"
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.topic = topic
        self.issue = Issue(path, code, detail, reason)
        super().__init__(detail)


class Pipeline:
    def __init__(self, state: RouterState) -> None:
        self.state = state
        self.router_id = state.keys.party_id
        self._batch: _Batch | None = None  # set while route_batch runs: sign once at its end

    # --- helpers -------------------------------------------------------------------------------

    def _person(self, bsn: str | None, domain: str) -> str | None:
        return self.state.pseudonyms.pseudonym(domain, bsn) if bsn else None

    def _seal_for(
        self,
        payload: bytes,
        party_id: str,
        event: str,
        message_id: str,
        pseudonym: str,
        now: datetime,
    ) -> Sealed:
        """Sealed for ``party_id``; inside ``route_batch`` left unsigned for the batch signature."""
        return seal_for(
            payload,
            self.state.keys,
            self.state.registry,
            party_id,
            event=event,
            message_id=message_id,
            pseudonym=pseudonym,
            timestamp=now,
            sign=self._batch is None,
        )

    def _emit(self, result: RouteResult, topic: str, sealed: Sealed) -> int:
        """Add a sealed record to ``result``; its index (it is replaced once signed)."""
        result.records.append(Outgoing(topic, sealed.key, sealed.value, list(sealed.headers)))
        index = len(result.records) - 1
        if self._batch is not None and sealed.to_sign:
            self._batch.unsigned.append((result, index, sealed))
        return index

    def _remember(self, replay_id: str, result: RouteResult, index: int) -> None:
        """Mark the message as routed, with its response to repeat for a duplicate. In a batch
        the id is marked at once (a duplicate later in the same batch must be caught) and the
        response kept once it is signed."""
        if self._batch is None:
            self.state.replay.remember(replay_id, pack(result.records[index]))
        else:
            self.state.replay.remember(replay_id)
            self._batch.replies.append((replay_id, result, index))

    def _reply(
        self,
        result: RouteResult,
        rec_sender: str,
        request_id: str,
        code: ResponseCode,
        issues: tuple[Issue, ...],
        bsn: str | None,
        now: datetime,
    ) -> int | None:
        """A response message to the sender on its own outbound topic, sealed for it; the
        index of its record in ``result`` (None when the sender cannot be told)."""
        try:
            party = self.state.registry.get(rec_sender)
        except (KeyError, TrustError):
            return None
        bundle = response_message(
            MessageResponse(request_id, code, issues), self.router_id, rec_sender, now=now
        )
        pseudo = self._person(bsn, rec_sender) or "none"
        sealed = self._seal_for(
            dumps(bundle), rec_sender, EventCode.RESPONSE.value, bundle["id"], pseudo, now
        )
        return self._emit(result, party.outbound_topic, sealed)

    @staticmethod
    def _parked(
        rec: Incoming, topic: str, reason: str, detail: str, sender: str | None
    ) -> Outgoing:
        """The refused record as it came (still encrypted), with the reason in headers."""
        headers = [h for h in rec.headers if h[0].startswith("kb-") or h[0] == "content-type"]
        headers += [
            ("kb-reason", reason.encode()),
            ("kb-detail", detail.encode()[:1000]),
            ("kb-source-topic", rec.topic.encode()),
            ("kb-refused-at", datetime.now(UTC).isoformat().encode()),
        ]
        return Outgoing(topic, (sender or "unknown").encode(), rec.value, headers)

    def internal_error(
        self, rec: Incoming, err: BaseException, now: datetime | None = None
    ) -> RouteResult:
        """A record the pipeline failed on (a bug): park it with its reason instead of looping."""
        now = now or datetime.now(UTC)
        detail = f"internal error: {type(err).__name__}"
        sender = header(rec.headers, "kb-sender")
        return RouteResult(
            records=[self._parked(rec, topics.DEAD_LETTER.name, "internal-error", detail, sender)],
            facts=[
                Fact(
                    FactKind.REFUSAL,
                    now,
                    header(rec.headers, "kb-id"),
                    event_code(header(rec.headers, "kb-event")),
                    sender,
                    "internal-error",
                    detail,
                    topic=topics.DEAD_LETTER.name,
                )
            ],
        )

    # --- the path --------------------------------------------------------------------------------

    def route_batch(
        self,
        recs: list[Incoming],
        now: datetime | None = None,
        on_error: Callable[[Incoming, BaseException], None] | None = None,
    ) -> list[RouteResult]:
        """Route a fetched batch, one result per record, in order, with every record the router
        seals in it signed at once (one Ed25519 signature over a Merkle root, each record with
        its proof: see ``docs/trust.md``) instead of one signature per record.

        A record the pipeline fails on (a bug) becomes an ``internal_error`` result, reported to
        ``on_error``, so one bad record never holds up its batch.
        """
        batch = _Batch()
        results: list[RouteResult] = []
        self._batch = batch
        try:
            for rec in recs:
                mark = batch.mark()
                try:
                    results.append(self.route(rec, now))
                except Exception as err:  # a bug: parked with its reason, never looped
                    batch.rollback(mark)
                    if on_error is not None:
                        on_error(rec, err)
                    results.append(self.internal_error(rec, err, now))
        finally:
            self._batch = None
        if batch.unsigned:
            signed = sign_batch([sealed for _, _, sealed in batch.unsigned], self.state.keys)
            for (result, index, _), s in zip(batch.unsigned, signed, strict=True):
                topic = result.records[index].topic
                result.records[index] = Outgoing(topic, s.key, s.value, list(s.headers))
        for replay_id, result, index in batch.replies:
            self.state.replay.remember(replay_id, pack(result.records[index]))
        for replay_id, result in batch.repeats:  # duplicates of messages in this same batch
            original = self.state.replay.response_for(replay_id)
            if original is not None:
                result.records.append(unpack(original))
        return results

    def route(self, rec: Incoming, now: datetime | None = None) -> RouteResult:
        now = now or datetime.now(UTC)
        result = RouteResult()
        env: EnvelopeMeta | None = None
        msg: ParsedMessage | None = None
        authentic = False  # only verified messages may enter the replay cache
        try:
            try:
                env = read_envelope(rec.key, rec.headers)
            except TrustError as e:
                raise Refusal(e.reason, str(e), topics.DEAD_LETTER.name) from None
            try:
                sender = self.state.registry.get(env.sender)
            except (KeyError, TrustError):
                raise Refusal(
                    "unknown-sender",
                    f"sender {env.sender!r} is not registered",
                    topics.REJECTED.name,
                ) from None
            try:
                opened = open_sealed(
                    rec.key,
                    rec.value,
                    rec.headers,
                    registry=self.state.registry,
                    keyring=self.state.keyring,
                    now=now,
                    max_age=self.state.replay.window,
                )
            except TrustError as e:
                raise Refusal(e.reason, str(e), topics.REJECTED.name) from None
            authentic = True
            # de-duplicate per sender: one party cannot claim another's message id
            verdict = self.state.replay.check(env.replay_id, env.timestamp, now)
            if verdict is Verdict.DUPLICATE:
                return self._duplicate(env, now)
            if verdict is Verdict.STALE:
                raise Refusal(
                    "stale", "message is older than the replay window", topics.REJECTED.name
                )
            if verdict is Verdict.FUTURE:
                raise Refusal(
                    "future-timestamp", "message timestamp is in the future", topics.REJECTED.name
                )
            try:
                msg = parse_message(opened.payload, full=self.state.full_validation)
            except MessageError as e:
                raise Refusal(
                    e.reason, str(e), topics.DEAD_LETTER.name, path=e.issues[0].path, code="invalid"
                ) from None
            m = msg.meta
            if (m.message_id, m.sender, m.event.value) != (env.message_id, env.sender, env.event):
                raise Refusal(
                    "envelope-mismatch",
                    "message id, sender or event differ between envelope and MessageHeader",
                    topics.REJECTED.name,
                )
            if not sender_may_send(self.state.policy, sender.role, m.event):
                raise Refusal(
                    "sender-not-authorised",
                    f"a {sender.role.value} may not send {m.event.value} messages",
                    topics.REJECTED.name,
                )
            self._check_controller(m, sender)
            bsn = msg.subject_bsn()
            if bsn is not None and not is_valid_bsn(bsn):  # it could not be pseudonymised
                raise Refusal(
                    "invalid-bsn",
                    "the Patient's BSN is not 8 or 9 digits passing the eleven test",
                    topics.DEAD_LETTER.name,
                    path="Patient.identifier",
                    code="invalid",
                )
            if m.event is EventCode.CONSENT:
                self._consent(rec, msg, sender.role, now, result)
            else:
                self._deliver(rec, msg, sender.role, now, result)
        except Refusal as r:
            self._refuse(rec, env, msg, r, now, result, authentic)
        return result

    def _check_controller(self, m: MessageMeta, sender: Any) -> None:
        """The controller a message names (``MessageHeader.responsible``) must be a registry
        party, and the sender itself or a party the registry lets it process for (AVG art. 28;
        a ZVH processes for its covenant partners, issue 16 §2)."""
        if m.controller is None or m.controller == sender.id:
            return
        try:
            self.state.registry.get(m.controller)
        except (KeyError, TrustError):
            raise Refusal(
                "unknown-controller",
                "the controller named in MessageHeader.responsible is not a registered party",
                topics.REJECTED.name,
                path="MessageHeader.responsible",
                code="security",
            ) from None
        if m.controller not in sender.processes_for:
            raise Refusal(
                "controller-not-represented",
                f"{sender.id} does not process for the controller {m.controller} "
                "(registry: processes_for)",
                topics.REJECTED.name,
                path="MessageHeader.responsible",
                code="security",
            )

    def _refuse(
        self,
        rec: Incoming,
        env: EnvelopeMeta | None,
        msg: ParsedMessage | None,
        r: Refusal,
        now: datetime,
        result: RouteResult,
        authentic: bool,
    ) -> None:
        sender = env.sender if env else None
        result.records.append(self._parked(rec, r.topic, r.reason, r.detail, sender))
        bsn = _subject_bsn(msg) if msg else None
        if env is not None and r.reason not in ("unknown-sender",):
            reply = self._reply(
                result, env.sender, env.message_id, ResponseCode.FATAL_ERROR, (r.issue,), bsn, now
            )
            if reply is not None and authentic:
                self._remember(env.replay_id, result, reply)
        result.facts.append(
            Fact(
                FactKind.REFUSAL,
                now,
                env.message_id if env else None,
                event_code(env.event) if env else None,
                sender,
                r.reason,
                r.detail,
                person=self._person(bsn, AUDIT_DOMAIN),
                topic=r.topic,
            )
        )

    def _duplicate(self, env: EnvelopeMeta, now: datetime) -> RouteResult:
        result = RouteResult()
        original = self.state.replay.response_for(env.replay_id)
        if original is not None:
            # Repeat the original response, sealed and signed as it was (reliable messaging:
            # a response that was lost is sent again).
            result.records.append(unpack(original))
        elif self._batch is not None and any(r[0] == env.replay_id for r in self._batch.replies):
            self._batch.repeats.append((env.replay_id, result))  # signed at the batch's end
        result.facts.append(
            Fact(
                FactKind.DUPLICATE,
                now,
                env.message_id,
                event_code(env.event),
                env.sender,
                "duplicate",
                "already routed; original response repeated",
            )
        )
        return result

    def _consent(
        self, rec: Incoming, msg: ParsedMessage, role: PartyRole, now: datetime, result: RouteResult
    ) -> None:
        try:
            record = consent_from_message(msg)
        except MessageError as e:
            raise Refusal(
                e.reason, str(e), topics.DEAD_LETTER.name, path=e.issues[0].path, code="invalid"
            ) from None
        if record.recorded_by != msg.meta.sender:
            raise Refusal(
                "consent-recorder-mismatch",
                "a consent is recorded by its sender",
                topics.REJECTED.name,
            )
        for holder in record.holders:  # a consent opens data a registered party holds
            try:
                self.state.registry.get(holder)
            except (KeyError, TrustError):
                raise Refusal(
                    "unknown-data-holder",
                    "a data holder the consent names is not a registered party",
                    topics.REJECTED.name,
                    path="Consent.provision.actor",
                    code="security",
                ) from None
        pseudo = self._person(record.person_bsn, ROUTER_DOMAIN)
        assert pseudo is not None
        change = self.state.consents.apply(pseudo, record)
        # Append to the consent log, sealed for the router itself (all instances share its keys).
        sealed = self._seal_for(
            msg_bytes(msg),
            self.router_id,
            EventCode.CONSENT.value,
            msg.meta.message_id,
            f"{pseudo}.{record.consent_id}",
            now,
        )
        self._emit(result, topics.CONSENT.name, sealed)
        m = msg.meta
        bsn = record.person_bsn
        reply = self._reply(result, m.sender, m.message_id, ResponseCode.OK, (), bsn, now)
        if reply is not None:
            self._remember(f"{m.sender}/{m.message_id}", result, reply)
        result.facts.append(
            Fact(
                FactKind.CONSENT_CHANGE,
                now,
                msg.meta.message_id,
                EventCode.CONSENT,
                msg.meta.sender,
                str(getattr(change, "kind", change)),
                f"consent {record.consent_id} {record.status.value}",
                sender_role=role,
                purpose=record.purposes[0] if record.purposes else None,
                legal_basis=record.legal_basis,
                consent_id=record.consent_id,
                person=self._person(record.person_bsn, AUDIT_DOMAIN),
                categories=frozenset(record.categories),
            )
        )

    def _deliver(
        self, rec: Incoming, msg: ParsedMessage, role: PartyRole, now: datetime, result: RouteResult
    ) -> None:
        m = msg.meta
        try:
            recipients = resolve(msg, self.state.registry)
        except Unroutable as u:
            raise Refusal(u.reason, str(u), topics.DEAD_LETTER.name, code="not-found") from None
        if m.event is EventCode.CAPACITY_REPORT:
            leaks = contains_personal_data(msg.bundle)
            if leaks:
                raise Refusal(
                    "personal-data-in-aggregate",
                    "a capacity report may not carry personal data: " + ", ".join(leaks[:5]),
                    topics.REJECTED.name,
                    code="security",
                )
        bsn = msg.subject_bsn()
        audit_person = self._person(bsn, AUDIT_DOMAIN)
        router_person = self._person(bsn, ROUTER_DOMAIN)
        categories = msg.categories()
        case = case_of(msg)
        denied: list[tuple[Recipient, Decision]] = []
        delivered = 0
        for r in recipients:
            request = DecisionRequest(
                event=m.event,
                sender=m.sender,
                sender_role=role,
                recipient=r.party_id,
                recipient_role=r.role,
                purpose=m.purpose,
                legal_basis=m.legal_basis,
                basis_detail=m.basis_detail,
                categories=categories,
                pseudonym=router_person,
                on=now.date(),
                case=case,
            )
            decision = decide(request, self.state.policy, self.state.consents)
            fact_common: dict[str, Any] = dict(
                sender_role=role,
                recipient=r.party_id,
                recipient_role=r.role,
                purpose=m.purpose,
                legal_basis=decision.legal_basis,
                consent_id=decision.consent_id,
                person=audit_person,
                withheld=decision.withheld_categories,
                controller=m.responsible,
                processor=m.processor,
            )
            if not decision.permit:
                denied.append((r, decision))
                result.facts.append(
                    Fact(
                        FactKind.DENY,
                        now,
                        m.message_id,
                        m.event,
                        m.sender,
                        str(decision.reason),
                        decision.detail,
                        basis_detail=m.basis_detail,
                        categories=categories,
                        controls=controls_for(decision),
                        **fact_common,
                    )
                )
                continue
            party_pseudo = self._person(bsn, r.party_id) or "none"
            stub = (
                {
                    "identifier": {
                        "system": f"https://ketenbus.nl/fhir/NamingSystem/pseudonym/{r.party_id}",
                        "value": party_pseudo,
                    }
                }
                if bsn
                else None
            )
            projected = project(msg.bundle, decision.allowed_categories, subject_stub=stub)
            sealed = self._seal_for(
                dumps(projected), r.party_id, m.event.value, m.message_id, party_pseudo, now
            )
            party = self.state.registry.get(r.party_id)
            self._emit(result, party.outbound_topic, sealed)
            delivered += 1
            kept = decision.allowed_categories & categories
            result.facts.append(
                Fact(
                    FactKind.PERMIT,
                    now,
                    m.message_id,
                    m.event,
                    m.sender,
                    str(decision.reason),
                    decision.detail,
                    basis_detail=m.basis_detail,
                    categories=kept,
                    controls=controls_for(decision),
                    topic=party.outbound_topic,
                    **fact_common,
                )
            )
            # NEN 7513: the transfer itself, apart from the decision that allowed it
            result.facts.append(
                Fact(
                    FactKind.DELIVERY,
                    now,
                    m.message_id,
                    m.event,
                    m.sender,
                    "delivered",
                    f"written to {party.outbound_topic}",
                    categories=kept,
                    topic=party.outbound_topic,
                    **fact_common,
                )
            )
        if denied:
            issues = tuple(
                Issue(
                    "MessageHeader.destination" if r.why == "destination" else "",
                    "security",
                    f"not delivered to {r.party_id} ({r.role.value}): {d.detail}",
                    str(d.reason),
                )
                for r, d in denied
            )
            result.records.append(
                self._parked(
                    rec,
                    topics.REJECTED.name,
                    str(denied[0][1].reason),
                    "; ".join(i.message for i in issues),
                    m.sender,
                )
            )
            reply = self._reply(
                result, m.sender, m.message_id, ResponseCode.FATAL_ERROR, issues, bsn, now
            )
        else:
            reply = self._reply(result, m.sender, m.message_id, ResponseCode.OK, (), bsn, now)
        if reply is not None:
            self._remember(f"{m.sender}/{m.message_id}", result, reply)


def _subject_bsn(msg: ParsedMessage) -> str | None:
    """The message's BSN when it can be pseudonymised (a refusal must not fail on a bad one)."""
    bsn = msg.subject_bsn()
    return bsn if bsn is not None and is_valid_bsn(bsn) else None


def pack(record: Outgoing) -> bytes:
    """A response record as bytes for the replay guard, so a duplicate gets it back whole."""
    b64 = base64.b64encode
    return orjson.dumps(
        {
            "t": record.topic,
            "k": b64(record.key).decode() if record.key is not None else None,
            "v": b64(record.value).decode(),
            "h": [[k, b64(v).decode()] for k, v in record.headers],
        }
    )


def unpack(data: bytes) -> Outgoing:
    d = orjson.loads(data)
    b = base64.b64decode
    return Outgoing(
        d["t"], b(d["k"]) if d["k"] is not None else None, b(d["v"]), [(k, b(v)) for k, v in d["h"]]
    )


def msg_bytes(msg: ParsedMessage) -> bytes:
    return dumps(msg.bundle)
