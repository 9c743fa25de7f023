"""The sealed detail as ``docs/audit-format.md`` §5.1 describes it, opened by an independent
reader written from the doc with ``cryptography`` alone; and the positions §5 gives for a
compliance search (the officer is ``agent[1]``, the query entity found by type)."""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.audit import (
    AuditKind,
    AuditRecord,
    SealedDetailError,
    SealReader,
    build_audit_event,
    open_detail,
    seal_detail,
)
from schemas.vocab import PartyRole

DETAIL = {"citation": "Wvggz art. 8:32", "justification": "Acuut gevaar", "professional": "dr. B"}


def doc_open(value: str, chain: str, event_id: str, kid: str, private: X25519PrivateKey) -> dict:
    """§5.1, step by step."""
    blob = base64.b64decode(value)
    prefix = b"ketenbus-audit-seal-v1"
    assert blob.startswith(prefix)
    n = blob[len(prefix)]
    dkid = blob[len(prefix) + 1 : len(prefix) + 1 + n].decode("ascii")
    rest = blob[len(prefix) + 1 + n :]
    nonce, body = rest[:12], rest[12:]
    scheme, reader_kid, wrapped_text = dkid.split(".", 1)[0], *dkid[4:].rsplit(".", 1)
    assert scheme == "rk1" and reader_kid == kid
    wrapped = base64.urlsafe_b64decode(wrapped_text + "=" * (-len(wrapped_text) % 4))
    eph, wnonce, wct = wrapped[:32], wrapped[32:44], wrapped[44:]
    shared = private.exchange(X25519PublicKey.from_public_bytes(eph))
    own = private.public_key().public_bytes_raw()
    info = (b"ketenbus-envelope-v1 aes-256-gcm key" + eph + own
            + struct.pack(">I", len(kid.encode())) + kid.encode())
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ketenbus-envelope-v1 hkdf-salt",
               info=info).derive(shared)
    aad = bytes([len(chain.encode())]) + chain.encode() + event_id.encode()
    dk = AESGCM(key).decrypt(wnonce, wct, b"ketenbus-key-wrap-v1" + aad)
    plain = AESGCM(dk).decrypt(nonce, body, aad)
    assert plain == json.dumps(json.loads(plain), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()  # canonical
    return json.loads(plain)  # type: ignore[no-any-return]


def test_the_doc_reader_opens_what_the_writer_seals() -> None:
    reader = X25519PrivateKey.generate()
    value = seal_detail(DETAIL, chain="router-1", event_id="ev-1",
                        reader=SealReader("web-2026a", reader.public_key()))
    assert doc_open(value, "router-1", "ev-1", "web-2026a", reader) == DETAIL
    assert open_detail(value, chain="router-1", event_id="ev-1",
                       keys={"web-2026a": reader}) == DETAIL


@pytest.mark.parametrize("damage", ["flip", "cut", "prefix", "dkid-kid", "not-base64"])
def test_a_damaged_seal_does_not_open(damage: str) -> None:
    reader = X25519PrivateKey.generate()
    value = seal_detail(DETAIL, chain="c", event_id="e",
                        reader=SealReader("web", reader.public_key()))
    blob = bytearray(base64.b64decode(value))
    if damage == "flip":
        blob[-1] ^= 1
    elif damage == "cut":
        del blob[40:]
    elif damage == "prefix":
        blob[0] ^= 1
    elif damage == "dkid-kid":
        blob[len(b"ketenbus-audit-seal-v1") + 5] ^= 1  # "rk1.w" -> another key id
    value = "%%%" if damage == "not-base64" else base64.b64encode(bytes(blob)).decode()
    with pytest.raises(SealedDetailError):
        open_detail(value, chain="c", event_id="e", keys={"web": reader, "veb": reader})


def test_a_compliance_search_puts_the_officer_in_agent_1() -> None:
    event = build_audit_event(AuditRecord(
        kind=AuditKind.COMPLIANCE_SEARCH, recorded=datetime.now(UTC), source="web-1",
        reason="searched", actor="dashboard", actor_role=PartyRole.CAPACITY_DASHBOARD,
        professional="fg-officer", pseudonym="psn-1", query='{"persons": ["psn-1"]}'))
    assert event["agent"][1]["who"]["display"] == "fg-officer"
    assert event["agent"][1]["type"]["coding"][0]["code"] == "responsible-professional"
    [query] = [e for e in event["entity"] if e["type"]["code"] == "2"]
    assert query["role"]["code"] == "24" and event["entity"].index(query) == 1
    assert json.loads(base64.b64decode(query["query"])) == {"persons": ["psn-1"]}
