"""``ketenbus monitor``: a live terminal view of the chain for operations, without personal data.

Kafka comes from ``--bootstrap``, ``KETENBUS_BOOTSTRAP_SERVERS``, or else the run file of a
``ketenbus up`` using the same state directory. Bed counts need the capacity dashboard's keys
(present in a local deployment's state directory); without them the other figures still show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from broker.apps.cli.common import err, load_or_exit
from broker.config import Settings, check_bootstrap

if TYPE_CHECKING:  # imported at run time inside the command: `ketenbus --help` stays quick
    from broker.apps.monitoring.collector import Collector
    from broker.trust.party import PartyClient


def resolve_bootstrap(settings: Settings, given: str | None) -> str:
    """Kafka to watch: the option, the settings, or a running `ketenbus up` here."""
    from broker.apps.monitoring import runinfo

    if given:
        return given
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    info = runinfo.read(Path(settings.state_dir))
    if info and info.get("bootstrap"):
        return str(info["bootstrap"])
    err.print(
        "[bold red]no Kafka to watch[/]: start [bold]ketenbus up[/] (with the same state "
        "directory), or give --bootstrap HOST:PORT or KETENBUS_BOOTSTRAP_SERVERS"
    )
    raise typer.Exit(2)


def _readers(settings: Settings) -> tuple[PartyClient | None, PartyClient | None]:
    """Clients of the capacity dashboard and the coordination point, if their keys are here."""
    from broker.apps import deployment
    from broker.apps.monitoring.parties import reader
    from schemas.vocab import PartyRole

    state = Path(settings.state_dir)
    registry = settings.registry_file or state / deployment.REGISTRY_FILE
    if not registry.exists():
        return None, None
    try:
        dep = deployment.load(registry, settings.keys_dir or state / deployment.KEYS_DIR,
                              state / deployment.SECRETS_DIR,
                              deployment.anchor_file_of(settings))
    except Exception as exc:
        err.print(f"[yellow]party registry not usable ({type(exc).__name__}); no bed counts[/]")
        return None, None
    return (reader(dep, PartyRole.CAPACITY_DASHBOARD),
            reader(dep, PartyRole.NATIONAL_COORDINATION))


def monitor(
    once: Annotated[
        bool, typer.Option("--once", help="Print one snapshot and exit (for scripts and tests).")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.2, help="Seconds between screen updates.")
    ] = 2.0,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka HOST:PORT (default: settings, or ketenbus up's).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Also serve these figures to Prometheus on 127.0.0.1:PORT (0: free)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Config file (YAML/TOML); env KETENBUS_* overrides it.")
    ] = None,
) -> None:
    """Message rates per topic, consumer lag, refusals and dead letters by reason, referrals
    waiting for a decision, claims by state and age, secure beds by region and level."""
    from broker.apps.monitoring.collector import Collector
    from broker.apps.monitoring.render import view

    logging.basicConfig(level=logging.WARNING)
    settings = load_or_exit(config)
    try:
        target = check_bootstrap(resolve_bootstrap(settings, bootstrap))
    except ValueError as exc:
        err.print(f"[bold red]--bootstrap:[/] {exc}")
        raise typer.Exit(2) from None
    settings = settings.with_bootstrap(target)
    capacity, escalations = _readers(settings)
    collector = Collector(settings, capacity=capacity, escalations=escalations)
    console = Console(highlight=False)
    if once:
        try:
            snap = asyncio.run(collector.catch_up())
        except Exception as exc:
            err.print(f"[bold red]cannot read Kafka at {target}:[/] {type(exc).__name__}: {exc}")
            raise typer.Exit(2) from None
        console.print(view(snap))
        return
    asyncio.run(_live(collector, console, interval, metrics_port, settings.metrics_host))


async def _live(
    collector: Collector,
    console: Console,
    interval: float,
    metrics_port: int | None,
    metrics_host: str = "127.0.0.1",
) -> None:
    from rich.live import Live

    from broker.apps.monitoring import figures
    from broker.apps.monitoring.render import view
    from broker.component import metrics

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await collector.start()
    if metrics_port is not None:
        console.print(f"metrics on {metrics.serve(metrics_port, metrics_host)}")
        figures.FIGURES.source = collector
    try:
        with Live(view(collector.build()), console=console, auto_refresh=False,
                  screen=False) as live:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
                live.update(view(collector.build()), refresh=True)
    finally:
        figures.FIGURES.source = None
        await collector.stop()


def alert_inbox(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: free).")] = 9095,
    host: Annotated[
        str,
        typer.Option(help="Address to bind: loopback by default; 0.0.0.0 in a container, where "
                          "only Alertmanager on the compose network reaches it."),
    ] = "127.0.0.1",
    config: Annotated[
        Path | None, typer.Option(help="Config file (YAML/TOML); env KETENBUS_* overrides it.")
    ] = None,
) -> None:
    """Receive Alertmanager's webhook (POST /alerts): each alert is logged and kept, codes only,
    in <state_dir>/alerts/alerts.jsonl; GET /alerts lists the recent ones."""
    import re

    import uvicorn

    from broker.apps.monitoring.alert_inbox import AlertInbox, create_app

    if not re.fullmatch(r"[0-9a-fA-F.:]{2,45}", host):
        err.print("[bold red]--host:[/] an IP address, e.g. 127.0.0.1")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.WARNING)
    settings = load_or_exit(config)
    inbox = AlertInbox(Path(settings.state_dir) / "alerts")
    err.print(f"alert inbox on http://{host}:{port}/alerts, kept in {inbox.path}")
    uvicorn.run(create_app(inbox), host=host, port=port, log_level="warning")
