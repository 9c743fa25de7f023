"""A deliberate re-process: an operator sends a refused record through the router again.

Why a signed request and not just the record again: the replay guard must still stop a plain
replay of the same record (an attacker with write access to ``in.*`` can resend anything), so
the router lets a record through a second time only when it carries a request signed by the
console party (the party of ``CONSOLE_ROLE``, whose keys the web app and the operator's CLI
hold). The request names a fresh attempt id (the replay guard's key for this attempt, so the
request itself cannot be replayed), the parked record it came from (``rejected/0/42``), the
SHA-256 of the record's value (the request cannot be moved to another record), the recipients
the audit trail already shows as delivered (never delivered twice) and the id of the console's
``reprocess`` audit record, which names the operator (NEN 7513: the user is the person). The
operator is never put in a header: the audit record holds them.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from cryptography.exceptions import InvalidSignature

from broker.router.records import Headers, header
from broker.trust import PartyKeys, PartyRegistry, TrustError
from schemas.vocab import PartyRole

CONSOLE_ROLE = PartyRole.CAPACITY_DASHBOARD
"""The party that authorises re-processes: the console (the web app's party, whose keys the
operator's CLI on the same machine uses too)."""
REQUEST_HEADER = "reprocess-request"  # not kb-: the envelope refuses kb- headers it does not know
SIGNATURE_HEADER = "reprocess-signature"
PARKED_HEADERS = (
    "kb-reason",
    "kb-detail",
    "kb-source-topic",
    "kb-refused-at",
    "kb-original-key",
)
"""What the router adds when it parks a record; stripped again when the record is re-sent."""


class ReprocessError(ValueError):
    """A re-process request that is not one the console signed for this record."""


@dataclass(frozen=True)
class ReprocessRequest:
    attempt: str  # a fresh UUID per attempt
    of: str  # the parked record: "<topic>/<partition>/<offset>"
    digest: str  # SHA-256 (hex) of the record value
    audit_event: str  # the console's ``reprocess`` audit record (it names the operator)
    signer: str  # party id of the console
    key_id: str
    skip: frozenset[str] = field(default_factory=frozenset)  # recipients already delivered

    def replay_id(self, original: str) -> str:
        """The replay guard's key of this attempt: new per attempt, tied to the original."""
        return f"{original}#reprocess/{self.attempt}"

    def payload(self) -> bytes:
        return orjson.dumps(
            {
                "attempt": self.attempt,
                "of": self.of,
                "digest": self.digest,
                "audit_event": self.audit_event,
                "signer": self.signer,
                "key": self.key_id,
                "skip": sorted(self.skip),
            },
            option=orjson.OPT_SORT_KEYS,
        )


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def new_request(
    value: bytes, of: str, audit_event: str, keys: PartyKeys, skip: frozenset[str] = frozenset()
) -> ReprocessRequest:
    return ReprocessRequest(
        attempt=uuid.uuid4().hex,
        of=of,
        digest=digest(value),
        audit_event=audit_event,
        signer=keys.party_id,
        key_id=keys.key_id,
        skip=skip,
    )


def request_headers(
    headers: Headers, request: ReprocessRequest, keys: PartyKeys
) -> list[tuple[str, bytes]]:
    """The parked record's headers, without what parking added, with the signed request."""
    kept = [
        (k, v)
        for k, v in headers
        if k not in PARKED_HEADERS and k not in (REQUEST_HEADER, SIGNATURE_HEADER)
    ]
    payload = request.payload()
    signature = base64.b64encode(keys.signing.sign(payload))
    return [*kept, (REQUEST_HEADER, payload), (SIGNATURE_HEADER, signature)]


def has_request(headers: Headers) -> bool:
    return any(k == REQUEST_HEADER for k, _ in headers)


def read_request(
    headers: Headers, value: bytes, registry: PartyRegistry, now: datetime
) -> ReprocessRequest:
    """The verified request of a record; ``ReprocessError`` saying why not otherwise."""
    raw = [v for k, v in headers if k == REQUEST_HEADER]
    sig = header(headers, SIGNATURE_HEADER)
    if len(raw) != 1 or sig is None:
        raise ReprocessError("a re-process request needs exactly one request and one signature")
    try:
        d = orjson.loads(raw[0])
        request = ReprocessRequest(
            attempt=_text(d["attempt"]),
            of=_text(d["of"]),
            digest=_text(d["digest"]),
            audit_event=_text(d["audit_event"]),
            signer=_text(d["signer"]),
            key_id=_text(d["key"]),
            skip=frozenset(_text(s) for s in d["skip"]),
        )
        signature = base64.b64decode(sig, validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ReprocessError(f"the re-process request is malformed ({type(e).__name__})") from None
    if len(request.attempt) != 32 or not all(c in "0123456789abcdef" for c in request.attempt):
        raise ReprocessError("the attempt id is not a fresh UUID")
    consoles = {p.id for p in registry.by_role(CONSOLE_ROLE)}
    if request.signer not in consoles:
        raise ReprocessError(f"{request.signer!r} is not the console: it may not re-process")
    try:
        key = registry.verification_key(request.signer, request.key_id, now)
        key.verify(signature, raw[0])
    except (KeyError, TrustError, InvalidSignature):
        raise ReprocessError("the re-process request's signature does not verify") from None
    if request.digest != digest(value):
        raise ReprocessError("the re-process request was signed for another record")
    return request


def _text(v: object) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= 200:
        raise ValueError("not a short text")
    return v
