"""``ketenbus conformance``: run the documented cases against an adapter's inbox folder, HTTP
endpoint and outbox, and report pass or fail per case (docs/conformance.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from broker.apps.cli.common import err, load_or_exit

console = Console(width=160)


def conformance(
    target: Annotated[
        str,
        typer.Argument(
            help="A party id (the suite of its role), a suite (zvh, provider) or a flow "
            "(referral, consent, escalation, ...)."
        ),
    ],
    party: Annotated[
        str | None, typer.Option(help="The party under test, when TARGET is a suite or flow.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="The adapter's folder with inbox/ and outbox/ (default for a party "
                     "of `ketenbus up`: <state_dir>/data/<party>)."),
    ] = None,
    inbox: Annotated[Path | None, typer.Option(help="The inbox folder (overrides --data-dir).")]
    = None,
    outbox: Annotated[
        Path | None, typer.Option(help="The outbox folder, where the router's responses land.")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="The HTTP endpoint, e.g. http://127.0.0.1:8081.")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="The party's intake token (default: <state_dir>/secrets/"
                     "<party>.intake-token, if there)."),
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="The CA of an HTTPS endpoint (default: the system's).")
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option(help="A client certificate (PEM) for mutual TLS.")
    ] = None,
    client_key: Annotated[
        Path | None, typer.Option(help="The key of --client-cert (PEM).")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region for referrals (default: the party's).")
    ] = None,
    cases: Annotated[
        Path | None, typer.Option(help="A case file (YAML) instead of the shipped suites.")
    ] = None,
    only: Annotated[
        str | None, typer.Option(help="Run one channel only: inbox or http.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    junit: Annotated[
        Path | None, typer.Option(help="Also write the report as JUnit XML here.")
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for each answer.")
    ] = 30.0,
    config: Annotated[Path | None, typer.Option(help="Config file (YAML/TOML).")] = None,
) -> None:
    """Run the conformance cases against an adapter and print a pass/fail report; exit 1 when
    a case fails."""
    from broker.apps.conformance import report
    from broker.apps.conformance.cases import CaseFileError, Suite, load_suite, shipped_suites
    from broker.apps.conformance.runner import Runner, Target
    from broker.apps.deployment import REGISTRY_FILE, SECRETS_DIR
    from broker.trust import PartyRegistry, load_registry
    from broker.trust.intake_token import read_token
    from broker.trust.intake_token import token_file as default_token
    from schemas.vocab import PartyRole

    settings = load_or_exit(config)
    state = Path(settings.state_dir)
    try:
        suites = {s.suite: s for s in [load_suite(cases)]} if cases else shipped_suites()
    except CaseFileError as e:
        err.print(f"[bold red]bad case file[/]: {e}")
        raise typer.Exit(2) from None
    reg_path = settings.registry_file or state / REGISTRY_FILE
    registry = load_registry(reg_path) if reg_path.exists() else PartyRegistry()
    if target in registry and party is None:
        party = target
    role = registry.get(party).role.value if party and party in registry else None
    flow: str | None = None
    suite: Suite | None = suites.get(target)
    if suite is None:
        flows = {c.flow for s in suites.values() for c in s.cases}
        if target in flows:
            flow = target
        elif target not in registry:
            err.print(f"[bold red]{target!r}[/] is no suite ({', '.join(suites)}), flow or "
                      f"party of the registry at {reg_path}")
            raise typer.Exit(2)
        fitting = [s for s in suites.values() if role is None or role in s.roles]
        fitting = [s for s in fitting if flow is None or s.select(flow)]
        if not fitting:
            err.print(f"[bold red]no suite fits[/] {target!r} (role {role or '?'})")
            raise typer.Exit(2)
        suite = fitting[0]
    if party and data_dir is None and (state / "data" / party).is_dir():
        data_dir = state / "data" / party
    inbox = inbox or (data_dir / "inbox" if data_dir else None)
    outbox = outbox or (data_dir / "outbox" if data_dir else None)
    token = None
    if token_file is None and party and default_token(state / SECRETS_DIR, party).exists():
        token_file = default_token(state / SECRETS_DIR, party)
    if token_file is not None:
        token = read_token(token_file)
    if only == "inbox":
        url = None
    elif only == "http":
        inbox = None
    if inbox is None and url is None:
        err.print("[bold red]nothing to test[/]: give --data-dir, --inbox or --url")
        raise typer.Exit(2)
    region = region or (registry.get(party).region if party and party in registry else None)
    region = region or "midden-nederland"
    zvhs = [p.id for p in registry.by_role(PartyRole.ZVH) if p.region == region]
    where = Target(inbox=inbox, outbox=outbox, url=url, token=token, region=region,
                   zvh=zvhs[0] if zvhs else "zvh-midden-nederland", settings=settings,
                   timeout=timeout, ca=ca_file,
                   client_cert=(client_cert, client_key or client_cert) if client_cert else None)
    results = asyncio.run(Runner(where).run(suite.select(flow)))
    name = party or str(inbox or url)
    console.print(report.table(suite.suite + (f"/{flow}" if flow else ""), name, results))
    if outbox is None:
        console.print("[yellow]no outbox given: the router's answers were not checked[/]")
    if json_out:
        report.write_json(json_out, suite.suite, name, results)
    if junit:
        report.write_junit(junit, suite.suite, name, results)
    raise typer.Exit(0 if results and all(r.passed for r in results) else 1)
