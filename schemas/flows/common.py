"""Pieces shared by flow mappings: field types, the person (Patient), and a safe reader for
message content that turns every surprise into a ``MessageError`` naming the FHIR path.

Field types are chosen so that every valid business model maps to valid FHIR R4 and back without
loss: text must contain a visible character and no control characters (FHIR strings may not be
empty), codes follow the FHIR ``code`` pattern, ids follow the FHIR ``id`` pattern, and party ids
are valid Kafka topic suffixes (``out.<party id>``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum, nonmember
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from schemas.errors import Issue, MessageError, build_model
from schemas.identifiers import (
    BSN_SYSTEM,
    MUNICIPALITY_SYSTEM,
    PARTY_SYSTEM,
    validate_agb,
    validate_bsn,
    validate_municipality,
)
from schemas.messaging import EXT, ParsedMessage, parse_instant, party_reference
from schemas.vocab.base import Coded

C = TypeVar("C", bound=Coded)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain a visible character")
    for ch in value:
        cat = unicodedata.category(ch)
        if (cat == "Cc" and ch not in "\t\r\n") or cat == "Cs":
            raise ValueError("must not contain control characters")
    return value


Bsn = Annotated[str, AfterValidator(validate_bsn)]
Agb = Annotated[str, AfterValidator(validate_agb)]
MunicipalityCode = Annotated[str, AfterValidator(validate_municipality)]
Text = Annotated[str, StringConstraints(max_length=4000), AfterValidator(_text)]
"""Free text: at least one visible character, no control characters except tab and newlines."""
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_text)]
Code = Annotated[
    str, StringConstraints(pattern=r"^[^\s]+(\s[^\s]+)*$", max_length=64), AfterValidator(_text)
]
"""A FHIR ``code``: no leading, trailing or double whitespace."""
PartyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A party id in the ketenbus registry; also the suffix of its topic ``out.<party id>``."""
IdValue = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-\._]{1,64}$")]
"""A business identifier value (Identifier.value), unique per issuing party."""
FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-\.]{1,64}$")]
"""A FHIR logical id."""
Cents = Annotated[int, Field(ge=0, le=10**13, strict=True)]
"""An amount in eurocents: an integer, never a float; at most EUR 100 billion."""

EXT_RESIDENCE = EXT + "residence-municipality"
EXT_HOMELESS = EXT + "homeless"
NS = "https://ketenbus.nl/fhir/NamingSystem/"
CASE_SYSTEM = NS + "zvh-case"
EPISODE_SYSTEM = NS + "episode"
LOCATION_SYSTEM = NS + "location"


