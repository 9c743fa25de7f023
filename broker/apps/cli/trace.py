"""``ketenbus trace``: where is a message now, and what happened to it at each hop; or, for a
compliance officer, every message about one person (by BSN, pseudonymised, the search audited)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from broker.apps.cli.audit import _settings
from broker.apps.cli.common import err

if TYPE_CHECKING:
    from broker.apps.deployment import Deployment
    from broker.apps.operations.trace import Trace
    from broker.config import Settings

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
    user: Annotated[
        str | None, typer.Option("--user", help="Your console user id: the trace is audited "
                                 "with it (NEN 7513).")
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
    if not user:
        raise _fail("give --user: every trace is audited with the person who asked")
    from broker.apps.operations.trace import trace as run

    dep = _deployment(settings)

    async def audited() -> Trace:
        await _audit_trace(settings, dep, message_id, user)
        return await run(settings, dep.registry, message_id)

    try:
        result = asyncio.run(audited())
    except (OSError, TimeoutError) as exc:
        raise _fail(f"Kafka could not be read or written: {exc}") from None
    if result.tampered:
        out.print("WARNING: the audit trail did not verify; hops marked NOT VERIFIED are suspect")
    if not result.found:
        raise _fail(f"message {message_id} is on no topic and in no audit record "
                    "(unknown id, or no longer on the broker)", 1)
    out.print(f"message {message_id}: {len(result.hops)} hop(s)")
    for i, hop in enumerate(result.hops, 1):
        out.print(f"{i:3d}. {hop.line()}")


async def _audit_trace(settings: Settings, dep: Deployment, message_id: str, user: str) -> None:
    """Audit the trace on the console's CLI chain before anything is shown; refuse without."""
    from broker.apps.web.auth import check_name
    from broker.apps.web.compliance import ComplianceService, SearchNotAudited
    from schemas.vocab import PartyRole

    try:
        name = check_name(user)
    except ValueError as exc:
        raise _fail(f"--user: {exc}") from None
    consoles = dep.registry.by_role(PartyRole.CAPACITY_DASHBOARD)
    if not consoles:
        raise _fail("the registry has no console party to audit the trace")
    try:
        keys = dep.keyring(consoles[0].id).current
    except Exception as exc:  # no key file of that party here
        raise _fail(f"no private key of {consoles[0].id} here ({type(exc).__name__})") from None
    declared = [d.chain for d in dep.registry.audit_chains_of(consoles[0].id)]
    chain = next((c for c in declared if c.endswith("-cli")), f"{consoles[0].id}-cli")
    service = ComplianceService(settings, dep.registry, keys, None, chain_id=chain)
    try:
        await service.start()
        await service.audit_trace(message_id, user=name, role="cli")
    except SearchNotAudited as exc:
        raise _fail(f"{exc}: the trace is not shown") from None
    finally:
        await service.stop()


def _trace_person(bsn: str, officer: str | None, settings: Settings) -> None:
    """The person's messages, each with its hops, from the audited compliance search."""
    from broker.apps.cli.audit import Format, _audited_search, _read_bsn
    from broker.apps.operations.trace import build
    from broker.audit import AuditQuery

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
