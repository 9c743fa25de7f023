"""FHIR R4 messaging: the Bundle (type ``message``) every flow travels in.

Rules (FHIR R4 messaging, MessageHeader), all checked by :func:`read_meta`:

- ``Bundle.type`` is ``message`` and the first entry is the MessageHeader.
- ``Bundle.identifier`` is ``urn:uuid:<message id>`` (system ``urn:ietf:rfc:3986``), unique per
  message, and is the de-duplication key. ``MessageHeader.id`` carries the *same* UUID.
- ``Bundle.timestamp`` is the instant the message was assembled (an instant with a zone).
- ``MessageHeader.eventCoding`` comes from our event code system (``EventCode``); the event
  drives routing and policy.
- ``MessageHeader.source.endpoint`` and each ``destination.endpoint`` are
  ``urn:ketenbus:party:<party id>``; ``sender`` and ``destination.receiver`` name the same parties
  by identifier (system ``https://ketenbus.nl/fhir/NamingSystem/party``).
- ``focus`` points only at resources inside the Bundle (by their ``urn:uuid`` fullUrl); every
  fullUrl is unique.
- ``Bundle.meta.security`` carries the purpose of use and the claimed legal basis; every other
  entry's ``meta.security`` carries exactly one data category (the unit of minimisation).

Correlation of responses. A response's ``MessageHeader.response.identifier`` is the request's
message id. R4 defines it as "Id of original message", i.e. the request's ``MessageHeader.id``;
R5 changed it to the request's ``Bundle.identifier``. Because we give both the same UUID, the value
correlates under either reading, and it is also the de-duplication key a receiver already keeps.
(The element is of type ``id`` in R4/R4B, so it holds the bare UUID, not ``urn:uuid:...``.)

Why ``fhir.resources.R4B``: fhir.resources 8 ships no R4 (4.0.1) package and its default is R5,
which rejects R4 messages (``MessageHeader.source.endpoint`` and ``Consent.provision`` changed
shape, among others). R4B (4.3.0) is wire-compatible with R4 for every resource and element we
use (Bundle, MessageHeader, Patient, Organization, ServiceRequest, Task, Consent, RiskAssessment,
ClinicalImpression, Basic, OperationOutcome, AuditEvent, MeasureReport, Claim, ClaimResponse,
Coverage, EpisodeOfCare, Encounter, Location), so messages we write are valid R4 and R4 messages
parse: HL7 limited the R4B changes to the medication-definition and evidence-based-medicine
resources and the subscription framework ("Implementers that do not use the specific portions
where changes have been made can continue to use either R4 or R4B without any functional
difference", https://hl7.org/fhir/R4B/r4b-explanation.html). Full validation
(:func:`validate_fhir`) therefore uses the R4B models. Caveat: fhir.resources does not check
codes against value sets and is lax about JSON types (e.g. ``"true"`` for a boolean), so the flow
readers check the types they read themselves.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.acting import ActingPersonError, acting_person_of, author_reference
from schemas.errors import Issue, MessageError, issues_from_validation
from schemas.free_text import free_text_categories
from schemas.identifiers import BSN_SYSTEM, PARTY_SYSTEM
from schemas.jsontext import OutOfRange, finite_float, no_constant
from schemas.vocab import DataCategory, EventCode, LegalBasis, PurposeOfUse
from schemas.vocab.grounds import SpecialException

PARTY_ENDPOINT = "urn:ketenbus:party:"
EXT = "https://ketenbus.nl/fhir/StructureDefinition/"
EXT_BASIS_CITATION = EXT + "legal-basis-citation"
EXT_BASIS_JUSTIFICATION = EXT + "legal-basis-justification"
EXT_BASIS_DECIDED_BY = EXT + "legal-basis-decided-by"
EXT_BASIS_VALID_UNTIL = EXT + "legal-basis-valid-until"  # valueDate: conflict of duties ends
EXT_BASIS_EXCEPTION = EXT + "legal-basis-exception"  # valueCode, repeated: AVG art. 9/10
EXT_BASIS_LEGAL_TITLE = EXT + "legal-basis-legal-title"  # valueString: the title in force
# valueId: the message id of the original a correction or withdrawal is about (AVG art. 16, 19)
EXT_FOLLOW_UP_OF = EXT + "follow-up-of"
MAX_MESSAGE_BYTES = 1_000_000
URI_SYSTEM = "urn:ietf:rfc:3986"
_FHIR_ID = re.compile(r"[A-Za-z0-9\-\.]{1,64}")
# The form ``str(uuid.UUID(x)) == x.lower()`` accepts: no other character lowers to a hex digit or
# a hyphen (checked over all of Unicode in tests/unit/schemas/test_schema_fast_paths.py).
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CATEGORY_SYSTEM = DataCategory.default_system()
_CATEGORY_BY_CODE: dict[str, DataCategory] = {c.value: c for c in DataCategory}


class ResponseCode(StrEnum):
    """FHIR ResponseType (required binding on MessageHeader.response.code)."""

    OK = "ok"
    TRANSIENT_ERROR = "transient-error"  # wait and try again
    FATAL_ERROR = "fatal-error"  # no point in re-sending without change


@dataclass(frozen=True)
class BasisDetail:
    """What a non-consent legal basis must carry: a citation, or a justification and who decided."""

    citation: str | None = None
    justification: str | None = None
    decided_by: str | None = None
    valid_until: date | None = None  # last day a conflict-of-duties decision covers
    exceptions: tuple[SpecialException, ...] = ()  # stated art. 9/10 grounds (else derived)
    legal_title: str | None = None  # reference to the person's legal title the citation uses


@dataclass(frozen=True)
class ResponseInfo:
    """``MessageHeader.response``: the request's message id, the code and the OperationOutcome."""

    request_id: str
    code: ResponseCode
    details_ref: str | None = None