class Gender(StrEnum):
    """FHIR administrative-gender (required binding; fhir.resources does not check it)."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class Person(BaseModel):
    """The person a message is about. Identity and contact details live only in memory and in
    payloads encrypted for a party with a legal need."""

    model_config = ConfigDict(frozen=True)

    bsn: Bsn = Field(description="Burgerservicenummer (11-check).")
    family_name: ShortText = Field(min_length=1, max_length=200, description="Family name.")
    given_names: tuple[ShortText, ...] = Field(default=(), description="Given names.")
    birth_date: date = Field(description="Date of birth.")
    gender: Gender = Field(default=Gender.UNKNOWN, description="Administrative gender.")
    residence_municipality: MunicipalityCode | None = Field(
        default=None, description="Municipality of residence (woonplaatsbeginsel)."
    )
    homeless: bool = Field(default=False, description="No fixed address (dak- of thuisloos).")
    address_line: ShortText | None = Field(default=None, description="Street and number.")
    postal_code: ShortText | None = Field(default=None, description="Postal code.")
    city: ShortText | None = Field(default=None, description="City.")


def patient_resource(p: Person) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": BSN_SYSTEM, "value": p.bsn}],
        "name": [
            {"family": p.family_name, **({"given": list(p.given_names)} if p.given_names else {})}
        ],
        "gender": p.gender.value,
        "birthDate": p.birth_date.isoformat(),
    }
    addr: dict[str, Any] = {}
    ext: list[dict[str, Any]] = []
    if p.residence_municipality:
        ext.append(
            {
                "url": EXT_RESIDENCE,
                "valueCoding": {"system": MUNICIPALITY_SYSTEM, "code": p.residence_municipality},
            }
        )
    if p.homeless:
        ext.append({"url": EXT_HOMELESS, "valueBoolean": True})
    if ext:
        addr["extension"] = ext
    if p.address_line:
        addr["line"] = [p.address_line]
    if p.postal_code:
        addr["postalCode"] = p.postal_code
    if p.city:
        addr["city"] = p.city
    if addr:
        addr["use"] = "temp" if p.homeless else "home"
        patient["address"] = [addr]
    return patient


def bsn_patient(bsn: str) -> dict[str, Any]:
    """A Patient carrying only the BSN (when a message needs no other identity data)."""
    return {"resourceType": "Patient", "identifier": [{"system": BSN_SYSTEM, "value": bsn}]}


def person_from_patient(patient: dict[str, Any]) -> Person:
    """Read a :class:`Person` from a Patient resource; ``MessageError`` names the bad element."""
    src = Src(patient, "Patient")
    bsn, bsn_path = src.bsn()
    names = src.items("name")
    name = names[0] if names else Src({}, "Patient.name[0]")
    addrs = src.items("address")
    addr = addrs[0] if addrs else Src({}, "Patient.address[0]")
    residence = addr.extension(EXT_RESIDENCE)
    homeless = addr.extension(EXT_HOMELESS)
    lines = addr.strings("line")
    gender = src.opt_string("gender") or "unknown"
    if gender not in {g.value for g in Gender}:
        raise src.error("gender", "value", "not an administrative-gender code", "gender")
    return build_model(
        Person,
        {
            "bsn": bsn,
            "family_name": name.string("family"),
            "given_names": tuple(name.strings("given")),
            "birth_date": src.date("birthDate"),
            "gender": Gender(gender),
            "residence_municipality": residence.coding_code("valueCoding", MUNICIPALITY_SYSTEM)
            if residence
            else None,
            "homeless": bool(homeless.boolean("valueBoolean")) if homeless else False,
            "address_line": lines[0] if lines else None,
            "postal_code": addr.opt_string("postalCode"),
            "city": addr.opt_string("city"),
        },
        {
            "bsn": bsn_path,
            "family_name": name.at("family"),
            "given_names": name.at("given"),
            "birth_date": src.at("birthDate"),
            "residence_municipality": addr.at("extension") + ".valueCoding.code",
            "address_line": addr.at("line"),
            "postal_code": addr.at("postalCode"),
            "city": addr.at("city"),
        },
        "Patient",
    )


# --- small writers ----------------------------------------------------------------------------


def concept(code: Coded, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding (and an optional text)."""
    cc: dict[str, Any] = {"coding": [code.coding()]}
    if text is not None:
        cc["text"] = text
    return cc


def period(start: date | None, end: date | None) -> dict[str, str]:
    out = {}
    if start is not None:
        out["start"] = start.isoformat()
    if end is not None:
        out["end"] = end.isoformat()
    return out


def logical_reference(rtype: str, system: str, value: str) -> dict[str, Any]:
    """A reference by business identifier to a resource that is not in the Bundle."""
    return {"type": rtype, "identifier": {"system": system, "value": value}}


def party_org_reference(party_id: str) -> dict[str, Any]:
    """A reference to a party's Organization by its ketenbus party id."""
    return logical_reference("Organization", PARTY_SYSTEM, party_id)


def money(cents: int) -> dict[str, Any]:
    """FHIR Money in euros from integer eurocents. The JSON number is the shortest decimal that
    reads back to the same value; :meth:`Src.cents` reads it via its decimal text, never via
    float arithmetic, so the amount survives exactly (``Cents`` bounds it to 15 digits)."""
    value: int | float = cents // 100 if cents % 100 == 0 else cents / 100
    return {"value": value, "currency": "EUR"}


# --- the reader -------------------------------------------------------------------------------


def _kind(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), "null")


