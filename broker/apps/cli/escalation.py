"""``ketenbus escalation answer``: a step of the escalation ladder (the national coordination
point, or a region's step) answers an escalation -- acknowledge, assign, ask for information or
resolve. The answer is signed with that party's key and goes through the router, which refuses
it when the party was not asked or the escalation is already resolved (docs/flows/
escalation-answer.md); the escalating party finds it in its outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from broker.apps.cli.common import err, load_or_exit
from broker.apps.web.answers import make_answer, send_answer
from broker.trust.errors import TrustConfigError
from schemas.vocab import EscalationAction, EscalationLevel

app = typer.Typer(help="The escalation ladder: answer an escalation.", no_args_is_help=True)
out = Console(highlight=False)

ANSWERABLE = [a.value for a in EscalationAction if a is not EscalationAction.MOVE_NATIONAL]


@app.command("answer")
def answer(
    party: Annotated[str, typer.Option(help="The answering party (its id in the registry).")],
    escalation: Annotated[str, typer.Option(help="The escalation id.")],
    raised_by: Annotated[str, typer.Option(help="The escalating party's id.")],
    zvh: Annotated[str, typer.Option(help="The ZVH of the case.")],
    case: Annotated[str, typer.Option(help="The ZVH case number.")],
    action: Annotated[str, typer.Option(help="acknowledge | assign | request-info | resolve")],
    assignee: Annotated[str | None, typer.Option(help="Party id (assign).")] = None,
    note: Annotated[str | None, typer.Option(help="What was done or what is asked.")] = None,
    level: Annotated[str, typer.Option(help="national | regional")] = "national",
    config: Annotated[Path | None, typer.Option(help="Config file (YAML/TOML).")] = None,
) -> None:
    """Send one answer; prints its message id (the router's verdict reaches the party's
    ``out`` topic, the escalating party's outbox gets the answer)."""
    from broker.apps.cli.services import _deployment

    if action not in ANSWERABLE:
        err.print(f"[bold red]unknown action {action!r}[/]: one of {', '.join(ANSWERABLE)}")
        raise typer.Exit(2)
    if level not in ("national", "regional"):
        err.print("[bold red]--level is national or regional[/]")
        raise typer.Exit(2)
    settings = load_or_exit(config)
    if settings.bootstrap_servers is None:
        err.print("[bold red]KETENBUS_BOOTSTRAP_SERVERS is not set[/]: answering needs a Kafka")
        raise typer.Exit(2)
    dep = _deployment(settings)
    try:
        client = dep.party_client(party)
        _, bundle = make_answer(
            client,
            escalation_id=escalation,
            raised_by=raised_by,
            zvh=zvh,
            case_id=case,
            action=EscalationAction(action),
            level=EscalationLevel(level),
            assignee=assignee,
            note=note,
        )
    except ValidationError as e:
        err.print(f"[bold red]answer refused:[/] {e.errors()[0]['msg']}")
        raise typer.Exit(2) from None
    except (KeyError, ValueError, OSError, TrustConfigError) as e:
        err.print(f"[bold red]{e}[/]")
        raise typer.Exit(2) from None
    message_id = asyncio.run(send_answer(settings, client, bundle))
    out.print(f"sent {action} for escalation {escalation}: message {message_id}")
