"""``ketenbus audit``: verify, query and export the audit trail.

Records come from a JSONL export (``--file``) or straight from the ``audit`` topic
(``--bootstrap HOST:PORT``, default ``$KETENBUS_BOOTSTRAP_SERVERS``).

Exit codes: 0 = done (``verify``: the chain is intact); 1 = ``verify`` found problems, each
printed with its position; 2 = the input could not be read (bad options, keys, file or broker).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from broker.audit import (
    DEFAULT_TOPIC,
    AuditQuery,
    AuditReadError,
    KeyLoadError,
    decode_rows,
    read_jsonl,
    read_topic_sync,
    to_csv,
    to_json,
    to_table,
    write_jsonl,
)
from broker.audit import verify as verify_chain
from broker.audit.checkpoint import Checkpoint, CheckpointError, latest, write_checkpoints
from broker.audit.signers import dump_signers, load_signers
from schemas import topics

app = typer.Typer(
    name="audit",
    help="Verify, query and export the hash-chained audit trail (NEN 7513 AuditEvents).",
    no_args_is_help=True,
    add_completion=False,
)

BOOTSTRAP_ENV = "KETENBUS_BOOTSTRAP_SERVERS"
EXIT_FINDINGS = 1
EXIT_INPUT = 2

FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="A JSONL export (one record per line)."),
]
BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap",
        envvar=BOOTSTRAP_ENV,
        help=f"Kafka bootstrap HOST:PORT (default ${BOOTSTRAP_ENV}).",
    ),
]
TopicOpt = Annotated[str, typer.Option("--topic", help="The audit topic.")]


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(EXIT_INPUT)


def _records(file: Path | None, bootstrap: str | None, topic: str) -> list[bytes]:
    try:
        if file is not None:
            return list(read_jsonl(file))
        if bootstrap:
            return read_topic_sync(bootstrap, topic)
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}") from exc
    except AuditReadError as exc:
        raise _fail(str(exc)) from exc
    raise _fail(f"give --file F or --bootstrap HOST:PORT (or set ${BOOTSTRAP_ENV})")


@app.command()
def verify(
    keys: Annotated[
        Path,
        typer.Option(
            "--keys",
            help="Who may sign which chain: the export of 'ketenbus audit keys' (JSON) or the "
            "party registry (YAML). Bare keys (<kid>.pem, a JSON map) are refused: they bind "
            "no key to a chain.",
        ),
    ],
    file: FileOpt = None,
    bootstrap: BootstrapOpt = None,
    topic: TopicOpt = DEFAULT_TOPIC,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Signed checkpoints (JSONL, from 'ketenbus audit checkpoint export'), kept "
            "out of the operators' reach: reports a cut-off tail (truncated), a fork, a "
            "missing chain. Repeatable.",
        ),
    ] = None,
) -> None:
    """Check every record: strict form, declared chain, hash, signature, signer and key
    validity, batch completeness, sequence and links, and against checkpoints; exit 1 on any
    finding (docs/audit-format.md, section 8)."""
    try:
        signers = load_signers(keys)
    except KeyLoadError as exc:
        raise _fail(str(exc)) from exc
    checkpoints: list[bytes] = []
    for path in checkpoint or ():
        try:
            checkpoints += read_jsonl(path)
        except OSError as exc:
            raise _fail(f"cannot read {path}: {exc.strerror or exc}") from exc
    records = _records(file, bootstrap, topic)
    report = verify_chain(records, signers, checkpoints=checkpoints)
    out = Console(highlight=False)
    if report.ok:
        heads = (
            ", ".join(
                f"{c} up to seq {s} (hash {h})" for c, (s, h) in sorted(report.heads.items())
            )
            or "no chains"
        )
        out.print(f"intact: {report.records} records; {heads}", soft_wrap=True)
        return
    for finding in report.findings:
        out.print(str(finding), soft_wrap=True)  # one finding a line, whatever the width: grep
    out.print(f"NOT intact: {len(report.findings)} finding(s) in {report.records} records")
    raise typer.Exit(EXIT_FINDINGS)


def _moment(text: str | None, *, end: bool) -> datetime | None:
    """A date (YYYY-MM-DD, whole day; ``--until`` includes that day) or an ISO 8601 moment;
    without a time zone it is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(f"not a date or ISO 8601 moment: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(text) == 10:
        moment += timedelta(days=1)
    return moment


@app.command()
def query(
    person: Annotated[
        list[str] | None,
        typer.Option("--person", help="Pseudonym of the person (repeat for several)."),
    ] = None,
    party: Annotated[
        str | None, typer.Option("--party", help="Everything this party (id) received.")
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--sender", help="Everything this party (id) sent or did.")
    ] = None,
    refused: Annotated[
        bool, typer.Option("--refused", help="Only denials, refusals and failures.")
    ] = False,
    purpose: Annotated[
        list[str] | None,
        typer.Option("--purpose", help="PurposeOfUse code, e.g. COC, HPAYMT (repeatable)."),
    ] = None,
    legal_basis: Annotated[
        list[str] | None,
        typer.Option(
            "--legal-basis", help="consent, legal-obligation, public-task, conflict-of-duties."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="From this date/moment (inclusive; UTC unless a zone is given)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Up to this date (inclusive) or moment (exclusive)."),
    ] = None,
    outcome: Annotated[
        list[str] | None,
        typer.Option(
            "--outcome", help="0/4/8/12 or success/minor-failure/serious-failure/major-failure."
        ),
    ] = None,
    reason: Annotated[
        list[str] | None,
        typer.Option("--reason", help="Reason code, e.g. no-consent (repeatable)."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="decision-permit, decision-deny, delivery, consent-change, refusal, "
            "compliance-search.",
        ),
    ] = None,
    flow: Annotated[list[str] | None, typer.Option("--flow", help="Message event code.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    file: FileOpt = None,
    bootstrap: BootstrapOpt = None,
    topic: TopicOpt = DEFAULT_TOPIC,
) -> None:
    """Who received what about whom, when, for which purpose, on which legal basis."""
    q = AuditQuery(
        persons=frozenset(person or ()),
        party=party,
        sender=sender,
        refused=refused,
        purposes=frozenset(purpose or ()),
        legal_bases=frozenset(legal_basis or ()),
        since=_moment(since, end=False),
        until=_moment(until, end=True),
        outcomes=frozenset(outcome or ()),
        reasons=frozenset(reason or ()),
        kinds=frozenset(kind or ()),
        flows=frozenset(flow or ()),
    )
    rows, malformed = decode_rows(_records(file, bootstrap, topic))
    found = q.run(rows)
    if fmt is Format.JSON:
        typer.echo(to_json(found))
    elif fmt is Format.CSV:
        typer.echo(to_csv(found), nl=False)
    else:
        console = Console()
        console.print(to_table(found, title=f"{len(found)} of {len(rows)} audit records"))
    if malformed:
        Console(stderr=True).print(
            f"[yellow]warning:[/yellow] {len(malformed)} malformed record(s) skipped at "
            f"position(s) {', '.join(map(str, malformed[:20]))}; run `ketenbus audit verify`",
            highlight=False,
        )


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSONL file to write.")],
    bootstrap: BootstrapOpt = None,
    topic: TopicOpt = DEFAULT_TOPIC,
    file: FileOpt = None,
) -> None:
    """Copy every record of the audit topic, in order, to a JSONL file (one record a line)."""
    records: Iterator[bytes] | list[bytes] = _records(file, bootstrap, topic)
    try:
        n = write_jsonl(records, out)
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot write {out}: {exc}") from exc
    Console(stderr=True).print(f"exported {n} records to {out}", highlight=False)


@app.command("keys")
def keys_export(
    registry: Annotated[
        Path, typer.Option("--registry", help="The party registry that declares the chains.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the export here (else print).")
    ] = None,
) -> None:
    """Export who may sign which audit chain (public keys, validity, writer and its role) as
    the JSON an outside auditor verifies with (docs/audit-format.md, signer binding)."""
    try:
        text = dump_signers(load_signers(registry))
    except KeyLoadError as exc:
        raise _fail(str(exc)) from exc
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from exc
    Console(stderr=True).print(f"wrote the audit signers of {registry} to {out}", highlight=False)


checkpoint_app = typer.Typer(
    name="checkpoint",
    help="Signed heads of the audit chains: export them to keep out of the operators' reach.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(checkpoint_app)


@checkpoint_app.command("export")
def checkpoint_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSONL file to write.")],
    bootstrap: BootstrapOpt = None,
    topic: Annotated[
        str, typer.Option("--topic", help="The checkpoint topic.")
    ] = topics.AUDIT_CHECKPOINT.name,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read checkpoints from this JSONL file.")
    ] = None,
) -> None:
    """Write the latest checkpoint of every chain (as published, unchanged) to a JSONL file.
    Keep it where the broker's operators cannot change it: verify later with
    ``ketenbus audit verify --checkpoint FILE``."""
    found: list[Checkpoint] = []
    bad = 0
    for raw in _records(file, bootstrap, topic):
        try:
            found.append(Checkpoint.decode(raw))
        except CheckpointError:
            bad += 1
    try:
        n = write_checkpoints(latest(found).values(), out)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from exc
    note = f"; {bad} malformed record(s) skipped" if bad else ""
    Console(stderr=True).print(f"exported {n} checkpoint(s) to {out}{note}", highlight=False)
