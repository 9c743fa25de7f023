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
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from broker.audit import controls_for
from broker.policy import (
    ConsentView,
    Decision,
    DecisionRequest,
    Policy,
    contains_personal_data,
    decide,
    project_bytes,
)
from broker.router.deliveries import (
    INDEX_EVENT,
    DeliveryEntry,
    DeliveryIndex,
    FollowUpRefused,
    judge_follow_up,
)
from broker.router.facts import Fact, FactKind, event_code
from broker.router.ladder import EscalationState, Ladder, Refused
from broker.router.recipients import Recipient, Unroutable, resolve, sender_may_send
from broker.router.records import Incoming, Outgoing, header
from broker.router.reprocess import (
    REQUEST_HEADER,
    ReprocessError,
    ReprocessRequest,
    has_request,
    read_request,
)
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
from broker.trust.datakeys import encrypt_layer, layer_context
from schemas import topics
from schemas.errors import Issue, MessageError
from schemas.flows.assessment import assessment_from_message
from schemas.flows.common import CASE_SYSTEM, case_of
from schemas.flows.consent import consent_from_message
from schemas.flows.escalation import escalation_from_message
from schemas.flows.escalation_answer import answer_from_message
from schemas.flows.response import MessageResponse, response_message
from schemas.flows.transition import transition_from_message
from schemas.flows.withdrawal import withdrawal_from_message
from schemas.messaging import MessageMeta, ParsedMessage, ResponseCode, dumps, parse_message
from schemas.vocab import (
    AssessmentDecision,
    DataCategory,
    EventCode,
    PartyRole,
    SecurityLevel,
    TransitionKind,
)

if TYPE_CHECKING:  # the Kafka side of the key store; the pipeline only asks it for keys
    from broker.audit.channels import ChannelKeys
    from broker.audit.keystore import TopicKeyStore

log = logging.getLogger(__name__)

_DELIVERED_LIMIT = 100_000  # ids whose recipients are remembered for re-processes
PSEUDONYM_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/pseudonym/"  # + the party id
LADDER_LOG_EVENT = "ladder-log"  # the envelope event of the router's ladder-log records
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
    # the escalation ladder and the watchdogs, folded from what the router routes
    ladder: Ladder = field(default_factory=Ladder)
    # region -> party id of its escalation step (Settings.escalation_regional_steps)
    regional_steps: dict[str, str] = field(default_factory=dict)
    # who received what: rebuilt from the deliveries topic (broker.router.delivery_log)
    deliveries: DeliveryIndex = field(default_factory=DeliveryIndex)
    # per-person data keys (crypto-shredding, docs/erasure.md); None: payloads as before
    datakeys: TopicKeyStore | None = None
    # the parties' channel key stores: the data layer inside in.* and out.* envelopes
    channels: ChannelKeys | None = None


class Refusal(Exception):
    """Internal: refuse the whole message with a reason, an issue and a target topic."""

    def __init__(
        self,
        reason: str,
        detail: str,
        topic: str,
        *,
        path: str = "",
        code: str = "security",
        tell_sender: bool = True,
    ) -> None:
        self.reason = reason
        self.tell_sender = tell_sender
        self.detail = detail
        self.topic = topic
        self.issue = Issue(path, code, detail, reason)
        super().__init__(detail)


