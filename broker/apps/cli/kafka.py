"""``ketenbus kafka`` (a development Kafka in one command) and ``ketenbus topics`` (create the
catalogue's topics on a real Kafka, e.g. as a one-shot container before the services start).

Heavy imports (aiokafka, FastStream) happen inside the commands so ``ketenbus --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from broker.config import Settings
    from broker.kafka import EmbeddedBroker
    from schemas.topics import TopicSpec

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="YAML or TOML settings file (default: the file named by KETENBUS_CONFIG). "
        "KETENBUS_* environment variables override it.",
        dir_okay=False,
    ),
]
PartyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--party",
        metavar="PARTY_ID",
        help="Also create the party's outbound topic out.PARTY_ID. Repeatable.",
    ),
]


def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        from rich.logging import RichHandler

        handler = RichHandler(console=err_console, show_path=False, show_time=False)
        logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])


def _load(config: Path | None, **overrides: object) -> Settings:
    from broker.config import ConfigError, load_settings

    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _specs(parties: list[str] | None) -> tuple[TopicSpec, ...]:
    from schemas.topics import catalogue

    return catalogue(tuple(parties or ()))


def _topic_table(specs: tuple[TopicSpec, ...], created: list[str], actual: dict[str, int]) -> Table:
    table = Table(title="Topics", title_justify="left", show_edge=False)
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    table.add_column("")
    for spec in specs:
        have = actual.get(spec.name)
        note = "created" if spec.name in created else "existed"
        if have is not None and have != spec.partitions:
            note = f"[yellow]existed with {have}, catalogue says {spec.partitions}[/yellow]"
        table.add_row(spec.name, str(have if have is not None else spec.partitions), note)
    return table


def kafka(
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            "-p",
            metavar="PORT",
            min=1,
            max=65535,
            help="Port on 127.0.0.1. Default: a free one.",
            show_default=False,
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Broker log goes to STATE_DIR/logs/. Default: $KETENBUS_STATE_DIR or .ketenbus",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    create_topics: Annotated[
        bool,
        typer.Option(
            "--create-topics/--no-create-topics",
            help="Create the catalogue's topics at start, before any client "
            "auto-creates them with 4 partitions.",
        ),
    ] = True,
    party: PartyOption = None,
    config: ConfigOption = None,
) -> None:
    """Run a development Kafka (embedded Tansu, in memory) on 127.0.0.1 until Ctrl-C.

    Prints the address and the export line for other shells:
    export KETENBUS_BOOTSTRAP_SERVERS=127.0.0.1:PORT

    Plaintext only, and nothing survives a stop. For anything else run
    Apache Kafka (docker/compose.yaml) and set KETENBUS_BOOTSTRAP_SERVERS.
    """
    _setup_logging()
    settings = _load(config, state_dir=state_dir)
    from broker.kafka import KafkaSetupError

    try:
        rc = asyncio.run(_serve(settings, port, create_topics, party))
    except KafkaSetupError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if rc:
        raise typer.Exit(rc)


async def _serve(
    settings: Settings, port: int | None, create_topics: bool, parties: list[str] | None
) -> int:
    from broker.kafka import EmbeddedBroker, ensure_topics, topic_partitions

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if settings.bootstrap_servers is not None:
        err_console.print(
            f"[yellow]note:[/yellow] KETENBUS_BOOTSTRAP_SERVERS={settings.bootstrap_servers} "
            "is set in this shell; this command ignores it and runs its own broker."
        )
    broker = EmbeddedBroker(port=port, state_dir=settings.state_dir)
    await broker.astart()
    try:
        if create_topics:
            specs = _specs(parties)
            created = await ensure_topics(broker.bootstrap, specs)
            console.print(_topic_table(specs, created, await topic_partitions(broker.bootstrap)))
        _print_ready(broker)
        return await _wait_for_stop(stop, broker)
    finally:
        console.print("Stopping the broker ...")
        status = await broker.astop()
        console.print(f"Stopped (status {status}).")


def _print_ready(broker: EmbeddedBroker) -> None:
    console.print(
        f"[bold green]Kafka (embedded Tansu, in memory) is ready on {broker.bootstrap}[/bold green]"
    )
    console.print(f"Broker log: {broker.log_path}")
    console.print("Use it from other shells with:")
    console.print(f"export KETENBUS_BOOTSTRAP_SERVERS={broker.bootstrap}", soft_wrap=True)
    console.print("Press Ctrl-C to stop.")


async def _wait_for_stop(stop: asyncio.Event, broker: EmbeddedBroker) -> int:
    """Return 0 on Ctrl-C/SIGTERM, 1 if the broker process dies by itself."""
    while not stop.is_set():
        if not broker.running:
            err_console.print(
                f"[red]error:[/red] the broker exited unexpectedly. Last log lines:\n"
                f"{broker.log_tail()}"
            )
            return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    return 0


def topics(
    wait: Annotated[
        float,
        typer.Option(
            "--wait", metavar="SECONDS", min=0, help="Seconds to wait for Kafka to answer first."
        ),
    ] = 60.0,
    party: PartyOption = None,
    config: ConfigOption = None,
    acls: Annotated[
        bool,
        typer.Option(
            "--acls",
            help="Print the complete Kafka ACL set of the deployment's registry and policy as "
            "kafka-acls.sh commands instead of creating topics (docs/trust.md).",
        ),
    ] = False,
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry",
            metavar="FILE",
            dir_okay=False,
            help="With --acls: the party registry (default: KETENBUS_REGISTRY_FILE or the state "
            "directory's registry.yaml).",
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            metavar="FILE",
            dir_okay=False,
            help="With --acls: the policy file (default: the shipped policy).",
        ),
    ] = None,
    command_config: Annotated[
        str | None,
        typer.Option(
            "--command-config",
            metavar="FILE",
            help="With --acls: the kafka-acls.sh client configuration (TLS or SASL) of the "
            "principal that applies them, added to every command.",
        ),
    ] = None,
) -> None:
    """Create the catalogue's topics on KETENBUS_BOOTSTRAP_SERVERS (idempotent).

    Waits until Kafka answers, so it can run as a one-shot container first.
    Existing topics are left alone; other partition counts are reported.
    With --acls, print who may touch which topic instead (nothing is changed).
    """
    _setup_logging()
    settings = _load(config)
    if acls:
        _print_acls(settings, registry, policy, command_config)
        return
    if settings.bootstrap_servers is None:
        err_console.print(
            "[red]error:[/red] KETENBUS_BOOTSTRAP_SERVERS is not set. Point it at your Kafka "
            "(host:port); `ketenbus kafka` runs a development broker and creates the topics."
        )
        raise typer.Exit(2)
    from broker.config import ConfigError

    try:
        rc = asyncio.run(_create_topics(settings, wait, party))
    except (ConfigError, RuntimeError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if rc:
        raise typer.Exit(rc)


def _print_acls(
    settings: Settings, registry: Path | None, policy: Path | None, command_config: str | None
) -> None:
    from broker.apps.acls import acl_commands
    from broker.apps.deployment import REGISTRY_FILE
    from broker.policy import default_policy, load_policy
    from broker.trust import RegistryError, load_registry

    file = registry or settings.registry_file or Path(settings.state_dir) / REGISTRY_FILE
    try:
        reg = load_registry(file)
        pol = load_policy(policy) if policy else default_policy()
    except (OSError, ValueError, RegistryError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    bootstrap = settings.bootstrap_servers or "kafka:9092"
    for line in acl_commands(reg, pol, bootstrap, command_config):
        typer.echo(line)


async def _create_topics(settings: Settings, wait: float, parties: list[str] | None) -> int:
    from broker.config import ConfigError
    from broker.kafka import apply_topic_configs, ensure_topics, probe, topic_partitions

    deadline = time.monotonic() + wait
    while True:
        try:
            await probe(settings, timeout=5.0)
            break
        except ConfigError:
            raise
        except Exception as exc:
            if time.monotonic() >= deadline:
                err_console.print(
                    f"[red]error:[/red] no Kafka answered at KETENBUS_BOOTSTRAP_SERVERS="
                    f"{settings.bootstrap_servers} within {wait:.0f} s: {exc!r}"
                )
                return 1
            await asyncio.sleep(1.0)
    specs = _specs(parties)
    created = await ensure_topics(settings, specs)
    # topics made earlier get today's terms too (retention, cleanup policy: docs/retention.md)
    altered = await apply_topic_configs(settings, [s for s in specs if s.name not in created])
    console.print(_topic_table(specs, created, await topic_partitions(settings)))
    if altered is None:
        err_console.print(
            "[yellow]warning:[/yellow] this broker cannot alter topic configs; the retention "
            "of topics that already existed is unchanged"
        )
    return 0