# --- ids --------------------------------------------------------------------------------------


def _random_id() -> str:
    """``str(uuid.uuid4())`` without the UUID object: 16 random bytes with the version (4) and
    variant (RFC 4122) bits set, as ``uuid.uuid4`` sets them."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_id_factory: Callable[[], str] = _random_id


def new_id() -> str:
    """A fresh resource or message id (a random UUID, see :func:`deterministic_ids`)."""
    return _id_factory()


@contextmanager
def deterministic_ids(seed: str = "ketenbus") -> Iterator[None]:
    """Within the block, :func:`new_id` yields reproducible UUIDs (uuid5 of ``seed`` and a
    counter). For generating committed examples and docs only; not thread-safe."""
    global _id_factory
    previous = _id_factory
    counter = iter(range(1 << 62))
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "https://ketenbus.nl/examples/" + seed)
    _id_factory = lambda: str(uuid.uuid5(namespace, str(next(counter))))  # noqa: E731
    try:
        yield
    finally:
        _id_factory = previous


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


# --- time -------------------------------------------------------------------------------------


def _iso(ts: datetime) -> str:
    """An instant in UTC (``Z``), in milliseconds unless the value has sub-millisecond digits."""
    spec = "milliseconds" if ts.microsecond % 1000 == 0 else "microseconds"
    return ts.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def fhir_datetime(ts: datetime) -> str:
    """A FHIR dateTime/instant keeping the value's own UTC offset when FHIR can express it
    (whole minutes, at most 14 hours), so that reading it back gives the same offset; otherwise
    the instant in UTC. Requires an aware datetime."""
    if ts.tzinfo is None:
        raise ValueError("a FHIR instant needs a time zone")
    off = ts.utcoffset()
    if off is None or off.total_seconds() % 60 or abs(off.total_seconds()) > 14 * 3600:
        return _iso(ts)
    spec = "seconds" if ts.microsecond == 0 else "microseconds"
    return ts.isoformat(timespec=spec).replace("+00:00", "Z")


_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)


def parse_instant(value: object) -> datetime:
    """Parse a FHIR instant (or a dateTime with time and zone); ``ValueError`` otherwise."""
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        raise ValueError("must be an instant with a time zone, e.g. 2024-05-01T09:30:00Z")
    text = value
    frac = _FRACTION.search(text) if "." in text else None
    if frac and len(frac.group(1)) > 6:  # Python keeps microseconds; drop finer digits
        text = text.replace(frac.group(0), "." + frac.group(1)[:6], 1)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_FRACTION = re.compile(r"\.([0-9]+)")


@dataclass(frozen=True)
class MessageMeta:
    """Everything about a message except its content: what routing and policy need."""

    message_id: str
    event: EventCode
    sender: str
    timestamp: datetime
    purpose: PurposeOfUse
    legal_basis: LegalBasis
    destinations: tuple[str, ...] = ()
    basis_detail: BasisDetail | None = None
    response: ResponseInfo | None = None
    focus: tuple[str, ...] = field(default=(), compare=False)
    # the original's message id: this message corrects it (same event) or withdraws it
    # (event ``withdrawal``); see docs/flows/correction.md
    refers_to: str | None = None
    # The controller (AVG art. 4(7)) of the content, in MessageHeader.responsible: the
    # organisation responsible for it. None: the sender itself. When it is another party, the
    # sender processes for it (art. 28), e.g. a ZVH for the covenant partner that brought the
    # case (the ZVH has no legal basis of its own).
    controller: str | None = None
    # the person who acted at the sender (NEN 7513 user), ``<kind>:<id>`` (schemas.acting), in
    # MessageHeader.author; None when the source system did not say
    author: str | None = None

    @property
    def responsible(self) -> str:
        """The controller of the content: the named one, else the sender."""
        return self.controller or self.sender

    @property
    def processor(self) -> str | None:
        """The sender, when it processes for another controller; else None."""
        return self.sender if self.controller and self.controller != self.sender else None

    @staticmethod
    def new(
        event: EventCode,
        sender: str,
        purpose: PurposeOfUse,
        legal_basis: LegalBasis,
        destinations: tuple[str, ...] = (),
        basis_detail: BasisDetail | None = None,
        response: ResponseInfo | None = None,
        now: datetime | None = None,
        message_id: str | None = None,
        refers_to: str | None = None,
        controller: str | None = None,
        author: str | None = None,
    ) -> MessageMeta:
        """A new message's metadata; pass ``message_id`` to make re-sends recognisable as the
        same message (e.g. derived from an input file), else a fresh UUID is used."""
        return MessageMeta(
            message_id=message_id or new_id(),
            event=event,
            sender=sender,
            timestamp=(now or datetime.now(UTC)).astimezone(UTC),
            purpose=purpose,
            legal_basis=legal_basis,
            destinations=destinations,
            basis_detail=basis_detail,
            response=response,
            refers_to=refers_to,
            controller=controller,
            author=author,
        )


def tag(resource: dict[str, Any], category: DataCategory) -> dict[str, Any]:
    """Label a resource with its data category (in place) and return it."""
    meta = resource.setdefault("meta", {})
    meta["security"] = [c for c in meta.get("security", []) if c.get("system") != category.system]
    meta["security"].append(category.coding())
    return resource


def category_of(resource: dict[str, Any]) -> DataCategory | None:
    """The data category a resource is tagged with (None when untagged or unknown)."""
    meta = resource.get("meta") if isinstance(resource, dict) else None
    security = meta.get("security") if isinstance(meta, dict) else None
    if isinstance(security, list):
        for c in security:
            if isinstance(c, dict) and c.get("system") == _CATEGORY_SYSTEM:
                return _category_named(c.get("code"))
    return None


def _category_named(code: object) -> DataCategory | None:
    """``DataCategory(str(code))`` or None, without raising (a dict lookup, not an enum call)."""
    if type(code) is str:
        return _CATEGORY_BY_CODE.get(code)
    try:
        return _CATEGORY_BY_CODE.get(str(code))
    except ValueError:  # str() of an int beyond the digit limit
        return None


def party_reference(party_id: str) -> dict[str, Any]:
    return {"identifier": {"system": PARTY_SYSTEM, "value": party_id}}


def _header(meta: MessageMeta, focus_urls: list[str]) -> dict[str, Any]:
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": meta.message_id,
        "eventCoding": meta.event.coding(),
    }
    if meta.destinations:
        header["destination"] = [
            {"endpoint": PARTY_ENDPOINT + d, "receiver": party_reference(d)}
            for d in meta.destinations
        ]
    header["sender"] = party_reference(meta.sender)
    if meta.author is not None:
        header["author"] = author_reference(meta.author)
    if meta.controller is not None:
        header["responsible"] = party_reference(meta.controller)
    header["source"] = {"endpoint": PARTY_ENDPOINT + meta.sender}
    if meta.response is not None:
        resp: dict[str, Any] = {
            "identifier": meta.response.request_id,
            "code": meta.response.code.value,
        }
        if meta.response.details_ref:
            resp["details"] = {"reference": meta.response.details_ref}
        header["response"] = resp
    if focus_urls:
        header["focus"] = [{"reference": u} for u in focus_urls]
    ext = []
    d = meta.basis_detail
    if d is not None:
        for url, value in (
            (EXT_BASIS_CITATION, d.citation),
            (EXT_BASIS_JUSTIFICATION, d.justification),
            (EXT_BASIS_DECIDED_BY, d.decided_by),
        ):
            if value:
                ext.append({"url": url, "valueString": value})
        if d.valid_until is not None:
            ext.append({"url": EXT_BASIS_VALID_UNTIL, "valueDate": d.valid_until.isoformat()})
        for exc in d.exceptions:
            ext.append({"url": EXT_BASIS_EXCEPTION, "valueCode": exc.value})
        if d.legal_title:
            ext.append({"url": EXT_BASIS_LEGAL_TITLE, "valueString": d.legal_title})
    if meta.refers_to is not None:
        ext.append({"url": EXT_FOLLOW_UP_OF, "valueId": meta.refers_to})
    if ext:
        header["extension"] = ext
    return header


def _lead(resource: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Reorder (in place) so that ``keys`` come first, as FHIR JSON customarily has them."""
    rest = {k: resource.pop(k) for k in list(resource) if k not in keys}
    resource.update(rest)