class Src:
    """A JSON object inside a message, with the FHIR path it sits at (e.g. ``Task.output[1]``).

    Every accessor checks the JSON type and raises ``MessageError`` with the exact path when the
    content is missing or malformed, so readers never leak KeyError/TypeError/ValidationError.
    """

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise _err(path, "structure", f"must be an object, not {_kind(data)}", "structure")
        self.data: dict[str, Any] = data
        self.path = path

    def __repr__(self) -> str:
        return f"Src({self.path})"

    # paths and errors
    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def error(self, key: str | None, code: str, message: str, reason: str) -> MessageError:
        return _err(self.at(key) if key else self.path, code, message, reason)

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise self.error(key, "required", "is required", "required")
        return value

    def _typed(self, key: str, types: tuple[type, ...], what: str, required: bool) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise self.error(key, "structure", f"must be {what}, not {_kind(value)}", "type")
        return value

    # objects and arrays
    def obj(self, key: str) -> Src:
        return Src(self._get(key, True), self.at(key))

    def opt_obj(self, key: str) -> Src | None:
        value = self._get(key, False)
        return None if value is None else Src(value, self.at(key))

    def items(self, key: str) -> list[Src]:
        """The objects of an array element (an absent element is an empty array)."""
        values = self._typed(key, (list,), "an array", False) or []
        return [Src(v, f"{self.at(key)}[{i}]") for i, v in enumerate(values)]

    def first(self, key: str) -> Src:
        items = self.items(key)
        if not items:
            raise self.error(key, "required", "needs at least one element", "required")
        return items[0]

    def opt_first(self, key: str) -> Src | None:
        items = self.items(key)
        return items[0] if items else None

    def strings(self, key: str) -> list[str]:
        values = self._typed(key, (list,), "an array", False) or []
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise _err(f"{self.at(key)}[{i}]", "structure", "must be a string", "type")
        return list(values)

    # primitives
    def string(self, key: str) -> str:
        return str(self._typed(key, (str,), "a string", True))

    def opt_string(self, key: str) -> str | None:
        value = self._typed(key, (str,), "a string", False)
        return None if value is None else str(value)

    def boolean(self, key: str) -> bool:
        return bool(self._typed(key, (bool,), "a boolean", True))

    def opt_boolean(self, key: str) -> bool | None:
        value = self._typed(key, (bool,), "a boolean", False)
        return None if value is None else bool(value)

    def integer(self, key: str) -> int:
        value = self._typed(key, (int, float), "a number", True)
        if isinstance(value, float):
            if not value.is_integer():
                raise self.error(key, "value", "must be a whole number", "integer")
            value = int(value)
        return int(value)

    def date(self, key: str) -> dt.date:
        value = self.string(key)
        try:
            if not _DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise self.error(key, "value", "must be a full date (YYYY-MM-DD)", "date") from None

    def opt_date(self, key: str) -> dt.date | None:
        return None if self._get(key, False) is None else self.date(key)

    def instant(self, key: str) -> datetime:
        try:
            return parse_instant(self._get(key, True))
        except ValueError as err:
            raise self.error(key, "value", str(err), "datetime") from None

    def cents(self, key: str) -> int:
        """A Money element in euros (currency EUR) as integer eurocents."""
        m = self.obj(key)
        if m.string("currency") != "EUR":
            raise m.error("currency", "value", "must be EUR", "currency")
        value = m._typed("value", (int, float), "a number", True)
        try:
            cents = Decimal(repr(value)) * 100
        except (InvalidOperation, ValueError):
            raise m.error("value", "value", "not a decimal", "money") from None
        if not cents.is_finite() or cents != cents.to_integral_value():
            raise m.error("value", "value", "has more than 2 decimals", "money-precision")
        if not 0 <= cents <= 10**13:
            raise m.error("value", "value", "is out of range", "money-range")
        return int(cents)

    # codes
    def code(self, key: str, enum: type[C]) -> C:
        """The ``enum`` member in the CodeableConcept at ``key``."""
        return code_in(self.obj(key), enum)

    def opt_code(self, key: str, enum: type[C]) -> C | None:
        cc = self.opt_obj(key)
        return None if cc is None else code_in(cc, enum)

    def coding(self, key: str, enum: type[C]) -> C:
        """The ``enum`` member in the Coding at ``key``."""
        return coding_of(self.obj(key), enum)

    def coding_code(self, key: str, system: str) -> str:
        """The code of the Coding at ``key``, which must be of ``system``."""
        c = self.obj(key)
        if c.opt_string("system") != system:
            raise c.error("system", "value", f"must be {system}", "system")
        return c.string("code")

    # extensions, identifiers, references
    def extension(self, url: str) -> Src | None:
        found = [x for x in self.items("extension") if x.data.get("url") == url]
        if len(found) > 1:
            raise self.error("extension", "invalid", f"{url} appears more than once", "duplicate")
        return found[0] if found else None

    def req_extension(self, url: str) -> Src:
        found = self.extension(url)
        if found is None:
            raise self.error("extension", "required", f"extension {url} is required", "required")
        return found

    def identifier(self, system: str, key: str = "identifier") -> tuple[str, str]:
        """The value of the (single) identifier of ``system``, and its path."""
        found = [(i, x) for i, x in enumerate(self.items(key)) if x.data.get("system") == system]
        if len(found) != 1:
            problem = "is missing" if not found else "appears more than once"
            raise self.error(key, "required", f"identifier {system} {problem}", "identifier")
        i, ident = found[0]
        return ident.string("value"), f"{self.at(key)}[{i}].value"

    def opt_identifier(self, system: str, key: str = "identifier") -> str | None:
        if not any(x.data.get("system") == system for x in self.items(key)):
            return None
        return self.identifier(system, key)[0]

    def bsn(self) -> tuple[str, str]:
        return self.identifier(BSN_SYSTEM)

    def party(self, key: str) -> str:
        """The party id of the Reference at ``key`` (its identifier of the party system)."""
        return party_of(self.obj(key))

    def opt_party(self, key: str) -> str | None:
        return None if self._get(key, False) is None else self.party(key)

    def logical(self, key: str, system: str) -> str:
        """The identifier value of a logical Reference at ``key`` whose identifier is ``system``."""
        ident = self.obj(key).obj("identifier")
        if ident.opt_string("system") != system:
            raise ident.error("system", "value", f"must be {system}", "system")
        return ident.string("value")

    def resolve(self, key: str, msg: ParsedMessage, rtype: str) -> Src:
        """The resource in the Bundle that the Reference at ``key`` points to."""
        return resolve(self.obj(key), msg, rtype)

    def single(self, key: str) -> Src:
        """The only element of an array element (exactly one is required)."""
        items = self.items(key)
        if len(items) != 1:
            raise self.error(key, "invalid", "needs exactly one element", "cardinality")
        return items[0]

    def opt_single(self, key: str) -> Src | None:
        """The only element of an array element, or None when absent (more is an error)."""
        return self.single(key) if self.items(key) else None

    def refers_to(self, key: str, resource: Src) -> bool:
        """Whether the Reference at ``key`` points at ``resource`` (by its urn:uuid fullUrl)."""
        ref = self.opt_obj(key)
        rid = resource.data.get("id")
        return (
            ref is not None
            and isinstance(rid, str)
            and ref.data.get("reference") == (f"urn:uuid:{rid}")
        )


