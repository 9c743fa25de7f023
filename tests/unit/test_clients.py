"""Client options carry the security settings into aiokafka and FastStream, with real TLS files."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from broker.config import ConfigError, Settings
from broker.kafka.clients import (
    build_ssl_context,
    client_options,
    faststream_broker,
    faststream_security,
    make_admin,
    make_consumer,
    make_producer,
)
from tests.helpers.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def test_plaintext_options() -> None:
    assert client_options(Settings(bootstrap_servers="k:9092")) == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_no_bootstrap_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"KETENBUS_BOOTSTRAP_SERVERS \(bootstrap_servers\)"):
        client_options(Settings())


def test_sasl_scram_options() -> None:
    s = Settings(
        bootstrap_servers="k:9095",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="router",
        sasl_password="pw",
    )
    assert client_options(s) == {
        "bootstrap_servers": "k:9095",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "router",
        "sasl_plain_password": "pw",
    }


def test_ssl_context_trusts_exactly_the_configured_ca(tls: TlsFiles) -> None:
    s = Settings(bootstrap_servers="k:9093", security_protocol="SSL", ssl_cafile=tls.ca_cert)
    options = client_options(s)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert options["security_protocol"] == "SSL"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [c["subject"] for c in context.get_ca_certs()]
    assert subjects == [((("commonName", "ketenbus test CA"),),)]


def test_client_certificate_is_loaded(tls: TlsFiles) -> None:
    s = Settings(
        bootstrap_servers="k:9093",
        security_protocol="SSL",
        ssl_cafile=tls.ca_cert,
        ssl_certfile=tls.client_cert,
        ssl_keyfile=tls.client_key,
    )
    assert build_ssl_context(s) is not None


def test_unreadable_ca_names_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    s = Settings(bootstrap_servers="k:9093", security_protocol="SSL", ssl_cafile=bad)
    with pytest.raises(ConfigError, match=r"KETENBUS_SSL_CAFILE \(ssl_cafile\): cannot load"):
        client_options(s)


def test_key_not_matching_certificate_names_the_setting(tls: TlsFiles) -> None:
    s = Settings(
        bootstrap_servers="k:9093",
        security_protocol="SSL",
        ssl_cafile=tls.ca_cert,
        ssl_certfile=tls.client_cert,
        ssl_keyfile=tls.server_key,  # wrong key
    )
    with pytest.raises(ConfigError, match=r"KETENBUS_SSL_CERTFILE \(ssl_certfile\): cannot load"):
        client_options(s)


@pytest.mark.parametrize(
    ("protocol", "mechanism", "cls", "use_ssl"),
    [
        ("SASL_PLAINTEXT", "PLAIN", SASLPlaintext, False),
        ("SASL_SSL", "SCRAM-SHA-256", SASLScram256, True),
        ("SASL_SSL", "SCRAM-SHA-512", SASLScram512, True),
    ],
)
def test_faststream_security_matches_settings(
    tls: TlsFiles, protocol: str, mechanism: str, cls: type[BaseSecurity], use_ssl: bool
) -> None:
    s = Settings(
        bootstrap_servers="k:9096",
        security_protocol=protocol,
        ssl_cafile=tls.ca_cert if use_ssl else None,
        sasl_mechanism=mechanism,
        sasl_username="u",
        sasl_password="p",
    )
    security = faststream_security(s)
    assert type(security) is cls
    assert security.use_ssl is use_ssl
    assert (security.ssl_context is not None) is use_ssl
    assert (security.username, security.password) == ("u", "p")  # type: ignore[attr-defined]


def test_faststream_security_plaintext_and_ssl(tls: TlsFiles) -> None:
    assert faststream_security(Settings(bootstrap_servers="k:1")) is None
    security = faststream_security(
        Settings(bootstrap_servers="k:1", security_protocol="SSL", ssl_cafile=tls.ca_cert)
    )
    assert type(security) is BaseSecurity and security.use_ssl


async def test_factories_build_unstarted_clients() -> None:
    s = Settings(bootstrap_servers="k:9092", client_id_prefix="zvh")
    producer = make_producer(s, linger_ms=0)
    consumer = make_consumer(s, "in.referral", group_id="router")
    admin = make_admin(s)
    broker = faststream_broker(s)
    assert producer.client._client_id == "zvh-producer"
    assert consumer._client._client_id == "zvh-consumer-router"
    assert admin._client._client_id == "zvh-admin"
    assert broker is not None
