"""``ketenbus trace``: where is a message now, and what happened to it at each hop; or, for a
compliance officer, every message about one person (by BSN, pseudonymised, the search audited)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from broker.apps.cli.audit import _settings
from broker.apps.cli.common import err

out = Console(highlight=False, soft_wrap=True, markup=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]trace:[/] {message}")
    return typer.Exit(code)


def trace(
    message_id: Annotated[
        str | None, typer.Argument(help="The message id (kb-id / MessageHeader.id).")
    ] = None,
    bsn: Annotated[
        str | None,
        typer.Option("--bsn", help="Trace every message about this person instead ('-': read "
                     "it from stdin); pseudonymised, and the search is audited."),
    ] = None,
    officer: Annotated[
        str | None, typer.Option("--officer", help="Your user id as compliance officer (--bsn).")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option("--bootstrap", help="Kafka bootstrap HOST:PORT.")
    ] = None,
) -> None:
    """Print every hop of one message in order: received, routed, the decision per recipient
    with reason and rule, delivered to which out.<party>, refusals, re-processes."""
    from broker.apps.cli.services import _deployment

    settings = _settings(bootstrap)
    if settings.bootstrap_servers is None:
        raise _fail("give --bootstrap HOST:PORT (or set KETENBUS_BOOTSTRAP_SERVERS)")
    if (message_id is None) == (bsn is None):
        raise _fail("give a message id, or --bsn for a person (not both)")
    if bsn is not None:
        _trace_person(bsn, officer, settings)
        return
    assert message_id is not None
    from broker.apps.operations.trace import trace as run

    dep = _deployment(settings)
    try:
        result = asyncio.run(run(settings, dep.registry, message_id))
    except (OSError, TimeoutError) as exc:
        raise _fail(f"Kafka could not be read: {exc}") from None
    if result.tampered:
        out.print("WARNING: the audit trail did not verify; hops marked NOT VERIFIED are suspect")
    if not result.found:
        raise _fail(f"message {message_id} is on no topic and in no audit record "
                    "(unknown id, or no longer on the broker)", 1)
    out.print(f"message {message_id}: {len(result.hops)} hop(s)")
    for i, hop in enumerate(result.hops, 1):
        out.print(f"{i:3d}. {hop.line()}")


def _trace_person(bsn: str, officer: str | None, settings: object) -> None:
    """The person's messages, each with its hops, from the audited compliance search."""
    from broker.apps.cli.audit import Format, _audited_search, _read_bsn
    from broker.apps.operations.trace import build
    from broker.audit import AuditQuery
    from broker.config import Settings

    assert isinstance(settings, Settings)
    if not officer:
        raise _fail("--bsn needs --officer: the search is audited with your user id")
    result, pseudonym = _audited_search(
        AuditQuery(), bsn=_read_bsn(bsn), officer=officer, organisation=None, chain=None,
        fmt=Format.TEXT, settings=settings, trust_keys=None, file=None)
    if result.tampered:
        out.print("WARNING: the audit trail did not verify; hops marked NOT VERIFIED are suspect")
    ids = list(dict.fromkeys(r.message_id for r in result.rows if r.message_id))
    out.print(f"person {pseudonym}: {len(ids)} message(s); this search is audited")
    for mid in ids:
        t = build(mid, [], result.rows, result.tampered)
        out.print(f"message {mid}")
        for i, hop in enumerate(t.hops, 1):
            out.print(f"  {i:3d}. {hop.line()}")
