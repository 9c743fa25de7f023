"""The messaging reader as it was before the orjson fast path (commit 50dd001), kept verbatim
as the reference the fast path is compared with (tests/unit/schemas/test_schema_fast_paths.py);
only ``from_coding`` is the old linear scan here too, so nothing of the new code is used, apart
from the free-text categories of issue 16 (``schemas.free_text``), which both count."""

# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.errors import Issue, MessageError, issues_from_validation
from schemas.free_text import free_text_categories
from schemas.messaging import _author, _responsible
from schemas.identifiers import BSN_SYSTEM, PARTY_SYSTEM
from schemas.vocab import DataCategory, EventCode, LegalBasis, PurposeOfUse

PARTY_ENDPOINT = "urn:ketenbus:party:"
EXT = "https://ketenbus.nl/fhir/StructureDefinition/"
EXT_BASIS_CITATION = EXT + "legal-basis-citation"
EXT_BASIS_JUSTIFICATION = EXT + "legal-basis-justification"
EXT_BASIS_DECIDED_BY = EXT + "legal-basis-decided-by"
MAX_MESSAGE_BYTES = 1_000_000
URI_SYSTEM = "urn:ietf:rfc:3986"
_FHIR_ID = re.compile(r"[A-Za-z0-9\-\.]{1,64}")


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
    # issue 16 added these; the old reader never set them (defaults, so the tuples compare)
    valid_until: Any = None
    exceptions: tuple[Any, ...] = ()
    legal_title: str | None = None


@dataclass(frozen=True)
class ResponseInfo:
    """``MessageHeader.response``: the request's message id, the code and the OperationOutcome."""

    request_id: str
    code: ResponseCode
    details_ref: str | None = None


# --- ids --------------------------------------------------------------------------------------


def _random_id() -> str:
    return str(uuid.uuid4())


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
    frac = re.search(r"\.([0-9]+)", text)
    if frac and len(frac.group(1)) > 6:  # Python keeps microseconds; drop finer digits
        text = text.replace(frac.group(0), "." + frac.group(1)[:6], 1)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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
    refers_to: str | None = None  # added with corrections and withdrawals (issue 16)
    controller: str | None = None  # issue 16: MessageHeader.responsible (same reader as the new)
    author: str | None = None  # issue 17: MessageHeader.author (same reader as the new)

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
    for c in security if isinstance(security, list) else []:
        if isinstance(c, dict) and c.get("system") == DataCategory.default_system():
            try:
                return DataCategory(str(c.get("code")))
            except ValueError:
                return None
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


