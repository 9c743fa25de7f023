"""Per-domain pseudonyms: deterministic, unlinkable across domains, no BSN in the output."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from broker.trust import (
    KeyFileError,
    Pseudonymiser,
    generate_secret,
    is_pseudonym,
    is_valid_bsn,
    load_or_create_secret,
)

SECRET = bytes(range(32))
VALID_BSNS = ["123456782", "111222333", "999990019"]


def bsn_with_check_digit(first8: str) -> str | None:
    total = sum(int(d) * w for d, w in zip(first8, range(9, 1, -1), strict=True))
    check = total % 11
    return None if check == 10 or first8 == "00000000" else first8 + str(check)


valid_bsns = st.text("0123456789", min_size=8, max_size=8).map(bsn_with_check_digit).filter(bool)


@pytest.fixture
def p() -> Pseudonymiser:
    return Pseudonymiser(SECRET)


def test_known_answer_matches_docs(p: Pseudonymiser) -> None:
    assert p.pseudonym("router", "123456782") == "p-yuutctqeaacdpnlphwrr5sa5z4"
    assert p.pseudonym("zvh-utrecht", "123456782") == "p-iv5hyedbblj43yvuv24htblzza"
    assert p.pseudonym("fivoor", "123456782") == "p-hqjgkk5b5f65x6tmthjvobcl2a"


def test_independent_implementation_of_the_spec(p: Pseudonymiser) -> None:
    domain_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"ketenbus-pseudonym-v1", info=b"domain:router"
    ).derive(SECRET)
    digest = hmac.new(domain_key, b"bsn:123456782", hashlib.sha256).digest()[:16]
    expected = "p-" + base64.b32encode(digest).decode().rstrip("=").lower()
    assert p.pseudonym("router", "123456782") == expected


def test_deterministic_per_domain_and_different_across_domains(p: Pseudonymiser) -> None:
    for bsn in VALID_BSNS:
        assert p.pseudonym("router", bsn) == Pseudonymiser(SECRET).pseudonym("router", bsn)
        assert p.pseudonym("router", bsn) != p.pseudonym("fivoor", bsn)
    assert Pseudonymiser(generate_secret()).pseudonym("router", "123456782") != p.pseudonym(
        "router", "123456782"
    )


def test_leading_zero_and_whitespace_normalise(p: Pseudonymiser) -> None:
    eight = "12345672"  # an 8-digit BSN is the 9-digit one with a leading zero
    assert is_valid_bsn(eight)
    assert p.pseudonym("router", eight) == p.pseudonym("router", "0" + eight)
    assert p.pseudonym("router", " 123456782\n") == p.pseudonym("router", "123456782")


@pytest.mark.parametrize(
    "bad", ["", "12345678a", "1234567", "1234567890", "123456789", "000000000"]
)
def test_invalid_bsns_are_refused_without_echoing_them(p: Pseudonymiser, bad: str) -> None:
    with pytest.raises(ValueError) as info:
        p.pseudonym("router", bad)
    if bad:
        assert bad not in str(info.value)


def test_check_digit_can_be_switched_off_for_test_data() -> None:
    assert Pseudonymiser(SECRET, check_digit=False).pseudonym("router", "123456789")


@pytest.mark.parametrize("domain", ["", "Router", "a b", "x" * 129, "é"])
def test_bad_domains_are_refused(p: Pseudonymiser, domain: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        p.pseudonym(domain, "123456782")


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Pseudonymiser(b"short")


@given(bsn=valid_bsns, domain=st.sampled_from(["router", "zvh-utrecht", "dji", "gemeente:0344"]))
def test_property_shape_and_no_bsn_inside(bsn: str, domain: str) -> None:
    pseudonym = Pseudonymiser(SECRET).pseudonym(domain, bsn)
    assert is_pseudonym(pseudonym) and len(pseudonym) == 28
    assert bsn not in pseudonym and bsn.lstrip("0") not in pseudonym
    assert not any(c in pseudonym for c in "0189")  # base32 lowercase: only a-z and 2-7
    assert pseudonym.encode("ascii").decode() == pseudonym  # Kafka-key and URL safe


@given(a=valid_bsns, b=valid_bsns)
def test_property_distinct_bsns_distinct_pseudonyms(a: str, b: str) -> None:
    p = Pseudonymiser(SECRET)
    assert (p.pseudonym("router", a) == p.pseudonym("router", b)) == (a == b)
    assert p.pseudonym("router", a) != p.pseudonym("fivoor", b)


@given(bsn=st.text("0123456789", min_size=8, max_size=9))
def test_property_any_digit_string_in_test_mode(bsn: str) -> None:
    pseudonym = Pseudonymiser(SECRET, check_digit=False).pseudonym("router", bsn)
    assert bsn not in pseudonym and is_pseudonym(pseudonym)


def test_translate_for_a_compliance_search(p: Pseudonymiser) -> None:
    found = p.translate("123456782", ["router", "zvh-utrecht", "fivoor"])
    assert found == {d: p.pseudonym(d, "123456782") for d in ("router", "zvh-utrecht", "fivoor")}


def test_restricted_pseudonymiser_knows_only_its_domains(p: Pseudonymiser) -> None:
    adapter = p.restricted(["router", "zvh-utrecht"])
    assert adapter.pseudonym("router", "123456782") == p.pseudonym("router", "123456782")
    assert adapter.domains == ("router", "zvh-utrecht")
    with pytest.raises(ValueError, match="no key for domain"):
        adapter.pseudonym("fivoor", "123456782")
    assert SECRET.hex() not in repr(adapter) + repr(p)


def test_is_valid_bsn() -> None:
    assert all(is_valid_bsn(b) for b in VALID_BSNS)
    assert not is_valid_bsn("123456789")
    assert not is_valid_bsn("12345678X")


def test_secret_file_created_0600_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "state" / "pseudonym.secret"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_secret(path) == first


def test_secret_file_refused_when_readable_or_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.secret"
    load_or_create_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_secret(path)
    os.chmod(path, 0o600)
    path.write_text("not base64 !!!\n")
    with pytest.raises(KeyFileError, match="not a base64"):
        load_or_create_secret(path)
    path.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(KeyFileError, match="at least 32"):
        load_or_create_secret(path)
