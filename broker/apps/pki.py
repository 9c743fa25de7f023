"""Transport identities for Apache Kafka with mutual TLS: a CA made at provisioning time, the
broker's certificate and one client certificate per Kafka principal (issue 21 point 2).

Kafka takes a client's principal from its certificate's subject; the compose file maps
``CN=<name>`` to ``User:<name>`` (``ssl.principal.mapping.rules``), the principal
``broker.apps.acls`` writes the ACLs for (a party id, ``ketenbus-admin``). Every file holds the
private key (PKCS#8) and then the certificate chain, PEM, mode 0600: what a ketenbus client
takes as ``KETENBUS_SSL_CERTFILE`` and Kafka as a ``PEM`` keystore. Nothing here is committed:
the keys are made when a deployment is provisioned (NEN 7510-2 A.10.1: keys kept apart).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.trust._files import ensure_private_dir, write_private_file

__all__ = ["CA_FILE", "issue_all", "principal_of"]

CA_FILE = "ca.pem"
VALID_DAYS = 397  # a year and a month: rotate with the party's keys (docs/trust.md)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(key: ec.EllipticCurvePrivateKey, *certs: x509.Certificate) -> bytes:
    out = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return out + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def issue_all(
    directory: Path, identities: Mapping[str, str], servers: Mapping[str, list[str]]
) -> dict[str, Path]:
    """A new CA in ``directory/ca.pem`` (certificate only; its key is not kept, so nobody can
    issue another identity later: provisioning again makes a new CA) and one file per entry:
    ``identities`` (file name -> common name) as TLS clients, ``servers`` (file name -> host
    names) as TLS servers (also clients: a broker talks to its controller). Returns the paths
    by file name."""
    ensure_private_dir(directory)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("ketenbus deployment CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / CA_FILE).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths: dict[str, Path] = {}
    wanted: list[tuple[str, str, list[str]]] = [(f, cn, []) for f, cn in identities.items()]
    wanted += [(f, names[0], names) for f, names in servers.items()]
    for file, cn, hosts in wanted:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if hosts:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        path = directory / f"{file}.pem"
        write_private_file(path, _pem(key, cert, ca))
        paths[file] = path
    return paths


def principal_of(pem: bytes) -> str:
    """The Kafka principal of a certificate file under the compose file's mapping rule
    (``CN=<name>`` -> ``User:<name>``): the first certificate after the key."""
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return f"User:{cn!s}"