def dumps(bundle: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the wire form of a message."""
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
        out = [
            e["resource"] for e in _entries(self.bundle)[1:] if isinstance(e.get("resource"), dict)
        ]
        return [r for r in out if resource_type is None or r.get("resourceType") == resource_type]

    def by_url(self) -> dict[str, dict[str, Any]]:
        return {
            e["fullUrl"]: e["resource"]
            for e in _entries(self.bundle)
            if isinstance(e.get("fullUrl"), str) and isinstance(e.get("resource"), dict)
        }

    def categories(self) -> frozenset[DataCategory]:
        """Data categories present in the message (Patient contact elements count as contact)."""
        cats = set()
        for r in self.resources():
            c = category_of(r)
            if c is not None:
                cats.add(c)
            cats |= free_text_categories(r)
            if r.get("resourceType") == "Patient" and any(
                k in r for k in ("address", "telecom", "contact")
            ):
                cats.add(DataCategory.CONTACT)
        return frozenset(cats)

    def subject_bsn(self) -> str | None:
        """The BSN of the person the message is about (first Patient's BSN identifier)."""
        for p in self.resources("Patient"):
            idents = p.get("identifier")
            for ident in idents if isinstance(idents, list) else []:
                if (
                    isinstance(ident, dict)
                    and ident.get("system") == BSN_SYSTEM
                    and isinstance(ident.get("value"), str)
                    and ident["value"]
                ):
                    return str(ident["value"])
        return None


# --- reading ----------------------------------------------------------------------------------


def _fail(path: str, code: str, message: str, reason: str) -> MessageError:
    return MessageError([Issue(path, code, message, reason)])


def _coding_from(codings: list[Any], enum: Any, path: str) -> Any:
    for c in codings:
        if not isinstance(c, dict):
            continue
        try:
            return _ref_from_coding(enum, c)
        except ValueError:
            continue
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


def _check_entries(entries: list[Any]) -> None:
    seen: set[str] = set()
    for i, e in enumerate(entries):
        path = f"Bundle.entry[{i}]"
        if not isinstance(e, dict):
            raise _fail(path, "structure", "an entry must be a JSON object", "structure")
        url = e.get("fullUrl")
        if not isinstance(url, str) or not url:
            raise _fail(path + ".fullUrl", "required", "every entry needs a fullUrl", "full-url")
        if url in seen:
            raise _fail(path + ".fullUrl", "invalid", "fullUrl is not unique", "full-url")
        seen.add(url)
        res = e.get("resource")
        if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
            raise _fail(path + ".resource", "structure", "an entry needs a resource", "structure")
        if i == 0:
            continue
        sec = (res.get("meta") or {}).get("security") if isinstance(res.get("meta"), dict) else None
        cats = [
            c
            for c in (sec if isinstance(sec, list) else [])
            if isinstance(c, dict) and c.get("system") == DataCategory.default_system()
        ]
        if len(cats) != 1 or category_of(res) is None:
            raise _fail(
                path + ".resource.meta.security",
                "security",
                "every content resource carries exactly one known data category",
                "category",
            )


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
    try:
        if str(uuid.UUID(message_id)) != message_id.lower():
            raise ValueError
    except ValueError:
        raise _fail("Bundle.identifier", "value", "not a valid UUID", "bundle-identifier") from None
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
    _check_entries(entries)
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
    urls = {e["fullUrl"] for e in entries}
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
    refers_to = None
    for j, x in enumerate(_list(header.get("extension"), "MessageHeader.extension")):
        x = _obj(x, f"MessageHeader.extension[{j}]")
        if isinstance(x.get("url"), str) and isinstance(x.get("valueString"), str):
            exts[x["url"]] = x["valueString"]
        elif x.get("url") == EXT + "follow-up-of":  # added with corrections (issue 16)
            value = x.get("valueId")
            if not isinstance(value, str) or not re.fullmatch(
                r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                value,
            ):
                raise _fail(
                    f"MessageHeader.extension[{j}]",
                    "value",
                    "follow-up-of must be a message id (UUID)",
                    "follow-up-of",
                )
            refers_to = value
    if any(k in exts for k in (EXT_BASIS_CITATION, EXT_BASIS_JUSTIFICATION, EXT_BASIS_DECIDED_BY)):
        detail = BasisDetail(
            exts.get(EXT_BASIS_CITATION),
            exts.get(EXT_BASIS_JUSTIFICATION),
            exts.get(EXT_BASIS_DECIDED_BY),
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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


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
        dumps(bundle)
    except UnicodeEncodeError:
        return True
    return False


def parse_message(raw: bytes | str, *, full: bool = True) -> ParsedMessage:
    """Parse wire bytes into a checked message, or raise ``MessageError`` with an outcome."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise _fail("", "too-long", "message exceeds 1 MB", "too-large")
    try:
        bundle = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        msg = f"not valid JSON: {err.__class__.__name__}"
        raise _fail("", "structure", msg, "not-json") from None
    if _lone_surrogate(raw, bundle):
        raise _fail("", "structure", "not valid JSON: a lone UTF-16 surrogate", "not-json")
    meta = read_meta(bundle)
    if full:
        validate_fhir(bundle)
    return ParsedMessage(bundle, meta)


def _ref_from_coding(enum: Any, coding: dict[str, Any]) -> Any:
    """``Coded.from_coding`` as it was: a scan over the members."""
    system, code = coding.get("system"), coding.get("code")
    for member in enum:
        if member.value == code and member.system == system:
            return member
    raise ValueError(f"code {code!r} of system {system!r} is not a {enum.__name__}")
