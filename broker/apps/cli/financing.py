"""``ketenbus financing``: check and explain the financing rules; ``ketenbus payer``: run one
payer adapter. The rules commands need no Kafka -- they answer a financial controller's questions
from the rules file alone: who pays a registration, a coordination month, a treatment or support
on a date for a described person, and why (rule and source); which claims, holds and
escalations a described case gives, with their explanations; what the 28-day watchdog does with
a claim sent on a date."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
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
    placement: str | None = None,
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
        municipal_placement=placement,
    )


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"[bold red]{what}[/] must be a date, YYYY-MM-DD (got {text!r})")
        raise typer.Exit(2) from None


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
    placement: Annotated[
        str | None, typer.Option(help="Municipality that placed the person (code).")
    ] = None,
    month: Annotated[
        bool, typer.Option(help="Judge every day of DATE's calendar month (coordination).")
    ] = False,
    rules: RulesFile = None,
) -> None:
    """Who pays SERVICE delivered on DATE, by which rule, on which inputs and source (exit 1:
    a gap). With --month: every day of the month, split where the payer changes, with amounts."""
    from adapters.financing.accrual import month_end, runs
    from adapters.financing.rules import Ruling
    from schemas.vocab import ClaimService

    try:
        svc = ClaimService(service)
    except ValueError as e:
        err.print(f"[bold red]invalid input:[/] {e}")
        raise typer.Exit(2) from None
    day = _day(on, "--date")
    facts = _facts(
        municipality, homeless, zvh, zvh_municipality, criminal_title, insurer, care_office,
        placement,
    )  # fmt: skip
    rs = _rules(rules)
    if month:
        table = Table(title=f"{svc.value} in {day:%Y-%m}")
        for col in ("from", "to", "days", "payer / gap", "rule", "amount (EUR)"):
            table.add_column(col)
        gaps = 0
        for s in runs(rs, svc, day.replace(day=1), month_end(day), facts):
            o = s.outcome
            if isinstance(o, Ruling):
                amount = "agreed" if o.price_cents is None else _euros(s.days * o.price_cents)
                who = f"{o.target.value} {o.payer_identifier or ''}".rstrip()
                table.add_row(
                    str(s.start), str(s.end), str(s.days), who, f"{o.rule}@{o.version}", amount
                )
            else:
                gaps += 1
                table.add_row(
                    str(s.start), str(s.end), str(s.days), f"[yellow]gap[/] {o.reason}", "-", "-"
                )
        out.print(table)
        raise typer.Exit(1 if gaps else 0)
    outcome = rs.decide(svc, day, facts)
    if isinstance(outcome, Ruling):
        out.print(
            f"[bold green]{outcome.target.value}[/] {outcome.payer_identifier or ''}".rstrip()
        )
        out.print(f"rule {outcome.rule}@{outcome.version}, regime {outcome.regime}")
        price = "no fixed price" if outcome.price_cents is None else _euros(outcome.price_cents)
        out.print(f"price {price}; basis {outcome.basis} ({outcome.citation})")
        for k, v in outcome.inputs:
            out.print(f"  {k} = {v}")
        out.print(f"source: {escape(outcome.source)}")
        out.print(escape(outcome.text))
        return
    out.print(f"[bold yellow]gap ({outcome.reason})[/]: {escape(outcome.text)}")
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


@app.command("case")
def case(
    registered: Annotated[str, typer.Option(help="Registration date at the ZVH, YYYY-MM-DD.")],
    assessed: Annotated[str, typer.Option(help="Assessment date, YYYY-MM-DD.")],
    today: Annotated[str, typer.Option(help="The date to look from (Dutch calendar date).")],
    inclusion: Annotated[
        str | None, typer.Option(help="Inclusion date (absent: not included).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="End of care, YYYY-MM-DD.")] = None,
    municipality: Annotated[str | None, typer.Option(help="Municipality of residence.")] = None,
    homeless: Annotated[bool, typer.Option(help="No fixed address.")] = False,
    zvh_municipality: Annotated[
        str | None, typer.Option(help="The ZVH's central municipality.")
    ] = None,
    criminal_title: Annotated[
        str | None, typer.Option(help="Criminal-law title period: FROM or FROM..TO.")
    ] = None,
    insurer: Annotated[str | None, typer.Option(help="Health insurer UZOVI.")] = None,
    placement: Annotated[
        str | None, typer.Option(help="Municipality that placed the person (code).")
    ] = None,
    allocation: Annotated[
        str | None,
        typer.Option(
            help="WMO301 ToewijzingNummer the municipality allocated (from the case's "
            "registration on, open-ended)."
        ),
    ] = None,
    unpaid: Annotated[
        bool, typer.Option(help="No payer answers: show the watchdog's escalations too.")
    ] = False,
    rules: RulesFile = None,
) -> None:
    """The claims, held claims and escalations the claims desk makes for a described case from
    the assessment up to TODAY, each with its rule, inputs and source."""
    from adapters.financing.desk import Allocation, ClaimsDesk, Coverage, ReferralFacts
    from adapters.financing.payers import DescribedPayers
    from schemas.flows.assessment import AssessmentOutcome, CriterionAssessment
    from schemas.flows.common import Person
    from schemas.vocab import (
        AdvisedAlternative,
        AssessmentDecision,
        CriterionResult,
        InclusionCriterion,
    )

    reg, judged, now = (
        _day(registered, "--registered"),
        _day(assessed, "--assessed"),
        _day(today, "--today"),
    )
    included = _day(inclusion, "--inclusion") if inclusion else None
    facts = _facts(municipality, homeless, "zvh", zvh_municipality, criminal_title, insurer, None)
    person = Person(
        bsn="999990019",  # a test BSN: the described person is nobody
        family_name="Beschreven",
        birth_date=date(1980, 1, 1),
        residence_municipality=municipality,
        homeless=homeless,
    )
    desk = ClaimsDesk(
        "claimant", _rules(rules), DescribedPayers(zvh_municipality), claimant_agb="00000000"
    )
    desk.referral(ReferralFacts("zvh", "case", reg, person, facts.titles))
    result = CriterionResult.MET if included else CriterionResult.NOT_MET
    desk.assessment(
        AssessmentOutcome(
            assessment_id="assessment",
            zvh="zvh",
            referral_id="case",
            provider="claimant",
            assessed_on=judged,
            person=person,
            decision=AssessmentDecision.INCLUDED if included else AssessmentDecision.NOT_INCLUDED,
            criteria=tuple(
                CriterionAssessment(criterion=c, result=result) for c in InclusionCriterion
            ),
            reasons="Described case.",
            alternative=None if included else AdvisedAlternative.MENTAL_HEALTH,
            inclusion_date=included,
            episode_id="episode" if included else None,
        )
    )
    desk.coverage("zvh", "case", Coverage(health_insurer=insurer, municipal_placement=placement))
    if allocation:
        desk.allocation("zvh", "case", Allocation("wmo301", allocation, municipality or "", reg))
    if end:
        desk.cases[("zvh", "case")].end = _day(end, "--end")
    # the desk as it would have run, day by day from the assessment to TODAY
    from datetime import datetime, time, timedelta

    from adapters.financing.desk import Work
    from adapters.financing.rules import DUTCH_TIME

    work = Work()
    day = judged
    while day <= now:
        step = desk.due(datetime.combine(day, time(12), DUTCH_TIME))
        for c in step.claims:
            desk.claim_sent(c.claim, c.meta.message_id, day)
        for x in step.escalations:
            desk.escalation_raised(x.escalation.escalation_id)
        work.claims += step.claims
        work.escalations += [
            x
            for x in step.escalations
            if unpaid or not x.escalation.escalation_id.startswith("LATE-")
        ]
        day += timedelta(days=1)
    out.print(f"[bold]claims of the described case on {now}[/]")
    for c in work.claims:
        e = c.claim.explanation
        out.print(
            f"[green]claim {c.claim.claim_id}[/] {c.claim.service.value} "
            f"{c.claim.period_start}..{c.claim.period_end}: EUR {_euros(c.claim.amount_cents)} "
            f"to {c.claim.payer.role.value} {c.claim.payer.identifier}"
            + (f" (allocation {c.claim.allocation})" if c.claim.allocation else "")
        )
        if e is not None:
            out.print(f"  {escape(e.text or '')}")
    for h in desk.held.values():
        price = "no fixed price" if h.ruling.price_cents is None else _euros(h.ruling.price_cents)
        out.print(
            f"[yellow]held {h.claim_id}[/] ({h.reason}) {h.ruling.service.value} "
            f"{h.period_start}..{h.period_end}: {price}, attributed to {h.ruling.target.value}"
        )
        out.print(f"  {escape(h.text)}")
    for x in work.escalations:
        out.print(
            f"[red]escalation {x.escalation.escalation_id}[/] ({x.escalation.reason.value}) "
            f"to the national coordination point, stuck since {x.escalation.stuck_since}"
        )
        out.print(f"  {escape(x.escalation.explanation or '')}")
    if not (work.claims or desk.held or work.escalations):
        out.print("nothing is due yet")


@app.command("watchdog")
def watchdog(
    sent: Annotated[str, typer.Option(help="Date the claim was sent, YYYY-MM-DD.")],
    today: Annotated[str | None, typer.Option(help="The date to look from.")] = None,
    emergency: Annotated[
        bool, typer.Option(help="The claim went to VWS under the emergency rule.")
    ] = False,
    rules: RulesFile = None,
) -> None:
    """What the watchdog does with an unpaid claim sent on SENT: the last quiet day and the day
    it escalates (more than the rules file's days); with --today, what it does that day."""
    from datetime import timedelta

    rs = _rules(rules)
    day = _day(sent, "--sent")
    days = rs.overdue_after_days
    last_quiet, escalates = day + timedelta(days=days), day + timedelta(days=days + 1)
    out.print(
        f"a claim sent on {day} and still unpaid is escalated (payment-overdue) to the national "
        f"coordination point on {escalates}: more than {days} days; {last_quiet} is the last "
        f"day without \\[source: {escape(rs.doc.watchdog.cite.label())}]"
    )
    em = rs.emergency
    if emergency:
        if em.covers(day):
            out.print(
                f"under {em.ref} VWS advances it from {escalates} "
                f"(more than {em.advance_after_days} days) \\[source: {escape(em.cite.label())}]"
            )
        else:
            out.print(f"{em.ref} ran {em.label()}: it does not cover a claim sent on {day}")
    if today:
        now = _day(today, "--today")
        if now >= escalates:
            out.print(f"on {now}: [bold red]escalate[/] ({(now - day).days} days unpaid)")
        else:
            out.print(f"on {now}: wait ({(now - day).days} days unpaid, escalates on {escalates})")


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
