"""A deployment: the party registry, this machine's private keys and pseudonym secrets.

In production each party holds only its own private keys and the router holds its own; the
registry (public keys, roles, regions) is shared, signed by the registry's administrators and
verified against the trust anchor before it is used (docs/trust.md §2.1). ``create_local`` builds
a complete local deployment for ``ketenbus up`` and the tests: every key and secret, the
administrator's key included, is generated at run time under the state directory, never
committed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.audit.channels import ChannelKeys
from broker.audit.keystore import OWNER_SECRET_FILE, TopicKeyStore, kek_dir, open_key_store
from broker.component.registry_watch import RegistryWatch
from broker.config import Settings
from broker.policy import ConsentView, Policy
from broker.router.pipeline import RouterState
from broker.trust import (
    AuditChainDecl,
    Keyring,
    PartyRegistry,
    Pseudonymiser,
    ReplayGuard,
    generate_party_keys,
    load_or_create_secret,
    load_registry,
    registry_entry,
    write_party_keys,
)
from broker.trust.datakeys import DataKeyStore, KekRing
from broker.trust.errors import KeyFileError, TrustConfigError
from broker.trust.intake_token import (
    load_or_create_token,
    read_token,
    token_digest,
    token_file,
)
from broker.trust.keys import PartyKeys
from broker.trust.party import PartyClient
from broker.trust.registry import registry_yaml
from broker.trust.registry_signing import (
    RegistryAnchor,
    generate_admin_key,
    load_admin_key,
    load_signed_registry,
    write_admin_key,
    write_anchor,
    write_signed_registry,
)
from schemas import topics
from schemas.vocab import PartyRole

REGISTRY_FILE = "registry.yaml"
ANCHOR_FILE = "registry-anchor.yaml"
ADMIN_DIR = "admin"  # a local deployment's run-time registry administrator (demo and tests)
LOCAL_ADMIN = "local-admin"
KEYS_DIR = "keys"
SECRETS_DIR = "secrets"
INSTANCES_DIR = "instances"  # under KEYS_DIR: one folder of signing keys per router instance
ERASE_CHAIN_SUFFIX = "-erase"


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
    registry_file: Path | None = None  # where the signed registry is followed from
    anchor_file: Path | None = None

    def watch(self, settings: Settings) -> RegistryWatch | None:
        """A watch on the signed registry file (None when this deployment has none): every
        component of this process subscribes to it, and later ones start from what it holds."""
        if self.registry_file is None or self.anchor_file is None:
            return None
        watch = RegistryWatch(
            self.registry_file,
            self.anchor_file,
            self.registry,
            interval=settings.registry_poll_seconds,
        )
        watch.subscribe(self._use)
        return watch

    def _use(self, registry: PartyRegistry) -> None:
        self.registry = registry

    def follow(self, watch: RegistryWatch | None, client: PartyClient) -> None:
        """Let ``client`` follow ``watch``: the new registry, and its keyring read again from the
        keys directory (where a rotation put the party's new private key)."""
        if watch is None:
            return

        def apply(registry: PartyRegistry) -> None:
            try:
                ring = self.keyring(client.party_id)
            except (KeyFileError, TrustConfigError):
                ring = None
            client.use_registry(registry, ring, datetime.now(UTC))

        watch.subscribe(apply)

    @property
    def router_id(self) -> str:
        return self.registry.router().id

    def keyring(self, party_id: str) -> Keyring:
        return Keyring.load(self.keys_dir, party_id)

    def intake_token(self, party_id: str) -> str:
        """The bearer token of ``party_id``'s HTTP intake (made by ``create_local``)."""
        return read_token(token_file(self.secrets_dir, party_id))

    def pseudonymiser(self, party_id: str) -> Pseudonymiser:
        """The party's own pseudonym secret (the router's is the master for all recipients)."""
        return Pseudonymiser(load_or_create_secret(self.secrets_dir / f"{party_id}.secret"))

    def instance_keyring(self, instance: str) -> Keyring:
        """The private signing key(s) of one router instance (registry keys marked with it)."""
        declared = self.registry.instances_of(self.router_id)
        if instance not in declared:
            raise ValueError(
                f"router instance {instance!r} is not in the registry (declared: "
                f"{', '.join(declared) or 'none'}); add it with its own key first"
            )
        return Keyring.load(self.keys_dir / INSTANCES_DIR / instance, self.router_id)

    def router_state(
        self,
        policy: Policy,
        *,
        replay_window: timedelta = timedelta(days=1),
        full_validation: bool = False,
        instance: str | None = None,
        settings: Settings | None = None,
    ) -> RouterState:
        """The router's starting state: its keys, the registry, the policy, an empty consent
        view (rebuilt from the consent topic at start) and an empty replay guard; with
        ``settings``, the key store too (rebuilt from its topic at start: docs/erasure.md).

        An ``instance`` signs with its own key, so it writes its own audit chain (two routers
        on one chain fork it); it decrypts with the router's shared keys, which senders use."""
        ring = self.keyring(self.router_id)
        signing = ring.current
        if instance is not None:
            own = self.instance_keyring(instance)
            signing = own.current
            ring = Keyring([*ring, *own])
        datakeys = self.key_store(settings, write=True) if settings is not None else None
        channels = self.channel_keys(settings, signing)
        return RouterState(
            registry=self.registry,
            keys=signing,
            keyring=ring,
            pseudonyms=self.pseudonymiser(self.router_id),
            policy=policy,
            consents=ConsentView(),
            replay=ReplayGuard(window=replay_window),
            full_validation=full_validation,
            datakeys=datakeys,
            channels=channels,
        )

    def reader_key_store(self, settings: Settings) -> TopicKeyStore | None:
        """The key store read-only, when this machine holds its KEK files (the compliance
        view beside the router); None elsewhere (person-sealed detail then stays sealed)."""
        if not kek_dir(self.keys_dir, self.router_id).is_dir():
            return None
        return self.key_store(settings)

    def key_store(
        self, settings: Settings, *, write: bool = False, party: str | None = None
    ) -> TopicKeyStore:
        """The per-person data-key store of the router or of ``party`` (its journal), KEK files
        under the keys directory; ``write`` with the writer's keys (the writer itself,
        ``ketenbus erase``), else read-only (an auditor)."""
        writer = party or self.router_id
        keys = self.keyring(writer).current if write else None
        return open_key_store(
            settings,
            self.registry,
            self.keys_dir,
            self.secrets_dir,
            writer=writer,
            keys=keys,
            topic=topics.KEY_STORE.name if party is None else topics.party_key_store(party).name,
            # a party's store is also its channel with the router (in.* and out.* layers)
            co_writers=() if party is None else (self.router_id,),
        )

    def channel_store(self, party: str, keys: PartyKeys) -> DataKeyStore | None:
        """``party``'s channel key store (its ``keystore.<party>``: the data layer inside its
        ``in.*`` and ``out.<party>`` envelopes), written as ``keys``' party (the party or the
        router); None when this machine does not hold the party's KEK files."""
        folder = kek_dir(self.keys_dir, party)
        if not folder.is_dir():
            return None
        return DataKeyStore(
            KekRing(folder),
            self.registry,
            writer=party,
            keys=keys,
            owner_secret=load_or_create_secret(
                self.secrets_dir / OWNER_SECRET_FILE.format(writer=party)
            ),
            co_writers=(self.router_id,),
        )

    def channel_keys(self, settings: Settings | None, keys: PartyKeys) -> ChannelKeys:
        """The router's side of every party's channel store whose KEK it holds (``settings``
        None: in-process, not read from or followed on Kafka)."""
        stores = {}
        for p in self.registry.parties:
            if p.id == self.router_id:
                continue
            store = self.channel_store(p.id, keys)
            if store is not None:
                stores[p.id] = store
        return ChannelKeys(settings, stores)

    def party_client(self, party_id: str) -> PartyClient:
        """The party's side of sealing; with its channel store when its KEK files are here
        (what it sends about a person is then under the person's channel key)."""
        ring = self.keyring(party_id)
        channel = None if party_id == self.router_id else self.channel_store(party_id, ring.current)
        return PartyClient(
            party_id=party_id,
            keys=ring.current,
            keyring=ring,
            registry=self.registry,
            pseudonyms=self.pseudonymiser(party_id),
            router_id=self.router_id,
            channel=channel,
        )


def router_instance_ids(count: int) -> tuple[str, ...]:
    """Instance ids for ``count`` routers side by side; none for a single router (it signs with
    the router's own key and chain, as before instances existed)."""
    return () if count <= 1 else tuple(f"router-{i}" for i in range(1, count + 1))


def anchor_file_of(settings: Settings) -> Path:
    """The trust anchor this process pins (``KETENBUS_REGISTRY_ANCHOR_FILE``, else beside the
    state)."""
    return settings.registry_anchor_file or Path(settings.state_dir) / ANCHOR_FILE


def load(
    registry_file: Path, keys_dir: Path, secrets_dir: Path, anchor_file: Path | None = None
) -> Deployment:
    """The deployment from a registry signed by the administrators pinned in ``anchor_file``
    (default: ``registry-anchor.yaml`` beside the registry); ``TrustConfigError`` otherwise."""
    anchor = anchor_file or Path(registry_file).parent / ANCHOR_FILE
    registry = load_signed_registry(registry_file, anchor)
    return Deployment(registry, keys_dir, secrets_dir, Path(registry_file), Path(anchor))


def local_admin(state_dir: Path) -> RegistryAnchor:
    """The local deployment's administrator (made at run time, once) pinned as its anchor."""
    folder = state_dir / ADMIN_DIR
    path = folder / f"{LOCAL_ADMIN}.admin.json"
    if path.exists():
        key = load_admin_key(path)
    else:
        key = generate_admin_key(LOCAL_ADMIN)
        write_admin_key(key, folder)
    anchor = RegistryAnchor({key.admin_id: key.public}, 1)
    write_anchor(anchor, state_dir / ANCHOR_FILE)
    return anchor


def local_admin_key_file(state_dir: Path) -> Path:
    return state_dir / ADMIN_DIR / f"{LOCAL_ADMIN}.admin.json"


def create_local(
    state_dir: Path, parties: list[LocalParty], *, router_instances: tuple[str, ...] = ()
) -> Deployment:
    """Generate keys for the router and every party (once) and write the registry.

    Each of ``router_instances`` gets a signing key of its own (registry key marked with the
    instance) and an audit chain of its own, so routers side by side never fork a chain."""
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
        if p.role is PartyRole.ZVH:  # its HTTP intake's bearer token (docs/adapters/zvh.md)
            token = load_or_create_token(token_file(secrets_dir, p.id))
            entries[-1] = entries[-1].model_copy(update={"intake_tokens": [token_digest(token)]})
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
    # `ketenbus erase` audits an erasure on the writer's own second chain: it runs beside the
    # router instances (or the party's adapter), and one chain has one writer (docs/erasure.md)
    chains += [
        AuditChainDecl(
            chain=f"{e.keys[0].key_id}{ERASE_CHAIN_SUFFIX}",
            writer=e.id,
            keys=[k.key_id for k in e.keys],
        )
        for e in entries
    ]
    if router_instances:
        (keys_dir / INSTANCES_DIR).mkdir(mode=0o700, exist_ok=True)
    for instance in router_instances:
        router = entries[0]
        folder = keys_dir / INSTANCES_DIR / instance
        try:
            own = Keyring.load(folder, router.id).current
        except Exception:
            own = generate_party_keys(router.id, f"{router.keys[0].key_id}-{instance}")
            write_party_keys(own, folder)
        entry = registry_entry(own, role=router.role, name=router.name).keys[0]
        entries[0] = router.model_copy(
            update={"keys": [*router.keys, entry.model_copy(update={"instance": instance})]}
        )
        chains.append(AuditChainDecl(chain=own.key_id, writer=router.id, keys=[own.key_id]))
    # every writer's first KEK made here, once: the router and a party both write a channel
    # store, and two processes making generation 1 side by side would overwrite each other's
    for e in entries:
        kek = KekRing(kek_dir(keys_dir, e.id))
        if not kek.generations():
            kek.create(1)
        load_or_create_secret(secrets_dir / OWNER_SECRET_FILE.format(writer=e.id))
    serial = 1
    local_admin(state_dir)
    if registry_file.exists():  # a restart: a newer serial, so running readers take it
        with contextlib.suppress(TrustConfigError):
            old = load_registry(registry_file)
            same = PartyRegistry(entries, chains, serial=old.serial)
            if registry_yaml(same) == registry_yaml(old):  # nothing changed: keep it as signed
                with contextlib.suppress(TrustConfigError):
                    return load(registry_file, keys_dir, secrets_dir, state_dir / ANCHOR_FILE)
            serial = old.serial + 1
    registry = PartyRegistry(entries, chains, serial=serial)
    write_signed_registry(
        registry, [load_admin_key(local_admin_key_file(state_dir))], registry_file
    )
    return load(registry_file, keys_dir, secrets_dir, state_dir / ANCHOR_FILE)
