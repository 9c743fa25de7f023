"""Who is posting to the ZVH HTTP intake: per-party bearer tokens bound to the registry (issue 21
point 4; docs/adapters/zvh.md, "Authentication").

A request carries ``Authorization: Bearer <token>`` (RFC 6750 §2.1), or comes over a TLS
connection with a client certificate the intake's CA signed (adapters/zvh/tls.py), which names
its party. The token is looked up by
its SHA-256 among the registry's ``intake_tokens`` *at every request*, against the registry as
it is on disk now (:class:`WatchedRegistry` reloads it when it changes), so a party removed from
the registry, or whose keys are all revoked or expired, is refused at its next post without a
restart. Refusals, in the order they are checked:

- 401 ``no-credentials``: no ``Authorization`` header (RFC 7235 §3.1, with ``WWW-Authenticate``);
- 401 ``malformed-credentials``: not ``Bearer`` and one token of the right shape;
- 401 ``unknown-credentials``: no registered party holds this token (or is named by the
  certificate);
- 401 ``credentials-revoked``: the party holding it has no key valid now (revoked, expired);
- 403 ``flow-not-allowed``: the party's role may not send this document's flow (the policy's
  ``senders``, the one list of who may send what);
- 403 ``not-this-party``: a valid party posting to another party's intake, i.e. in its name
  (AVG art. 5(1)(f), art. 32: no party sends in another's name).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from broker.policy import Policy
from broker.trust import Party, PartyRegistry, load_registry
from broker.trust.intake_token import TOKEN_RE, digest_matches
from schemas.vocab import EventCode

REALM = 'Bearer realm="ketenbus-intake"'


class AuthRefused(Exception):
    """A request refused before its body is read: HTTP ``status`` with a stable ``reason``."""

    def __init__(self, status: int, reason: str, problem: str, caller: str | None = None) -> None:
        super().__init__(problem)
        self.status = status
        self.reason = reason
        self.problem = problem
        self.caller = caller  # the authenticated party, for a 403


@dataclass
class WatchedRegistry:
    """The registry file, read again whenever its size or modification time changes: a
    revocation or a removal takes effect at the next request of every running intake."""

    path: Path
    _stamp: tuple[int, int] | None = None
    _registry: PartyRegistry | None = None

    def __call__(self) -> PartyRegistry:
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size)
        if self._registry is None or stamp != self._stamp:
            self._registry = load_registry(self.path)
            self._stamp = stamp
        return self._registry


class IntakeAuth:
    """The check of one intake (the adapter of ``party_id``)."""

    def __init__(
        self,
        party_id: str,
        registry: Callable[[], PartyRegistry],
        policy: Policy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.party_id = party_id
        self.registry = registry
        self.policy = policy
        self.clock = clock

    def check(
        self, authorization: str | None, document_type: str, cert_names: Sequence[str] = ()
    ) -> Party:
        """The party the request is from, or :class:`AuthRefused`. ``cert_names``: the names of
        a client certificate the TLS handshake verified (adapters/zvh/tls.py); when there is
        one it is the credential, and a token beside it is not looked at."""
        party = self._holder(authorization, cert_names)
        now = self.clock()
        if not any(k.valid_at(now) for k in party.keys):
            raise AuthRefused(
                401, "credentials-revoked", "the party holding this credential has no valid key"
            )
        if self.policy is not None and not self._may_send(party, document_type):
            raise AuthRefused(
                403,
                "flow-not-allowed",
                f"a {party.role.value} may not send {document_type} documents",
                party.id,
            )
        if party.id != self.party_id:
            raise AuthRefused(
                403, "not-this-party", "this intake takes documents of its own party only", party.id
            )
        return party

    def _holder(self, authorization: str | None, cert_names: Sequence[str]) -> Party:
        """The registered party the credential belongs to."""
        if cert_names:
            registry = self.registry()
            named = next((registry.get(n) for n in cert_names if n in registry), None)
            if named is None:
                raise AuthRefused(
                    401, "unknown-credentials", "the certificate names no registered party"
                )
            return named
        if not authorization:
            raise AuthRefused(401, "no-credentials", "send Authorization: Bearer <token>")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not TOKEN_RE.match(token):
            raise AuthRefused(
                401, "malformed-credentials", "expected Authorization: Bearer <43-char token>"
            )
        holders = (p for p in self.registry() if p.intake_tokens)
        party = next((p for p in holders if digest_matches(token, p.intake_tokens)), None)
        if party is None:
            raise AuthRefused(401, "unknown-credentials", "no registered party holds this token")
        return party

    def _may_send(self, party: Party, document_type: str) -> bool:
        assert self.policy is not None
        try:
            event = EventCode(document_type)
        except ValueError:
            return True  # an unknown type is the document check's to refuse (422)
        flow = self.policy.flow(event)
        return flow is None or party.role in flow.senders
