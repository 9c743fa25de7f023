"""Trust on the messages themselves: who sent it, who may read it, and about whom (pseudonymously).

Kafka operators and any consumer with topic read access learn nothing about a person, and no party
can send in another's name, whatever Kafka security is in place:

- ``keys``      -- a party's own Ed25519 + X25519 key pairs, key files, the keyring for rotation;
- ``registry``  -- the public party registry (roles, identifiers, public keys with validity);
- ``envelope``  -- ``seal`` / ``sign_batch`` / ``open_sealed``: encrypt for the one reader,
  sign by the sender (one message or a batch);
- ``sealing``   -- ``seal_for``: the one way a party or the router seals a payload for a recipient;
- ``pseudonym`` -- per-domain, keyed, one-way person pseudonyms for Kafka keys;
- ``replay``    -- de-duplication and freshness of message ids;
- ``errors``    -- ``TrustError`` and its stable ``reason`` codes.

The formats are specified in ``docs/trust.md``.
"""

from broker.trust.envelope import (
    CONTENT_TYPE,
    EnvelopeMeta,
    Opened,
    Sealed,
    canonical_header_bytes,
    open_sealed,
    read_envelope,
    reset_key_caches,
    seal,
    seal_to,
    sign_batch,
    verify_only,
)
from broker.trust.errors import (
    KeyFileError,
    Reason,
    RegistryError,
    TrustConfigError,
    TrustError,
    UnknownParty,
)
from broker.trust.keys import (
    Keyring,
    PartyKeys,
    check_key_id,
    check_party_id,
    generate_party_keys,
    load_party_keys,
    write_party_keys,
)
from broker.trust.pseudonym import (
    Pseudonymiser,
    generate_secret,
    is_pseudonym,
    is_valid_bsn,
    load_or_create_secret,
)
from broker.trust.registry import (
    AuditChainDecl,
    Identifiers,
    KeyEntry,
    Party,
    PartyRegistry,
    dump_registry,
    load_registry,
    parse_registry,
    registry_entry,
)
from broker.trust.replay import ReplayGuard, Verdict
from broker.trust.sealing import seal_for

__all__ = [
    "CONTENT_TYPE",
    "AuditChainDecl",
    "EnvelopeMeta",
    "Identifiers",
    "KeyEntry",
    "KeyFileError",
    "Keyring",
    "Opened",
    "Party",
    "PartyKeys",
    "PartyRegistry",
    "Pseudonymiser",
    "Reason",
    "RegistryError",
    "ReplayGuard",
    "Sealed",
    "TrustConfigError",
    "TrustError",
    "UnknownParty",
    "Verdict",
    "canonical_header_bytes",
    "check_key_id",
    "check_party_id",
    "dump_registry",
    "generate_party_keys",
    "generate_secret",
    "is_pseudonym",
    "is_valid_bsn",
    "load_or_create_secret",
    "load_party_keys",
    "load_registry",
    "open_sealed",
    "parse_registry",
    "read_envelope",
    "registry_entry",
    "reset_key_caches",
    "seal",
    "seal_for",
    "seal_to",
    "sign_batch",
    "verify_only",
    "write_party_keys",
]
