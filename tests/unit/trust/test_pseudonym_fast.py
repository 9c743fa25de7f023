"""The cached, table-driven pseudonyms are the pseudonyms of the documented scheme.

The reference below is the scheme written out independently (HKDF, ``hmac.new``, the standard
library's base32) as the module did before; every property compares the pseudonymiser with it,
including what it raises for a bad BSN or an unknown domain, with the cache cold and warm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.trust import pseudonym as P

SECRET = bytes(range(32))
_OLD_BSN = re.compile(r"^[0-9]{8,9}\Z")


def ref_valid(bsn: str) -> bool:
    if not _OLD_BSN.match(bsn):
        return False
    digits = [int(c) for c in bsn.zfill(9)]
    total = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - digits[8]
    return total % 11 == 0 and bsn.zfill(9) != "000000000"


def ref_normalise(bsn: Any, check_digit: bool = True) -> str:
    if not isinstance(bsn, str):
        raise TypeError("a BSN must be given as a str")
    text = bsn.strip()
    if not _OLD_BSN.match(text):
        raise ValueError("not a BSN: expected 8 or 9 digits")
    if check_digit and not ref_valid(text):
        raise ValueError("not a BSN: fails the eleven test (elfproef)")
    return text.zfill(9)


def ref_pseudonym(secret: bytes, domain: str, bsn: Any, check_digit: bool = True) -> str:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"ketenbus-pseudonym-v1",
        info=b"domain:" + domain.encode("ascii"),
    ).derive(secret)
    bsn9 = ref_normalise(bsn, check_digit)
    digest = hmac.new(key, b"bsn:" + bsn9.encode("ascii"), hashlib.sha256).digest()
    return "p-" + base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()


def run(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except (TypeError, ValueError) as err:
        return type(err).__name__, str(err)


bsns = st.one_of(
    st.integers(0, 999_999_999).map(lambda n: f"{n:09d}"),
    st.integers(0, 99_999_999).map(lambda n: f"{n:08d}"),
    st.sampled_from(
        ["111222333", " 111222333 ", "11122233", "000000000", "١١١٢٢٢٣٣٣", "12345678x"]
    ),
    st.text(alphabet="0123456789 \t١", max_size=11),
)
domains = st.sampled_from(["router", "audit", "fivoor", "zvh-midden-nederland", "a.b:c-d_e"])


@settings(max_examples=400, deadline=None)
@given(domains, bsns, st.booleans())
def test_pseudonym_is_the_documented_scheme(domain: str, bsn: str, check: bool) -> None:
    ps = P.Pseudonymiser(SECRET, check_digit=check)
    expected = run(ref_pseudonym, SECRET, domain, bsn, check)
    assert run(ps.pseudonym, domain, bsn) == expected  # cold
    assert run(ps.pseudonym, domain, bsn) == expected  # warm (or refused again)
    restricted = ps.restricted([domain])
    assert run(restricted.pseudonym, domain, bsn) == expected
    if expected[0] == "ok":
        assert P.is_pseudonym(expected[1])
        assert run(ps.translate, bsn, [domain, "audit"]) == (
            "ok",
            {domain: expected[1], "audit": ref_pseudonym(SECRET, "audit", bsn, check)},
        )


@settings(max_examples=500, deadline=None)
@given(bsns | st.text(max_size=10))
def test_bsn_checks_like_before(bsn: str) -> None:
    assert P.is_valid_bsn(bsn) == ref_valid(bsn)
    assert run(P.normalise_bsn, bsn) == run(ref_normalise, bsn)
    assert run(P.normalise_bsn, bsn, check_digit=False) == run(ref_normalise, bsn, False)


@pytest.mark.parametrize("key_len", [16, 32, 64, 65, 100])
def test_hmac_from_precomputed_states_is_hmac(key_len: int) -> None:
    key = bytes((i * 7 + 3) % 256 for i in range(key_len))
    digest = hmac.new(key, b"bsn:111222333", hashlib.sha256).digest()
    expected = "p-" + base64.b32encode(digest[:16]).decode().rstrip("=").lower()
    assert P._pseudonym_from_key(key, "111222333") == expected


def test_odd_arguments_raise_as_before() -> None:
    ps = P.Pseudonymiser(SECRET)
    assert run(ps.pseudonym, "router", 111222333) == run(ref_normalise, 111222333)
    assert run(ps.pseudonym, "Router", "111222333")[0] == "ValueError"  # bad domain name
    assert run(ps.restricted(["audit"]).pseudonym, "router", "111222333") == (
        "ValueError",
        "this pseudonymiser has no key for domain 'router'",
    )
    with pytest.raises(TypeError):
        P.is_valid_bsn(111222333)  # type: ignore[arg-type]


def test_the_cache_is_bounded_and_errors_are_not_cached() -> None:
    ps = P.Pseudonymiser(SECRET, cache_size=8)
    for n in range(100):
        ps.pseudonym("router", f"{n:09d}" if ref_valid(f"{n:09d}") else "111222333")
    info = ps._cached.cache_info()  # type: ignore[attr-defined]
    assert info.maxsize == 8 and info.currsize <= 8
    for _ in range(3):
        with pytest.raises(ValueError):
            ps.pseudonym("router", "123456789")
    assert "111222333" not in repr(ps)
