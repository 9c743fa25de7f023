"""The ZVH HTTP intake's credential check (adapters/zvh/auth.py, issue 21 point 4) against a
registry built at run time: every refusal in its order, with forgeries made from *other valid*
tokens; the registry file re-read when it changes (a revocation bites at the next request)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.zvh.auth import AuthRefused, IntakeAuth, WatchedRegistry
from broker.policy import default_policy
from broker.trust import (
    Party,
    PartyRegistry,
    dump_registry,
    generate_party_keys,
    registry_entry,
)
from broker.trust.intake_token import (
    digest_matches,
    load_or_create_token,
    new_token,
    read_token,
    token_digest,
)
from schemas.vocab import PartyRole

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def party(pid: str, role: PartyRole, token: str | None) -> Party:
    entry = registry_entry(
        generate_party_keys(pid, now=NOW - timedelta(days=1)), role=role, name=pid
    )
    return entry.model_copy(update={"intake_tokens": [token_digest(token)] if token else []})


@pytest.fixture
def tokens() -> dict[str, str]:
    return {"zvh-a": new_token(), "zvh-b": new_token(), "gemeente-c": new_token()}


@pytest.fixture
def registry(tokens: dict[str, str]) -> PartyRegistry:
    return PartyRegistry([
        party("zvh-a", PartyRole.ZVH, tokens["zvh-a"]),
        party("zvh-b", PartyRole.ZVH, tokens["zvh-b"]),
        party("gemeente-c", PartyRole.MUNICIPALITY, tokens["gemeente-c"]),
        party("fivoor", PartyRole.COORDINATING_PROVIDER, None),
    ])


def refusal(auth: IntakeAuth, header: str | None, doc: str = "referral") -> tuple[int, str]:
    with pytest.raises(AuthRefused) as caught:
        auth.check(header, doc)
    return caught.value.status, caught.value.reason


def test_own_token_is_let_in_and_every_other_credential_refused_with_its_reason(
    registry: PartyRegistry, tokens: dict[str, str]
) -> None:
    auth = IntakeAuth("zvh-a", lambda: registry, default_policy(), clock=lambda: NOW)
    assert auth.check(f"Bearer {tokens['zvh-a']}", "referral").id == "zvh-a"
    assert auth.check(f"bearer   {tokens['zvh-a']}  ", "consent").id == "zvh-a"
    assert refusal(auth, None) == (401, "no-credentials")
    assert refusal(auth, "") == (401, "no-credentials")
    for bad in (f"Basic {tokens['zvh-a']}", "Bearer", f"Bearer {tokens['zvh-a']}=",
                f"Bearer {tokens['zvh-a'][:-1]}", f"Token {tokens['zvh-a']}",
                "Bearer " + "A" * 10_000, f"Bearer {tokens['zvh-a'][:-1]}é"):
        assert refusal(auth, bad) == (401, "malformed-credentials"), bad
    assert refusal(auth, f"Bearer {new_token()}") == (401, "unknown-credentials")
    # another valid party's own token: posting in zvh-a's name
    assert refusal(auth, f"Bearer {tokens['zvh-b']}") == (403, "not-this-party")
    # a municipality may send referrals but not consents (the policy's senders)
    assert refusal(auth, f"Bearer {tokens['gemeente-c']}", "consent") == (403, "flow-not-allowed")
    assert refusal(auth, f"Bearer {tokens['gemeente-c']}", "referral") == (403, "not-this-party")


def test_a_party_whose_keys_are_revoked_is_refused_and_one_removed_is_unknown(
    registry: PartyRegistry, tokens: dict[str, str]
) -> None:
    a = registry.get("zvh-a")
    revoked = a.model_copy(
        update={"keys": [k.model_copy(update={"valid_until": NOW}) for k in a.keys]}
    )
    auth = IntakeAuth("zvh-a", lambda: registry.with_party(revoked), clock=lambda: NOW)
    assert refusal(auth, f"Bearer {tokens['zvh-a']}") == (401, "credentials-revoked")
    removed = PartyRegistry([p for p in registry if p.id != "zvh-a"])
    auth = IntakeAuth("zvh-a", lambda: removed, clock=lambda: NOW)
    assert refusal(auth, f"Bearer {tokens['zvh-a']}") == (401, "unknown-credentials")


def test_the_watched_registry_file_is_read_again_when_it_changes(
    tmp_path: Path, registry: PartyRegistry, tokens: dict[str, str]
) -> None:
    path = tmp_path / "registry.yaml"
    dump_registry(registry, path)
    watched = WatchedRegistry(path)
    auth = IntakeAuth("zvh-a", watched)
    assert auth.check(f"Bearer {tokens['zvh-a']}", "referral").id == "zvh-a"
    assert watched() is watched(), "an unchanged file is not parsed again"
    rotated = new_token()
    a = registry.get("zvh-a").model_copy(update={"intake_tokens": [token_digest(rotated)]})
    dump_registry(registry.with_party(a), path)
    os.utime(path, ns=(1, 1))  # a different stamp even within the file system's resolution
    assert refusal(auth, f"Bearer {tokens['zvh-a']}") == (401, "unknown-credentials")
    assert auth.check(f"Bearer {rotated}", "referral").id == "zvh-a"


def test_the_registry_holds_only_digests_and_the_token_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "zvh-a.intake-token"
    token = load_or_create_token(path)
    assert load_or_create_token(path) == token == read_token(path), "made once, then kept"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) == 43 and token != new_token()
    digest = token_digest(token)
    assert digest_matches(token, ["0" * 64, digest]) and not digest_matches(token, ["0" * 64])
    p = party("zvh-a", PartyRole.ZVH, token)
    reg = tmp_path / "registry.yaml"
    dump_registry(PartyRegistry([p]), reg)
    text = reg.read_text()
    assert digest in text and token not in text
    with pytest.raises(ValueError):
        p.model_validate({**p.model_dump(), "intake_tokens": [token]})  # a token, not a digest


def test_an_intake_without_authentication_binds_to_loopback_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ketenbus adapter zvh`` with ``zvh_http_auth = none`` refuses a non-loopback address
    before it connects to anything."""
    from typer.testing import CliRunner

    from broker.apps.cli.main import app
    from broker.apps.deployment import LocalParty, create_local

    create_local(tmp_path, [LocalParty("zvh-a", "ZVH A", PartyRole.ZVH, "midden-nederland")])
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("KETENBUS_ZVH_HTTP_AUTH", "none")
    args = ["adapter", "zvh", "--party", "zvh-a", "--data-dir", str(tmp_path / "d"),
            "--http-port", "0", "--http-host", "0.0.0.0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "loopback only" in result.output, result.output
    assert "zvh-a" in (tmp_path / "registry.yaml").read_text()


def test_a_verified_client_certificate_names_its_party_and_is_checked_like_a_token(
    registry: PartyRegistry, tokens: dict[str, str]
) -> None:
    """Mutual TLS (adapters/zvh/tls.py): the certificate's names, first registered one wins; a
    token beside it is not what decides (a stolen token does not turn a certificate into
    another party)."""
    auth = IntakeAuth("zvh-a", lambda: registry, default_policy(), clock=lambda: NOW)
    assert auth.check(None, "referral", ("zvh-a",)).id == "zvh-a"
    assert auth.check(None, "referral", ("intake.example", "zvh-a")).id == "zvh-a"
    assert auth.check(f"Bearer {tokens['zvh-b']}", "referral", ("zvh-a",)).id == "zvh-a"
    with pytest.raises(AuthRefused) as no:
        auth.check(f"Bearer {tokens['zvh-a']}", "referral", ("zvh-b",))
    assert (no.value.status, no.value.reason) == (403, "not-this-party")
    with pytest.raises(AuthRefused) as no:
        auth.check(None, "referral", ("nobody-here",))
    assert (no.value.status, no.value.reason) == (401, "unknown-credentials")
    with pytest.raises(AuthRefused) as no:
        auth.check(None, "consent", ("gemeente-c",))
    assert (no.value.status, no.value.reason) == (403, "flow-not-allowed")


def test_peer_names_are_the_common_names_then_the_dns_alternative_names() -> None:
    from adapters.zvh.tls import peer_names

    cert = {
        "subject": ((("countryName", "NL"),), (("commonName", "zvh-a"),)),
        "subjectAltName": (("DNS", "zvh-a"), ("DNS", "intake.zvh-a.example"), ("IP", "1.2.3.4")),
    }
    assert peer_names(cert) == ("zvh-a", "intake.zvh-a.example")
    assert peer_names({}) == () and peer_names(None) == ()


def test_intake_tls_settings_come_whole(tmp_path: Path) -> None:
    from broker.config import ConfigError, Settings

    pem = tmp_path / "x.pem"
    with pytest.raises(ConfigError, match="go together"):
        Settings(zvh_http_tls_certfile=pem)
    with pytest.raises(ConfigError, match="needs zvh_http_tls_certfile"):
        Settings(zvh_http_tls_client_ca=pem)
    Settings(zvh_http_tls_certfile=pem, zvh_http_tls_keyfile=pem, zvh_http_tls_client_ca=pem)