def build_message(
    meta: MessageMeta,
    entries: list[tuple[dict[str, Any], DataCategory]],
    focus: list[int] | None = None,
) -> dict[str, Any]:
    """Assemble a message Bundle.

    ``entries`` are (resource, category) pairs; each resource gets an id (if missing), a
    ``urn:uuid`` fullUrl and its category tag. ``focus`` lists indexes into ``entries`` (default:
    the first entry). References between entries should use ``full_url(resource["id"])``.
    """
    bundle_entries: list[dict[str, Any]] = []
    urls = []
    for resource, category in entries:
        resource.setdefault("id", new_id())
        tag(resource, category)
        _lead(resource, ("resourceType", "id", "meta"))
        url = full_url(resource["id"])
        urls.append(url)
        bundle_entries.append({"fullUrl": url, "resource": resource})
    focus_idx = [0] if focus is None and entries else (focus or [])
    header = _header(meta, [urls[i] for i in focus_idx])
    return {
        "resourceType": "Bundle",
        "id": meta.message_id,
        "meta": {"security": [meta.purpose.coding(), meta.legal_basis.coding()]},
        "identifier": {"system": URI_SYSTEM, "value": full_url(meta.message_id)},
        "type": "message",
        "timestamp": _iso(meta.timestamp),
        "entry": [{"fullUrl": full_url(meta.message_id), "resource": header}, *bundle_entries],
    }


