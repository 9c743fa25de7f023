"""Dutch identifiers with their FHIR NamingSystem URIs and validation rules.

An invalid value raises :class:`IdentifierError`, which names the field and the rule (and carries a
stable machine code in ``reason``), so that an adapter can tell its sender exactly what to fix.

| identifier | system | rule |
|---|---|---|
| BSN | ``http://fhir.nl/fhir/NamingSystem/bsn`` | 9 digits (8 accepted, zero-padded), 11-check |
| AGB | ``http://fhir.nl/fhir/NamingSystem/agb-z`` | 8 digits |
| URA | ``http://fhir.nl/fhir/NamingSystem/ura`` | 8 digits |
| UZOVI | ``http://fhir.nl/fhir/NamingSystem/uzovi`` | 4 digits |
| municipality | ``urn:oid:2.16.840.1.113883.2.4.6.14`` (BRP table 33) | 4 digits |
| OIN | ``urn:oid:2.16.528.1.1003.1.3.5.9.1`` (Logius) | 20 digits; used for DJI and VWS |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
UZOVI_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzovi"
# BRP table 33 (municipalities); no fhir.nl NamingSystem exists for the 4-digit code.
MUNICIPALITY_SYSTEM = "urn:oid:2.16.840.1.113883.2.4.6.14"
# Organisatie-identificatienummer (Logius). Placeholder for DJI and VWS, which have no URA/UZOVI;
# see docs/flows/claim.md.
OIN_SYSTEM = "urn:oid:2.16.528.1.1003.1.3.5.9.1"
# Our own system for party ids in the ketenbus registry.
PARTY_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/party"


class IdentifierError(ValueError):
    """An identifier that breaks its rule; ``field`` and ``rule`` say which and why, ``reason`` is
    a stable machine code (e.g. ``bsn-check``)."""

    def __init__(
        self, field: str, rule: str, value: str | None = None, reason: str = "identifier"
    ) -> None:
        self.field = field
        self.rule = rule
        self.reason = reason
        super().__init__(f"{field}: {rule}")


@dataclass(frozen=True)
class IdentifierKind:
    """One kind of identifier: its system, format and an optional check."""

    name: str
    system: str
    pattern: re.Pattern[str]
    description: str


IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = (
    IdentifierKind(
        "bsn", BSN_SYSTEM, re.compile(r"\d{9}"), "Burgerservicenummer: 9 digits, 11-check."
    ),
    IdentifierKind("agb", AGB_SYSTEM, re.compile(r"\d{8}"), "AGB code (Vektis): 8 digits."),
    IdentifierKind("ura", URA_SYSTEM, re.compile(r"\d{8}"), "URA number (UZI register): 8 digits."),
    IdentifierKind(
        "uzovi", UZOVI_SYSTEM, re.compile(r"\d{4}"), "UZOVI code of an insurer or care office."
    ),
    IdentifierKind(
        "municipality",
        MUNICIPALITY_SYSTEM,
        re.compile(r"\d{4}"),
        "Municipality code (CBS / BRP table 33): 4 digits.",
    ),
    IdentifierKind("oin", OIN_SYSTEM, re.compile(r"\d{20}"), "OIN (Logius): 20 digits."),
)


def bsn_check(value: str) -> bool:
    """The BSN 11-check ("elfproef"): 9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is divisible by 11."""
    if not re.fullmatch(r"[0-9]{9}", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:8], range(9, 1, -1), strict=True))
    total -= int(value[8])
    return total % 11 == 0 and value != "000000000"


def validate_bsn(value: object, field: str = "bsn") -> str:
    """Return the BSN as a 9-digit string or raise naming the rule it breaks."""
    if not isinstance(value, str):
        raise IdentifierError(field, "must be a string of 9 digits", reason="bsn-format")
    v = value.strip()
    if len(v) == 8 and v.isascii() and v.isdigit():
        v = "0" + v  # BSNs of 8 digits are written without their leading zero
    if not re.fullmatch(r"[0-9]{9}", v):
        raise IdentifierError(field, "must be 9 digits", reason="bsn-format")
    if not bsn_check(v):
        raise IdentifierError(field, "fails the BSN 11-check (elfproef)", reason="bsn-check")
    return v


def _digits(value: object, field: str, n: int, what: str, reason: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(rf"[0-9]{{{n}}}", value.strip()):
        raise IdentifierError(field, f"{what} must be {n} digits", reason=reason)
    return value.strip()


def validate_agb(value: object, field: str = "agb") -> str:
    """AGB code (Vektis): 8 digits, the first two the type of care."""
    return _digits(value, field, 8, "an AGB code", "agb-format")


def validate_ura(value: object, field: str = "ura") -> str:
    """URA number (UZI register): 8 digits."""
    return _digits(value, field, 8, "a URA number", "ura-format")


def validate_uzovi(value: object, field: str = "uzovi") -> str:
    """UZOVI code of a health insurer or care office: 4 digits."""
    return _digits(value, field, 4, "a UZOVI code", "uzovi-format")


def validate_municipality(value: object, field: str = "municipality") -> str:
    """CBS/BRP municipality code: 4 digits (e.g. 0363 Amsterdam)."""
    return _digits(value, field, 4, "a municipality code", "municipality-format")


def validate_oin(value: object, field: str = "oin") -> str:
    """OIN (organisatie-identificatienummer, Logius): 20 digits."""
    return _digits(value, field, 20, "an OIN", "oin-format")
