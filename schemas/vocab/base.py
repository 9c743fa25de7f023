"""Base class that turns a ``StrEnum`` into a FHIR code system with a display and a definition."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any, Self

KETENBUS_CS = "https://ketenbus.nl/fhir/CodeSystem/"



class Coded(StrEnum):
    """A code from one code system; members carry ``display`` and ``definition`` texts.

    Subclasses set ``SYSTEM = nonmember("uri")`` and define members as
    ``CODE = ("code", "display", "definition")``; a member may add a fourth element, its own
    system URI, when one enum mixes code systems (purposes of use: HL7 v3 plus our own).
    """

    display: str
    definition: str
    _member_system: str | None

    def __new__(
        cls, code: str, display: str = "", definition: str = "", system: str | None = None
    ) -> Self:
        obj = str.__new__(cls, code)
        obj._value_ = code
        obj.display = display or code
        obj.definition = definition or display or code
        obj._member_system = system
        return obj

    @classmethod
    def default_system(cls) -> str:
        """The code system URI of the enum (members may override it)."""
        return str(cls.__dict__["SYSTEM"])

    @property
    def system(self) -> str:
        """The code system URI of this member."""
        return self._member_system or self.default_system()

    def coding(self) -> dict[str, str]:
        """The FHIR Coding (as a dict) for this code: a new dict each time (callers add it to
        messages they may change), copied from one made once per member."""
        return _coding(type(self), self._name_).copy()

    @classmethod
    def from_coding(cls, coding: dict[str, Any]) -> Self:
        """Parse a FHIR Coding; raises ``ValueError`` naming the system and code when unknown."""
        system, code = coding.get("system"), coding.get("code")
        member = cls.lookup(system, code)
        if member is None:
            raise ValueError(f"code {code!r} of system {system!r} is not a {cls.__name__}")
        return member

    @classmethod
    def lookup(cls, system: object, code: object) -> Self | None:
        """The member with this system and code, or ``None`` (no exception: readers try several
        enums on one list of codings)."""
        if type(system) is str and type(code) is str:  # exact str: the index is exact
            return _index(cls).get((system, code))  # type: ignore[return-value]
        for member in cls:  # str subclasses (an enum member as a code) compare by value
            if member.value == code and member.system == system:
                return member
        return None


# Keyed by enum and member name, not by the member: members of two enums with the same code
# (EventCode and PurposeOfUse "escalation") are equal strings with equal hashes.
@functools.cache
def _coding(enum: type[Coded], name: str) -> dict[str, str]:
    """The Coding of one member, made once (callers get copies)."""
    member = enum[name]
    return {"system": member.system, "code": member.value, "display": member.display}


# Reading a message looks codes up several times, and a scan over every member (each
# ``system`` a property call) was a measurable part of it.
@functools.cache
def _index(enum: type[Coded]) -> dict[tuple[str, str], Coded]:
    """(system, code) -> member of one enum (the first member, should two share a code)."""
    index: dict[tuple[str, str], Coded] = {}
    for m in enum:
        index.setdefault((m.system, m.value), m)
    return index


class CodeSystem:
    """Render a ``Coded`` enum as a FHIR CodeSystem resource (dict), for docs and publication."""

    @staticmethod
    def resource(enum: type[Coded], name: str, title: str) -> dict[str, Any]:
        return {
            "resourceType": "CodeSystem",
            "url": enum.default_system(),
            "name": name,
            "title": title,
            "status": "active",
            "content": "complete",
            "concept": [
                {"code": m.value, "display": m.display, "definition": m.definition}
                for m in enum
                if m.system == enum.default_system()
            ],
        }
