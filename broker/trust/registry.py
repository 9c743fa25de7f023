"""The party registry: who may take part, in which role, with which public keys and when.

It holds public keys only and is meant to be published to every component (a YAML file in
version control or a config map). Loading is strict: every rule a file breaks is reported with the
file, line and column, so an operator can fix a registry without reading Python.

File format::

    version: 1
    serial: 7                                # raised by every signed change (no rollback)
    parties:
      - id: zvh-utrecht                      # 2-64 of [a-z0-9-]; names its out.<id> topic
        name: Zorg- en Veiligheidshuis Utrecht
        role: zvh                            # a PartyRole code
        region: midden-nederland             # optional
        identifiers: {ura: "12345678"}       # optional: agb/ura 8 digits, uzovi/municipality 4,
                                             #   oin 20
        keys:
          - key_id: zvh-utrecht-20261123-9f3a
            signing_public: <base64 of 32 raw Ed25519 public key bytes>
            encryption_public: <base64 of 32 raw X25519 public key bytes>
            valid_from: 2026-11-23T00:00:00Z  # aware; the key is valid in [from, until)
            valid_until: 2027-11-30T00:00:00Z # optional
            revoked: 2026-12-07T01:00:00Z     # optional: refused from then on (stolen key)
            revocation_reason: key-compromise # optional, with revoked
        # outbound_topic: out.zvh-utrecht     # optional, defaults to the catalogue's name
        # intake_tokens: [<sha256 hex>]       # optional: its HTTP intake's bearer tokens, as
                                             #   digests only (broker/trust/intake_token.py)
    audit_chains:                            # who may sign which audit chain (audit-format.md)
      - chain: router-20261123-9f3a          # the chain id records carry (a name: it stays
                                             #   when the keys rotate)
        writer: router                       # the party that writes it
        keys: [router-20261123-9f3a]         # the writer's key ids allowed to sign it, in
                                             #   rotation order (each valid in its period)
    signatures:                              # the administrators' (registry_signing.py)
      - admin: admin-a
        signature: <base64 Ed25519 signature>

Every scalar is read as text (no YAML 1.1 implicit typing: ``0363`` stays ``"0363"``); ``null``,
``~`` and empty values are absent values. Anchors are resolved; merge keys (``<<``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from broker.trust._encoding import b64decode_strict, require_aware
from broker.trust._files import write_file_atomic
from broker.trust.errors import (
    Reason,
    RegistryError,
    RegistryProblem,
    TrustError,
    UnknownParty,
)
from broker.trust.keys import PartyKeys, check_key_id, check_party_id
from schemas.memo import Memo
from schemas.topics import outbound
from schemas.vocab.roles import PartyRole

REGISTRY_VERSION = 1
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}\Z")


def _digits(count: int, what: str) -> AfterValidator:
    pattern = re.compile(rf"^[0-9]{{{count}}}\Z")

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{what} must be exactly {count} digits")
        return value

    return AfterValidator(check)


def _raw_key(value: str) -> str:
    try:
        b64decode_strict(value, 32)
    except ValueError as exc:
        raise ValueError(f"public key must be standard base64 of 32 raw bytes ({exc})") from None
    return value


def _utc(value: datetime) -> datetime:
    return require_aware(value)


def _topic(value: str) -> str:
    if not _TOPIC_RE.match(value):
        raise ValueError("topic name must be 1-249 of letters, digits, '.', '_' or '-'")
    return value


PartyId = Annotated[str, AfterValidator(check_party_id)]
KeyId = Annotated[str, AfterValidator(check_key_id)]
RawPublicKey = Annotated[str, AfterValidator(_raw_key)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


class KeyEntry(BaseModel):
    """One registered key generation of a party; valid in ``[valid_from, valid_until)``.

    ``instance`` marks the signing key of one instance of a party that runs several processes
    side by side (router instances, issue 19): it signs that instance's deliveries and its own
    audit chain, and is never an encryption target, because senders cannot know which instance
    will read their record (they encrypt for the party's shared key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: KeyId
    signing_public: RawPublicKey
    encryption_public: RawPublicKey
    valid_from: UtcDatetime
    valid_until: UtcDatetime | None = None
    instance: PartyId | None = None
    revoked: UtcDatetime | None = None
    revocation_reason: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")] | None = None

    @model_validator(mode="after")
    def _period(self) -> KeyEntry:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be later than valid_from")
        if self.revocation_reason is not None and self.revoked is None:
            raise ValueError("revocation_reason needs revoked (the time of the revocation)")
        return self

    def valid_at(self, at: datetime) -> bool:
        """Whether the key may be used at ``at``: ``valid_from <= at < valid_until``."""
        return self.status_at(at) == "valid"

    def status_at(
        self, at: datetime
    ) -> Literal["valid", "not-yet-valid", "expired", "revoked"]:
        at = require_aware(at, "at")
        if self.revoked is not None and at >= self.revoked:
            return "revoked"
        if at < self.valid_from:
            return "not-yet-valid"
        if self.valid_until is not None and at >= self.valid_until:
            return "expired"
        return "valid"


class Identifiers(BaseModel):
    """National identifiers of a party's organisation (all optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agb: Annotated[str, _digits(8, "AGB code")] | None = None
    ura: Annotated[str, _digits(8, "URA number")] | None = None
    uzovi: Annotated[str, _digits(4, "UZOVI code")] | None = None
    municipality: Annotated[str, _digits(4, "municipality (gemeente) code")] | None = None
    oin: Annotated[str, _digits(20, "OIN")] | None = None  # DJI and VWS (claims' payer id)


class Party(BaseModel):
    """A party in the chain: its role, identifiers, public keys and outbound topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: PartyId
    name: Annotated[str, Field(min_length=1)]
    role: PartyRole
    region: str | None = None
    identifiers: Identifiers = Field(default_factory=Identifiers)
    keys: Annotated[list[KeyEntry], Field(min_length=1)]
    outbound_topic: Annotated[str, AfterValidator(_topic)] = ""
    processes_for: list[PartyId] = Field(
        default_factory=list,
        description="The parties this one processes for (AVG art. 28): a ZVH for its covenant "
        "partners, who are the controllers of what they bring. It may name them as controller.",
    )
    intake_tokens: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list,
        description="SHA-256 (hex) of each bearer token that lets this party post to its "
        "adapter's HTTP intake (broker/trust/intake_token.py); two during a rotation.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_topic(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("outbound_topic"):
            party_id = data.get("id")
            if isinstance(party_id, str) and party_id:
                return {**data, "outbound_topic": outbound(party_id).name}
        return data

    def key(self, key_id: str) -> KeyEntry | None:
        """The key entry ``key_id``, or ``None``."""
        return next((k for k in self.keys if k.key_id == key_id), None)


def _supported_version(value: int) -> int:
    if value != REGISTRY_VERSION:
        raise ValueError(f"unsupported registry version {value}; this ketenbus reads version 1")
    return value


class AuditChainDecl(BaseModel):
    """One audit chain and the keys allowed to sign it (docs/audit-format.md, signer binding):
    a record of ``chain`` verifies only under one of ``keys``, each a key of ``writer`` and
    valid at the record's time. Listed in rotation order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: PartyId  # same rules as a party id: 2-64 of [a-z0-9-]
    writer: PartyId
    keys: Annotated[list[KeyId], Field(min_length=1)]


class RegistrySignature(BaseModel):
    """One administrator's signature over the registry (broker/trust/registry_signing.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    admin: PartyId  # same rules as a party id
    signature: Annotated[str, Field(min_length=1, max_length=200)]


class RegistryDocument(BaseModel):
    """The registry file as a whole."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[int, AfterValidator(_supported_version)] = REGISTRY_VERSION
    serial: Annotated[int, Field(ge=0)] = 0
    signatures: list[RegistrySignature] = Field(default_factory=list)
    parties: list[Party] = Field(default_factory=list)
    audit_chains: list[AuditChainDecl] = Field(default_factory=list)


class PartyRegistry:
    """Parties by id, with key look-ups at a point in time. Immutable; build a new one to change.

    Party ids and key ids are unique across the registry (``ValueError`` otherwise).
    """

    def __init__(
        self,
        parties: Iterable[Party] = (),
        audit_chains: Iterable[AuditChainDecl] = (),
        *,
        serial: int = 0,
    ) -> None:
        by_id: dict[str, Party] = {}
        key_owner: dict[str, str] = {}
        for party in parties:
            if party.id in by_id:
                raise ValueError(f"party id {party.id!r} appears twice")
            by_id[party.id] = party
            for entry in party.keys:
                owner = key_owner.get(entry.key_id)
                if owner is not None:
                    raise ValueError(
                        f"key id {entry.key_id!r} is used twice (by {owner!r} and {party.id!r})"
                    )
                key_owner[entry.key_id] = party.id
        chains: dict[str, AuditChainDecl] = {}
        for decl in audit_chains:
            if decl.chain in chains:
                raise ValueError(f"audit chain {decl.chain!r} is declared twice")
            if decl.writer not in by_id:
                raise ValueError(f"audit chain {decl.chain!r}: writer {decl.writer!r} is no party")
            for kid in decl.keys:
                if key_owner.get(kid) != decl.writer:
                    raise ValueError(
                        f"audit chain {decl.chain!r}: key {kid!r} is not a key of {decl.writer!r}"
                    )
            chains[decl.chain] = decl
        self._parties = by_id
        self._chains = chains
        self.serial = serial  # raised by every signed change; a lower one is a rollback
        self._signing: Memo[tuple[str, str], Ed25519PublicKey] = Memo()
        self._encryption: Memo[tuple[str, str], X25519PublicKey] = Memo()

    @property
    def parties(self) -> tuple[Party, ...]:
        """All parties, in registry order."""
        return tuple(self._parties.values())

    @property
    def audit_chains(self) -> dict[str, AuditChainDecl]:
        """The declared audit chains by chain id (a copy)."""
        return dict(self._chains)

    def audit_chain_of(self, writer: str) -> AuditChainDecl | None:
        """The (first) audit chain ``writer`` is declared to write, or None."""
        return next(iter(self.audit_chains_of(writer)), None)

    def audit_chain_for_key(self, writer: str, key_id: str) -> AuditChainDecl | None:
        """The chain ``writer`` writes when it signs with ``key_id`` (an instance's own chain),
        else its first chain."""
        chains = self.audit_chains_of(writer)
        return next((d for d in chains if key_id in d.keys), next(iter(chains), None))

    def instances_of(self, party_id: str) -> list[str]:
        """The instance ids declared in ``party_id``'s keys, in registry order."""
        seen = [k.instance for k in self.get(party_id).keys if k.instance is not None]
        return list(dict.fromkeys(seen))

    def audit_chains_of(self, writer: str) -> list[AuditChainDecl]:
        """Every audit chain ``writer`` is declared to write, in declaration order."""
        return [d for d in self._chains.values() if d.writer == writer]

    def with_audit_chain(self, decl: AuditChainDecl) -> PartyRegistry:
        """A new registry with ``decl`` added, or replacing the chain with the same id."""
        chains = dict(self._chains)
        chains[decl.chain] = decl
        return PartyRegistry(self._parties.values(), chains.values(), serial=self.serial)

    def __contains__(self, party_id: object) -> bool:
        return party_id in self._parties

    def __iter__(self) -> Iterator[Party]:
        return iter(self._parties.values())

    def __len__(self) -> int:
        return len(self._parties)

    def get(self, party_id: str) -> Party:
        """The party ``party_id``; ``UnknownParty`` (a ``TrustError`` and ``KeyError``) if none."""
        try:
            return self._parties[party_id]
        except KeyError:
            raise UnknownParty(party_id) from None

    def by_role(self, role: PartyRole) -> list[Party]:
        """Parties with ``role``, in registry order."""
        return [p for p in self._parties.values() if p.role is role]

    def router(self) -> Party:
        """The single party with role ``router`` (``UnknownParty`` if there is not exactly one)."""
        routers = self.by_role(PartyRole.ROUTER)
        if len(routers) != 1:
            raise UnknownParty(
                "router",
                message=f"{len(routers)} parties have role 'router' in the registry, expected 1",
            )
        return routers[0]

    def with_party(self, party: Party) -> PartyRegistry:
        """A new registry with ``party`` added, or replacing the party with the same id."""
        parties = dict(self._parties)
        parties[party.id] = party
        return PartyRegistry(parties.values(), self._chains.values(), serial=self.serial)

    def with_serial(self, serial: int) -> PartyRegistry:
        """The same registry under another serial (a signed change raises it by one)."""
        return PartyRegistry(self._parties.values(), self._chains.values(), serial=serial)

    def key_entry(self, party_id: str, key_id: str) -> KeyEntry:
        """The registered key ``key_id`` of ``party_id``.

        Raises ``UnknownParty`` (reason ``unknown-sender``) or ``TrustError`` ``unknown-key``.
        """
        party = self._parties.get(party_id)
        if party is None:
            raise UnknownParty(party_id, Reason.UNKNOWN_SENDER)
        entry = party.key(key_id)
        if entry is None:
            raise TrustError(
                Reason.UNKNOWN_KEY, f"party {party_id!r} has no registered key {key_id!r}"
            )
        return entry

    def verification_key(self, party_id: str, key_id: str, at: datetime) -> Ed25519PublicKey:
        """The Ed25519 key ``key_id`` of ``party_id`` if it is valid at ``at``.

        Raises ``UnknownParty`` (``unknown-sender``) or ``TrustError`` with reason
        ``unknown-key``, ``key-not-yet-valid`` or ``key-expired``.
        """
        entry = self.key_entry(party_id, key_id)
        check_key_valid(entry, party_id, at)
        return self.signing_public_key(party_id, entry)

    def signing_public_key(self, party_id: str, entry: KeyEntry) -> Ed25519PublicKey:
        """The Ed25519 public key object of ``entry`` (cached), whatever its validity."""
        return self._signing.get_or_make(
            (party_id, entry.key_id), _public_key, Ed25519PublicKey, entry.signing_public
        )

    def encryption_key(self, party_id: str, at: datetime) -> tuple[str, X25519PublicKey]:
        """``(key_id, key)`` of the newest (latest ``valid_from``) key of ``party_id`` valid at
        ``at``; ``UnknownParty`` or ``TrustError`` ``no-valid-key`` otherwise. An instance's
        signing key is never chosen."""
        party = self.get(party_id)
        valid = [k for k in party.keys if k.valid_at(at) and k.instance is None]
        if not valid:
            raise TrustError(
                Reason.NO_VALID_KEY,
                f"party {party_id!r} has no key valid at {require_aware(at).isoformat()}",
            )
        entry = max(valid, key=lambda k: (k.valid_from, k.key_id))
        key = self._encryption.get_or_make(
            (party_id, entry.key_id), _public_key, X25519PublicKey, entry.encryption_public
        )
        return entry.key_id, key


_Public = TypeVar("_Public", Ed25519PublicKey, X25519PublicKey)


def _public_key(kind: type[_Public], text: str) -> _Public:
    return kind.from_public_bytes(b64decode_strict(text, 32))


def check_key_valid(entry: KeyEntry, party_id: str, at: datetime) -> None:
    """Raise ``TrustError`` ``key-not-yet-valid`` or ``key-expired`` unless ``entry`` is valid
    at ``at``."""
    status = entry.status_at(at)
    if status == "not-yet-valid":
        raise TrustError(
            Reason.KEY_NOT_YET_VALID,
            f"key {entry.key_id!r} of {party_id!r} is valid from "
            f"{entry.valid_from.isoformat()}, used at {require_aware(at).isoformat()}",
        )
    if status == "revoked":
        assert entry.revoked is not None
        raise TrustError(
            Reason.KEY_REVOKED,
            f"key {entry.key_id!r} of {party_id!r} was revoked at {entry.revoked.isoformat()}",
        )
    if status == "expired":
        assert entry.valid_until is not None
        raise TrustError(
            Reason.KEY_EXPIRED,
            f"key {entry.key_id!r} of {party_id!r} expired at "
            f"{entry.valid_until.isoformat()}, used at {require_aware(at).isoformat()}",
        )


def registry_entry(
    keys: PartyKeys,
    *,
    role: PartyRole,
    name: str,
    region: str | None = None,
    identifiers: Identifiers | dict[str, str] | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    processes_for: Sequence[str] = (),
) -> Party:
    """A registry ``Party`` holding the public half of ``keys`` (valid from its creation time
    unless ``valid_from`` is given)."""
    public = keys.public()
    entry = KeyEntry(
        key_id=keys.key_id,
        signing_public=public.signing_public,
        encryption_public=public.encryption_public,
        valid_from=valid_from if valid_from is not None else keys.created,
        valid_until=valid_until,
    )
    if identifiers is None:
        identifiers = Identifiers()
    elif isinstance(identifiers, dict):
        identifiers = Identifiers.model_validate(identifiers)
    return Party(
        id=keys.party_id,
        name=name,
        role=role,
        region=region,
        identifiers=identifiers,
        keys=[entry],
        processes_for=list(processes_for),
    )


# --- YAML with line numbers -------------------------------------------------------------------

Loc = tuple[str | int, ...]
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_DEPTH = 32
_MAX_NODES = 200_000


class _Builder:
    """Turns a composed YAML node tree into plain data (text scalars), remembering the mark of
    every location and collecting structural problems (duplicate keys, merge keys...)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[Loc, Mark] = {}
        self.problems: list[RegistryProblem] = []
        self._nodes = 0

    def problem(self, mark: Mark, loc: Loc, rule: str) -> None:
        self.problems.append(
            RegistryProblem(self.file, mark.line + 1, mark.column + 1, render_loc(loc), rule)
        )

    def build(self, node: Node, loc: Loc = ()) -> Any:
        self._nodes += 1
        if len(loc) > _MAX_DEPTH or self._nodes > _MAX_NODES:
            raise _TooBig(node.start_mark)
        self.marks.setdefault(loc, node.start_mark)
        if isinstance(node, ScalarNode):
            return None if node.tag == _NULL_TAG else str(node.value)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.marks[(*loc, index)] = item.start_mark
                items.append(self.build(item, (*loc, index)))
            return items
        if isinstance(node, MappingNode):
            mapping: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    self.problem(key_node.start_mark, loc, "merge keys (<<) are not supported")
                    continue
                if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL_TAG:
                    self.problem(key_node.start_mark, loc, "mapping keys must be plain text")
                    continue
                key = str(key_node.value)
                if key in mapping:
                    first = self.marks[(*loc, key)]
                    self.problem(
                        key_node.start_mark,
                        (*loc, key),
                        f"duplicate key {key!r} (first at line {first.line + 1})",
                    )
                    continue
                self.marks[(*loc, key)] = key_node.start_mark
                mapping[key] = self.build(value_node, (*loc, key))
            return mapping
        raise _TooBig(node.start_mark)  # pragma: no cover - no other node kinds exist


class _TooBig(Exception):
    def __init__(self, mark: Mark) -> None:
        self.mark = mark


def render_loc(loc: Loc) -> str:
    """``("parties", 0, "keys", 1, "key_id")`` -> ``parties[0].keys[1].key_id``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _mark_for(marks: dict[Loc, Mark], loc: Loc) -> Mark:
    while loc not in marks and loc:
        loc = loc[:-1]
    return marks[loc]


def _rule(error: Any) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "missing":
        return f"required field {loc[-1]!r} is missing"
    if kind == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _validation_problems(
    exc: ValidationError, file: str, marks: dict[Loc, Mark], data: Any
) -> list[RegistryProblem]:
    problems = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        mark = _mark_for(marks, loc)
        path = render_loc(loc)
        if len(loc) >= 2 and loc[0] == "parties" and isinstance(loc[1], int):
            try:
                party_id = data["parties"][loc[1]]["id"]
            except (KeyError, IndexError, TypeError):
                party_id = None
            if isinstance(party_id, str):
                path = f"{path} (party {party_id})"
        problems.append(RegistryProblem(file, mark.line + 1, mark.column + 1, path, _rule(error)))
    return problems


def _uniqueness_problems(
    document: RegistryDocument, file: str, marks: dict[Loc, Mark]
) -> list[RegistryProblem]:
    problems: list[RegistryProblem] = []
    party_at: dict[str, int] = {}
    key_at: dict[str, tuple[int, int]] = {}

    def add(loc: Loc, rule: str) -> None:
        mark = _mark_for(marks, loc)
        problems.append(
            RegistryProblem(file, mark.line + 1, mark.column + 1, render_loc(loc), rule)
        )

    for i, party in enumerate(document.parties):
        if party.id in party_at:
            first = _mark_for(marks, ("parties", party_at[party.id], "id"))
            add(
                ("parties", i, "id"),
                f"party id {party.id!r} is not unique (first at line {first.line + 1})",
            )
        else:
            party_at[party.id] = i
        for j, entry in enumerate(party.keys):
            if entry.key_id in key_at:
                pi, kj = key_at[entry.key_id]
                first = _mark_for(marks, ("parties", pi, "keys", kj, "key_id"))
                add(
                    ("parties", i, "keys", j, "key_id"),
                    f"key id {entry.key_id!r} is not unique (first at line {first.line + 1})",
                )
            else:
                key_at[entry.key_id] = (i, j)
    known = {p.id for p in document.parties}
    for i, party in enumerate(document.parties):
        for j, partner in enumerate(party.processes_for):
            if partner not in known or partner == party.id:
                add(
                    ("parties", i, "processes_for", j),
                    f"processes_for {partner!r} is not another party of this registry",
                )
    return problems


def _chain_problems(
    document: RegistryDocument, file: str, marks: dict[Loc, Mark]
) -> list[RegistryProblem]:
    """Each audit chain once, written by a registered party, signed only by that party's keys."""
    problems: list[RegistryProblem] = []
    keys_of = {p.id: {k.key_id for k in p.keys} for p in document.parties}
    seen: set[str] = set()

    def add(loc: Loc, rule: str) -> None:
        mark = _mark_for(marks, loc)
        problems.append(
            RegistryProblem(file, mark.line + 1, mark.column + 1, render_loc(loc), rule)
        )

    for i, decl in enumerate(document.audit_chains):
        if decl.chain in seen:
            add(("audit_chains", i, "chain"), f"audit chain {decl.chain!r} is declared twice")
        seen.add(decl.chain)
        if decl.writer not in keys_of:
            add(("audit_chains", i, "writer"), f"writer {decl.writer!r} is not a party here")
            continue
        for j, kid in enumerate(decl.keys):
            if kid not in keys_of[decl.writer]:
                add(
                    ("audit_chains", i, "keys", j),
                    f"key {kid!r} is not a key of {decl.writer!r}: only the writer's own keys "
                    "may sign its chain",
                )
    return problems


def parse_registry(text: str, file: str = "<registry>") -> PartyRegistry:
    """Parse registry YAML; ``RegistryError`` lists every problem with ``file:line:column``.
    Signatures are read but not checked here: components load through
    ``registry_signing.load_signed_registry``."""
    return parse_registry_document(text, file)[0]


def read_registry_tree(text: str, file: str = "<registry>") -> Any:
    """The registry YAML as plain data, every scalar as text (what administrators sign)."""
    return _read_tree(text, file)[0]


def _read_tree(text: str, file: str) -> tuple[Any, _Builder]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        rule = f"YAML syntax: {exc.problem or exc.context}"
        raise RegistryError([RegistryProblem(file, line, column, "", rule)]) from None
    if node is None:
        raise RegistryError([RegistryProblem(file, 1, 1, "", "the registry file is empty")])
    builder = _Builder(file)
    try:
        data = builder.build(node)
    except _TooBig as exc:
        problem = RegistryProblem(
            file, exc.mark.line + 1, exc.mark.column + 1, "", "document too deep or too large"
        )
        raise RegistryError([problem]) from None
    if builder.problems:
        raise RegistryError(builder.problems)
    return data, builder


def parse_registry_document(
    text: str, file: str = "<registry>"
) -> tuple[PartyRegistry, RegistryDocument]:
    """The registry and its document (serial, signatures) from registry YAML."""
    data, builder = _read_tree(text, file)
    try:
        document = RegistryDocument.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(_validation_problems(exc, file, builder.marks, data)) from None
    problems = _uniqueness_problems(document, file, builder.marks)
    problems += _chain_problems(document, file, builder.marks)
    if problems:
        raise RegistryError(problems)
    registry = PartyRegistry(document.parties, document.audit_chains, serial=document.serial)
    return registry, document


def load_registry(path: Path) -> PartyRegistry:
    """Load a registry YAML file (see the module docstring for its format and rules), without
    checking its signatures (tools and tests; components use ``load_signed_registry``)."""
    return parse_registry(read_registry_text(path), str(path))


def read_registry_text(path: Path) -> str:
    """The text of a registry file; ``RegistryError`` when it is missing or not UTF-8."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError([RegistryProblem(str(path), 1, 1, "", "file not found")]) from None
    except UnicodeDecodeError:
        raise RegistryError([RegistryProblem(str(path), 1, 1, "", "not UTF-8 text")]) from None
    return text


def _party_document(party: Party) -> dict[str, Any]:
    data = party.model_dump(mode="json", exclude_none=True)
    if not data.get("identifiers"):
        data.pop("identifiers", None)
    if not data.get("intake_tokens"):
        data.pop("intake_tokens", None)
    if data.get("outbound_topic") == outbound(party.id).name:
        data.pop("outbound_topic")
    return data


def registry_yaml(registry: PartyRegistry) -> str:
    """The registry as YAML text, in the format ``load_registry`` reads."""
    document: dict[str, Any] = {"version": REGISTRY_VERSION}
    if registry.serial:
        document["serial"] = registry.serial
    document["parties"] = [_party_document(p) for p in registry.parties]
    if registry.audit_chains:
        document["audit_chains"] = [
            d.model_dump(mode="json") for d in registry.audit_chains.values()
        ]
    header = "# ketenbus party registry: public keys only (see docs/trust.md).\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def dump_registry(registry: PartyRegistry, path: Path) -> None:
    """Write the registry to ``path`` atomically (public data; the file keeps its mode)."""
    write_file_atomic(Path(path), registry_yaml(registry).encode("utf-8"))
