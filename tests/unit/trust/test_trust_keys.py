"""Party key generation, key files (0600 in 0700) and the keyring."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.trust import (
    KeyFileError,
    Keyring,
    Reason,
    TrustError,
    generate_party_keys,
    load_party_keys,
    write_party_keys,
)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_key_id_shape() -> None:
    keys = generate_party_keys("zvh-utrecht", now=T0)
    assert re.fullmatch(r"zvh-utrecht-20260302-[0-9a-f]{4}", keys.key_id)
    assert generate_party_keys("zvh-utrecht", "k-1").key_id == "k-1"


@pytest.mark.parametrize(
    "party", ["", "A", "Zvh", "zvh_utrecht", "-zvh", "zvh-", "a" * 65, "router\n"]
)
def test_bad_party_ids_are_refused(party: str) -> None:
    with pytest.raises(ValueError, match="party id"):
        generate_party_keys(party)


@pytest.mark.parametrize("key_id", ["", "../x", ".hidden", "a/b", "a b", "k1\n"])
def test_bad_key_ids_are_refused(key_id: str) -> None:
    with pytest.raises(ValueError, match="key id"):
        generate_party_keys("zvh-utrecht", key_id)


def test_public_keys_are_base64_raw(tmp_path: Path) -> None:
    public = generate_party_keys("router").public()
    import base64

    assert len(base64.b64decode(public.signing_public, validate=True)) == 32
    assert len(base64.b64decode(public.encryption_public, validate=True)) == 32
    assert public.signing_key().public_bytes_raw() == base64.b64decode(public.signing_public)


def test_write_and_load_round_trip_with_private_modes(tmp_path: Path) -> None:
    keys = generate_party_keys("router", now=T0)
    directory = tmp_path / "new" / "keys"
    path = write_party_keys(keys, directory)
    assert path == directory / f"{keys.key_id}.key.json"
    assert mode(path) == 0o600
    assert mode(directory) == 0o700
    loaded = load_party_keys(path)
    assert loaded.public() == keys.public()
    assert (loaded.party_id, loaded.key_id, loaded.created) == ("router", keys.key_id, T0)
    signature = loaded.signing.sign(b"m")
    keys.signing.public_key().verify(signature, b"m")  # the same private key


def test_written_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = write_party_keys(generate_party_keys("router"), tmp_path / "k")
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(tmp_path / "k") == 0o700


def test_never_overwrites(tmp_path: Path) -> None:
    keys = generate_party_keys("router", "router-k1")
    path = write_party_keys(keys, tmp_path / "k")
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_party_keys(generate_party_keys("router", "router-k1"), tmp_path / "k")
    assert path.read_bytes() == before
    assert [p.name for p in (tmp_path / "k").iterdir()] == [path.name]  # no temp files left


def test_refuses_a_shared_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with pytest.raises(KeyFileError, match="chmod 700"):
        write_party_keys(generate_party_keys("router"), shared)


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o644])
def test_refuses_to_load_a_readable_key_file(tmp_path: Path, loose: int) -> None:
    path = write_party_keys(generate_party_keys("router"), tmp_path / "k")
    os.chmod(path, loose)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_party_keys(path)


def test_detects_mismatched_public_key(tmp_path: Path) -> None:
    path = write_party_keys(generate_party_keys("router"), tmp_path / "k")
    document = json.loads(path.read_text())
    document["signing_public"] = generate_party_keys("router").public().signing_public
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="does not match"):
        load_party_keys(path)


@pytest.mark.parametrize(
    "content",
    ["", "{}", "[1]", '{"format": "other"}', "not json", '{"format": "ketenbus-party-keys/v1"}'],
)
def test_refuses_malformed_key_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.key.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        load_party_keys(path)


def test_key_material_never_in_repr(tmp_path: Path) -> None:
    keys = generate_party_keys("router")
    path = write_party_keys(keys, tmp_path / "k")
    private = json.loads(path.read_text())["signing_private"]
    text = repr(keys) + str(keys) + repr(Keyring([keys]))
    assert private not in text
    assert "Ed25519PrivateKey" not in text


def test_keyring_current_is_newest_and_get_by_id() -> None:
    old = generate_party_keys("router", "router-old", now=T0)
    new = generate_party_keys("router", "router-new", now=T0 + timedelta(days=30))
    ring = Keyring([new, old])
    assert ring.current is new
    assert ring.key_ids == ("router-new", "router-old")
    assert ring.get("router-old") is old
    assert "router-old" in ring and len(ring) == 2
    with pytest.raises(TrustError) as info:
        ring.get("router-gone")
    assert info.value.reason == Reason.UNKNOWN_KEY


def test_keyring_holds_one_party_and_unique_ids() -> None:
    with pytest.raises(ValueError, match="one party"):
        Keyring([generate_party_keys("router"), generate_party_keys("fivoor")])
    with pytest.raises(ValueError, match="twice"):
        Keyring([generate_party_keys("router", "k"), generate_party_keys("router", "k")])
    with pytest.raises(ValueError, match="at least one"):
        Keyring([])


def test_keyring_load_from_directory(tmp_path: Path) -> None:
    directory = tmp_path / "k"
    a = generate_party_keys("router", now=T0)
    b = generate_party_keys("router", now=T0 + timedelta(days=1))
    write_party_keys(a, directory)
    write_party_keys(b, directory)
    write_party_keys(generate_party_keys("fivoor"), directory)
    ring = Keyring.load(directory, "router")
    assert ring.key_ids == (b.key_id, a.key_id)
    with pytest.raises(KeyFileError, match="one party"):
        Keyring.load(directory)
    with pytest.raises(KeyFileError, match="no key files"):
        Keyring.load(directory, "dji")
