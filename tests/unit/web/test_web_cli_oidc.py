"""``ketenbus web serve --oidc FILE`` refuses a configuration that would leak or weaken the
sign-in before it serves anything: a client secret written into the file, an issuer that is not
https, a role the console does not have -- exit code 2 and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.apps.deployment import LocalParty, create_local
from schemas.vocab import PartyRole

BASE = ("providers:\n  - id: ggz\n    client_id: console\n    organisation: fivoor\n")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    create_local(tmp_path, [LocalParty("capacity-dashboard", "Dashboard",
                                       PartyRole.CAPACITY_DASHBOARD),
                            LocalParty("fivoor", "Fivoor", PartyRole.COORDINATING_PROVIDER)])
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    added = CliRunner().invoke(app, ["web", "add-user", "olga", "--role", "operations",
                                     "--password-stdin"], input="a long test password\n")
    assert added.exit_code == 0, added.output
    return tmp_path


@pytest.mark.parametrize(("extra", "says"), [
    ("    issuer: https://idp.example\n    roles: {ops: operations}\n    client_secret: s\n",
     "client_secret_env or client_secret_file"),
    ("    issuer: http://idp.example\n    roles: {ops: operations}\n", "https"),
    ("    issuer: https://idp.example\n    roles: {ops: root}\n", "root"),
])
def test_a_bad_identity_provider_configuration_stops_the_web_app(
    state: Path, extra: str, says: str
) -> None:
    config = state / "oidc.yaml"
    config.write_text(BASE + extra)
    result = CliRunner().invoke(app, ["web", "serve", "--port", "0", "--oidc", str(config)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # Rich wraps long lines
    assert "OpenID Connect configuration" in output and says in output