def resolve(ref: Src, msg: ParsedMessage, rtype: str) -> Src:
    """The resource in the Bundle that a Reference points to (by fullUrl)."""
    url = ref.string("reference")
    target = msg.by_url().get(url)
    if target is None or target.get("resourceType") != rtype:
        raise ref.error("reference", "not-found", f"must point to a {rtype} in the Bundle", "ref")
    return Src(target, rtype)


def party_of(ref: Src) -> str:
    """The party id of a Reference (its identifier of the party system)."""
    ident = ref.obj("identifier")
    if ident.opt_string("system") != PARTY_SYSTEM:
        raise ident.error("system", "value", f"must be {PARTY_SYSTEM}", "party")
    return ident.string("value")


def _err(path: str, code: str, message: str, reason: str) -> MessageError:
    return MessageError([Issue(path, code, message, reason)])


def _hashable(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | None) else None


def coding_of(c: Src, enum: type[C]) -> C:
    systems = {m.system for m in enum}
    system = c.opt_string("system")
    code = c.opt_string("code")
    if system not in systems:
        raise c.error("system", "value", f"not a {enum.__name__} system", "missing-code")
    try:
        return enum.from_coding({"system": system, "code": code})
    except ValueError:
        raise c.error("code", "value", f"not a {enum.__name__} code", "unknown-code") from None


