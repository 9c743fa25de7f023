"""FHIR R4 messaging: the Bundle (type ``message``) every flow travels in.

Rules (FHIR R4 messaging, MessageHeader):
- ``Bundle.type`` is ``message`` and the first entry is the MessageHeader.
- ``Bundle.identifier`` is ``urn:uuid:<message id>``, unique per message, and is the
  de-duplication key. ``MessageHeader.id`` carries the *same* UUID, so a response's
  ``MessageHeader.response.identifier`` (R4: "Id of original message", i.e. the request's
  MessageHeader.id) equals the request's Bundle.identifier value as well (R5's convention):
  correlation works under either reading of the spec.
- ``MessageHeader.eventCoding`` comes from our event code system; ``source.endpoint`` and each
  ``destination.endpoint`` are ``urn:ketenbus:party:<party id>``; ``focus`` points only at
  resources inside the Bundle.
- ``Bundle.meta.security`` carries the purpose of use and the claimed legal basis; each other
  entry's ``meta.security`` carries its data category (the unit of minimisation).

We use ``fhir.resources.R4B`` models: fhir.resources 8 ships no R4 (4.0.1) package and its
default is R5, which rejects R4 messages. R4B (4.3.0) is wire-compatible with R4 for every
resource we use (Bundle, MessageHeader, Patient, ServiceRequest, Task, Consent, RiskAssessment,
Basic, OperationOutcome, AuditEvent, MeasureReport, Claim, ClaimResponse, EpisodeOfCare,
Encounter, Organization, Location, Flag).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.errors import Issue, MessageError, issues_from_validation
from schemas.identifiers import BSN_SYSTEM, PARTY_SYSTEM
from schemas.vocab import DataCategory, EventCode, LegalBasis, PurposeOfUse

PARTY_ENDPOINT = "urn:ketenbus:party:"
EXT = "https://ketenbus.nl/fhir/StructureDefinition/"
EXT_BASIS_CITATION = EXT + "legal-basis-citation"
EXT_BASIS_JUSTIFICATION = EXT + "legal-basis-justification"
EXT_BASIS_DECIDED_BY = EXT + "legal-basis-decided-by"
MAX_MESSAGE_BYTES = 1_000_000


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


@dataclass(frozen=True)
class ResponseInfo:
    request_id: str
    code: ResponseCode
    details_ref: str | None = None


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
    ) -> MessageMeta:
        return MessageMeta(
            message_id=str(uuid.uuid4()),
            event=event,
            sender=sender,
            timestamp=(now or datetime.now(UTC)).astimezone(UTC),
            purpose=purpose,
            legal_basis=legal_basis,
            destinations=destinations,
            basis_detail=basis_detail,
            response=response,
        )


def new_id() -> str:
    return str(uuid.uuid4())


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def tag(resource: dict[str, Any], category: DataCategory) -> dict[str, Any]:
    """Label a resource with its data category (in place) and return it."""
    meta = resource.setdefault("meta", {})
    meta["security"] = [c for c in meta.get("security", []) if c.get("system") != category.system]
    meta["security"].append(category.coding())
    return resource


def category_of(resource: dict[str, Any]) -> DataCategory | None:
    for c in resource.get("meta", {}).get("security", []):
        if c.get("system") == DataCategory.default_system():
            try:
                return DataCategory(c.get("code"))
            except ValueError:
                return None
    return None


def party_reference(party_id: str) -> dict[str, Any]:
    return {"identifier": {"system": PARTY_SYSTEM, "value": party_id}}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    if ext:
        header["extension"] = ext
    return header


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
        url = full_url(resource["id"])
        urls.append(url)
        bundle_entries.append({"fullUrl": url, "resource": resource})
    focus_idx = [0] if focus is None and entries else (focus or [])
    header = _header(meta, [urls[i] for i in focus_idx])
    return {
        "resourceType": "Bundle",
        "id": meta.message_id,
        "meta": {"security": [meta.purpose.coding(), meta.legal_basis.coding()]},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": full_url(meta.message_id)},
        "type": "message",
        "timestamp": _iso(meta.timestamp),
        "entry": [{"fullUrl": full_url(meta.message_id), "resource": header}, *bundle_entries],
    }


def dumps(bundle: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the wire form of a message."""
    return json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ParsedMessage:
    bundle: dict[str, Any]
    meta: MessageMeta

    def resources(self, resource_type: str | None = None) -> list[dict[str, Any]]:
        out = [e["resource"] for e in self.bundle.get("entry", [])[1:] if "resource" in e]
        return [r for r in out if resource_type is None or r.get("resourceType") == resource_type]

    def by_url(self) -> dict[str, dict[str, Any]]:
        return {e.get("fullUrl", ""): e["resource"] for e in self.bundle.get("entry", [])}

    def categories(self) -> frozenset[DataCategory]:
        """Data categories present in the message (Patient contact elements count as contact)."""
        cats = set()
        for r in self.resources():
            c = category_of(r)
            if c is not None:
                cats.add(c)
            if r.get("resourceType") == "Patient" and any(
                k in r for k in ("address", "telecom", "contact")
            ):
                cats.add(DataCategory.CONTACT)
        return frozenset(cats)

    def subject_bsn(self) -> str | None:
        """The BSN of the person the message is about (first Patient's BSN identifier)."""
        for p in self.resources("Patient"):
            for ident in p.get("identifier", []):
                if ident.get("system") == BSN_SYSTEM and ident.get("value"):
                    return str(ident["value"])
        return None


