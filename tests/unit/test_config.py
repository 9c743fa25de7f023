"""Settings from environment and files: precedence, and that every invalid case names the setting
by its environment variable and its file key."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from broker.config import ConfigError, Settings, load_settings

SECRET = "s3cr3t-never-shown"


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    """An existing file (the config layer only checks that certificate files exist)."""
    path = tmp_path / "ca.pem"
    path.write_text("not checked here\n")
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- valid configuration ----------------------------------------------------------------------


def test_defaults_use_the_embedded_broker_and_plaintext() -> None:
    s = Settings()
    assert s.bootstrap_servers is None
    assert s.state_dir == Path(".ketenbus")
    assert s.security_protocol == "PLAINTEXT"
    assert s.client_id_prefix == "ketenbus"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", " k1:9092, k2:9093 ")
    monkeypatch.setenv("KETENBUS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KETENBUS_CLIENT_ID_PREFIX", "zvh-1")
    s = load_settings()
    assert s.bootstrap_servers == "k1:9092,k2:9093"
    assert s.state_dir == tmp_path
    assert s.client_id_prefix == "zvh-1"


def test_empty_environment_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", "")
    monkeypatch.setenv("KETENBUS_SASL_PASSWORD", "")
    s = load_settings()
    assert s.bootstrap_servers is None
    assert s.sasl_password is None


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ketenbus.yaml", "bootstrap_servers: kafka:9092\nclient_id_prefix: from-file\n"),
        ("ketenbus.yml", "bootstrap_servers: kafka:9092\nclient_id_prefix: from-file\n"),
        ("ketenbus.toml", 'bootstrap_servers = "kafka:9092"\nclient_id_prefix = "from-file"\n'),
    ],
)
def test_yaml_and_toml_files(tmp_path: Path, name: str, text: str) -> None:
    s = load_settings(write(tmp_path, name, text))
    assert s.bootstrap_servers == "kafka:9092"
    assert s.client_id_prefix == "from-file"


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = write(tmp_path, "c.yaml", "bootstrap_servers: file:9092\nclient_id_prefix: file\n")
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", "env:9092")
    s = load_settings(cfg)
    assert s.bootstrap_servers == "env:9092"
    assert s.client_id_prefix == "file"


def test_explicit_overrides_beat_environment_but_none_does_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KETENBUS_STATE_DIR", "/from/env")
    monkeypatch.setenv("KETENBUS_CLIENT_ID_PREFIX", "env")
    s = load_settings(state_dir=tmp_path, client_id_prefix=None)
    assert s.state_dir == tmp_path
    assert s.client_id_prefix == "env"


def test_config_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = write(tmp_path, "c.toml", 'bootstrap_servers = "viaenv:9092"\n')
    monkeypatch.setenv("KETENBUS_CONFIG", str(cfg))
    assert load_settings().bootstrap_servers == "viaenv:9092"
    assert Settings().bootstrap_servers == "viaenv:9092"  # plain Settings() honours it too
    other = write(tmp_path, "d.yaml", "bootstrap_servers: explicit:9092\n")
    assert load_settings(other).bootstrap_servers == "explicit:9092"


def test_relative_paths_in_a_file_are_relative_to_the_file(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "ca.pem").write_text("x")
    cfg = write(
        conf_dir,
        "c.yaml",
        "bootstrap_servers: k:9093\nsecurity_protocol: SSL\nssl_cafile: ca.pem\nstate_dir: state\n",
    )
    s = load_settings(cfg)
    assert s.ssl_cafile == conf_dir / "ca.pem"
    assert s.state_dir == conf_dir / "state"


def test_full_sasl_ssl_configuration_and_lower_case_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pem: Path
) -> None:
    cfg = write(
        tmp_path,
        "c.yaml",
        f"bootstrap_servers: kafka:9094\nsecurity_protocol: sasl_ssl\nssl_cafile: {pem}\n"
        "sasl_mechanism: scram-sha-512\nsasl_username: router\n",
    )
    monkeypatch.setenv("KETENBUS_SASL_PASSWORD", SECRET)
    s = load_settings(cfg)
    assert s.security_protocol == "SASL_SSL"
    assert s.sasl_mechanism == "SCRAM-SHA-512"
    assert s.uses_ssl and s.uses_sasl
    assert s.sasl_password is not None and s.sasl_password.get_secret_value() == SECRET


def test_secrets_never_appear_in_repr_str_or_json(pem: Path) -> None:
    s = Settings(
        bootstrap_servers="k:9092",
        security_protocol="SASL_SSL",
        ssl_cafile=pem,
        ssl_certfile=pem,
        ssl_keyfile_password=SECRET,
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password=SECRET,
    )
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump())):
        assert SECRET not in text
    assert "**********" in repr(s)


def test_with_bootstrap_returns_a_validated_copy() -> None:
    s = Settings(client_id_prefix="x")
    t = s.with_bootstrap("127.0.0.1:1234")
    assert (t.bootstrap_servers, t.client_id_prefix, s.bootstrap_servers) == (
        "127.0.0.1:1234",
        "x",
        None,
    )
    with pytest.raises(ValueError, match="not host:port"):
        s.with_bootstrap("nonsense")


# --- invalid configuration: each case names env var and file key -----------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"KETENBUS_SECURITY_PROTOCOL": "TLS", "KETENBUS_BOOTSTRAP_SERVERS": "k:1"},
            "KETENBUS_SECURITY_PROTOCOL (security_protocol): must be one of PLAINTEXT, SSL, "
            "SASL_PLAINTEXT, SASL_SSL (got 'TLS')",
        ),
        (
            {"KETENBUS_SECURITY_PROTOCOL": "SSL", "KETENBUS_BOOTSTRAP_SERVERS": "k:1"},
            "KETENBUS_SSL_CAFILE (ssl_cafile): required with security_protocol SSL",
        ),
        (
            {"KETENBUS_SECURITY_PROTOCOL": "SSL"},
            "KETENBUS_SECURITY_PROTOCOL (security_protocol): SSL needs an external Kafka",
        ),
        (
            {
                "KETENBUS_SECURITY_PROTOCOL": "SSL",
                "KETENBUS_BOOTSTRAP_SERVERS": "k:1",
                "KETENBUS_SSL_CAFILE": "/nonexistent/ca.pem",
            },
            "KETENBUS_SSL_CAFILE (ssl_cafile): file not found: /nonexistent/ca.pem",
        ),
        (
            {"KETENBUS_SSL_CAFILE": "/etc/hostname"},
            "KETENBUS_SSL_CAFILE (ssl_cafile): only used with SSL or SASL_SSL, but "
            "security_protocol is PLAINTEXT",
        ),
        (
            {"KETENBUS_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KETENBUS_BOOTSTRAP_SERVERS": "k:1"},
            "KETENBUS_SASL_MECHANISM (sasl_mechanism): required with security_protocol "
            "SASL_PLAINTEXT: one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {"KETENBUS_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KETENBUS_BOOTSTRAP_SERVERS": "k:1"},
            "KETENBUS_SASL_USERNAME (sasl_username): required",
        ),
        (
            {"KETENBUS_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KETENBUS_BOOTSTRAP_SERVERS": "k:1"},
            "KETENBUS_SASL_PASSWORD (sasl_password): required",
        ),
        (
            {"KETENBUS_SASL_MECHANISM": "GSSAPI"},
            "KETENBUS_SASL_MECHANISM (sasl_mechanism): must be one of PLAIN, SCRAM-SHA-256, "
            "SCRAM-SHA-512",
        ),
        (
            {"KETENBUS_SASL_USERNAME": "alice"},
            "KETENBUS_SASL_USERNAME (sasl_username): only used with SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            {"KETENBUS_BOOTSTRAP_SERVERS": "tcp://kafka:9092"},
            "KETENBUS_BOOTSTRAP_SERVERS (bootstrap_servers): 'tcp://kafka:9092' is not host:port",
        ),
        (
            {"KETENBUS_BOOTSTRAP_SERVERS": "kafka"},
            "KETENBUS_BOOTSTRAP_SERVERS (bootstrap_servers): 'kafka' is not host:port",
        ),
        (
            {"KETENBUS_BOOTSTRAP_SERVERS": "kafka:99999"},
            "KETENBUS_BOOTSTRAP_SERVERS (bootstrap_servers): 'kafka:99999' is not host:port",
        ),
        (
            {"KETENBUS_BOOTSTRAP_SERVERS": " , "},
            "KETENBUS_BOOTSTRAP_SERVERS (bootstrap_servers): empty",
        ),
        (
            {"KETENBUS_CLIENT_ID_PREFIX": "has space"},
            "KETENBUS_CLIENT_ID_PREFIX (client_id_prefix): use only letters, digits",
        ),
    ],
)
def test_invalid_environment_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)


def test_keyfile_without_certificate(monkeypatch: pytest.MonkeyPatch, pem: Path) -> None:
    with pytest.raises(ConfigError, match=r"KETENBUS_SSL_CERTFILE \(ssl_certfile\): required"):
        Settings(bootstrap_servers="k:1", security_protocol="SSL", ssl_cafile=pem, ssl_keyfile=pem)


def test_all_problems_are_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETENBUS_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KETENBUS_BOOTSTRAP_SERVERS", "k:1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    settings = {p.setting for p in info.value.problems}
    assert settings == {"ssl_cafile", "sasl_mechanism", "sasl_username", "sasl_password"}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("c.yaml", "bootstrap: k:9092\n", "KETENBUS_BOOTSTRAP (bootstrap): unknown setting"),
        (
            "c.toml",
            'security_protocol = "ssl-please"\nbootstrap_servers = "k:1"\n',
            "KETENBUS_SECURITY_PROTOCOL (security_protocol): must be one of",
        ),
        ("c.yaml", "state_dir: [1, 2]\n", "KETENBUS_STATE_DIR (state_dir): invalid value"),
        ("c.yaml", "- a\n- b\n", "must hold a mapping of setting names to values"),
        ("c.yaml", "bootstrap_servers: [unclosed\n", "is not valid YAML"),
        ("c.toml", "bootstrap_servers = \n", "is not valid TOML"),
        ("c.json", "{}", "unsupported file type; use .yaml, .yml or .toml"),
    ],
)
def test_invalid_file_names_the_problem_and_file(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    cfg = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert expected in str(info.value)
    assert str(cfg) in str(info.value)


def test_missing_config_file_from_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KETENBUS_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml.*KETENBUS_CONFIG"):
        load_settings()


def test_an_empty_file_is_fine(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "c.yaml", "")).bootstrap_servers is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sasl_password": SECRET},  # set but unused: error names it without showing it
        {"sasl_password": [SECRET]},  # wrong type
        {"ssl_keyfile_password": SECRET},
    ],
)
def test_errors_never_show_secret_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(**kwargs)
    assert "KETENBUS_" in str(info.value)
    # The whole printed traceback, chained exceptions included (pydantic's would echo input).
    assert SECRET not in "".join(traceback.format_exception(info.value))