def code_in(cc: Src, enum: type[C]) -> C:
    """The ``enum`` member among the codings of a CodeableConcept."""
    systems = {m.system for m in enum}
    matches = [c for c in cc.items("coding") if _hashable(c.data.get("system")) in systems]
    if not matches:
        raise cc.error("coding", "required", f"no {enum.__name__} code", "missing-code")
    if len(matches) > 1:
        raise cc.error("coding", "invalid", f"more than one {enum.__name__} code", "ambiguous")
    return coding_of(matches[0], enum)


def one(msg: ParsedMessage, rtype: str) -> Src:
    """The single resource of a type in the message."""
    found = msg.resources(rtype)
    if len(found) != 1:
        problem = "no" if not found else "more than one"
        raise _err(f"Bundle.entry.resource[{rtype}]", "required", f"{problem} {rtype}", rtype)
    return Src(found[0], rtype)


def opt_one(msg: ParsedMessage, rtype: str) -> Src | None:
    return one(msg, rtype) if msg.resources(rtype) else None


# --- compatibility helpers (used by older readers) ---------------------------------------------


def code_from_concept(concept_: dict[str, Any] | None, enum: type[Coded], path: str) -> Any:
    for c in (concept_ or {}).get("coding", []) if isinstance(concept_, dict) else []:
        try:
            return enum.from_coding(c)
        except (ValueError, AttributeError):
            continue
    raise MessageError([Issue(path, "required", f"no {enum.__name__} code", "missing-code")])


def ext_value(resource: dict[str, Any], url: str, key: str) -> Any:
    for x in resource.get("extension", []) if isinstance(resource, dict) else []:
        if isinstance(x, dict) and x.get("url") == url:
            return x.get(key)
    return None


def find_one(resources: list[dict[str, Any]], rtype: str) -> dict[str, Any]:
    for r in resources:
        if r.get("resourceType") == rtype:
            return r
    raise MessageError([Issue(f"Bundle.entry.resource[{rtype}]", "required", f"no {rtype}", rtype)])


__all__ = [
    "CASE_SYSTEM",
    "EPISODE_SYSTEM",
    "LOCATION_SYSTEM",
    "Agb",
    "Bsn",
    "Cents",
    "Code",
    "Coded",
    "FhirId",
    "Gender",
    "IdValue",
    "MunicipalityCode",
    "PartyId",
    "Person",
    "ShortText",
    "Src",
    "Text",
    "nonmember",
    "party_reference",
]


# --- cases and documentation ------------------------------------------------------------------


def case_system(zvh: str) -> str:
    """The identifier system of a ZVH's case numbers (the referral id is unique per ZVH)."""
    return f"{CASE_SYSTEM}/{zvh}"


def case_reference(zvh: str, referral_id: str) -> dict[str, Any]:
    """A logical reference to the referral (ServiceRequest) of a ZVH case."""
    return logical_reference("ServiceRequest", case_system(zvh), referral_id)


def read_case(ref: Src) -> tuple[str, str, str]:
    """(zvh, referral id, path) from a logical reference written by :func:`case_reference`."""
    ident = ref.obj("identifier")
    system = ident.string("system")
    zvh = system.removeprefix(CASE_SYSTEM + "/")
    if not system.startswith(CASE_SYSTEM + "/") or not zvh:
        raise ident.error("system", "value", f"must be {CASE_SYSTEM}/<zvh party id>", "case")
    return zvh, ident.string("value"), ident.at("value")


def case_of(msg: ParsedMessage) -> str | None:
    """The ZVH case a message is about: the value of the first ``…/zvh-case/<zvh>`` identifier
    of a resource or of its ``basedOn`` (None when it names none). A consent limited to a case
    covers only messages about it (issue 16 §3)."""
    prefix = CASE_SYSTEM + "/"
    for resource in msg.resources():
        idents = resource.get("identifier")
        candidates = list(idents) if isinstance(idents, list) else []
        for ref in resource.get("basedOn") or []:
            if isinstance(ref, dict):
                candidates.append(ref.get("identifier"))
        for ident in candidates:
            if (
                isinstance(ident, dict)
                and isinstance(ident.get("system"), str)
                and ident["system"].startswith(prefix)
                and isinstance(ident.get("value"), str)
            ):
                return str(ident["value"])
    return None


@dataclass(frozen=True)
class FieldMap:
    """Documentation: where a model field travels in FHIR, and in which data category."""

    field: str
    element: str
    category: str
    note: str = ""
