"""Helpers shared by the CLI commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from broker.config import ConfigError, Settings, load_settings

err = Console(stderr=True, highlight=False)


def load_or_exit(config: Path | None) -> Settings:
    """Load settings or stop with a message that names the setting (exit code 2)."""
    try:
        return load_settings(config)
    except ConfigError as e:
        err.print(f"[bold red]configuration error:[/] {e}")
        raise typer.Exit(2) from None
