"""The JSON documents a municipality's system drops in the adapter's inbox (issue 15 point 3):
what it knows about a case the ZVH registered (``information``), a case it brings to the ZVH on
its public task (``referral``), and a stuck case (``escalation``). Strict: unknown fields, wrong
types and free-form codes are refused per document with the field and a stable reason.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from schemas import jsontext
from schemas.errors import Issue, MessageError, issues_from_validation
from schemas.flows.common import Code, IdValue, PartyId, Person, Text
from schemas.vocab import EscalationReason

MAX_FILE_BYTES = 5 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Information(_Strict):
    """What the municipality knows about a case the ZVH told it of (the referral notice):
    housing, Wmo support, income, earlier trajectories. Answers on the ZVH's case number; the
    adapter takes the person and region from the notice it received, so the municipality
    cannot attach information to a case it was not told of."""

    kind: Literal["information"]
    zvh: PartyId
    case: IdValue
    information: Text = Field(min_length=1)
    reference: IdValue | None = Field(default=None, description="The municipality's own id.")


class MunicipalityReferral(_Strict):
    """A case the municipality brings to the ZVH's aanmeldtafel on its public task."""

    kind: Literal["referral"]
    zvh: PartyId
    reference: IdValue = Field(description="The municipality's reference for the case.")
    region: Code
    registered_on: date
    person: Person
    signal: Text = Field(min_length=1)
    care_avoider: bool = False


class MunicipalityEscalation(_Strict):
    """A case the municipality sees stuck, raised with the national coordination point."""

    kind: Literal["escalation"]
    zvh: PartyId
    case: IdValue
    reason: EscalationReason
    stuck_since: date
    explanation: Text | None = None
    reference: IdValue = Field(description="The municipality's id of this escalation.")


Document = Annotated[
    Information | MunicipalityReferral | MunicipalityEscalation, Field(discriminator="kind")
]
_document: TypeAdapter[Information | MunicipalityReferral | MunicipalityEscalation] = TypeAdapter(
    Document
)
KINDS = ("information", "referral", "escalation")


def parse_document(
    data: Any, path: str = ""
) -> Information | MunicipalityReferral | MunicipalityEscalation:
    """One document (decoded JSON); ``MessageError`` naming the field and reason."""
    if not isinstance(data, dict):
        raise MessageError([Issue(path, "structure", "a document must be an object", "not-object")])
    if data.get("kind") not in KINDS:
        where = f"{path}.kind" if path else "kind"
        raise MessageError([Issue(where, "required", f"kind must be one of {KINDS}", "kind")])
    try:
        return _document.validate_python(data)
    except ValidationError as err:
        issues = issues_from_validation(err, path)
        kind = str(data["kind"])
        raise MessageError(
            [Issue(i.path.replace(f"{kind}.", "", 1), i.code, i.message, i.reason) for i in issues]
        ) from None


def parse_bytes(
    raw: bytes,
) -> list[
    tuple[int | None, Information | MunicipalityReferral | MunicipalityEscalation | MessageError]
]:
    """A file: one document or an array; each item parsed on its own."""
    if len(raw) > MAX_FILE_BYTES:
        raise MessageError([Issue("", "too-long", "file exceeds 5 MB", "too-large")])
    try:
        data = jsontext.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise MessageError([Issue("", "structure", "not UTF-8 JSON", "not-json")]) from None
    items = data if isinstance(data, list) else [data]
    out: list[
        tuple[
            int | None, Information | MunicipalityReferral | MunicipalityEscalation | MessageError
        ]
    ] = []
    for i, item in enumerate(items):
        index = i if isinstance(data, list) else None
        try:
            out.append((index, parse_document(item, f"[{i}]" if index is not None else "")))
        except MessageError as e:
            out.append((index, e))
    return out
