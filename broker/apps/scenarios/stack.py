"""The local stack: router, ZVH, provider, payer and municipality adapters in one process, each
with its own Kafka clients — the same components the compose file runs as separate containers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

from adapters.common.runtime import AdapterEvent
from adapters.municipality.service import MunicipalityAdapter
from adapters.payer.formats import FORMATS
from adapters.payer.formats.fz import care_notice
from adapters.payer.formats.preconditions import read_preconditions
from adapters.payer.service import PayerAdapter
from adapters.provider.service import ProviderAdapter
from adapters.zvh.auth import IntakeAuth, WatchedRegistry
from adapters.zvh.http import create_app
from adapters.zvh.service import ZvhAdapter
from adapters.zvh.tls import server_config
from broker.apps.deployment import REGISTRY_FILE, Deployment
from broker.component.registry_watch import RegistryWatch
from broker.config import Settings
from broker.kafka import ensure_topics, port_is_free
from broker.router.facts import Fact
from broker.router.service import RouterService
from schemas import topics
from schemas.vocab import PartyRole

log = logging.getLogger(__name__)


class HttpPortInUse(RuntimeError):
    """The ZVH HTTP endpoint's port is taken."""


@dataclass
class StackOptions:
    data_dir: Path
    http_port: int | None = None  # ZVH HTTP endpoint of the first ZVH; None: no HTTP; 0: free
    session_timeout_ms: int | None = None  # None: the settings', else the broker kind's
    poll_interval: float = 0.5
    on_fact: Callable[[Fact], None] | None = None
    on_event: Callable[[AdapterEvent], None] | None = None
    adapters: list[str] | None = None  # party ids to run adapters for; None = all ZVH/providers
    clock: Callable[[], datetime] | None = None  # business time of claims desks and payers
    tick_interval: float = 30.0  # how often a provider's claims desk looks for due work
    # Each component's own Kafka settings (its client certificate, SASL user): one identity per
    # party, as on a production Kafka with ACLs. None: every component uses the stack's.
    settings_for: Callable[[str], Settings] | None = None


