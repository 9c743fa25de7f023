"""Transport identities for the compose file (``broker.apps.pki``, issue 21 point 2): each file is
one principal's key and certificate, signed by the CA in ``ca.pem``, private (0600). The CA's
key is kept nowhere, so no identity can be added without provisioning anew."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from broker.apps.pki import CA_FILE, issue_all, principal_of


def test_every_identity_is_its_own_key_signed_by_the_ca_and_private(tmp_path: Path) -> None:
    paths = issue_all(tmp_path / "pki", {"router-1": "router", "fivoor": "fivoor"},
                      {"kafka": ["kafka"]})  # fmt: skip
    ca = x509.load_pem_x509_certificate((tmp_path / "pki" / CA_FILE).read_bytes())
    assert b"PRIVATE KEY" not in (tmp_path / "pki" / CA_FILE).read_bytes()
    ca_public = ca.public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey)
    for name, path in paths.items():
        assert path.stat().st_mode & 0o777 == 0o600, name
        pem = path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        leaf = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
        assert leaf.public_key() == key.public_key()  # its own key, not the CA's
        assert key.public_key() != ca_public
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert principal_of(paths["router-1"].read_bytes()) == "User:router"
    assert principal_of(paths["fivoor"].read_bytes()) == "User:fivoor"
    server = x509.load_pem_x509_certificate(
        paths["kafka"].read_bytes()[paths["kafka"].read_bytes().index(b"-----BEGIN CERT") :]
    )
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kafka"]
    usages = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages and ExtendedKeyUsageOID.CLIENT_AUTH in usages
    client = x509.load_pem_x509_certificate(
        paths["fivoor"].read_bytes()[paths["fivoor"].read_bytes().index(b"-----BEGIN CERT") :]
    )
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]


def test_a_certificate_from_another_ca_does_not_verify(tmp_path: Path) -> None:
    ours = issue_all(tmp_path / "a", {"zvh": "zvh"}, {})
    issue_all(tmp_path / "b", {"zvh": "zvh"}, {})
    other_ca = x509.load_pem_x509_certificate((tmp_path / "b" / CA_FILE).read_bytes())
    pem = ours["zvh"].read_bytes()
    leaf = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
    with pytest.raises(InvalidSignature):
        leaf.verify_directly_issued_by(other_ca)
