"""Audit records as FHIR R4 AuditEvents carrying the NEN 7513 fields.

An :class:`AuditRecord` is the typed input; :func:`build_audit_event` turns it into an
AuditEvent (a JSON dict) that validates against ``fhir.resources.R4B.auditevent.AuditEvent``.

NEN 7513 field -> AuditEvent element:

=============================  ==========================================================
EventID                        ``id`` (and the chain record's position)
EventTypeCode                  ``type`` (our code system, :class:`AuditKind`); ``subtype`` =
                               the message's flow (EventCode)
EventActionCode                ``action`` (C/R/U/D/E)
EventDateTime                  ``recorded`` (UTC instant, milliseconds)
EventOutcomeIndicator          ``outcome`` (0/4/8/12) and ``outcomeDesc`` = the reason code
User / requestor               ``agent[0]``: the acting party (party id), its role, purpose of
                               use, and ``policy`` = the legal basis and the Consent relied on
Recipient                      ``agent[1]``: the receiving party and its role
Responsible professional       ``agent[2]``: the professional who decided (conflict of duties)
User (the person)              the last agent, type ``humanuser``: the person who acted at the
                               sender (``acting_person``, ``<kind>:<id>``; ``schemas.acting``)
PurposeOfUse                   ``purposeOfEvent`` and ``agent[0].purposeOfUse``
Participant object: client     ``entity[0]``: ``what.identifier`` = the person's pseudonym in
                               a pseudonym system (never a BSN)
Participant object: message    ``entity[1]``: ``what.identifier`` = the message id;
                               ``securityLabel`` = the data categories disclosed; ``detail`` =
                               legal basis, citation, justification, withheld categories,
                               ``controles``, consent change, query
Participant object: consent    ``entity[2]``: ``what.reference`` = ``Consent/<id>``
AuditSourceID                  ``source.observer`` (router or adapter instance id),
                               ``source.site``, ``source.type`` = application server
controles (NL)                 ``entity[1].detail[type=controles]``: four T/F for the
                               authorisation, treatment-relationship (not checked here: F),
                               consent and emergency (conflict of duties) checks
=============================  ==========================================================
"""

from __future__ import annotations

import base64
import json
import operator
import os
import re
from datetime import UTC, datetime
from enum import StrEnum, nonmember
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from broker.audit.canonical import canonical
from broker.audit.sealed import SealReader, seal_detail
from broker.policy.grounds import grounds_of
from schemas.acting import ActingPerson
from schemas.identifiers import BSN_SYSTEM, PARTY_SYSTEM
from schemas.memo import Memo
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse
from schemas.vocab.base import KETENBUS_CS, Coded
from schemas.vocab.grounds import GdprBasis, SecrecyGround, SpecialException

if TYPE_CHECKING:
    from broker.policy import ConsentChange, Decision, DecisionRequest
    from schemas.messaging import BasisDetail

PSEUDONYM_SYSTEM_PREFIX = "https://ketenbus.nl/fhir/NamingSystem/pseudonym"
ROUTER_PSEUDONYM_SYSTEM = PSEUDONYM_SYSTEM_PREFIX + "/router"
MESSAGE_ID_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/message-id"
SYSTEM_ID_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/system"
INPUT_DIGEST_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/input-sha256"
DETAIL_TYPE_SYSTEM = KETENBUS_CS + "audit-detail"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
AGENT_TYPE = KETENBUS_CS + "audit-agent-type"
EXTRA_SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
ACTING_PERSON_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/acting-person"
"""The acting person's ``<kind>:<id>`` as one value (``schemas.acting``)."""


