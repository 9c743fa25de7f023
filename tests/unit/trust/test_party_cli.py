"""``ketenbus party``: onboarding writes 0600 key files and a registry change that needs the
anchor's threshold of administrator signatures before it replaces the registry in use; rotate
and revoke are signed changes too; ``verify`` refuses a tampered registry (issue 21)."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.apps.deployment import create_local
from broker.trust import load_registry
from broker.trust.registry_signing import load_signed_registry

runner = CliRunner()


def run(state: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["party", *args], env={"KETENBUS_STATE_DIR": str(state)})
    return result.exit_code, result.stdout + result.stderr


def test_two_of_two_lifecycle(tmp_path: Path) -> None:
    state = tmp_path / "state"
    create_local(state, [])  # the router only, signed by the run-time local administrator
    local = str(state / "admin" / "local-admin.admin.json")
    code, out = run(state, "admin-key", "--id", "admin-b", "--out", str(tmp_path / "b"),
                    "--threshold", "2")
    assert code == 0, out
    other = str(tmp_path / "b" / "admin-b.admin.json")
    # the registry in use has one signature now: refused until the new administrator co-signs
    assert run(state, "verify")[0] == 1
    code, out = run(state, "sign", "--admin-key", other)
    assert code == 0 and "installed" in out, out

    code, out = run(state, "onboard", "--party", "zvh-zeeland", "--role", "zvh", "--name",
                    "ZVH Zeeland", "--admin-key", local)
    assert code == 0 and "1 more administrator signature" in out, out
    anchor = state / "registry-anchor.yaml"
    assert "zvh-zeeland" not in load_signed_registry(state / "registry.yaml", anchor)
    key_files = list((state / "keys").glob("zvh-zeeland-*.key.json"))
    assert len(key_files) == 1 and stat.S_IMODE(key_files[0].stat().st_mode) == 0o600
    code, out = run(state, "sign", "--admin-key", other)
    assert code == 0 and "installed" in out, out
    registry = load_signed_registry(state / "registry.yaml", anchor)
    first = registry.get("zvh-zeeland").keys[0].key_id

    both = ["--admin-key", local, "--admin-key", other]
    code, out = run(state, "rotate", "--party", "zvh-zeeland", "--overlap-hours", "1", *both)
    assert code == 0 and "installed" in out, out
    code, out = run(state, "revoke", "--party", "zvh-zeeland", "--key-id", first, *both)
    assert code == 0 and "installed" in out, out
    final = load_signed_registry(state / "registry.yaml", anchor)
    old, new = final.get("zvh-zeeland").keys
    assert old.revoked is not None and old.revocation_reason == "key-compromise"
    assert new.revoked is None and final.serial == registry.serial + 2

    # tampered after signing: the component check refuses it, naming why
    text = (state / "registry.yaml").read_text()
    (state / "registry.yaml").write_text(text.replace("ZVH Zeeland", "ZVH Zeeland-Vlaanderen"))
    code, out = run(state, "verify")
    assert code == 1 and "does not verify" in out, out
    assert load_registry(state / "registry.yaml").get("zvh-zeeland")  # parses, but unsigned


def test_a_change_needs_an_administrator_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    create_local(state, [])
    code, out = run(state, "onboard", "--party", "zvh-zeeland", "--role", "zvh", "--name", "Z")
    assert code == 1 and "--admin-key" in out
    assert not list((state / "keys").glob("zvh-zeeland-*"))


def test_keys_generate_drafts_a_change_the_administrators_sign(tmp_path: Path) -> None:
    """docs/trust.md §1.2: ``keys generate --registry`` writes the change unsigned with a new
    serial; components refuse it until ``party sign`` adds the administrators' signatures."""
    state = tmp_path / "state"
    before = create_local(state, []).registry.serial
    result = runner.invoke(app, ["keys", "generate", "--party", "zvh-x", "--role", "zvh",
                                 "--out", str(state / "keys"),
                                 "--registry", str(state / "registry.yaml")])
    assert result.exit_code == 0, result.output
    assert run(state, "verify")[0] == 1  # unsigned now: refused
    code, out = run(state, "sign", "--admin-key", str(state / "admin" / "local-admin.admin.json"))
    assert code == 0 and "installed" in out, out
    signed = load_signed_registry(state / "registry.yaml", state / "registry-anchor.yaml")
    assert "zvh-x" in signed and signed.serial == before + 1


def test_components_refuse_a_registry_the_administrators_did_not_sign(tmp_path: Path) -> None:
    """``ketenbus router`` and ``ketenbus adapter`` stop before they connect, naming why: a
    tampered registry, and one re-signed by another valid key that is not pinned."""
    from broker.trust.registry_signing import generate_admin_key, write_signed_registry

    state = tmp_path / "state"
    dep = create_local(state, [])
    env = {"KETENBUS_STATE_DIR": str(state), "KETENBUS_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    registry = state / "registry.yaml"
    registry.write_text(registry.read_text().replace("ketenbus router", "ketenbus r0uter"))
    for command in (["router"], ["adapter", "zvh", "--party", "router"]):
        result = runner.invoke(app, command, env=env)
        said = " ".join(result.output.split())  # the console wraps long lines
        assert result.exit_code == 2, said
        assert "party registry refused" in said and "does not verify" in said
    write_signed_registry(dep.registry, [generate_admin_key("admin-rogue")], registry)
    result = runner.invoke(app, ["router"], env=env)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "'admin-rogue', which is not an administrator" in said