# What orjson hands to ``default`` (which refuses it, so that json writes it, or raises, as
# before): str/int/dict/list subclasses, dataclasses and datetimes, which json.dumps treats
# differently from orjson.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _not_plain_json(value: object) -> Any:
    raise TypeError  # orjson raises JSONEncodeError and dumps falls back to json


def dumps(bundle: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the wire form of a message: keys in insertion order (not sorted),
    non-ASCII as UTF-8 (not escaped), nothing but compact separators.

    orjson writes plain JSON trees ~10x faster than ``json.dumps`` and byte for byte the same,
    with one exception: a float below 1e-4 in magnitude may be written in another notation
    (``1e-7`` for ``1e-07``, ``0.00001`` for ``1e-05``), the same value. Whatever orjson would
    write differently or refuses goes to :func:`_dumps_json`, the previous implementation: a
    NaN or infinity (orjson writes ``null``, so any ``null`` in the output sends the tree
    there), an integer beyond 64 bits, a lone surrogate (``UnicodeEncodeError``, as before),
    non-str keys, subclasses, a tree deeper than 255, and non-JSON objects (``TypeError``).
    """
    try:
        out = orjson.dumps(bundle, default=_not_plain_json, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _dumps_json(bundle)
    if b"null" in out:  # perhaps NaN or an infinity, which json writes as NaN / Infinity
        return _dumps_json(bundle)
    return out


def _dumps_json(bundle: Any) -> bytes:
    """The previous ``dumps``: the reference for every case orjson does not cover."""
    return json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


@dataclass(frozen=True)
class ParsedMessage:
    bundle: dict[str, Any]
    meta: MessageMeta

    def resources(self, resource_type: str | None = None) -> list[dict[str, Any]]:
        """The content resources (every entry after the MessageHeader), optionally of one type."""
        return list(self._resources(resource_type))

    def _resources(self, resource_type: str | None = None) -> Iterator[dict[str, Any]]:
        """:meth:`resources` without building lists (the router asks several times a message)."""
        entries = self.bundle.get("entry")
        if not isinstance(entries, list):
            return
        first = True
        for e in entries:
            if not isinstance(e, dict):
                continue
            if first:  # the MessageHeader: the first entry that is an object
                first = False
                continue
            r = e.get("resource")
            if isinstance(r, dict) and (
                resource_type is None or r.get("resourceType") == resource_type
            ):
                yield r

    def by_url(self) -> dict[str, dict[str, Any]]:
        return {
            e["fullUrl"]: e["resource"]
            for e in _entries(self.bundle)
            if isinstance(e.get("fullUrl"), str) and isinstance(e.get("resource"), dict)
        }

    def categories(self) -> frozenset[DataCategory]:
        """Data categories present in the message: the resources' tags, the categories of their
        free text (``schemas.free_text``), and contact for a Patient's contact elements."""
        cats = set()
        for r in self._resources():
            c = category_of(r)
            if c is not None:
                cats.add(c)
            cats |= free_text_categories(r)
            if r.get("resourceType") == "Patient" and (
                "address" in r or "telecom" in r or "contact" in r
            ):
                cats.add(DataCategory.CONTACT)
        return frozenset(cats)

    def subject_bsn(self) -> str | None:
        """The BSN of the person the message is about (first Patient's BSN identifier)."""
        for p in self._resources("Patient"):
            idents = p.get("identifier")
            if not isinstance(idents, list):
                continue
            for ident in idents:
                if isinstance(ident, dict) and ident.get("system") == BSN_SYSTEM:
                    value = ident.get("value")
                    if isinstance(value, str) and value:
                        return str(value)
        return None


# --- reading ----------------------------------------------------------------------------------


def _fail(path: str, code: str, message: str, reason: str) -> MessageError:
    return MessageError([Issue(path, code, message, reason)])


def _coding_from(codings: list[Any], enum: Any, path: str) -> Any:
    for c in codings:
        if isinstance(c, dict):
            member = enum.lookup(c.get("system"), c.get("code"))
            if member is not None:
                return member
    raise _fail(path, "required", f"no {enum.__name__} coding", "missing-code")


def _party_of_endpoint(endpoint: object, path: str) -> str:
    if (
        not isinstance(endpoint, str)
        or not endpoint.startswith(PARTY_ENDPOINT)
        or len(endpoint) == len(PARTY_ENDPOINT)
    ):
        raise _fail(path, "value", f"endpoint must be {PARTY_ENDPOINT}<party id>", "endpoint")
    return endpoint[len(PARTY_ENDPOINT) :]


def _obj(value: object, path: str, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        what = "is required" if value is None else "must be a JSON object"
        raise _fail(path, "required" if value is None else "structure", what, "structure")
    return value


def _list(value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, "structure", "must be a JSON array", "structure")
    return value


def _check_entries(entries: list[Any]) -> set[str]:
    """Every entry an object with a unique fullUrl and a resource; every content resource with
    exactly one known data category. Returns the fullUrls (the paths are built only to fail)."""
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise _fail(
                f"Bundle.entry[{i}]", "structure", "an entry must be a JSON object", "structure"
            )
        url = e.get("fullUrl")
        if not isinstance(url, str) or not url:
            raise _fail(
                f"Bundle.entry[{i}].fullUrl", "required", "every entry needs a fullUrl", "full-url"
            )
        if url in seen:
            raise _fail(
                f"Bundle.entry[{i}].fullUrl", "invalid", "fullUrl is not unique", "full-url"
            )
        seen.add(url)
        res = e.get("resource")
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            raise _fail(
                f"Bundle.entry[{i}].resource", "structure", "an entry needs a resource", "structure"
            )
        if i == 0:  # the MessageHeader
            continue
        meta = res.get("meta")
        sec = meta.get("security") if isinstance(meta, dict) else None
        tag: Any = None
        tags = 0
        if isinstance(sec, list):
            for c in sec:
                if isinstance(c, dict) and c.get("system") == _CATEGORY_SYSTEM:
                    tags += 1
                    if tags == 1:
                        tag = c
        if tags != 1 or _category_named(tag.get("code")) is None:
            raise _fail(
                f"Bundle.entry[{i}].resource.meta.security",
                "security",
                "every content resource carries exactly one known data category",
                "category",
            )
    return seen


def read_meta(bundle: Any) -> MessageMeta:
    """Check the messaging rules and extract the metadata (fast: no full model validation)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise _fail("", "structure", "not a FHIR Bundle", "not-a-bundle")
    if bundle.get("type") != "message":
        raise _fail("Bundle.type", "value", "must be 'message'", "bundle-type")
    ident = bundle.get("identifier")
    value = ident.get("value") if isinstance(ident, dict) else None
    if not isinstance(value, str) or not value.startswith("urn:uuid:"):
        raise _fail("Bundle.identifier", "required", "must be urn:uuid:<uuid>", "bundle-identifier")
    message_id = value.removeprefix("urn:uuid:")
    if not _UUID.fullmatch(message_id):  # i.e. str(uuid.UUID(message_id)) != its lower case
        raise _fail("Bundle.identifier", "value", "not a valid UUID", "bundle-identifier")
    try:
        timestamp = parse_instant(bundle.get("timestamp"))
    except ValueError:
        raise _fail(
            "Bundle.timestamp", "required", "must be an instant with zone", "timestamp"
        ) from None
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise _fail("Bundle.entry", "required", "message has no entries", "empty")
    first = entries[0].get("resource") if isinstance(entries[0], dict) else None
    if not isinstance(first, dict) or first.get("resourceType") != "MessageHeader":
        raise _fail("Bundle.entry[0]", "structure", "first entry must be MessageHeader", "header")
    urls = _check_entries(entries)
    header: dict[str, Any] = first
    if header.get("id") != message_id:
        raise _fail(
            "MessageHeader.id", "value", "must equal the Bundle.identifier UUID", "header-id"
        )
    event = _coding_from(
        [_obj(header.get("eventCoding"), "MessageHeader.eventCoding")],
        EventCode,
        "MessageHeader.eventCoding",
    )
    source = _obj(header.get("source"), "MessageHeader.source")
    sender = _party_of_endpoint(source.get("endpoint"), "MessageHeader.source.endpoint")
    dests = tuple(
        _party_of_endpoint(
            _obj(d, f"MessageHeader.destination[{i}]").get("endpoint"),
            f"MessageHeader.destination[{i}].endpoint",
        )
        for i, d in enumerate(_list(header.get("destination"), "MessageHeader.destination"))
    )
    bmeta = _obj(bundle.get("meta"), "Bundle.meta", required=False)
    security = _list(bmeta.get("security"), "Bundle.meta.security")
    purpose = _coding_from(security, PurposeOfUse, "Bundle.meta.security")
    basis = _coding_from(security, LegalBasis, "Bundle.meta.security")
    focus = []
    for i, f in enumerate(_list(header.get("focus"), "MessageHeader.focus")):
        ref = _obj(f, f"MessageHeader.focus[{i}]").get("reference")
        if not isinstance(ref, str) or ref not in urls or ref == entries[0]["fullUrl"]:
            raise _fail(
                f"MessageHeader.focus[{i}]",
                "not-found",
                "focus must reference a resource inside the Bundle",
                "focus",
            )
        focus.append(ref)
    detail = None
    exts: dict[Any, Any] = {}
    valid_until: date | None = None
    exceptions: list[SpecialException] = []
    refers_to: str | None = None
    for j, x in enumerate(_list(header.get("extension"), "MessageHeader.extension")):
        x = _obj(x, f"MessageHeader.extension[{j}]")
        if isinstance(x.get("url"), str) and isinstance(x.get("valueString"), str):
            exts[x["url"]] = x["valueString"]
        elif x.get("url") == EXT_BASIS_VALID_UNTIL:
            valid_until = _ext_date(x.get("valueDate"), f"MessageHeader.extension[{j}]")
        elif x.get("url") == EXT_BASIS_EXCEPTION:
            exceptions.append(_ext_exception(x.get("valueCode"), f"MessageHeader.extension[{j}]"))
        elif x.get("url") == EXT_FOLLOW_UP_OF:
            refers_to = _ext_message_id(x.get("valueId"), f"MessageHeader.extension[{j}]")
    if (
        any(k in exts for k in (EXT_BASIS_CITATION, EXT_BASIS_JUSTIFICATION, EXT_BASIS_DECIDED_BY,
                                EXT_BASIS_LEGAL_TITLE))
        or valid_until is not None
        or exceptions
    ):  # fmt: skip
        detail = BasisDetail(
            exts.get(EXT_BASIS_CITATION),
            exts.get(EXT_BASIS_JUSTIFICATION),
            exts.get(EXT_BASIS_DECIDED_BY),
            valid_until,
            tuple(dict.fromkeys(exceptions)),
            exts.get(EXT_BASIS_LEGAL_TITLE),
        )
    response = None
    if "response" in header:
        r = _obj(header["response"], "MessageHeader.response")
        try:
            code = ResponseCode(str(r.get("code")))
        except ValueError:
            raise _fail(
                "MessageHeader.response.code", "value", "unknown code", "response-code"
            ) from None
        request_id = r.get("identifier")
        if not isinstance(request_id, str) or not _FHIR_ID.fullmatch(request_id):
            raise _fail(
                "MessageHeader.response.identifier",
                "required",
                "must be the request's message id",
                "response-identifier",
            )
        details = _obj(r.get("details"), "MessageHeader.response.details", required=False)
        details_ref = details.get("reference")
        if details_ref is not None and (
            not isinstance(details_ref, str) or details_ref not in urls
        ):
            raise _fail(
                "MessageHeader.response.details",
                "not-found",
                "details must reference an OperationOutcome inside the Bundle",
                "details",
            )
        response = ResponseInfo(request_id, code, details_ref)
    return MessageMeta(
        message_id=message_id,
        event=event,
        sender=sender,
        timestamp=timestamp,
        purpose=purpose,
        legal_basis=basis,
        destinations=dests,
        basis_detail=detail,
        response=response,
        focus=tuple(focus),
        refers_to=refers_to,
        controller=_responsible(header),
        author=_author(header),
    )


def _author(header: dict[str, Any]) -> str | None:
    """``MessageHeader.author`` as the acting person, or None when absent."""
    if "author" not in header:
        return None
    try:
        return acting_person_of(header["author"])
    except ActingPersonError as err:
        raise _fail("MessageHeader.author", "value", str(err), err.reason) from None


def _ext_message_id(value: object, where: str) -> str:
    """The ``valueId`` of the follow-up extension: the original's message id, a UUID."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value
    raise _fail(where, "value", "follow-up-of must be a message id (UUID)", "follow-up-of")


def _responsible(header: dict[str, Any]) -> str | None:
    """``MessageHeader.responsible`` as a party id (the controller), or None when absent."""
    if "responsible" not in header:
        return None
    ident = _obj(header["responsible"], "MessageHeader.responsible").get("identifier")
    if not isinstance(ident, dict) or ident.get("system") != PARTY_SYSTEM:
        raise _fail(
            "MessageHeader.responsible", "value", "must name a party by its id", "controller"
        )
    value = ident.get("value")
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise _fail(
            "MessageHeader.responsible", "value", "must name a party by its id", "controller"
        )
    return value


def _ext_date(value: object, where: str) -> date:
    """A ``valueDate`` of a grounds extension: a full date (YYYY-MM-DD), nothing else."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(where, "value", "valueDate must be a date YYYY-MM-DD", "basis-valid-until")


def _ext_exception(value: object, where: str) -> SpecialException:
    """A ``valueCode`` of the exception extension: a code of the special-category list."""
    found = SpecialException._value2member_map_.get(value) if isinstance(value, str) else None
    if not isinstance(found, SpecialException):
        raise _fail(where, "code-invalid", "unknown art. 9/10 exception", "basis-exception")
    return found


def validate_fhir(bundle: dict[str, Any]) -> None:
    """Full structural validation with the fhir.resources R4B models (costly: ~2 ms per 5 KB)."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.bundle import Bundle

    for i, e in enumerate(_entries(bundle)):
        rtype = (e.get("resource") or {}).get("resourceType") if isinstance(e, dict) else None
        try:
            get_fhir_model_class(str(rtype))
        except (KeyError, ValueError, AttributeError, ImportError):
            raise _fail(
                f"Bundle.entry[{i}].resource.resourceType",
                "not-supported",
                "unknown FHIR R4 resource type",
                "resource-type",
            ) from None
    try:
        Bundle.model_validate(bundle)
    except ValidationError as err:
        raise MessageError(issues_from_validation(err, "Bundle")) from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as err:
        # fhir.resources raises these for some malformed (e.g. contained) resources
        raise _fail(
            "Bundle", "structure", f"not a valid FHIR Bundle ({err.__class__.__name__})", "fhir"
        ) from None


# what can make json.loads return a string with a lone UTF-16 surrogate (which is no Unicode
# text: it cannot be written as UTF-8 again): an escape \ud800-\udfff, or such a code point
# encoded in the bytes (json.loads decodes bytes with "surrogatepass")
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _lone_surrogate(raw: bytes | str, bundle: Any) -> bool:
    """Whether the decoded message holds a lone surrogate (a pair escape is fine); the search
    is cheap, the full check runs only when it finds something."""
    found = _SURROGATE_BYTES.search(raw) if isinstance(raw, bytes) else _SURROGATE_TEXT.search(raw)
    if found is None:
        return False
    try:
        _dumps_json(bundle)
    except UnicodeEncodeError:
        return True
    return False


# For the orjson fast path: digits -> "0", "[" and "{" -> "[", every other byte -> " ".
_SCAN_TABLE = bytes(
    0x30 if 0x30 <= b <= 0x39 else 0x5B if b in (0x5B, 0x7B) else 0x20 for b in range(256)
)
_LONG_DIGITS = b"0" * 19  # an integer of 19+ digits may not fit 64 bits (orjson makes a float)
# Containers a message may open and still take the fast path. json.loads refuses nesting near
# the recursion limit (~1000 minus the caller's stack) with RecursionError, orjson only beyond
# 1024; at most this many openers cannot be nested deeply enough for the two to differ.
_FAST_MAX_OPENERS = 500


def _loads(raw: bytes | str) -> Any:
    """JSON text to a tree, exactly as :func:`_loads_json` (``json.loads``) would, ~3x faster.

    orjson takes well-formed UTF-8 that is not too deep and has no integer of 19+ digits; for
    such input it gives the same tree as ``json.loads`` (same floats, last duplicate key wins
    at the first key's place). Everything else (what orjson refuses: invalid UTF-8, a BOM,
    UTF-16/32, lone surrogates, NaN / Infinity, 1e400, syntax errors, nesting beyond 1024)
    goes to ``json.loads``, which accepts or refuses it, with the same error, as before; only
    a number beyond the float range (``1e400``), once read as an infinity, is now refused.
    """
    data = raw
    if type(raw) is str:
        try:
            data = raw.encode()
        except UnicodeEncodeError:  # a lone surrogate in the text
            return _loads_json(raw)
    elif type(raw) is not bytes:
        return _loads_json(raw)
    assert isinstance(data, bytes)
    scan = data.translate(_SCAN_TABLE)
    if scan.count(b"[") > _FAST_MAX_OPENERS or _LONG_DIGITS in scan:
        return _loads_json(raw)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _loads_json(raw)


def _loads_json(raw: bytes | str) -> Any:
    """The reference parse (the previous one): ``json.loads`` and the lone-surrogate check."""
    try:
        bundle = json.loads(raw, parse_constant=no_constant, parse_float=finite_float)
    except OutOfRange as err:
        raise _fail("", "structure", f"not valid JSON: {err}", "not-json") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        msg = f"not valid JSON: {err.__class__.__name__}"
        raise _fail("", "structure", msg, "not-json") from None
    if _lone_surrogate(raw, bundle):
        raise _fail("", "structure", "not valid JSON: a lone UTF-16 surrogate", "not-json")
    return bundle


def parse_message(raw: bytes | str, *, full: bool = True) -> ParsedMessage:
    """Parse wire bytes into a checked message, or raise ``MessageError`` with an outcome."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise _fail("", "too-long", "message exceeds 1 MB", "too-large")
    bundle = _loads(raw)
    meta = read_meta(bundle)
    if full:
        validate_fhir(bundle)
    return ParsedMessage(bundle, meta)