class AuditKind(Coded):
    """AuditEvent.type: what happened."""

    SYSTEM = nonmember(KETENBUS_CS + "audit-event-type")

    DECISION_PERMIT = (
        "decision-permit",
        "Besluit: toegestaan",
        "A policy decision permitted (part of) a message to one recipient.",
    )
    DECISION_DENY = (
        "decision-deny",
        "Besluit: geweigerd",
        "A policy decision denied a message to one recipient.",
    )
    DELIVERY = ("delivery", "Aflevering", "A (minimised) message was delivered to a recipient.")
    CONSENT_CHANGE = (
        "consent-change",
        "Toestemmingswijziging",
        "A consent was granted, updated or revoked in the consent view.",
    )
    REFUSAL = (
        "refusal",
        "Weigering",
        "A message was refused before any decision (unsigned, "
        "unparseable, personal data in a counts-only message...).",
    )
    COMPLIANCE_SEARCH = (
        "compliance-search",
        "Verantwoordingszoekvraag",
        "A compliance officer searched the audit trail.",
    )
    REPROCESS = (
        "reprocess",
        "Herverwerking",
        "An operator sent a refused message through the router again (a new attempt that "
        "refers to the original).",
    )
    SIGN_IN = (
        "sign-in",
        "Aanmelding console",
        "A person signed in to the console with their organisation's identity provider, or "
        "was refused (NEN 7513: access to the system, with the person as the user).",
    )
    CORRECTION = (
        "correction",
        "Correctie",
        "A correction was forwarded to a recipient of the original message (AVG art. 16, 19).",
    )
    WITHDRAWAL = (
        "withdrawal",
        "Intrekking",
        "A withdrawal was forwarded to a recipient of the original message (AVG art. 17, 19).",
    )
    ERASURE = (
        "erasure",
        "Vernietiging",
        "The data keys of a person or case were destroyed (AVG art. 17, crypto-shredding): "
        "what they sealed is unreadable from then on.",
    )


class AuditAction(StrEnum):
    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class AuditOutcome(StrEnum):
    SUCCESS = "0"
    MINOR_FAILURE = "4"
    SERIOUS_FAILURE = "8"
    MAJOR_FAILURE = "12"


_DEFAULT_ACTION = {
    AuditKind.DECISION_PERMIT: AuditAction.EXECUTE,
    AuditKind.DECISION_DENY: AuditAction.EXECUTE,
    AuditKind.DELIVERY: AuditAction.EXECUTE,  # NEN 7513: E = a data transfer
    AuditKind.CONSENT_CHANGE: AuditAction.UPDATE,
    AuditKind.REFUSAL: AuditAction.EXECUTE,
    AuditKind.COMPLIANCE_SEARCH: AuditAction.EXECUTE,
    AuditKind.REPROCESS: AuditAction.EXECUTE,
    AuditKind.SIGN_IN: AuditAction.EXECUTE,
    AuditKind.CORRECTION: AuditAction.UPDATE,  # NEN 7513: U = a change of a record
    AuditKind.WITHDRAWAL: AuditAction.DELETE,
    AuditKind.ERASURE: AuditAction.DELETE,
}
_DEFAULT_OUTCOME = {
    AuditKind.DECISION_PERMIT: AuditOutcome.SUCCESS,
    AuditKind.DECISION_DENY: AuditOutcome.MINOR_FAILURE,
    AuditKind.DELIVERY: AuditOutcome.SUCCESS,
    AuditKind.CONSENT_CHANGE: AuditOutcome.SUCCESS,
    AuditKind.REFUSAL: AuditOutcome.SERIOUS_FAILURE,
    AuditKind.COMPLIANCE_SEARCH: AuditOutcome.SUCCESS,
    AuditKind.REPROCESS: AuditOutcome.SUCCESS,
    AuditKind.SIGN_IN: AuditOutcome.SUCCESS,
    AuditKind.CORRECTION: AuditOutcome.SUCCESS,
    AuditKind.WITHDRAWAL: AuditOutcome.SUCCESS,
    AuditKind.ERASURE: AuditOutcome.SUCCESS,
}