class Pipeline:
    def __init__(self, state: RouterState) -> None:
        self.state = state
        self.router_id = state.keys.party_id
        self._batch: _Batch | None = None  # set while route_batch runs: sign once at its end
        # replay id -> recipients delivered, for messages refused to someone or re-processed:
        # a re-process never delivers to a recipient twice, even before the audit trail shows
        # the first delivery (bounded: the oldest ids go first)
        self.delivered: OrderedDict[str, set[str]] = OrderedDict()

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
        bsn: str | None = None,
    ) -> Sealed:
        """Sealed for ``party_id``; inside ``route_batch`` left unsigned for the batch signature.
        With the person's ``bsn`` the payload is first put under the person's key on that
        party's channel (``docs/erasure.md``: erasable on ``out.<party>``)."""
        if bsn and self.state.channels is not None:
            payload = self.state.channels.seal(party_id, bsn, payload, message_id)
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
            dumps(bundle), rec_sender, EventCode.RESPONSE.value, bundle["id"], pseudo, now, bsn
        )
        return self._emit(result, party.outbound_topic, sealed)

    def _erasable(self, out: Outgoing, bsn: str | None) -> Outgoing:
        """``out`` with its value under the person's data key when the router knows who it is
        about (AVG art. 17: ``ketenbus erase`` can then make it unreadable on any broker)."""
        person = self._person(bsn, AUDIT_DOMAIN)
        if self.state.datakeys is None or person is None:
            return out
        dkid, dk = self.state.datakeys.for_person(person)
        value = encrypt_layer(dkid, dk, out.value, context=layer_context(out.topic))
        return Outgoing(out.topic, out.key, value, out.headers)

    @staticmethod
    def _parked(
        rec: Incoming, topic: str, reason: str, detail: str, sender: str | None
    ) -> Outgoing:
        """The refused record as it came (still encrypted), with the reason in headers."""
        headers = [
            h
            for h in rec.headers
            if h[0].startswith("kb-") or h[0] in ("content-type", REQUEST_HEADER)
        ]
        headers += [
            ("kb-reason", reason.encode()),
            ("kb-detail", detail.encode()[:1000]),
            ("kb-source-topic", rec.topic.encode()),
            ("kb-refused-at", datetime.now(UTC).isoformat().encode()),
        ]
        if rec.key is not None:  # the envelope's pseudonym: a re-process sends it again
            headers.append(("kb-original-key", rec.key))
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
            events = self.state.ladder.drain()
            if events and results:  # one ladder-log record per batch, signed with the batch
                self._ladder_log(events, now or datetime.now(UTC), results[-1])
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
                    "the sender is not registered",  # its name is the record's text: not quoted
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
            request = self._reprocess_request(rec, now)
            # de-duplicate per sender: one party cannot claim another's message id; a
            # deliberate re-process is a new attempt with its own id, tied to the original
            replay_id = request.replay_id(env.replay_id) if request else env.replay_id
            verdict = self.state.replay.check(replay_id, env.timestamp, now)
            if verdict is Verdict.DUPLICATE:
                return self._duplicate(env, now, replay_id)
            if verdict is Verdict.STALE:
                raise Refusal(
                    "stale", "message is older than the replay window", topics.REJECTED.name
                )
            if verdict is Verdict.FUTURE:
                raise Refusal(
                    "future-timestamp", "message timestamp is in the future", topics.REJECTED.name
                )
            payload = opened.payload
            if self.state.channels is not None:
                try:
                    payload = self.state.channels.open(env.sender, payload, env.message_id)
                except TrustError as e:  # ErasedKey too: the person's channel key is gone
                    raise Refusal(
                        e.reason,
                        "the data layer does not open: its key is erased, unknown or changed",
                        topics.REJECTED.name,
                    ) from None
            try:
                msg = parse_message(payload, full=self.state.full_validation)
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
            # A withdrawal is authorised by being the original's sender (judged below), not by
            # the policy: whoever may send a message may take it back.
            withdrawal = m.event is EventCode.WITHDRAWAL
            if not withdrawal and not sender_may_send(self.state.policy, sender.role, m.event):
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
            if request is not None:
                result.facts.append(self._reprocess_fact(request, msg, sender.role, now))
                self.state.replay.remember(replay_id, timestamp=env.timestamp)
            if withdrawal or m.refers_to is not None:
                self._follow_up(msg, sender.role, now, result)
            elif m.event is EventCode.CONSENT:
                self._consent(rec, msg, sender.role, now, result)
            else:
                self._deliver(rec, msg, sender.role, now, result, request)
        except Refusal as r:
            self._refuse(rec, env, msg, r, now, result, authentic)
        if self._batch is None:  # in a batch: one ladder-log record at its end
            events = self.state.ladder.drain()
            if events:
                self._ladder_log(events, now, result)
        return result

    def _ladder_log(self, events: list[dict[str, Any]], now: datetime, result: RouteResult) -> None:
        """Append the ladder's changes to the ``escalation`` topic, sealed for the router itself
        (like the consent log), under one constant key so they stay in order: a restarted router
        folds the ladder and the watchdogs from it (``broker/router/ladder_log.py``)."""
        payload = orjson.dumps(events)
        sealed = self._seal_for(
            payload, self.router_id, LADDER_LOG_EVENT, str(uuid.uuid4()), "ladder", now
        )
        self._emit(result, topics.ESCALATION.name, sealed)

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
        known = sender is not None and sender in self.state.registry
        bsn = _subject_bsn(msg) if msg else None
        parked = self._parked(rec, r.topic, r.reason, r.detail, sender if known else None)
        result.records.append(self._erasable(parked, bsn))
        # Only an authenticated sender is answered (its signature verified under its own key):
        # a record that merely claims a sender and a message id must not put a refusal in that
        # party's outbox about a message it may never have sent, or that was accepted. The
        # refusal is parked and audited all the same. A refused re-process request is not
        # answered either (``tell_sender``).
        if env is not None and authentic and r.tell_sender:
            reply = self._reply(
                result, env.sender, env.message_id, ResponseCode.FATAL_ERROR, (r.issue,), bsn, now
            )
            if reply is not None:
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
                refers_to=msg.meta.refers_to if msg else None,
                acting_person=msg.meta.author if msg else None,
            )
        )

    def _reprocess_request(self, rec: Incoming, now: datetime) -> ReprocessRequest | None:
        """The console's signed re-process request on the record, if it carries one."""
        if not has_request(rec.headers):
            return None
        try:
            return read_request(rec.headers, rec.value, self.state.registry, now)
        except ReprocessError as e:  # the sender did nothing wrong: it is not told
            raise Refusal(
                "reprocess-not-authorised", str(e), topics.REJECTED.name, tell_sender=False
            ) from None

    def _reprocess_fact(
        self, request: ReprocessRequest, msg: ParsedMessage, role: PartyRole, now: datetime
    ) -> Fact:
        m = msg.meta
        return Fact(
            FactKind.REPROCESS,
            now,
            m.message_id,
            m.event,
            m.sender,
            "reprocess",
            f"re-process attempt {request.attempt} of {request.of}, requested by the console "
            f"(audit event {request.audit_event})"
            + (f"; already delivered to {', '.join(sorted(request.skip))}" if request.skip else ""),
            sender_role=role,
            person=self._person(_subject_bsn(msg), AUDIT_DOMAIN),
        )

    def _note_delivered(self, replay_id: str, recipients: set[str]) -> None:
        known = self.delivered.setdefault(replay_id, set())
        known |= recipients
        self.delivered.move_to_end(replay_id)
        while len(self.delivered) > _DELIVERED_LIMIT:
            self.delivered.popitem(last=False)

    def _duplicate(self, env: EnvelopeMeta, now: datetime, replay_id: str) -> RouteResult:
        result = RouteResult()
        original = self.state.replay.response_for(replay_id)
        if original is not None:
            # Repeat the original response, sealed and signed as it was (reliable messaging:
            # a response that was lost is sent again).
            result.records.append(unpack(original))
        elif self._batch is not None and any(r[0] == replay_id for r in self._batch.replies):
            self._batch.repeats.append((replay_id, result))  # signed at the batch's end
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

    def consent_payload(self, payload: bytes, bsn: str) -> bytes:
        """A consent-log payload: under the person's data key when there is a key store, the
        key's record carried with it (every router instance folds it, whichever topic it reads
        first)."""
        person = self._person(bsn, AUDIT_DOMAIN)
        if self.state.datakeys is None or person is None:
            return payload
        return self.state.datakeys.seal_for_person(
            person, payload, context=layer_context(topics.CONSENT.name)
        )

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
        # Append to the consent log, sealed for the router itself (all instances share its keys),
        # inside it under the person's data key, so that erasure reaches the log (docs/erasure.md).
        sealed = self._seal_for(
            self.consent_payload(msg_bytes(msg), record.person_bsn),
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
        self,
        rec: Incoming,
        msg: ParsedMessage,
        role: PartyRole,
        now: datetime,
        result: RouteResult,
        request: ReprocessRequest | None = None,
    ) -> None:
        m = msg.meta
        replay_id = f"{m.sender}/{m.message_id}"
        done = set(request.skip) | self.delivered.get(replay_id, set()) if request else set()
        delivered_to: set[str] = set()
        after: Callable[[], object] | None = None
        try:
            if m.event is EventCode.ESCALATION:
                recipients, after = self._escalation(msg, now)
            elif m.event is EventCode.ESCALATION_ANSWER:
                recipients, after = self._answer(msg, now)
            else:
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
        entry = DeliveryEntry(m.sender, m.message_id, m.event, router_person)
        # Routed before (the index says who got it) but not committed: a router that crashed
        # after publishing, or an instance that took over the partition. The first decision
        # stands; the record is delivered again (recipients de-duplicate on the message id)
        # and audited as that: a redelivery, not a second decision (issue 19 point 8).
        prior = self.state.deliveries.get(m.sender, m.message_id) if request is None else None
        for r in recipients:
            if prior is not None and r.party_id in prior.recipients:
                allowed = prior.recipients[r.party_id]
                party = self.state.registry.get(r.party_id)
                payload, pseudo = self._projected(msg, bsn, r.party_id, allowed)
                sealed = self._seal_for(
                    payload, r.party_id, m.event.value, m.message_id, pseudo, now, bsn
                )
                self._emit(result, party.outbound_topic, sealed)
                delivered += 1
                delivered_to.add(r.party_id)
                entry.recipients[r.party_id] = allowed
                result.facts.append(
                    Fact(
                        FactKind.DELIVERY,
                        now,
                        m.message_id,
                        m.event,
                        m.sender,
                        "redelivered",
                        f"written to {party.outbound_topic} again: routed before, the first "
                        "decision stands",
                        sender_role=role,
                        recipient=r.party_id,
                        recipient_role=r.role,
                        purpose=m.purpose,
                        legal_basis=m.legal_basis,
                        person=audit_person,
                        categories=allowed & categories,
                        topic=party.outbound_topic,
                        controller=m.responsible,
                        processor=m.processor,
                    )
                )
                continue
            if r.party_id in done:  # a re-process delivers nothing twice
                result.facts.append(
                    Fact(
                        FactKind.DUPLICATE,
                        now,
                        m.message_id,
                        m.event,
                        m.sender,
                        "already-delivered",
                        f"re-process: already delivered to {r.party_id}, not sent again",
                        sender_role=role,
                        recipient=r.party_id,
                        recipient_role=r.role,
                    )
                )
                continue
            decision_request = DecisionRequest(
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
            decision = decide(decision_request, self.state.policy, self.state.consents)
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
                acting_person=m.author,
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
            payload, pseudo = self._projected(msg, bsn, r.party_id, decision.allowed_categories)
            sealed = self._seal_for(
                payload, r.party_id, m.event.value, m.message_id, pseudo, now, bsn
            )
            party = self.state.registry.get(r.party_id)
            self._emit(result, party.outbound_topic, sealed)
            delivered += 1
            delivered_to.add(r.party_id)
            entry.recipients[r.party_id] = decision.allowed_categories
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
        if denied or request is not None:
            self._note_delivered(replay_id, delivered_to)
        if delivered:
            self._index(entry, now, result)
            if after is not None:
                after()
        # The watchdogs follow a case from its delivered referral on, and then what was decided
        # and done whether or not a recipient could be told: an inclusion decision refused to
        # the ZVH for want of consent is still a decision (the case is not undecided).
        if delivered or m.event is not EventCode.REFERRAL:
            self._watch(msg, now)
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
            parked = self._parked(
                rec,
                topics.REJECTED.name,
                str(denied[0][1].reason),
                "; ".join(i.message for i in issues),
                m.sender,
            )
            result.records.append(self._erasable(parked, bsn))
            reply = self._reply(
                result, m.sender, m.message_id, ResponseCode.FATAL_ERROR, issues, bsn, now
            )
        else:
            reply = self._reply(result, m.sender, m.message_id, ResponseCode.OK, (), bsn, now)
        if reply is not None:  # after a re-process a duplicate gets the new answer
            self._remember(replay_id, result, reply)


    # --- the escalation ladder (broker/router/ladder.py) ----------------------------------------

    @staticmethod
    def _read(reader: Callable[[ParsedMessage], Any], msg: ParsedMessage) -> Any:
        try:
            return reader(msg)
        except MessageError as e:
            raise Refusal(
                e.reason, str(e), topics.DEAD_LETTER.name, path=e.issues[0].path, code="invalid"
            ) from None

    def _escalation(
        self, msg: ParsedMessage, now: datetime
    ) -> tuple[list[Recipient], Callable[[], object]]:
        """An escalation passes the ladder (a known case, not already open), then goes to its
        step: the region's escalation step, or the national coordination point."""
        esc = self._read(escalation_from_message, msg)
        ladder = self.state.ladder
        try:
            key = ladder.check_escalation(esc, msg.meta.sender)
        except Refused as r:
            raise Refusal(r.reason, str(r), topics.REJECTED.name, code="business-rule") from None
        recipients = resolve(
            msg, self.state.registry, escalation=esc, steps=self.state.regional_steps
        )
        asked = [r.party_id for r in recipients]
        return recipients, lambda: ladder.escalated(key, esc, now, asked)

    def _answer(
        self, msg: ParsedMessage, now: datetime
    ) -> tuple[list[Recipient], Callable[[], object]]:
        """An answer from the step that was asked goes back to the escalating party and to the
        steps of the ladder (so each sees what the other did)."""
        answer = self._read(answer_from_message, msg)
        reg = self.state.registry
        national = [p.id for p in reg.by_role(PartyRole.NATIONAL_COORDINATION)]
        try:
            state: EscalationState = self.state.ladder.check_answer(
                answer, msg.meta.sender, national
            )
        except Refused as r:
            raise Refusal(r.reason, str(r), topics.REJECTED.name, code="business-rule") from None
        ids = [state.key[0], *state.regional_step]
        if state.national_since is not None or answer.action.value == "move-national":
            ids += national
        out: dict[str, Recipient] = {}
        for pid in ids:
            if pid in (msg.meta.sender, self.router_id) or pid in out:
                continue
            try:
                party = reg.get(pid)
            except (KeyError, TrustError):
                continue
            why = "escalating party" if pid == state.key[0] else "escalation ladder step"
            out[pid] = Recipient(pid, party.role, why)
        if not out:
            raise Refusal(
                "no-recipient", "the answer has nobody to go to", topics.DEAD_LETTER.name
            )
        ladder = self.state.ladder
        return list(out.values()), lambda: ladder.answered(state, answer, now)

    def _projected(
        self,
        msg: ParsedMessage,
        bsn: str | None,
        party_id: str,
        allowed: frozenset[DataCategory],
    ) -> tuple[bytes, str]:
        """The message as ``party_id`` may receive it: only the allowed categories, the person
        by that party's own pseudonym (the record key too). Returns ``(payload, pseudonym)``."""
        pseudo = self._person(bsn, party_id) or "none"
        stub = (
            {"identifier": {"system": PSEUDONYM_SYSTEM + party_id, "value": pseudo}}
            if bsn
            else None
        )
        return project_bytes(msg.bundle, allowed, subject_stub=stub), pseudo

    def _watch(self, msg: ParsedMessage, now: datetime) -> None:
        """Fold a delivered referral, or a decision or care transition (delivered or not), for
        the watchdogs; what cannot be read here is its recipients' to refuse."""
        ladder = self.state.ladder
        event = msg.meta.event
        try:
            if event is EventCode.REFERRAL:
                for sr in msg.resources("ServiceRequest"):
                    for ident in sr.get("identifier") or ():
                        system = ident.get("system") if isinstance(ident, dict) else None
                        value = ident.get("value") if isinstance(ident, dict) else None
                        if (
                            isinstance(system, str)
                            and isinstance(value, str)
                            and system.startswith(CASE_SYSTEM + "/")
                        ):
                            ladder.referral(system.removeprefix(CASE_SYSTEM + "/"), value, now)
            elif event is EventCode.ASSESSMENT_OUTCOME:
                a = assessment_from_message(msg)
                included = a.decision is AssessmentDecision.INCLUDED
                ladder.assessment(
                    a.zvh, a.referral_id, included, a.episode_id, a.inclusion_date, now
                )
            elif event is EventCode.CARE_TRANSITION:
                t = transition_from_message(msg)
                requested = (
                    t.kind is TransitionKind.SCALE_UP
                    and t.location_id is None
                    and t.security_level is not SecurityLevel.AMBULANT
                )
                ladder.transition(
                    t.episode_id,
                    t.kind is TransitionKind.START,
                    t.effective_on if t.kind is TransitionKind.END else None,
                    bed=t.security_level if requested else None,
                    placed=t.location_id is not None,
                    at=now,
                )
        except (MessageError, TypeError, AttributeError):
            return


    # --- corrections and withdrawals (docs/flows/correction.md) -----------------------------

    def _index(self, entry: DeliveryEntry, now: datetime, result: RouteResult) -> None:
        """Record who received what, in the index and on the deliveries topic (sealed for the
        router itself, so every instance and a restart rebuild the same index)."""
        known = self.state.deliveries.apply(entry)
        sealed = self._seal_for(
            known.to_json(), self.router_id, INDEX_EVENT, known.message_id, known.key, now
        )
        self._emit(result, topics.DELIVERIES.name, sealed)
        self.state.deliveries.wrote(sealed.value)  # applied: its echo on the topic is not

    def _follow_up(
        self, msg: ParsedMessage, role: PartyRole, now: datetime, result: RouteResult
    ) -> None:
        """A correction or withdrawal: forwarded to every recipient of the original and to no
        one else, whatever the policy or the consents say now (AVG art. 19); a correction
        minimised per recipient to the categories that recipient got with the original."""
        m = msg.meta
        withdrawal = m.event is EventCode.WITHDRAWAL
        if withdrawal:
            try:
                w = withdrawal_from_message(msg)
            except MessageError as e:
                raise Refusal(
                    e.reason, str(e), topics.DEAD_LETTER.name, path=e.issues[0].path, code="invalid"
                ) from None
            if m.refers_to is None or w.withdrawn_by != m.sender:
                raise Refusal(
                    "withdrawal-mismatch",
                    "a withdrawal names its original in the MessageHeader (follow-up-of) and "
                    "its sender as the Provenance agent",
                    topics.REJECTED.name,
                    path="MessageHeader.extension",
                    code="invalid",
                )
        elif m.event in (EventCode.CONSENT, EventCode.RESPONSE):
            raise Refusal(
                "not-correctable",
                f"a {m.event.value} message is not corrected: send a new one (a consent is "
                "revoked with its consent id)",
                topics.REJECTED.name,
                path="MessageHeader.extension",
                code="business-rule",
            )
        bsn = None if withdrawal else msg.subject_bsn()
        router_person = self._person(bsn, ROUTER_DOMAIN)
        try:
            entry = judge_follow_up(self.state.deliveries, m, router_person)
        except FollowUpRefused as f:
            raise Refusal(
                f.reason, str(f), topics.REJECTED.name, path="MessageHeader.extension", code=f.code
            ) from None
        audit_person = self._person(bsn, AUDIT_DOMAIN)
        kind = FactKind.WITHDRAWAL if withdrawal else FactKind.CORRECTION
        law = "AVG art. 17 and 19" if withdrawal else "AVG art. 16 and 19"
        for party_id, allowed in sorted(entry.recipients.items()):
            try:
                party = self.state.registry.get(party_id)
            except (KeyError, TrustError):
                log.warning("recipient %s of %s is no longer registered", party_id, m.refers_to)
                continue
            if withdrawal:
                payload, pseudo, kept = dumps(msg.bundle), "none", frozenset[DataCategory]()
            else:
                payload, pseudo = self._projected(msg, bsn, party_id, allowed)
                kept = allowed & msg.categories()
            sealed = self._seal_for(
                payload, party_id, m.event.value, m.message_id, pseudo, now, bsn
            )
            self._emit(result, party.outbound_topic, sealed)
            common: dict[str, Any] = dict(
                sender_role=role,
                recipient=party_id,
                recipient_role=party.role,
                purpose=m.purpose,
                legal_basis=m.legal_basis,
                person=audit_person,
                categories=kept,
                topic=party.outbound_topic,
                refers_to=m.refers_to,
            )
            result.facts.append(
                Fact(
                    kind,
                    now,
                    m.message_id,
                    m.event,
                    m.sender,
                    "forwarded",
                    f"{kind.value} of {m.refers_to} for a recipient of the original ({law})",
                    **common,
                )
            )
            result.facts.append(
                Fact(
                    FactKind.DELIVERY,
                    now,
                    m.message_id,
                    m.event,
                    m.sender,
                    "delivered",
                    f"written to {party.outbound_topic}",
                    **common,
                )
            )
        change = DeliveryEntry(entry.sender, entry.message_id, entry.event, entry.subject)
        if withdrawal:
            change.withdrawn_by = m.message_id
        else:
            change.corrections.append(m.message_id)
        self._index(change, now, result)
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
