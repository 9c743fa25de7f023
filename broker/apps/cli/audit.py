"""``ketenbus audit``: verify, query and export the audit trail.

Records come from a JSONL export (``--file``) or straight from the ``audit`` topic
(``--bootstrap HOST:PORT``, default ``$KETENBUS_BOOTSTRAP_SERVERS``).

``query`` verifies the trail before it answers (with ``--keys``, or the party registry's keys)
and marks every row whose record did not verify. With ``--bsn`` it pseudonymises the BSN as the
web app's compliance search does and audits the search on its own chain before it answers.

Exit codes: 0 = done (``verify``, ``query``: the trail is intact); 1 = the trail has findings,
each printed with its position (``query`` still answers, marking what did not verify); 2 = the
input could not be read (bad options, keys, file or broker), or a search could not be audited.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from broker.audit import (
    DEFAULT_TOPIC,
    Answer,
    AuditQuery,
    AuditReadError,
    KeyLoadError,
    TrailTrust,
    answer,
    looks_like_bsn,
    read_jsonl,
    read_topic_sync,
    to_csv,
    to_json,
    to_text,
    write_jsonl,
)
from broker.audit import verify as verify_chain
from broker.audit.checkpoint import Checkpoint, CheckpointError, latest, write_checkpoints
from broker.audit.signers import dump_signers, load_signers
from schemas import topics

if TYPE_CHECKING:
    from broker.config import Settings

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
    TEXT = "text"
    TABLE = "table"  # the former name of text
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
    checkpoints = _checkpoints(checkpoint)
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


def _trust(keys: Path, checkpoints: list[Path] | None = None) -> TrailTrust:
    """What ``query`` verifies the trail against: one place to load it (the chain-bound key
    export or the registry, and checkpoint files)."""
    try:
        signers = load_signers(keys)
    except KeyLoadError as exc:
        raise _fail(str(exc)) from exc
    return TrailTrust(signers, tuple(_checkpoints(checkpoints)))


def _checkpoints(paths: list[Path] | None) -> list[bytes]:
    out: list[bytes] = []
    for path in paths or ():
        try:
            out += read_jsonl(path)
        except OSError as exc:
            raise _fail(f"cannot read {path}: {exc.strerror or exc}") from exc
    return out


def _settings(bootstrap: str | None) -> Settings:
    from broker.apps.cli.common import load_or_exit

    settings = load_or_exit(None)
    try:
        return settings.with_bootstrap(bootstrap) if bootstrap else settings
    except ValueError as exc:
        raise _fail(f"--bootstrap: {exc}") from exc


def _registry_file(settings: Settings) -> Path:
    from broker.apps import deployment

    return settings.registry_file or Path(settings.state_dir) / deployment.REGISTRY_FILE


# A BSN as people write it: 8-9 digits, maybe grouped by spaces, dots or hyphens.
_WRITTEN_BSN = re.compile(r"^[0-9][0-9 .-]{6,12}[0-9]$")


def _refuse_bsn_as_pseudonym(values: list[str]) -> None:
    """``--person`` takes pseudonyms; a BSN there would match nothing and look like "no
    records about this person". Refused, and the message does not repeat it."""
    for v in values:
        if looks_like_bsn(v) or (_WRITTEN_BSN.match(v.strip()) and looks_like_bsn(
                re.sub(r"[ .-]", "", v.strip()))):
            raise _fail("--person takes a pseudonym (p-...), and this looks like a BSN: use "
                        "--bsn to search by BSN (it is pseudonymised and the search is audited)")


def _read_bsn(bsn: str) -> str:
    """The 9-digit BSN of ``--bsn`` (``-``: one line from stdin, which keeps it out of the
    shell history and the process list); refused with a message that never repeats it."""
    from broker.trust.pseudonym import normalise_bsn

    text = sys.stdin.readline().strip() if bsn == "-" else bsn
    try:
        return normalise_bsn(text)
    except ValueError as exc:
        raise _fail(f"--bsn: {exc}") from exc


def _audited_search(
    q: AuditQuery,
    *,
    bsn: str,
    officer: str,
    organisation: str | None,
    chain: str | None,
    fmt: Format,
    settings: Settings,
    trust_keys: Path | None,
    file: Path | None,
    checkpoints: list[Path] | None = None,
) -> tuple[Answer, str]:
    """Pseudonymise the BSN as the web app does, answer, and audit the search on the CLI's own
    chain before anything is shown (NEN 7513). Returns the answer and the audit pseudonym."""
    from broker.apps.cli.services import _deployment
    from broker.apps.web.compliance import (
        PERSON_DOMAINS,
        ComplianceService,
        SearchNotAudited,
        person_pseudonymiser,
    )
    from schemas.vocab import PartyRole

    if settings.bootstrap_servers is None:
        raise _fail(f"--bsn audits the search on the audit topic: give --bootstrap HOST:PORT "
                    f"(or set ${BOOTSTRAP_ENV})")
    dep = _deployment(settings)
    pseudonyms = person_pseudonymiser(dep)
    if pseudonyms is None:
        raise _fail("the router's pseudonym secret is not on this machine, so a BSN cannot "
                    "be pseudonymised here")
    persons = pseudonyms.translate(bsn, PERSON_DOMAINS)
    if organisation is None:
        ids = [p.id for p in dep.registry.by_role(PartyRole.CAPACITY_DASHBOARD)]
        if not ids:
            raise _fail("give --organisation: the party whose key signs the search record")
        organisation = ids[0]
    try:
        keys = dep.keyring(organisation).current
    except Exception as exc:  # no key file of that party here
        raise _fail(f"no private key of {organisation} on this machine "
                    f"({type(exc).__name__})") from exc
    if chain is None:  # the chain the registry declares for this CLI's searches (signer binding)
        declared = [d.chain for d in dep.registry.audit_chains_of(organisation)]
        chain = next((c for c in declared if c.endswith("-cli")), f"{organisation}-cli")
    service = ComplianceService(settings, dep.registry, keys, pseudonyms,
                                chain_id=chain, datakeys=dep.reader_key_store(settings),
                                trust=_trust(trust_keys or _registry_file(settings), checkpoints)
                                if trust_keys or checkpoints else None)
    query = replace(q, persons=q.persons | frozenset(persons.values()))
    records = None if file is None else _records(file, None, DEFAULT_TOPIC)

    async def run() -> Answer:
        try:
            await asyncio.wait_for(service.start(), timeout=60)
        except Exception as exc:  # aiokafka raises its own errors, not OSError
            raise SearchNotAudited(
                f"the audit topic cannot be reached ({type(exc).__name__}), so the search "
                "cannot be audited") from exc
        try:
            return await service.search(query, officer=officer, person=persons["audit"],
                                        export=fmt in (Format.CSV, Format.JSON),
                                        fmt=fmt.value,
                                        records=records)
        finally:
            await service.stop()

    try:
        return asyncio.run(run()), persons["audit"]
    except SearchNotAudited as exc:
        raise _fail(f"{exc}: no results are shown") from exc
    except (OSError, TimeoutError) as exc:
        raise _fail(f"the audit topic could not be read or written: {exc}") from exc