class AuditRecord(BaseModel):
    """One auditable event, typed. Text fields are free text for people; codes are enums."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AuditKind
    event_id: str = Field(
        default_factory=lambda: new_event_id(), pattern=r"^[A-Za-z0-9\-\.]{1,64}$"
    )
    recorded: AwareDatetime
    source: str = Field(min_length=1, description="The router or adapter instance that logs.")
    source_site: str | None = None
    action: AuditAction | None = None
    outcome: AuditOutcome | None = None
    reason: str = Field(min_length=1, description="Stable reason code, e.g. a ReasonCode.")
    detail: str = ""
    flow: EventCode | None = None
    actor: str = Field(min_length=1, description="Party id of the acting party (the sender).")
    actor_role: PartyRole
    recipient: str | None = None
    recipient_role: PartyRole | None = None
    purpose: PurposeOfUse | None = None
    legal_basis: LegalBasis | None = None
    gdpr_basis: GdprBasis | None = Field(default=None, description="AVG art. 6(1) letter.")
    special_category_exceptions: tuple[SpecialException, ...] = Field(
        default=(), description="AVG art. 9(2)/10 grounds with their UAVG article."
    )
    secrecy_ground: SecrecyGround | None = Field(
        default=None, description="The ground to break professional secrecy (BW art. 7:457)."
    )
    citation: str | None = None
    justification: str | None = None
    professional: str | None = None
    consent_id: str | None = None
    pseudonym: str | None = None
    pseudonym_system: str = ROUTER_PSEUDONYM_SYSTEM
    message_id: str | None = None
    categories: frozenset[DataCategory] = frozenset()
    withheld: frozenset[DataCategory] = frozenset()
    controls: str | None = Field(default=None, pattern=r"^[TF]{4}$")
    query: str | None = Field(default=None, description="compliance-search: the query (JSON).")
    sealed: str | None = Field(
        default=None, description="base64 of the sealed detail (broker.audit.sealed)."
    )
    decided_by_professional: bool = Field(
        default=False,
        description="a professional decided (conflict of duties); their name is sealed.",
    )
    topic: str | None = Field(default=None, description="delivery: the topic delivered to.")
    controller: str | None = Field(
        default=None, description="Party id of the controller of the message (AVG art. 4(7))."
    )
    processor: str | None = Field(
        default=None, description="Party id of the processor that sent it for the controller."
    )
    input_digest: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="an adapter's refusal: SHA-256 of the refused input, its only id.",
    )
    refers_to: str | None = Field(
        default=None,
        description="correction, withdrawal (and their refusals): the original's message id.",
    )
    acting_person: ActingPerson | None = Field(
        default=None,
        description="NEN 7513 user: the person who acted at the sender, <kind>:<id> "
        "(schemas.acting), never a name.",
    )

    @field_validator("pseudonym")
    @classmethod
    def _not_a_bsn(cls, v: str | None) -> str | None:
        if looks_like_bsn(v):
            raise ValueError(
                "the person must be logged by pseudonym, never by BSN "
                "(a value of 8 or 9 digits looks like one)"
            )
        return v

    @field_validator("pseudonym_system")
    @classmethod
    def _pseudonym_system(cls, v: str) -> str:
        if v == BSN_SYSTEM or not v.startswith(PSEUDONYM_SYSTEM_PREFIX):
            raise ValueError(f"the pseudonym system must start with {PSEUDONYM_SYSTEM_PREFIX}")
        return v

    @property
    def effective_action(self) -> AuditAction:
        return self.action or _DEFAULT_ACTION[self.kind]

    @property
    def effective_outcome(self) -> AuditOutcome:
        return self.outcome or _DEFAULT_OUTCOME[self.kind]


def looks_like_bsn(value: str | None) -> bool:
    """A value of 8 or 9 digits (spaces around allowed) could be a BSN: never log it as the
    person. One rule for the validator and for ``to_record``'s fast path."""
    digits = (value or "").strip()
    return digits.isdigit() and len(digits) in (8, 9)


