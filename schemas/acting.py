"""The acting person: the professional or employee who did what a message records, by an
identifier, never by name.

NEN 7513 (7.2, "gebruiker") asks the audit trail to name the user who acted, not only the
organisation; the source systems know that person, so the adapters pass them through: a ZVH
document's ``acting_person``, a provider's inbox decision's ``decided_by``. It travels in the FHIR
message as ``MessageHeader.author`` (a logical reference by identifier) and the router records it
as the audit record's user.

The text form is ``<kind>:<id>``:

- ``uzi``: the professional's UZI number (UZI-register), system
  ``http://fhir.nl/fhir/NamingSystem/uzi-nr-pers``;
- ``agb``: the professional's AGB code (Vektis AGB-register), ``.../NamingSystem/agb-z``;
- ``big``: the BIG number (Wet BIG register), ``http://fhir.nl/fhir/NamingSystem/big``;
- ``employee``: the sending organisation's own employee number,
  ``https://ketenbus.nl/fhir/NamingSystem/employee`` (unique within the sender).

The id is 1 to 64 letters, digits, ``.``, ``_`` or ``-``: no spaces (a name does not fit), no
control characters, nothing that would break a log line or a CSV cell. An ``employee`` number
that is a valid BSN (9 digits passing the 11-check) is refused: the BSN is not an employee
number (UAVG art. 46: a BSN is used only to carry out a law).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from schemas.identifiers import AGB_SYSTEM, bsn_check

ACTING_KINDS: dict[str, str] = {
    "uzi": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers",
    "agb": AGB_SYSTEM,
    "big": "http://fhir.nl/fhir/NamingSystem/big",
    "employee": "https://ketenbus.nl/fhir/NamingSystem/employee",
}
_KIND_OF_SYSTEM = {system: kind for kind, system in ACTING_KINDS.items()}
MAX_LENGTH = 73  # "employee:" and 64 characters
_PATTERN = re.compile(r"(uzi|agb|big|employee):([A-Za-z0-9][A-Za-z0-9._-]{0,63})")
RULE = "must be <kind>:<id> with kind uzi, agb, big or employee and an id of 1-64 letters, " \
    "digits, '.', '_' or '-' (an identifier, never a name)"


class ActingPersonError(ValueError):
    """An acting person that is not an identifier of the known kinds (reason ``acting-person``)."""

    reason = "acting-person"


def check_acting_person(value: str) -> str:
    """``value`` when it is a well-formed acting person; ``ActingPersonError`` otherwise."""
    if not isinstance(value, str) or len(value) > MAX_LENGTH:
        raise ActingPersonError(RULE)
    found = _PATTERN.fullmatch(value)
    if found is None:
        raise ActingPersonError(RULE)
    kind, ident = found.groups()
    if kind == "employee" and bsn_check(ident):
        raise ActingPersonError("an employee number must not be a BSN")
    return value


def author_reference(value: str) -> dict[str, Any]:
    """``MessageHeader.author``: a logical reference to the person by identifier."""
    kind, ident = check_acting_person(value).split(":", 1)
    return {"identifier": {"system": ACTING_KINDS[kind], "value": ident}}


def acting_person_of(reference: object) -> str:
    """The acting person a ``MessageHeader.author`` names; ``ActingPersonError`` when it is not
    an identifier of a known kind."""
    ident = reference.get("identifier") if isinstance(reference, dict) else None
    system = ident.get("system") if isinstance(ident, dict) else None
    value = ident.get("value") if isinstance(ident, dict) else None
    kind = _KIND_OF_SYSTEM.get(system) if isinstance(system, str) else None
    if kind is None or not isinstance(value, str):
        raise ActingPersonError("author must name the person by a UZI, AGB, BIG or employee id")
    return check_acting_person(f"{kind}:{value}")


ActingPerson = Annotated[str, AfterValidator(check_acting_person)]
"""A model field holding an acting person (a refusal has reason ``acting-person``)."""