@app.command()
def query(
    person: Annotated[
        list[str] | None,
        typer.Option("--person", help="Pseudonym of the person (repeat for several)."),
    ] = None,
    bsn: Annotated[
        str | None,
        typer.Option(
            "--bsn",
            help="BSN of the person ('-': read it from stdin). Pseudonymised here; the search "
            "is audited on the audit topic before it answers. Needs --officer.",
        ),
    ] = None,
    officer: Annotated[
        str | None,
        typer.Option("--officer", help="Your user id as compliance officer (with --bsn)."),
    ] = None,
    organisation: Annotated[
        str | None,
        typer.Option(
            "--organisation",
            help="Party id that signs the search record (default: the web app's party).",
        ),
    ] = None,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help="Audit chain of this CLI (default: the organisation's chain declared for the "
            "CLI, its id ending in -cli).",
        ),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="Who may sign which chain: the export of 'ketenbus audit keys' or the party "
            "registry (default: the registry of the settings).",
        ),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Signed checkpoints (JSONL) to verify the trail against as well: a cut-off "
            "tail then makes the answer 'tampered' too (repeatable).",
        ),
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
            "compliance-search, reprocess.",
        ),
    ] = None,
    flow: Annotated[list[str] | None, typer.Option("--flow", help="Message event code.")] = None,
    message_id: Annotated[
        list[str] | None,
        typer.Option("--message-id", help="Only the records of this message (repeatable; "
                     "its whole path: ketenbus trace)."),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="Output: text in words, or csv/json for export.")
    ] = Format.TEXT,
    file: FileOpt = None,
    bootstrap: BootstrapOpt = None,
    topic: TopicOpt = DEFAULT_TOPIC,
) -> None:
    """Who received what about whom, when, for which purpose, on which legal basis; from a
    trail verified first (exit 1 when it does not verify)."""
    _refuse_bsn_as_pseudonym(person or [])
    bsn9 = None
    if bsn is not None:
        bsn9 = _read_bsn(bsn)
        if not officer or not officer.strip():
            raise _fail("--bsn needs --officer: the audit trail records who searched")
        if looks_like_bsn(officer):
            raise _fail("--officer takes your user id, not a BSN")
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
        message_ids=frozenset(message_id or ()),
    )
    searched_as = None
    if bsn9 is not None:
        assert officer is not None
        result, searched_as = _audited_search(
            q, bsn=bsn9, officer=officer.strip(), organisation=organisation, chain=chain,
            fmt=fmt, settings=_settings(bootstrap), trust_keys=keys, file=file,
            checkpoints=checkpoint)
    else:
        if keys is None:
            keys = _registry_file(_settings(bootstrap))
            if not keys.exists():
                raise _fail("give --keys (the audit key export or the party registry) to "
                            "verify the trail before it is queried")
        trust = _trust(keys, checkpoint)
        result = answer(_records(file, bootstrap, topic), q, trust)
    _print_answer(result, fmt, searched_as)
    if result.tampered:
        raise typer.Exit(EXIT_FINDINGS)


def _print_answer(result: Answer, fmt: Format, searched_as: str | None) -> None:
    """Rows on stdout; for an export the banner goes to stderr, so the file stays data (each
    row still carries ``verified``)."""
    banner = result.banner()
    if fmt is Format.JSON:
        typer.echo(to_json(result.rows))
    elif fmt is Format.CSV:
        typer.echo(to_csv(result.rows), nl=False)
    else:
        title = f"{len(result.rows)} of {result.total} audit records"
        if not result.tampered:
            title += " (the trail verified)"
        if searched_as:
            title += f"; person searched as {searched_as} (audit domain), search audited"
        width = shutil.get_terminal_size((100, 24)).columns
        typer.echo(to_text(result.rows, width=width, banner=banner, title=title), nl=False)
        banner = None
    err = Console(stderr=True, highlight=False, markup=False)
    if banner:
        err.print("!! " + banner, soft_wrap=False)
    if result.tampered:
        for finding in result.report.findings[:50]:
            err.print(str(finding))


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
