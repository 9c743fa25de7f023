"""A deployment: the party registry, this machine's private keys and pseudonym secrets.

In production each party holds only its own private keys and the router holds its own; the
registry (public keys, roles, regions) is shared. ``create_local`` builds a complete local
deployment for ``ketenbus up`` and the tests: every key and secret is generated at run time
under the state directory, never committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from broker.policy import ConsentView, Policy
from broker.router.pipeline import RouterState
from broker.trust import (
    AuditChainDecl,
    Keyring,
    PartyRegistry,
    Pseudonymiser,
    ReplayGuard,
    dump_registry,
    generate_party_keys,
    load_or_create_secret,
    load_registry,
    registry_entry,
    write_party_keys,
)
from broker.trust.party import PartyClient
from schemas.vocab import PartyRole

REGISTRY_FILE = "registry.yaml"
KEYS_DIR = "keys"
SECRETS_DIR = "secrets"


@dataclass(frozen=True)
class LocalParty:
    id: str
    name: str
    role: PartyRole
    region: str | None = None
    identifiers: dict[str, str] | None = None
    processes_for: tuple[str, ...] = ()  # the controllers it processes for (a ZVH's partners)


@dataclass
class Deployment:
    registry: PartyRegistry
    keys_dir: Path
    secrets_dir: Path

    @property
    def router_id(self) -> str:
        return self.registry.router().id

    def keyring(self, party_id: str) -> Keyring:
        return Keyring.load(self.keys_dir, party_id)

    def pseudonymiser(self, party_id: str) -> Pseudonymiser:
        """The party's own pseudonym secret (the router's is the master for all recipients)."""
        return Pseudonymiser(load_or_create_secret(self.secrets_dir / f"{party_id}.secret"))

    def router_state(
        self,
        policy: Policy,
        *,
        replay_window: timedelta = timedelta(days=1),
        full_validation: bool = False,
    ) -> RouterState:
        """The router's starting state: its keys, the registry, the policy, an empty consent
        view (rebuilt from the consent topic at start) and an empty replay guard."""
        ring = self.keyring(self.router_id)
        return RouterState(
            registry=self.registry,
            keys=ring.current,
            keyring=ring,
            pseudonyms=self.pseudonymiser(self.router_id),
            policy=policy,
            consents=ConsentView(),
            replay=ReplayGuard(window=replay_window),
            full_validation=full_validation,
        )

    def party_client(self, party_id: str) -> PartyClient:
        ring = self.keyring(party_id)
        return PartyClient(
            party_id=party_id,
            keys=ring.current,
            keyring=ring,
            registry=self.registry,
            pseudonyms=self.pseudonymiser(party_id),
            router_id=self.router_id,
        )


def load(registry_file: Path, keys_dir: Path, secrets_dir: Path) -> Deployment:
    return Deployment(load_registry(registry_file), keys_dir, secrets_dir)


def create_local(state_dir: Path, parties: list[LocalParty]) -> Deployment:
    """Generate keys for the router and every party (once) and write the registry."""
    keys_dir = state_dir / KEYS_DIR
    secrets_dir = state_dir / SECRETS_DIR
    registry_file = state_dir / REGISTRY_FILE
    for d in (state_dir, keys_dir, secrets_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    all_parties = [LocalParty("router", "ketenbus router", PartyRole.ROUTER), *parties]
    entries = []
    for p in all_parties:
        try:
            ring = Keyring.load(keys_dir, p.id)
            keys = ring.current
        except Exception:
            keys = generate_party_keys(p.id)
            write_party_keys(keys, keys_dir)
        entries.append(
            registry_entry(
                keys,
                role=p.role,
                name=p.name,
                region=p.region,
                identifiers=p.identifiers,
                processes_for=p.processes_for,
            )
        )
    # every party writes its own audit chain (the router its decisions, an adapter its
    # refusals, the web app its searches), signed only by its own keys (signer binding)
    # The chain is named after the key it starts with: unique even when several deployments
    # share one broker (the tests), and kept when the keys rotate.
    chains = [
        AuditChainDecl(chain=e.keys[0].key_id, writer=e.id, keys=[k.key_id for k in e.keys])
        for e in entries
    ]
    # the compliance role searches from the web app and from `ketenbus audit query --bsn`: two
    # writers, so two chains (one chain has one writer, or it forks)
    chains += [
        AuditChainDecl(
            chain=f"{e.keys[0].key_id}-cli", writer=e.id, keys=[k.key_id for k in e.keys]
        )
        for e in entries
        if e.role is PartyRole.CAPACITY_DASHBOARD
    ]
    registry = PartyRegistry(entries, chains)
    dump_registry(registry, registry_file)
    return Deployment(load_registry(registry_file), keys_dir, secrets_dir)
