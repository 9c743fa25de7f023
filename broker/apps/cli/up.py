"""``ketenbus up``: the whole path on one machine."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from broker.apps.cli.common import load_or_exit


def up(
    scenario: Annotated[
        str | None,
        typer.Option(help="Traffic to run after start: 'national' (a year), 'demo' (or none)."),
    ] = None,
    months: Annotated[
        int, typer.Option(min=1, max=24, help="National scenario: months to simulate.")
    ] = 12,
    seed: Annotated[
        int, typer.Option(help="National scenario: seed of the synthetic year.")
    ] = 2023,
    year: Annotated[
        int, typer.Option(min=2019, max=2030, help="National scenario: the year simulated.")
    ] = 2023,
    seconds_per_month: Annotated[
        float, typer.Option(min=0.0, help="National scenario: wall seconds per simulated month.")
    ] = 2.0,
    http_port: Annotated[
        int, typer.Option(help="Port of the ZVH adapter's HTTP endpoint on 127.0.0.1 (0: free).")
    ] = 8081,
    web_port: Annotated[
        int, typer.Option(help="Port of the web app on 127.0.0.1 (0: free).")
    ] = 8080,
    metrics_port: Annotated[
        int, typer.Option(help="Port of the Prometheus metrics endpoint on 127.0.0.1 (0: free).")
    ] = 9464,
    exit_when_done: Annotated[
        bool, typer.Option(help="Stop after the scenario instead of running until Ctrl-C.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option(help="Config file (YAML/TOML); env KETENBUS_* overrides it.")
    ] = None,
    routers: Annotated[
        int | None,
        typer.Option(
            min=1, max=16, help="Router instances side by side, each with its own key and audit "
            "chain (default: the routers setting, 1)."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False,
) -> None:
    """Start the broker (embedded unless KETENBUS_BOOTSTRAP_SERVERS is set), the router, the ZVH
    and provider adapters, the web app and the metrics endpoint, print what flows, and keep
    running until Ctrl-C."""
    from broker.apps.scenarios.up import up as run_up

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    settings = load_or_exit(config)
    if routers is not None:
        settings = settings.model_copy(update={"routers": routers})
    if scenario not in (None, "demo", "national"):
        raise typer.BadParameter(
            "unknown scenario; choose 'national' or 'demo'", param_hint="--scenario"
        )
    if scenario == "national":
        from broker.apps.scenarios.national import NationalOptions, up_national

        opts = NationalOptions(
            months=months, seed=seed, year=year, seconds_per_month=seconds_per_month
        )
        raise typer.Exit(
            asyncio.run(
                up_national(
                    settings, http_port=http_port, exit_when_done=exit_when_done, options=opts
                )
            )
        )
    code = asyncio.run(
        run_up(settings, scenario=scenario, http_port=http_port, exit_when_done=exit_when_done,
               web_port=web_port, metrics_port=metrics_port)
    )
    raise typer.Exit(code)
