"""``ketenbus financing``: check and explain the financing rules; ``ketenbus payer``: run one
payer adapter. The rules commands need no Kafka -- they answer "who pays what on which date, and
why" from the rules file alone, for an operator or an auditor."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adapters.financing.rules import (
    Facts,
    RulesError,
    RuleSet,
    TitlePeriod,
    default_rules,
    load_rules,
)
from broker.apps.cli.common import err, load_or_exit
from schemas.vocab import LegalTitleKind

app = typer.Typer(
    help="Financing rules: check the rules file, judge a service on a date, show accrual.",
    no_args_is_help=True,
)
out = Console(highlight=False)

RulesFile = Annotated[
    Path | None, typer.Option("--rules", help="Rules file (default: the shipped rules).")
]


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _rules(path: Path | None) -> RuleSet:
    try:
        return load_rules(path) if path else default_rules()
    except RulesError as e:
        err.print(f"[bold red]rules refused:[/] {e}")
        raise typer.Exit(2) from None


def _facts(
    municipality: str | None,
    homeless: bool,
    zvh: str | None,
    zvh_municipality: str | None,
    criminal_title: str | None,
    insurer: str | None,
    care_office: str | None,
) -> Facts:
    titles: tuple[TitlePeriod, ...] = ()
    if criminal_title:
        start, _, end = criminal_title.partition("..")
        try:
            titles = (
                TitlePeriod(
                    LegalTitleKind.CRIMINAL,
                    date.fromisoformat(start),
                    date.fromisoformat(end) if end else None,
                ),
            )
        except ValueError:
            err.print("[bold red]--criminal-title[/] must be YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
            raise typer.Exit(2) from None
    return Facts(
        municipality=municipality,
        homeless=homeless,
        zvh=zvh,
        zvh_municipality=zvh_municipality,
        titles=titles,
        health_insurer=insurer,
        care_office=care_office,
    )


@app.command("rules")
def rules_table(rules: RulesFile = None) -> None:
    """Check the rules file and print every rule and documented gap with its period."""
    rs = _rules(rules)
    table = Table(title=f"financing rules ({rs.source})")
    for col in ("service", "rule", "valid", "price", "payers (in order)"):
        table.add_column(col)
    for r in rs.rules:
        price = "agreed" if r.price_cents is None else _euros(r.price_cents)
        payers = "; ".join(f"{p.when} → {p.pay} ({p.regime})" for p in r.payers)
        table.add_row(r.service.value, r.ref, r.label(), price, payers)
    for g in rs.doc.gaps:
        table.add_row(g.service.value, "[yellow]gap[/]", g.label(), "-", " ".join(g.note.split()))
    em = rs.emergency
    table.add_row(
        "any (regime unclear)",
        em.ref,
        em.label(),
        "as the rule",
        f"vws, advances after {em.advance_after_days} days",
    )
    out.print(table)
    out.print(f"watchdog: claims unpaid for more than {rs.overdue_after_days} days are escalated")


@app.command("judge")
def judge(
    service: Annotated[
        str, typer.Option(help="registration, coordination-day, treatment, support")
    ],
    on: Annotated[str, typer.Option("--date", help="Service date, YYYY-MM-DD.")],
    municipality: Annotated[str | None, typer.Option(help="Municipality of residence.")] = None,
    homeless: Annotated[bool, typer.Option(help="No fixed address.")] = False,
    zvh: Annotated[str | None, typer.Option(help="The ZVH of the case.")] = None,
    zvh_municipality: Annotated[
        str | None, typer.Option(help="That ZVH's central municipality.")
    ] = None,
    criminal_title: Annotated[
        str | None, typer.Option(help="Criminal-law title period: FROM or FROM..TO.")
    ] = None,
    insurer: Annotated[str | None, typer.Option(help="Health insurer UZOVI.")] = None,
    care_office: Annotated[str | None, typer.Option(help="Care office (Wlz indication).")] = None,
    rules: RulesFile = None,
) -> None:
    """Who pays SERVICE delivered on DATE, by which rule and on which inputs (exit 1: a gap)."""
    from adapters.financing.rules import Ruling
    from schemas.vocab import ClaimService

    try:
        svc, day = ClaimService(service), date.fromisoformat(on)
    except ValueError as e:
        err.print(f"[bold red]invalid input:[/] {e}")
        raise typer.Exit(2) from None
    facts = _facts(
        municipality, homeless, zvh, zvh_municipality, criminal_title, insurer, care_office
    )
    outcome = _rules(rules).decide(svc, day, facts)
    if isinstance(outcome, Ruling):
        out.print(f"[bold green]{outcome.payer_role}[/] {outcome.payer_identifier or ''}".rstrip())
        out.print(f"rule {outcome.rule}@{outcome.version}, regime {outcome.regime}")
        for k, v in outcome.inputs:
            out.print(f"  {k} = {v}")
        out.print(outcome.text)
        return
    out.print(f"[bold yellow]gap ({outcome.reason})[/]: {outcome.text}")
    raise typer.Exit(1)


@app.command("accrue")
def accrue(
    inclusion: Annotated[str, typer.Option(help="Inclusion date, YYYY-MM-DD.")],
    today: Annotated[str, typer.Option(help="The date to accrue up to (exclusive).")],
    end: Annotated[str | None, typer.Option(help="End of care, YYYY-MM-DD.")] = None,
    criminal_title: Annotated[
        str | None, typer.Option(help="Criminal-law title period: FROM or FROM..TO.")
    ] = None,
    insurer: Annotated[str | None, typer.Option(help="Health insurer UZOVI.")] = None,
    rules: RulesFile = None,
) -> None:
    """The coordination days claimable by TODAY, per calendar month, with payer or gap."""
    from adapters.financing.accrual import Episode, coordination_segments
    from adapters.financing.rules import Ruling

    try:
        episode = Episode(
            "episode",
            date.fromisoformat(inclusion),
            date.fromisoformat(end) if end else None,
        )
        until = date.fromisoformat(today)
    except ValueError as e:
        err.print(f"[bold red]invalid date:[/] {e}")
        raise typer.Exit(2) from None
    facts = _facts(None, False, None, None, criminal_title, insurer, None)
    table = Table(title=f"coordination days claimable on {until}")
    for col in ("from", "to", "days", "payer / gap", "amount (EUR)"):
        table.add_column(col)
    for s in coordination_segments(_rules(rules), episode, facts, until):
        o = s.outcome
        if isinstance(o, Ruling):
            amount = s.days * (o.price_cents or 0)
            who = f"{o.payer_role} {o.payer_identifier or ''} ({o.rule}@{o.version})"
            table.add_row(str(s.start), str(s.end), str(s.days), who, _euros(amount))
        else:
            table.add_row(str(s.start), str(s.end), str(s.days), f"[yellow]gap[/] {o.reason}", "-")
    out.print(table)


def payer(
    party: Annotated[str, typer.Option(help="This payer's party id in the registry.")],
    data_dir: Annotated[Path, typer.Option(help="Folder for inbox/ and outbox/.")] = Path("data"),
    config: Annotated[Path | None, typer.Option(help="Config file (YAML/TOML).")] = None,
) -> None:
    """Run one payer adapter: claims → declaration files in outbox/, answer files in inbox/ →
    claim responses to the claimant; a municipality's also takes referral notices and sends its
    JSON documents (docs/adapters/municipality.md)."""
    from adapters.municipality.service import MunicipalityAdapter
    from adapters.payer.service import PayerAdapter
    from broker.apps.cli.services import _deployment, _run_until_signal
    from schemas.vocab import PartyRole

    logging.basicConfig(level=logging.INFO)
    settings = load_or_exit(config)
    if settings.bootstrap_servers is None:
        err.print("[bold red]KETENBUS_BOOTSTRAP_SERVERS is not set[/]: an adapter needs a Kafka")
        raise typer.Exit(2)
    dep = _deployment(settings)
    try:
        client = dep.party_client(party)
        # A municipality's adapter is the payer's plus its part in the registration phase.
        municipal = client.registry.get(party).role is PartyRole.MUNICIPALITY
        kind = MunicipalityAdapter if municipal else PayerAdapter
        adapter = kind(settings, client, data_dir / "inbox", data_dir / "outbox")
    except ValueError as e:
        err.print(f"[bold red]{e}[/]")
        raise typer.Exit(2) from None
    asyncio.run(_run_until_signal(adapter))
