"""The ``ketenbus`` command line. Each sub-command lives in its own module under ``broker.cli``
and is registered here, so this file reads as the table of contents of what operators can do."""

from __future__ import annotations

import typer

from broker.cli import audit

app = typer.Typer(
    name="ketenbus",
    help="ketenbus: FHIR R4 messages between ZVH, care providers and payers, on Kafka, "
    "with consent and purpose-of-use checks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- command registrations (one line each; keep sorted by name) -------------------------------
app.add_typer(audit.app, name="audit")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
