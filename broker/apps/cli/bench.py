"""``ketenbus bench``: the performance evidence, measured side by side in one run.

Starts its own embedded broker on 127.0.0.1 and stops it; every load is bounded (message
counts and seconds) and targets only this machine. Heavy imports happen inside the command.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def bench(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="A small run (about seven minutes) instead of the full one."),
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="SECTION",
            help="Run only this section (repeatable): profile, consents, throughput, latency, "
            "rebuild, snapshot, scale, national.",
        ),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the tables as Markdown (for the docs).")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="FILE",
            help="Also write the tables to FILE (Markdown).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Benchmark the router: raw pass-through versus the routed pipeline, latency at fixed
    rates, consent decisions at 10k/100k/1M consents, consent-view rebuild, per-stage profile,
    and at scale: one versus two routers, end to end with the provider's adapter, failover and
    restart pauses; the national scenario's year timed as an operator runs it; last, the goals
    of issue 19 side by side, with the reason and the lever for each goal not met.

    Prints tables; docs/performance.md records a run. The machines are shared and noisy:
    compare figures within one run, not across runs.
    """
    from broker.apps.bench.run import SECTIONS, BenchConfig, render, run

    logging.basicConfig(level=logging.ERROR)
    sections = tuple(only or SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        err_console.print(
            f"[red]error:[/red] unknown section(s) {', '.join(unknown)}; "
            f"choose from {', '.join(SECTIONS)}"
        )
        raise typer.Exit(2)
    config = BenchConfig.quick() if quick else BenchConfig.full()
    command = "ketenbus " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else ""
    began = time.monotonic()

    def progress(text: str) -> None:
        err_console.print(f"[dim]{time.monotonic() - began:6.1f} s[/dim]  {text} ...")

    from broker.apps.bench.kafka_runs import BenchError
    from broker.kafka import KafkaSetupError

    try:
        tables = run(config, sections, progress=progress, command=command)
    except (BenchError, KafkaSetupError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(render(tables, markdown=markdown), soft_wrap=True)
    if output is not None:
        output.write_text(render(tables, markdown=True) + "\n", encoding="utf-8")
    err_console.print(f"[dim]done in {time.monotonic() - began:.0f} s[/dim]")
