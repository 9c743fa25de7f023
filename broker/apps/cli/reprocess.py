"""``ketenbus reprocess``: send refused or dead-lettered messages through the router again,
once their cause is fixed (see ``broker.apps.operations.reprocess``). Dry-run by default."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from broker.apps.cli.audit import _moment, _settings
from broker.apps.cli.common import err

out = Console(highlight=False, soft_wrap=True, markup=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]reprocess:[/] {message}")
    return typer.Exit(code)


def _check_operator(state_dir: Path, operator: str) -> str:
    """The operator must be a console user whose role may re-process (NEN 7513: the user of
    the action is this person)."""
    from broker.apps.web.auth import REPROCESS_ROLES, USERS_FILE, UserStore, check_name

    try:
        name = check_name(operator)
    except ValueError as exc:
        raise _fail(f"--operator: {exc}") from None
    store = UserStore(state_dir / USERS_FILE)
    role = store.role_of(name)
    if role is None:
        raise _fail(f"--operator {name} is not a console user; nothing was re-processed")
    if role not in REPROCESS_ROLES:
        raise _fail(f"a {role.label} may not re-process (roles that may: "
                    f"{', '.join(r.value for r in REPROCESS_ROLES)}); nothing was re-processed")
    return name


def reprocess(
    operator: Annotated[
        str, typer.Option("--operator", help="Your console user id (its role must allow it).")
    ],
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="Message id (repeat for several).")
    ] = None,
    reasons: Annotated[
        list[str] | None, typer.Option("--reason", help="Refusal reason, e.g. no-consent.")
    ] = None,
    senders: Annotated[
        list[str] | None, typer.Option("--sender", help="Sending party id.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Refused from this date or moment.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Refused up to this date (inclusive).")
    ] = None,
    dead_letter_only: Annotated[
        bool, typer.Option("--dead-letter", help="Only dead-lettered records.")
    ] = False,
    rejected_only: Annotated[
        bool, typer.Option("--rejected", help="Only rejected records.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="At most this many records.")
    ] = 100,
    send: Annotated[
        bool, typer.Option("--send/--dry-run",
                           help="Send (audited), or only show what would happen now (default).")
    ] = False,
    policy: Annotated[
        Path | None, typer.Option(help="The router's policy file (default: the shipped one).")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option("--bootstrap", help="Kafka bootstrap HOST:PORT.")
    ] = None,
) -> None:
    """Re-process refused messages as new, audited attempts that refer to the original.

    Shows first what would happen now (--dry-run, the default); --send sends. A message already
    delivered to a recipient is not delivered to it again. Ctrl-C stops after the current one."""
    from broker.apps.cli.services import _deployment
    from broker.apps.operations.parked import PARKING_TOPICS
    from broker.apps.operations.reprocess import Reprocessor, ReprocessRefused, Selection
    from broker.policy import default_policy, load_policy

    settings = _settings(bootstrap)
    if settings.bootstrap_servers is None:
        raise _fail("give --bootstrap HOST:PORT (or set KETENBUS_BOOTSTRAP_SERVERS)")
    name = _check_operator(Path(settings.state_dir), operator)
    parking: tuple[str, ...] = PARKING_TOPICS
    if dead_letter_only != rejected_only:
        parking = (("dead-letter",) if dead_letter_only else ("rejected",))
    selection = Selection(
        ids=frozenset(ids or ()),
        reasons=frozenset(reasons or ()),
        senders=frozenset(senders or ()),
        since=_moment(since, end=False),
        until=_moment(until, end=True),
        parking=parking,
    )
    dep = _deployment(settings)
    pol = load_policy(policy) if policy else default_policy()
    stopped = False

    def stop() -> bool:
        return stopped

    async def run() -> None:
        nonlocal stopped
        worker = Reprocessor(settings, dep, pol, name)
        items = await worker.plan(selection, limit)
        for item in items:
            r = item.record
            out.print(f"{r.message_id}  from {r.sender}  {r.place}  refused: {r.reason}"
                      + (f"  delivered before to: {', '.join(sorted(item.delivered))}"
                         if item.delivered else ""))
            for line in item.outlook:
                out.print(f"    now: {line}")
        if not items:
            out.print("nothing matches")
        if not send:
            out.print(f"dry run: {len(items)} record(s); nothing was sent (add --send)")
            return
        loop = asyncio.get_running_loop()

        def halt() -> None:
            nonlocal stopped
            stopped = True

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, halt)  # only in the main thread
        sent = await worker.send(items, stop, on_sent=lambda i: out.print(
            f"re-processed {i.record.message_id} as attempt {i.attempt} "
            f"(audit event {i.audit_event}, operator {name})"))
        out.print(f"sent {sent} of {len(items)} record(s)" + (" (stopped)" if stopped else ""))

    try:
        asyncio.run(run())
    except ReprocessRefused as exc:
        raise _fail(str(exc), 1) from None
    except (OSError, TimeoutError) as exc:
        raise _fail(f"Kafka could not be read or written: {exc}") from None
