"""Identifiers: the BSN 11-check (property-based), AGB, URA, UZOVI, municipality, OIN."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schema_strategies import PROFILE, bsns

from schemas.flows.common import Person
from schemas.identifiers import (
    BSN_SYSTEM,
    IDENTIFIER_KINDS,
    MUNICIPALITY_SYSTEM,
    UZOVI_SYSTEM,
    IdentifierError,
    bsn_check,
    validate_agb,
    validate_bsn,
    validate_municipality,
    validate_oin,
    validate_ura,
    validate_uzovi,
)


@PROFILE
@given(bsns())
def test_every_generated_valid_bsn_passes(bsn: str) -> None:
    assert bsn_check(bsn)
    assert validate_bsn(bsn) == bsn


@PROFILE
@given(bsns(), st.integers(0, 8), st.integers(1, 9))
def test_every_single_digit_mutation_of_a_valid_bsn_fails(bsn: str, pos: int, delta: int) -> None:
    digit = (int(bsn[pos]) + delta) % 10
    mutated = bsn[:pos] + str(digit) + bsn[pos + 1 :]
    assert not bsn_check(mutated)
    with pytest.raises(IdentifierError) as err:
        validate_bsn(mutated, "person.bsn")
    assert err.value.field == "person.bsn"
    assert err.value.reason == "bsn-check"
    assert "11-check" in str(err.value)


def test_all_single_digit_mutations_of_known_bsns_fail() -> None:
    for bsn in ("999990019", "123456782", "999999990"):
        assert bsn_check(bsn)
        for pos in range(9):
            for digit in "0123456789":
                if digit != bsn[pos]:
                    assert not bsn_check(bsn[:pos] + digit + bsn[pos + 1 :])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("12345678", "bsn-check"),  # zero-padded to 012345678, which fails the check
        ("1234567890", "bsn-format"),
        ("12345678a", "bsn-format"),
        ("١٢٣٤٥٦٧٨٢", "bsn-format"),  # Arabic-Indic digits are not digits here
        ("000000000", "bsn-check"),
        ("", "bsn-format"),
    ],
)
def test_bad_bsns_name_field_and_rule(value: str, reason: str) -> None:
    with pytest.raises(IdentifierError) as err:
        validate_bsn(value)
    assert err.value.field == "bsn"
    assert err.value.reason == reason
    assert str(err.value).startswith("bsn: ")


def test_bsn_rejects_non_strings_and_pads_eight_digits() -> None:
    with pytest.raises(IdentifierError, match="string"):
        validate_bsn(999990019)
    bsn = next(f"0{n:08d}" for n in range(10**7, 10**8) if bsn_check(f"0{n:08d}"))
    assert validate_bsn(bsn[1:]) == bsn


@pytest.mark.parametrize(
    ("check", "good", "bad", "reason"),
    [
        (validate_agb, "12345678", "1234567", "agb-format"),
        (validate_ura, "87654321", "8765432x", "ura-format"),
        (validate_uzovi, "3332", "333", "uzovi-format"),
        (validate_municipality, "0363", "363", "municipality-format"),
        (validate_oin, "00000001234567890000", "0000000123456789000", "oin-format"),
    ],
)
def test_format_identifiers(check, good: str, bad: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    assert check(good) == good
    with pytest.raises(IdentifierError) as err:
        check(bad, "payer.identifier")
    assert err.value.field == "payer.identifier"
    assert err.value.reason == reason
    assert "digits" in err.value.rule


def test_naming_systems() -> None:
    systems = {k.name: k.system for k in IDENTIFIER_KINDS}
    assert systems["bsn"] == BSN_SYSTEM == "http://fhir.nl/fhir/NamingSystem/bsn"
    assert systems["uzovi"] == UZOVI_SYSTEM
    assert systems["municipality"] == MUNICIPALITY_SYSTEM == "urn:oid:2.16.840.1.113883.2.4.6.14"
    assert systems["agb"].endswith("/agb-z")


def test_model_refuses_bad_bsn_naming_the_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        Person(bsn="123456789", family_name="X", birth_date="1990-01-01")
    (e,) = err.value.errors()
    assert e["loc"] == ("bsn",)
    assert "11-check" in e["msg"]
