"""``ketenbus web``: run the web app on its own and manage its users.

``ketenbus up`` already serves the web app with generated demo users; this is for a web app next
to a router elsewhere: it needs the Kafka, the party registry, the capacity dashboard's keys and
(for the audit search by BSN) the router's pseudonym secret in the state directory.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from broker.apps.cli.common import err, load_or_exit
from broker.apps.cli.monitor import resolve_bootstrap
from broker.config import check_bootstrap

app = typer.Typer(
    name="web",
    help="The web app: secure-bed dashboard, operations and the compliance audit search.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option(help="Config file (YAML/TOML); env KETENBUS_* overrides it.")
]


def _users_file(config: Path | None) -> Path:
    from broker.apps.web.auth import USERS_FILE

    return Path(load_or_exit(config).state_dir) / USERS_FILE


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: free).")] = 8080,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka HOST:PORT.")] = None,
    idle_minutes: Annotated[
        int, typer.Option(min=1, help="Sign users out after this many idle minutes.")
    ] = 30,
    oidc: Annotated[Path | None, typer.Option(
        "--oidc", help="OpenID Connect providers (YAML; default <state dir>/web/oidc.yaml "
        "when it exists): sign-in through the organisations' identity providers.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the dashboard, operations and compliance pages on 127.0.0.1 until Ctrl-C."""
    from datetime import timedelta

    from broker.apps import deployment
    from broker.apps.web.app import create_app
    from broker.apps.web.auth import SessionStore, UserStore
    from broker.apps.web.backend import WebBackend
    from broker.apps.web.oidc import OIDC_FILE
    from broker.apps.web.oidc import load as load_oidc
    from broker.apps.web.server import WebPortInUse, WebServer

    logging.basicConfig(level=logging.WARNING)
    settings = load_or_exit(config)
    settings = settings.with_bootstrap(check_bootstrap(resolve_bootstrap(settings, bootstrap)))
    state = Path(settings.state_dir)
    registry = settings.registry_file or state / deployment.REGISTRY_FILE
    if not registry.exists():
        err.print(f"[bold red]no party registry at {registry}[/]")
        raise typer.Exit(2)
    dep = deployment.load(registry, settings.keys_dir or state / deployment.KEYS_DIR,
                          state / deployment.SECRETS_DIR,
                          deployment.anchor_file_of(settings))
    users = UserStore(_users_file(config))
    if not len(users):
        err.print("[bold red]no users yet[/]: add one with 'ketenbus web add-user NAME --role …'")
        raise typer.Exit(2)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        backend = WebBackend.from_deployment(settings, dep)
        try:
            login = load_oidc(oidc or state / OIDC_FILE, backend.knows_party)
        except (OSError, ValueError, KeyError) as exc:
            err.print(f"[bold red]OpenID Connect configuration:[/] {exc}")
            return 2
        await backend.start()
        server = WebServer(create_app(backend, users, SessionStore(
            idle=timedelta(minutes=idle_minutes)), oidc=login))
        try:
            url = await server.start(port)
        except WebPortInUse as exc:
            err.print(f"[bold red]cannot start:[/] {exc}")
            await backend.stop()
            return 2
        typer.echo(f"web app on {url} — Ctrl-C stops")
        try:
            await stop.wait()
        finally:
            await server.stop()
            await backend.stop()
        return 0

    raise typer.Exit(asyncio.run(main()))


@app.command("add-user")
def add_user(
    name: Annotated[str, typer.Argument(help="User name (a-z, 0-9, '.', '_', '-').")],
    role: Annotated[str, typer.Option(
        help="operations, compliance, coordination, auditor or administrator.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    organisation: Annotated[str | None, typer.Option(
        "--organisation", help="The party id the user works for (default: the deployment, "
        "which sees every organisation).")] = None,
    responsible_for: Annotated[list[str] | None, typer.Option(
        "--responsible-for", help="A further organisation whose trail a compliance officer "
        "sees (repeatable).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Add a user, or set an existing user's role, organisation and password (Argon2id)."""
    from broker.apps.web.auth import Role, UserStore

    try:
        chosen = Role(role)
    except ValueError:
        raise typer.BadParameter(", ".join(r.value for r in Role), param_hint="--role") from None
    if responsible_for and organisation is None:
        raise typer.BadParameter("give --organisation too", param_hint="--responsible-for")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = UserStore(_users_file(config)).set(
            name, chosen, password, organisation=organisation,
            responsible_for=frozenset(responsible_for or ()))
    except ValueError as exc:
        err.print(f"[bold red]{exc}[/]")
        raise typer.Exit(2) from None
    where = f", {user.organisation}" if user.organisation else ""
    typer.echo(f"user {user.name} ({user.role.label}{where}) saved")


@app.command("remove-user")
def remove_user(
    name: Annotated[str, typer.Argument(help="User name.")],
    config: ConfigOpt = None,
) -> None:
    """Remove a user (their open sessions end when the web app restarts)."""
    from broker.apps.web.auth import UserStore

    if not UserStore(_users_file(config)).remove(name):
        err.print(f"no user {name!r}")
        raise typer.Exit(1)
    typer.echo(f"user {name} removed")
