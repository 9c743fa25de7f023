"""``ketenbus keys``: generate writes a 0600 key file and a loadable registry entry; show lists."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.trust import load_party_keys, load_registry, parse_registry
from schemas.vocab.roles import PartyRole

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["keys", *args])
    return result.exit_code, result.stdout, result.stderr


def private_values(directory: Path) -> list[str]:
    values = []
    for path in directory.glob("*.key.json"):
        document = json.loads(path.read_text())
        values += [document["signing_private"], document["encryption_private"]]
    return values


def test_generate_into_a_registry(tmp_path: Path) -> None:
    keys_dir, registry = tmp_path / "keys", tmp_path / "parties.yaml"
    code, out, err = run(
        "generate",
        "--party",
        "zvh-utrecht",
        "--role",
        "zvh",
        "--out",
        str(keys_dir),
        "--registry",
        str(registry),
        "--municipality",
        "0344",
        "--name",
        "ZVH Utrecht",
    )
    assert code == 0, err
    [key_file] = list(keys_dir.glob("*.key.json"))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    loaded = load_registry(registry)
    party = loaded.get("zvh-utrecht")
    assert party.role is PartyRole.ZVH and party.identifiers.municipality == "0344"
    keys = load_party_keys(key_file)
    assert party.keys[0].key_id == keys.key_id
    assert party.keys[0].signing_public == keys.public().signing_public
    assert party.keys[0].encryption_public == keys.public().encryption_public
    assert all(v not in out + err for v in private_values(keys_dir))


def test_generate_without_registry_prints_a_loadable_entry(tmp_path: Path) -> None:
    code, out, err = run(
        "generate",
        "--party",
        "fivoor",
        "--role",
        "executing-provider",
        "--out",
        str(tmp_path / "k"),
        "--agb",
        "73730101",
    )
    assert code == 0, err
    entry = yaml.safe_load(out)
    registry = parse_registry(yaml.safe_dump({"version": 1, "parties": entry}))
    assert registry.get("fivoor").identifiers.agb == "73730101"
    assert all(v not in out + err for v in private_values(tmp_path / "k"))
    assert "0600" in err


def test_generate_without_role_prints_a_key_entry(tmp_path: Path) -> None:
    code, out, _ = run("generate", "--party", "fivoor", "--out", str(tmp_path / "k"))
    assert code == 0
    [entry] = yaml.safe_load(out)
    assert set(entry) == {"key_id", "signing_public", "encryption_public", "valid_from"}


def test_second_key_rotates_the_first_out_after_the_overlap(tmp_path: Path) -> None:
    keys_dir, registry = tmp_path / "k", tmp_path / "parties.yaml"
    base = ["--out", str(keys_dir), "--registry", str(registry)]
    assert (
        run(
            "generate",
            "--party",
            "router",
            "--role",
            "router",
            "--key-id",
            "router-1",
            "--valid-from",
            "2026-01-01T00:00:00Z",
            *base,
        )[0]
        == 0
    )
    code, _, err = run(
        "generate",
        "--party",
        "router",
        "--key-id",
        "router-2",
        "--valid-from",
        "2026-06-01T00:00:00Z",
        "--overlap-days",
        "14",
        *base,
    )
    assert code == 0, err
    old, new = load_registry(registry).get("router").keys
    assert (old.key_id, new.key_id) == ("router-1", "router-2")
    assert (
        old.valid_until is not None and old.valid_until.isoformat() == "2026-06-15T00:00:00+00:00"
    )
    assert new.valid_until is None
    assert "router-1 now ends at" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--party", "Bad_Id"], "party id"),
        (["--party", "new-one"], "--role is required"),
        (["--party", "router", "--role", "dji"], "registered with role router"),
        (["--party", "router", "--key-id", "router-1"], "already in the registry"),
        (["--party", "x1", "--role", "zvh", "--agb", "12"], "AGB code"),
        (["--party", "x1", "--role", "zvh", "--valid-from", "2026-01-01"], "timezone"),
    ],
)
def test_generate_errors(tmp_path: Path, args: list[str], message: str) -> None:
    registry = tmp_path / "parties.yaml"
    base = ["--out", str(tmp_path / "k"), "--registry", str(registry)]
    assert (
        run("generate", "--party", "router", "--role", "router", "--key-id", "router-1", *base)[0]
        == 0
    )
    before = registry.read_text()
    files_before = sorted((tmp_path / "k").iterdir())
    code, _, err = run("generate", *args, *base)
    assert code == 1
    assert message in err
    assert registry.read_text() == before  # nothing changed
    assert sorted((tmp_path / "k").iterdir()) == files_before  # no key file written


def test_show_lists_parties_and_validity(tmp_path: Path) -> None:
    registry = tmp_path / "parties.yaml"
    base = ["--out", str(tmp_path / "k"), "--registry", str(registry)]
    run(
        "generate",
        "--party",
        "router",
        "--role",
        "router",
        "--key-id",
        "router-1",
        "--valid-from",
        "2026-01-01T00:00:00Z",
        *base,
    )
    run(
        "generate",
        "--party",
        "router",
        "--key-id",
        "router-2",
        "--valid-from",
        "2026-06-01T00:00:00Z",
        "--overlap-days",
        "7",
        *base,
    )
    code, out, _ = run("show", "--registry", str(registry), "--at", "2026-07-01T00:00:00Z")
    assert code == 0
    assert "router-1" in out and "router-2" in out
    assert "expired" in out and "valid" in out
    assert all(v not in out for v in private_values(tmp_path / "k"))


def test_show_reports_registry_errors_with_lines(tmp_path: Path) -> None:
    registry = tmp_path / "parties.yaml"
    registry.write_text("version: 1\nparties:\n  - id: x\n")
    code, _, err = run("show", "--registry", str(registry))
    assert code == 1
    assert f"{registry}:3:" in err


def test_intake_token_puts_only_its_digest_in_the_registry_and_rotates(tmp_path: Path) -> None:
    """``keys intake-token`` (docs/adapters/zvh.md, authentication): the token in a new 0600
    file, its SHA-256 in the party's entry; a second token is kept beside the first until
    ``--replace``; never over an existing file, never for a party not in the registry."""
    from broker.trust.intake_token import read_token, token_digest

    registry = tmp_path / "parties.yaml"
    code, _, err = run("generate", "--party", "zvh-utrecht", "--role", "zvh", "--out",
                       str(tmp_path / "keys"), "--registry", str(registry))
    assert code == 0, err
    first, second, third = (tmp_path / f"t{i}" for i in range(3))
    code, out, err = run("intake-token", "--party", "zvh-utrecht", "--registry", str(registry),
                         "--out", str(first))
    assert code == 0, err
    token = read_token(first)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600 and token not in out + err
    assert load_registry(registry).get("zvh-utrecht").intake_tokens == [token_digest(token)]
    assert token not in registry.read_text()
    assert run("intake-token", "--party", "zvh-utrecht", "--registry", str(registry),
               "--out", str(second))[0] == 0
    both = [token_digest(token), token_digest(read_token(second))]
    assert load_registry(registry).get("zvh-utrecht").intake_tokens == both
    assert run("intake-token", "--party", "zvh-utrecht", "--registry", str(registry),
               "--out", str(third), "--replace")[0] == 0
    only = [token_digest(read_token(third))]
    assert load_registry(registry).get("zvh-utrecht").intake_tokens == only
    code, _, err = run("intake-token", "--party", "zvh-utrecht", "--registry", str(registry),
                       "--out", str(first))
    assert code == 1 and "never overwritten" in err and read_token(first) == token
    code, _, err = run("intake-token", "--party", "zvh-elders", "--registry", str(registry),
                       "--out", str(tmp_path / "t9"))
    assert code == 1 and "not in" in err and not (tmp_path / "t9").exists()