@dataclass
class LocalStack:
    settings: Settings
    deployment: Deployment
    policy: Any
    options: StackOptions
    router: RouterService | None = None
    routers: list[RouterService] = field(default_factory=list)  # every instance, router first
    zvh: dict[str, ZvhAdapter] = field(default_factory=dict)
    providers: dict[str, ProviderAdapter] = field(default_factory=dict)
    payers: dict[str, PayerAdapter] = field(default_factory=dict)
    http_url: str | None = None
    http_party: str | None = None
    http_token: str | None = None  # the HTTP party's intake token (zvh_http_auth = "token")
    registry_watch: RegistryWatch | None = None
    _server: uvicorn.Server | None = None
    _server_task: asyncio.Task[None] | None = None

    @property
    def http_headers(self) -> dict[str, str]:
        """What a client of the ZVH HTTP endpoint sends to be let in."""
        return {"Authorization": f"Bearer {self.http_token}"} if self.http_token else {}

    def intake_auth(self, party_id: str) -> IntakeAuth | None:
        """The intake check of ``party_id``'s HTTP endpoint, against the registry file as it
        is at each request (so a removal or revocation bites at once); None when the
        ``zvh_http_auth`` setting is ``none``."""
        if self.settings.zvh_http_auth == "none":
            return None
        path = self.settings.registry_file or self.settings.state_dir / REGISTRY_FILE
        registry = WatchedRegistry(path) if path.exists() else lambda: self.deployment.registry
        return IntakeAuth(party_id, registry, self.policy)

    def settings_of(self, party_id: str) -> Settings:
        """The Kafka settings the component of ``party_id`` connects with."""
        if self.options.settings_for is None:
            return self.settings
        return self.options.settings_for(party_id)

    def inbox(self, party_id: str) -> Path:
        return self.options.data_dir / party_id / "inbox"

    def outbox(self, party_id: str) -> Path:
        return self.options.data_dir / party_id / "outbox"

    async def start(self) -> None:
        port = self.options.http_port
        if port and not port_is_free(port):  # fail before anything else starts
            raise HttpPortInUse(
                f"port {port} on 127.0.0.1 is in use: choose another with --http-port (0: any free)"
            )
        reg = self.deployment.registry
        router_settings = self.settings_of(reg.router().id)
        await ensure_topics(router_settings, topics.catalogue([p.id for p in reg.parties]))
        # One router, or every instance the registry declares, side by side in one group.
        instances: list[str | None] = [*reg.instances_of(reg.router().id)] or [None]
        self.routers = [
            RouterService(
                router_settings,
                self.deployment.router_state(
                    self.policy,
                    full_validation=self.settings.router_full_validation,
                    instance=instance,
                    settings=router_settings,
                ),
                on_fact=self.options.on_fact,
                session_timeout_ms=self.options.session_timeout_ms,
            )
            for instance in instances
        ]
        self.router = self.routers[0]
        await asyncio.gather(*(r.start() for r in self.routers))
        wanted = self.options.adapters
        for p in reg.parties:
            if wanted is not None and p.id not in wanted:
                continue
            if p.role is PartyRole.ZVH:
                self.zvh[p.id] = ZvhAdapter(
                    self.settings_of(p.id),
                    self.deployment.party_client(p.id),
                    self.inbox(p.id),
                    self.outbox(p.id),
                    on_event=self.options.on_event,
                    poll_interval=self.options.poll_interval,
                    session_timeout_ms=self.options.session_timeout_ms,
                )
            elif p.role in (PartyRole.COORDINATING_PROVIDER, PartyRole.EXECUTING_PROVIDER):
                self.providers[p.id] = ProviderAdapter(
                    self.settings_of(p.id),
                    self.deployment.party_client(p.id),
                    self.outbox(p.id),
                    inbox_dir=self.inbox(p.id),
                    on_event=self.options.on_event,
                    session_timeout_ms=self.options.session_timeout_ms,
                    poll_interval=self.options.poll_interval,
                    tick_interval=self.options.tick_interval,
                    clock=self.options.clock,
                    datakeys=self.deployment.key_store(
                        self.settings_of(p.id), write=True, party=p.id
                    ),
                    preconditions=read_preconditions,
                    care_notices=care_notice,
                )
            elif p.role in FORMATS:
                # A municipality pays Wmo claims and takes its part in the registration phase.
                kind = MunicipalityAdapter if p.role is PartyRole.MUNICIPALITY else PayerAdapter
                self.payers[p.id] = kind(
                    self.settings_of(p.id),
                    self.deployment.party_client(p.id),
                    self.inbox(p.id),
                    self.outbox(p.id),
                    on_event=self.options.on_event,
                    poll_interval=self.options.poll_interval,
                    session_timeout_ms=self.options.session_timeout_ms,
                    clock=self.options.clock,
                )
        # Each adapter waits for its own consumer-group assignment: start them side by side.
        await asyncio.gather(
            *(z.start() for z in self.zvh.values()),
            *(a.start() for a in self.providers.values()),
            *(a.start() for a in self.payers.values()),
        )
        if self.options.http_port is not None and self.zvh:
            await self._start_http(next(iter(self.zvh.values())), self.options.http_port)
        self._follow_registry()

    def _follow_registry(self) -> None:
        """Every component of the stack follows the signed registry file (issue 21): a rotation
        or revocation applies within ``registry_poll_seconds``, with no restart."""
        self.registry_watch = self.deployment.watch(self.settings)
        if self.registry_watch is None:
            return
        for r in self.routers:
            self.registry_watch.subscribe(r.use_registry)
        for a in (*self.zvh.values(), *self.providers.values(), *self.payers.values()):
            self.deployment.follow(self.registry_watch, a.client)
        self.registry_watch.start()

    async def _start_http(self, adapter: ZvhAdapter, port: int) -> None:
        auth = self.intake_auth(adapter.party_id)
        if auth is not None:
            self.http_token = self.deployment.intake_token(adapter.party_id)
        config = server_config(
            create_app(adapter, auth),
            self.settings,
            "127.0.0.1",
            port,
            log_level="warning",
            lifespan="off",
        )
        server = uvicorn.Server(config)
        self._server = server
        self._server_task = asyncio.create_task(server.serve(), name="zvh-http")
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise RuntimeError(f"the ZVH HTTP endpoint did not start on 127.0.0.1:{port}")
        bound = server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self.settings.zvh_http_tls_certfile else "http"
        self.http_url = f"{scheme}://127.0.0.1:{bound}"
        self.http_party = adapter.party_id

    async def stop(self) -> None:
        if self.registry_watch is not None:
            await self.registry_watch.stop()
        if self._server is not None:
            self._server.should_exit = True
            if self._server_task is not None:
                await asyncio.gather(self._server_task, return_exceptions=True)
        for z in self.zvh.values():
            await z.stop()
        for prov in self.providers.values():
            await prov.stop()
        for payer in self.payers.values():
            await payer.stop()
        # every instance, and ``router`` too: a test may have replaced it (a restart)
        routers = list(self.routers)
        if self.router is not None and all(r is not self.router for r in routers):
            routers.append(self.router)
        for r in routers:
            await r.stop()