def new_event_id() -> str:
    """``str(uuid.uuid4())`` at a third of the cost (no UUID object): a random UUID in its
    8-4-4-4-12 form, version 4, RFC 4122 variant."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cc(coding: dict[str, str]) -> dict[str, Any]:
    return {"coding": [coding]}


def _party(party: str) -> dict[str, Any]:
    return {"identifier": {"system": PARTY_SYSTEM, "value": party}}


def _sorted(categories: frozenset[DataCategory]) -> list[DataCategory]:
    return sorted(categories, key=lambda c: c.value)


def build_audit_event(record: AuditRecord) -> dict[str, Any]:
    """The FHIR R4 AuditEvent (dict) for ``record``; see the module documentation."""
    query = None if record.query is None else base64.b64encode(record.query.encode()).decode()
    return _build(record, _instant(record.recorded), query)


def _build(r: AuditRecord, recorded: str, query: str | None) -> dict[str, Any]:
    """:func:`build_audit_event` with the two derived strings given (so that a template can
    put placeholders there)."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": r.event_id,
        "type": r.kind.coding(),
    }
    if r.flow is not None:
        event["subtype"] = [r.flow.coding()]
    event["action"] = r.effective_action.value
    event["recorded"] = recorded
    event["outcome"] = r.effective_outcome.value
    event["outcomeDesc"] = r.reason
    if r.purpose is not None:
        event["purposeOfEvent"] = [_cc(r.purpose.coding())]

    actor: dict[str, Any] = {
        "type": _cc({"system": DICOM, "code": "110153", "display": "Source Role ID"}),
        "role": [_cc(r.actor_role.coding())],
        "who": _party(r.actor),
        "requestor": True,
    }
    policy = []
    if r.legal_basis is not None:
        policy.append(f"{r.legal_basis.system}#{r.legal_basis.value}")
    if r.consent_id is not None:
        policy.append(f"Consent/{r.consent_id}")
    if policy:
        actor["policy"] = policy
    if r.purpose is not None:
        actor["purposeOfUse"] = [_cc(r.purpose.coding())]
    agents = [actor]
    if r.recipient is not None:
        recipient: dict[str, Any] = {
            "type": _cc({"system": DICOM, "code": "110152", "display": "Destination Role ID"}),
            "who": _party(r.recipient),
            "requestor": False,
        }
        if r.recipient_role is not None:
            recipient["role"] = [_cc(r.recipient_role.coding())]
        agents.append(recipient)
    if r.decided_by_professional and not r.professional:
        agents.append(
            {
                "type": _cc(
                    {
                        "system": AGENT_TYPE,
                        "code": "responsible-professional",
                        "display": "Professional who decided",
                    }
                ),
                "requestor": False,
            }
        )
    if r.professional:
        agents.append(
            {
                "type": _cc(
                    {
                        "system": AGENT_TYPE,
                        "code": "responsible-professional",
                        "display": "Professional who decided",
                    }
                ),
                "who": {"display": r.professional},
                "name": r.professional,
                "requestor": False,
            }
        )
    if r.acting_person:
        # NEN 7513 "gebruiker": the person who acted, not only the organisation (agent[0])
        agents.append(
            {
                "type": _cc(
                    {"system": EXTRA_SECURITY_ROLE, "code": "humanuser", "display": "human user"}
                ),
                "who": {"identifier": {"system": ACTING_PERSON_SYSTEM, "value": r.acting_person}},
                "requestor": True,
            }
        )
    event["agent"] = agents

    source: dict[str, Any] = {
        "observer": {
            "identifier": {"system": SYSTEM_ID_SYSTEM, "value": r.source},
            "display": r.source,
        },
        "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
    }
    if r.source_site:
        source["site"] = r.source_site
    event["source"] = source

    entities: list[dict[str, Any]] = []
    if r.pseudonym is not None:
        entities.append(
            {
                "what": {"identifier": {"system": r.pseudonym_system, "value": r.pseudonym}},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    details = _details(r)
    if (
        r.message_id is not None
        or r.input_digest is not None
        or details
        or r.categories
        or r.detail
        or r.query
        or r.refers_to
    ):
        message: dict[str, Any] = {
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        }
        if r.message_id is not None:
            message["what"] = {"identifier": {"system": MESSAGE_ID_SYSTEM, "value": r.message_id}}
        elif r.input_digest is not None:
            message["what"] = {
                "identifier": {"system": INPUT_DIGEST_SYSTEM, "value": r.input_digest}
            }
        if r.categories:
            message["securityLabel"] = [c.coding() for c in _sorted(r.categories)]
        if r.kind is AuditKind.COMPLIANCE_SEARCH and query is not None:
            message["role"] = {"system": OBJECT_ROLE, "code": "24", "display": "Query"}
            message["query"] = query
        if r.detail:
            message["description"] = r.detail
        if details:
            message["detail"] = details
        entities.append(message)
    if r.consent_id is not None:
        entities.append(
            {
                "what": {"reference": f"Consent/{r.consent_id}"},
                "type": {"system": RESOURCE_TYPES, "code": "Consent", "display": "Consent"},
                "role": {"system": OBJECT_ROLE, "code": "13", "display": "Security Resource"},
            }
        )
    if entities:
        event["entity"] = entities
    return event


def _details(r: AuditRecord) -> list[dict[str, str]]:
    """The message entity's details; ``citation``, ``justification`` and ``professional`` stand
    here only when a caller put them in clear (the router seals them: ``sealed``)."""
    pairs: list[tuple[str, str | None]] = [
        ("legal-basis", r.legal_basis.value if r.legal_basis else None),
        ("gdpr-basis", r.gdpr_basis.value if r.gdpr_basis else None),
        *(("special-category-exception", e.value) for e in r.special_category_exceptions),
        ("secrecy-ground", r.secrecy_ground.value if r.secrecy_ground else None),
        ("citation", r.citation),
        ("justification", r.justification),
        ("professional", r.professional),
        ("withheld-categories", ",".join(c.value for c in _sorted(r.withheld)) or None),
        ("controles", r.controls),
        ("topic", r.topic),
        ("refers-to", r.refers_to),
        ("controller", r.controller),
        ("processor", r.processor),
    ]
    out = [{"type": k, "valueString": v} for k, v in pairs if v]
    if r.sealed:
        out.append({"type": "sealed", "valueBase64Binary": r.sealed})
    return out


# --- canonical bytes from templates -------------------------------------------------------------

# The free-text fields: an event's structure depends on whether each is None, empty or not, and
# on the other (coded) fields; their text only fills string values.
_TEXT_FIELDS = (
    "event_id", "reason", "actor", "recipient", "professional", "source", "source_site",
    "pseudonym", "pseudonym_system", "message_id", "detail", "consent_id", "citation",
    "justification", "query", "sealed", "topic", "input_digest", "refers_to", "controller",
    "processor", "acting_person",
)  # fmt: skip
_SLOTS = (*_TEXT_FIELDS, "recorded", "query_b64")  # the last two are derived
_SLOT = re.compile(rb"\\u0000kb:([0-9]+)\\u0000")
_TEMPLATES: Memo[tuple[Any, ...], tuple[tuple[bytes, ...], tuple[int, ...]]] = Memo(4096)
_STR = frozenset({str})


def _placeholder(i: int) -> str:
    return f"\x00kb:{i}\x00"


def _template(r: AuditRecord) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """The canonical bytes of ``r``'s event with a placeholder in each non-empty free-text
    string, split at the placeholders: the literals and, between them, the slot numbers."""
    slots = {k: _placeholder(i) for i, k in enumerate(_TEXT_FIELDS) if getattr(r, k)}
    blank = r.model_copy(update=slots)
    recorded = _placeholder(len(_TEXT_FIELDS))
    query = None
    if r.query is not None:
        query = _placeholder(len(_TEXT_FIELDS) + 1) if r.query else ""
    pieces = _SLOT.split(canonical(_build(blank, recorded, query)))
    return tuple(pieces[0::2]), tuple(int(i) for i in pieces[1::2])


def event_bytes(record: AuditRecord) -> bytes:
    """``canonical(build_audit_event(record))``, byte for byte (tested), at a fraction of the
    cost. Why: building the dict and encoding it cost ~10 times more than this.

    An event's structure and constants depend on the coded fields and on whether each free-text
    field is None, empty or not (the *shape*); the text only fills string values. So the
    canonical bytes are cached per shape with placeholders, and filled with the texts' JSON
    escapes (one orjson call for all: ``["a","b"]`` split at ``","``; when a text holds a quote,
    one call per text, since an escaped quote followed by ``,"`` looks like a separator). A text
    that is not a plain ``str``, or cannot be encoded (a lone surrogate), takes the slow path:
    ``canonical`` refuses it naming its path, as before."""
    texts = _texts(record)
    key = (_coded(record), tuple(map(type, texts)), tuple(map(bool, texts)))
    literals, slots = _TEMPLATES.get_or_make(key, _template, record)
    texts += (_instant(record.recorded),)
    if record.query:
        texts += (base64.b64encode(record.query.encode()).decode(),)
    values = [texts[i] for i in slots]
    if not values:
        return literals[0]
    if set(map(type, values)) <= _STR:
        try:
            joined = orjson.dumps(values)
        except TypeError:
            pass
        else:
            # ``","`` separates the values unless a text holds a quote: its escape ``\"`` can
            # be followed by ``,"`` (the text ``",`` then looks like a separator). Then each
            # text is escaped on its own; a hypothesis example found it (actor ``",``).
            if b'\\"' in joined:
                escaped = [orjson.dumps(v)[1:-1] for v in values]
            else:
                escaped = joined[2:-2].split(b'","')
            out = [literals[0]]
            for text, literal in zip(escaped, literals[1:], strict=True):
                out.append(text)
                out.append(literal)
            return b"".join(out)
    return canonical(build_audit_event(record))


_texts = operator.attrgetter(*_TEXT_FIELDS)


def _coded_fields() -> tuple[str, ...]:
    return tuple(k for k in AuditRecord.model_fields if k not in _TEXT_FIELDS and k != "recorded")


# every field that is neither free text nor the time: a field added later is part of the shape
_coded = operator.attrgetter(*_coded_fields())


# --- records for the policy library's results ---------------------------------------------------


def controls_for(decision: Decision) -> str:
    """NEN 7513 "controles": authorisation, treatment relationship, consent, emergency."""
    return "".join(
        "T" if ok else "F"
        for ok in (
            decision.permit,
            False,  # the treatment relationship is not checked by the broker
            decision.consent_id is not None and decision.permit,
            decision.legal_basis is LegalBasis.CONFLICT_OF_DUTIES,
        )
    )


def sealed_fields(
    detail: BasisDetail | None,
    *,
    chain: str,
    event_id: str,
    reader: SealReader | None,
    person: str | None = None,
) -> dict[str, Any]:
    """The AuditRecord fields for a basis detail's citation, justification and deciding
    professional: sealed for ``reader`` (the compliance role), never in clear. Without a reader
    they are left out, and only ``decided_by_professional`` says that someone decided."""
    pairs = (
        ("citation", detail.citation if detail else None),
        ("justification", detail.justification if detail else None),
        ("professional", detail.decided_by if detail else None),
    )
    items = {k: v for k, v in pairs if v}
    if not items:
        return {}
    out: dict[str, Any] = {"decided_by_professional": "professional" in items}
    if reader is not None:
        out["sealed"] = seal_detail(
            items, chain=chain, event_id=event_id, reader=reader, person=person
        )
    return out


def decision_record(
    request: DecisionRequest,
    decision: Decision,
    *,
    source: str,
    message_id: str | None,
    recorded: datetime | None = None,
    source_site: str | None = None,
    reader: SealReader | None = None,
) -> AuditRecord:
    """The audit record of one decision (decision-permit or decision-deny); the basis detail is
    sealed for ``reader`` (``source`` is the chain)."""
    event_id = new_event_id()
    return AuditRecord(
        kind=AuditKind.DECISION_PERMIT if decision.permit else AuditKind.DECISION_DENY,
        event_id=event_id,
        recorded=recorded or datetime.now(UTC),
        source=source,
        source_site=source_site,
        reason=decision.reason.value,
        detail=decision.detail,
        flow=request.event,
        actor=request.sender,
        actor_role=request.sender_role,
        recipient=request.recipient,
        recipient_role=request.recipient_role,
        purpose=request.purpose,
        legal_basis=decision.legal_basis,
        consent_id=decision.consent_id,
        pseudonym=request.pseudonym,
        message_id=message_id,
        categories=decision.allowed_categories,
        withheld=decision.withheld_categories,
        controls=controls_for(decision),
        **grounds_fields(request.legal_basis, request.basis_detail),
        **sealed_fields(
            request.basis_detail,
            chain=source,
            event_id=event_id,
            reader=reader,
            person=request.pseudonym,
        ),
    )


def grounds_fields(basis: LegalBasis | None, detail: BasisDetail | None) -> dict[str, Any]:
    """The clear grounds items of an audit record (design audit-record-v2 §4): the AVG art. 6(1)
    letter, the art. 9/10 exceptions and the secrecy ground, as ``broker.policy.grounds`` maps
    the message's basis. The citation itself stays sealed: it may name a legal title."""
    if basis is None:
        return {}
    g = grounds_of(basis, detail)
    return {
        "gdpr_basis": g.gdpr_basis,
        "special_category_exceptions": g.exceptions,
        "secrecy_ground": g.secrecy,
    }


def consent_change_record(
    change: ConsentChange,
    *,
    actor: str,
    actor_role: PartyRole,
    source: str,
    recorded: datetime | None = None,
    message_id: str | None = None,
) -> AuditRecord:
    """The audit record of a consent change applied to the consent view."""
    return AuditRecord(
        kind=AuditKind.CONSENT_CHANGE,
        recorded=recorded or datetime.now(UTC),
        source=source,
        reason=change.kind.value,
        detail=f"consent {change.consent_id} {change.kind.value} "
        f"(version of {_instant(change.recorded_at)})",
        flow=EventCode.CONSENT,
        actor=actor,
        actor_role=actor_role,
        legal_basis=LegalBasis.CONSENT,
        consent_id=change.consent_id,
        pseudonym=change.pseudonym,
        message_id=message_id,
    )


def compliance_search_record(
    query: dict[str, Any],
    *,
    actor: str,
    actor_role: PartyRole,
    source: str,
    results: int,
    recorded: datetime | None = None,
) -> AuditRecord:
    """The audit record of a compliance officer's search (NEN 7513: searches are logged)."""
    return AuditRecord(
        kind=AuditKind.COMPLIANCE_SEARCH,
        recorded=recorded or datetime.now(UTC),
        source=source,
        reason="searched",
        detail=f"{results} record(s) found",
        actor=actor,
        actor_role=actor_role,
        query=json.dumps(query, sort_keys=True, default=str),
    )


def erasure_record(
    *,
    actor: str,
    source: str,
    keys: int,
    subject: str,
    owner: str,
    pseudonym: str | None = None,
    actor_role: PartyRole = PartyRole.ROUTER,
    recorded: datetime | None = None,
    told: tuple[str, ...] = (),
) -> AuditRecord:
    """The audit record of ``ketenbus erase`` (AVG art. 17; NEN 7513 logs the destruction as a
    D action): ``subject`` "person" or "case", named by audit pseudonym where there is one and
    always by its opaque key-store ``owner``, never by a BSN or case id; ``keys`` the number of
    data keys destroyed; ``told`` the parties sent an erasure notice (AVG art. 19)."""
    target = f"{subject} (key-store owner {owner})"
    notices = f"; erasure notice to {', '.join(told)} (AVG art. 19)" if told else ""
    return AuditRecord(
        kind=AuditKind.ERASURE,
        recorded=recorded or datetime.now(UTC),
        source=source,
        reason="erased",
        detail=f"{keys} data key(s) of the {target} destroyed; sealed detail: erased{notices}",
        actor=actor,
        actor_role=actor_role,
        pseudonym=pseudonym,
    )
