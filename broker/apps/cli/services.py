"""``ketenbus router`` and ``ketenbus adapter``: one component per process, as in production
(see ``docker/compose.yaml``). They need a running Kafka (``KETENBUS_BOOTSTRAP_SERVERS``), the
party registry and this component's own keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from broker.apps.cli.common import err, load_or_exit
from broker.config import Settings

if TYPE_CHECKING:  # imported at run time inside the commands: `ketenbus --help` stays quick
    from broker.apps.deployment import Deployment


class Component(Protocol):
    """The router or an adapter: started, then stopped at a signal."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def _deployment(settings: Settings) -> Deployment:
    from broker.apps import deployment

    state = Path(settings.state_dir)
    registry = settings.registry_file or state / deployment.REGISTRY_FILE
    keys = settings.keys_dir or state / deployment.KEYS_DIR
    if not registry.exists():
        err.print(
            f"[bold red]no party registry at {registry}[/]: set KETENBUS_REGISTRY_FILE, or "
            "create one with 'ketenbus keys generate --registry …'"
        )
        raise typer.Exit(2)
    from broker.trust import TrustConfigError

    try:  # only a registry the pinned administrators signed (docs/trust.md §2.1)
        return deployment.load(
            registry, keys, state / deployment.SECRETS_DIR, deployment.anchor_file_of(settings)
        )
    except TrustConfigError as e:
        err.print(f"[bold red]party registry refused:[/] {e}")
        raise typer.Exit(2) from None


async def _run_until_signal(
    component: Component, beside: AbstractAsyncContextManager[None] | None = None
) -> None:
    """Start the component (and, once it runs, ``beside`` it), wait for SIGINT or SIGTERM, stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await component.start()
    try:
        async with beside or contextlib.nullcontext():
            await stop.wait()
    finally:
        await component.stop()


def router(
    config: Annotated[Path | None, typer.Option(help="Config file (YAML/TOML).")] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Policy file (default: the shipped policy).")
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(
            help="Run as this router instance: sign with its own key and write its own audit "
            "chain (declared in the registry). Needed for every router beside another one."
        ),
    ] = None,
) -> None:
    """Run the router: consume inbound topics, decide, deliver, audit."""
    from broker.apps.monitoring import figures
    from broker.kafka import ensure_topics
    from broker.policy import default_policy, load_policy
    from broker.router.service import RouterService
    from schemas import topics

    logging.basicConfig(level=logging.INFO)
    settings = load_or_exit(config)
    if settings.bootstrap_servers is None:
        err.print(
            "[bold red]KETENBUS_BOOTSTRAP_SERVERS is not set[/]: the router needs a Kafka "
            "(use 'ketenbus up' to run everything on the embedded broker)"
        )
        raise typer.Exit(2)
    dep = _deployment(settings)
    pol = load_policy(policy) if policy else default_policy()
    try:
        state = dep.router_state(
            pol,
            full_validation=settings.router_full_validation,
            instance=instance,
            settings=settings,
        )
    except (ValueError, OSError) as e:
        err.print(f"[bold red]cannot start the router:[/] {e}")
        raise typer.Exit(2) from None

    async def main() -> None:
        await ensure_topics(settings, topics.catalogue([p.id for p in dep.registry.parties]))
        service = RouterService(
            settings,
            state,
            session_timeout_ms=settings.session_timeout_ms,
        )
        watch = dep.watch(settings)  # rotations and revocations without a restart
        if watch is not None:
            watch.subscribe(service.use_registry)
            watch.start()
        try:
            await _run_until_signal(service, figures.served(settings))
        finally:
            if watch is not None:
                await watch.stop()

    asyncio.run(main())


class AdapterKind(StrEnum):
    zvh = "zvh"
    provider = "provider"


def adapter(
    kind: Annotated[AdapterKind, typer.Argument(help="zvh or provider.")],
    party: Annotated[str, typer.Option(help="This adapter's party id in the registry.")],
    data_dir: Annotated[Path, typer.Option(help="Folder for inbox/ and outbox/.")] = Path("data"),
    http_port: Annotated[
        int | None, typer.Option(help="ZVH HTTP endpoint port on 127.0.0.1 (zvh only).")
    ] = None,
    http_host: Annotated[
        str, typer.Option(help="Bind address of the HTTP endpoint.")
    ] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option(help="Config file (YAML/TOML).")] = None,
) -> None:
    """Run a ZVH or provider adapter for one party."""
    import uvicorn

    from adapters.payer.formats.fz import care_notice
    from adapters.payer.formats.preconditions import read_preconditions
    from adapters.provider.service import ProviderAdapter
    from adapters.zvh.auth import IntakeAuth, WatchedRegistry
    from adapters.zvh.http import create_app
    from adapters.zvh.service import ZvhAdapter
    from adapters.zvh.tls import server_config

    logging.basicConfig(level=logging.INFO)
    settings = load_or_exit(config)
    if settings.bootstrap_servers is None:
        err.print("[bold red]KETENBUS_BOOTSTRAP_SERVERS is not set[/]: an adapter needs a Kafka")
        raise typer.Exit(2)
    dep = _deployment(settings)
    client = dep.party_client(party)
    auth = None
    if settings.zvh_http_auth == "token":
        from broker.policy import default_policy

        registry = settings.registry_file or Path(settings.state_dir) / "registry.yaml"
        auth = IntakeAuth(party, WatchedRegistry(registry), default_policy())
    elif http_host not in ("127.0.0.1", "::1", "localhost"):
        err.print("[bold red]an intake without authentication binds to loopback only[/]")
        raise typer.Exit(2)

    async def main() -> None:
        watch = dep.watch(settings)  # rotations and revocations without a restart
        dep.follow(watch, client)
        if watch is not None:
            watch.start()
        try:
            await serve()
        finally:
            if watch is not None:
                await watch.stop()

    async def serve() -> None:
        if kind is AdapterKind.provider:
            provider = ProviderAdapter(
                settings,
                client,
                data_dir / "outbox",
                inbox_dir=data_dir / "inbox",
                session_timeout_ms=settings.session_timeout_ms,
                datakeys=dep.key_store(settings, write=True, party=party),
                preconditions=read_preconditions,
                care_notices=care_notice,
            )
            await _run_until_signal(provider)
            return
        zvh = ZvhAdapter(
            settings,
            client,
            data_dir / "inbox",
            data_dir / "outbox",
            session_timeout_ms=settings.session_timeout_ms,
        )
        if http_port is None:
            await _run_until_signal(zvh)
            return
        server = uvicorn.Server(
            server_config(create_app(zvh, auth), settings, http_host, http_port, log_level="info")
        )
        await zvh.start()
        try:
            await server.serve()
        finally:
            await zvh.stop()

    asyncio.run(main())
