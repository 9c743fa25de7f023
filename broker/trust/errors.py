"""Why a message was refused: one exception type with a stable machine-readable reason.

``TrustError`` is raised for anything wrong with a *message* (its envelope, signature, keys,
freshness). The router turns ``reason`` into the refusal it sends back and into the audit record,
so reasons are a stable vocabulary: add codes, never rename them. Messages are for humans and name
only metadata (party ids, key ids, times), never payload content or a person's identifiers.

Configuration problems (a bad registry file, a bad key file) are ``TrustConfigError``s instead:
they stop a component at start-up rather than refuse one message.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Stable codes for refused messages (the ``reason`` of a ``TrustError``)."""

    MALFORMED_ENVELOPE = "malformed-envelope"
    """Headers or value do not have the ketenbus sealed-v1 shape."""
    MISSING_SIGNATURE = "missing-signature"
    """No ``kb-sig`` or no ``kb-sig-kid`` header."""
    UNKNOWN_SENDER = "unknown-sender"
    """``kb-sender`` is not a party in the registry."""
    UNKNOWN_PARTY = "unknown-party"
    """A party id looked up in the registry (outside a message's sender) does not exist."""
    UNKNOWN_KEY = "unknown-key"
    """The signing key id is not registered for the sender, or the encryption key id is not in the
    reader's keyring."""
    NO_VALID_KEY = "no-valid-key"
    """A party has no encryption key valid at the requested time."""
    BAD_SIGNATURE = "bad-signature"
    """The Ed25519 signature does not verify: some header, the key or the value was altered."""
    KEY_NOT_YET_VALID = "key-not-yet-valid"
    """The message is dated before its signing key's ``valid_from``."""
    KEY_EXPIRED = "key-expired"
    """The message is dated at or after its signing key's ``valid_until`` (or, when the reader asks
    for it, it was received too long after that)."""
    KEY_REVOKED = "key-revoked"
    """The signing key was revoked in the registry (a stolen or lost key): refused from the moment
    the reader holds that registry, whatever time the message claims (docs/trust.md §2.2)."""
    WRONG_RECIPIENT = "wrong-recipient"
    """The message is addressed to another party than the reader."""
    DECRYPT_FAILED = "decrypt-failed"
    """Authentic envelope, but the ciphertext does not decrypt with the reader's key."""
    STALE = "stale"
    """The message is older than the reader accepts."""
    FUTURE_TIMESTAMP = "future-timestamp"
    """The message is dated further in the future than the allowed clock skew."""
    DUPLICATE = "duplicate"
    """The message id was already processed (from ``ReplayGuard``)."""


class TrustError(Exception):
    """A message failed a trust check. ``reason`` is a ``Reason`` code (a ``str``)."""

    reason: str
    message: str

    def __init__(self, reason: Reason | str, message: str = "") -> None:
        self.reason = str(Reason(reason))
        self.message = message or self.reason
        super().__init__(self.reason, self.message)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.message!r})"


class UnknownParty(TrustError, KeyError):
    """``PartyRegistry.get`` of an id that is not registered (also a ``KeyError``)."""

    def __init__(
        self,
        party_id: str,
        reason: Reason | str = Reason.UNKNOWN_PARTY,
        *,
        message: str | None = None,
    ) -> None:
        self.party_id = party_id
        super().__init__(reason, message or f"party {party_id!r} is not in the registry")

    def __str__(self) -> str:  # KeyError would quote the args; keep TrustError's form
        return TrustError.__str__(self)


class TrustConfigError(Exception):
    """A trust configuration problem (registry, key file, secret file): fix it and restart."""


class KeyFileError(TrustConfigError):
    """A private key or secret file is missing, malformed, or readable by others."""


class RegistryProblem:
    """One rule a registry file breaks, and where: ``file:line:column: path: rule``."""

    __slots__ = ("column", "file", "line", "path", "rule")

    def __init__(self, file: str, line: int, column: int, path: str, rule: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.rule = rule

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.rule}" if self.path else f"{where}: {self.rule}"

    def __repr__(self) -> str:
        return f"RegistryProblem({str(self)!r})"


class RegistryError(TrustConfigError):
    """A party registry file breaks one or more rules; ``problems`` lists each with its line."""

    def __init__(self, problems: list[RegistryProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid party registry ({len(problems)} problem(s)):\n{lines}")


class RegistrySignatureError(TrustConfigError):
    """The registry is not signed by enough of the pinned administrators (unsigned, changed after
    signing, signed by a key that is not an administrator's, or an older serial than the one in
    use): a component refuses to load it (docs/trust.md §2.1)."""
