"""The ``ketenbus`` command line. Each sub-command lives in its own module under ``broker.apps.cli``
and is registered here, so this file reads as the table of contents of what operators can do."""

from __future__ import annotations

import typer

from broker.apps.cli import (
    audit,
    bench,
    conformance,
    escalation,
    financing,
    kafka,
    lifecycle,
    monitor,
    party,
    provision,
    reprocess,
    services,
    trace,
    up,
    web,
)
from broker.apps.cli.keys import app as keys_app

app = typer.Typer(
    name="ketenbus",
    help="ketenbus: FHIR R4 messages between ZVH, care providers and payers, on Kafka, "
    "with consent and purpose-of-use checks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- command registrations (one line each; keep sorted by name) -------------------------------
app.command("adapter")(services.adapter)
app.add_typer(audit.app, name="audit")
app.command("bench")(bench.bench)
app.command("conformance")(conformance.conformance)
app.add_typer(escalation.app, name="escalation")
app.command("erase")(lifecycle.erase)
app.add_typer(financing.app, name="financing")
app.command("kafka")(kafka.kafka)
app.add_typer(keys_app, name="keys")
app.command("monitor")(monitor.monitor)
app.command("alert-inbox")(monitor.alert_inbox)
app.add_typer(party.app, name="party")
app.command("payer")(financing.payer)
app.command("provision")(provision.provision)
app.command("reprocess")(reprocess.reprocess)
app.command("prune")(lifecycle.prune)
app.command("router")(services.router)
app.command("topics")(kafka.topics)
app.command("trace")(trace.trace)
app.command("up")(up.up)
app.add_typer(web.app, name="web")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