def _coding_from(codings: list[dict[str, Any]], enum: Any, path: str) -> Any:
    for c in codings:
        try:
            return enum.from_coding(c)
        except ValueError:
            continue
    raise MessageError([Issue(path, "required", f"no {enum.__name__} coding", "missing-code")])


def _party_of_endpoint(endpoint: str, path: str) -> str:
    if not endpoint.startswith(PARTY_ENDPOINT) or len(endpoint) == len(PARTY_ENDPOINT):
        raise MessageError(
            [Issue(path, "value", f"endpoint must be {PARTY_ENDPOINT}<party id>", "endpoint")]
        )
    return endpoint[len(PARTY_ENDPOINT) :]


def read_meta(bundle: dict[str, Any]) -> MessageMeta:
    """Check the messaging rules and extract the metadata (fast: no full model validation)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise MessageError([Issue("", "structure", "not a FHIR Bundle", "not-a-bundle")])
    if bundle.get("type") != "message":
        raise MessageError([Issue("Bundle.type", "value", "must be 'message'", "bundle-type")])
    ident = bundle.get("identifier") or {}
    value = ident.get("value") if isinstance(ident, dict) else None
    if not isinstance(value, str) or not value.startswith("urn:uuid:"):
        raise MessageError(
            [Issue("Bundle.identifier", "required", "must be urn:uuid:<uuid>", "bundle-identifier")]
        )
    message_id = value.removeprefix("urn:uuid:")
    try:
        uuid.UUID(message_id)
    except ValueError:
        raise MessageError(
            [Issue("Bundle.identifier", "value", "not a valid UUID", "bundle-identifier")]
        ) from None
    ts_raw = bundle.get("timestamp")
    try:
        timestamp = datetime.fromisoformat(str(ts_raw))
        if timestamp.tzinfo is None:
            raise ValueError
    except ValueError:
        raise MessageError(
            [Issue("Bundle.timestamp", "required", "must be an instant with zone", "timestamp")]
        ) from None
    entries = bundle.get("entry") or []
    if not entries or not isinstance(entries[0], dict):
        raise MessageError([Issue("Bundle.entry", "required", "message has no entries", "empty")])
    header = entries[0].get("resource") or {}
    if header.get("resourceType") != "MessageHeader":
        raise MessageError(
            [Issue("Bundle.entry[0]", "structure", "first entry must be MessageHeader", "header")]
        )
    if header.get("id") != message_id:
        raise MessageError(
            [
                Issue(
                    "MessageHeader.id",
                    "value",
                    "must equal the Bundle.identifier UUID",
                    "header-id",
                )
            ]
        )
    event = _coding_from([header.get("eventCoding") or {}], EventCode, "MessageHeader.eventCoding")
    source = header.get("source") or {}
    sender = _party_of_endpoint(str(source.get("endpoint", "")), "MessageHeader.source.endpoint")
    dests = tuple(
        _party_of_endpoint(str(d.get("endpoint", "")), f"MessageHeader.destination[{i}].endpoint")
        for i, d in enumerate(header.get("destination") or [])
    )
    security = (bundle.get("meta") or {}).get("security") or []
    purpose = _coding_from(security, PurposeOfUse, "Bundle.meta.security")
    basis = _coding_from(security, LegalBasis, "Bundle.meta.security")
    urls = {e.get("fullUrl") for e in entries if isinstance(e, dict)}
    focus = []
    for i, f in enumerate(header.get("focus") or []):
        ref = f.get("reference")
        if ref not in urls:
            raise MessageError(
                [
                    Issue(
                        f"MessageHeader.focus[{i}]",
                        "not-found",
                        "focus must reference a resource inside the Bundle",
                        "focus",
                    )
                ]
            )
        focus.append(str(ref))
    detail = None
    exts = {x.get("url"): x.get("valueString") for x in header.get("extension") or []}
    if any(k in exts for k in (EXT_BASIS_CITATION, EXT_BASIS_JUSTIFICATION, EXT_BASIS_DECIDED_BY)):
        detail = BasisDetail(
            exts.get(EXT_BASIS_CITATION),
            exts.get(EXT_BASIS_JUSTIFICATION),
            exts.get(EXT_BASIS_DECIDED_BY),
        )
    response = None
    if "response" in header:
        r = header["response"]
        try:
            code = ResponseCode(r.get("code"))
        except ValueError:
            raise MessageError(
                [Issue("MessageHeader.response.code", "value", "unknown code", "response-code")]
            ) from None
        response = ResponseInfo(
            str(r.get("identifier")), code, (r.get("details") or {}).get("reference")
        )
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
    )


def validate_fhir(bundle: dict[str, Any]) -> None:
    """Full structural validation with the fhir.resources R4B models (costly: ~2 ms per 5 KB)."""
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(bundle)
    except ValidationError as err:
        raise MessageError(issues_from_validation(err, "Bundle")) from None


def parse_message(raw: bytes | str, *, full: bool = True) -> ParsedMessage:
    """Parse wire bytes into a checked message, or raise ``MessageError`` with an outcome."""
    if isinstance(raw, bytes) and len(raw) > MAX_MESSAGE_BYTES:
        raise MessageError([Issue("", "too-long", "message exceeds 1 MB", "too-large")])
    try:
        bundle = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        msg = f"not valid JSON: {err.__class__.__name__}"
        raise MessageError([Issue("", "structure", msg, "not-json")]) from None
    meta = read_meta(bundle)
    if full:
        validate_fhir(bundle)
    return ParsedMessage(bundle, meta)
