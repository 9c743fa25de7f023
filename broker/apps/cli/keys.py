"""``ketenbus keys``: generate a party's key pair and keep the public party registry up to date.

Private keys go to a file of mode 0600 (in a 0700 directory) and are never printed; what is
printed or written to the registry is public: key ids, public keys and validity periods.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from broker.trust import (
    AuditChainDecl,
    Identifiers,
    KeyEntry,
    Party,
    PartyRegistry,
    TrustConfigError,
    check_key_id,
    check_party_id,
    dump_registry,
    generate_party_keys,
    load_registry,
    registry_entry,
    write_party_keys,
)
from broker.trust._encoding import b64decode_strict, require_aware, utc_now
from schemas.vocab.roles import PartyRole

app = typer.Typer(
    name="keys",
    help="Party key pairs (private, 0600 files) and the public party registry.",
    no_args_is_help=True,
)

DEFAULT_KEY_DIR = Path(".ketenbus/keys")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _parse_time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return require_aware(datetime.fromisoformat(text), option)
    except ValueError as exc:
        _fail(f"{option}: {exc} (use e.g. 2026-12-01T00:00:00Z)")


def _load(registry: Path) -> PartyRegistry:
    if not registry.exists():
        return PartyRegistry()
    try:
        return load_registry(registry)
    except TrustConfigError as exc:
        _fail(str(exc))


def _fingerprint(public_b64: str) -> str:
    """First 16 hex digits of SHA-256 of a raw public key (to compare keys out of band)."""
    return hashlib.sha256(b64decode_strict(public_b64, 32)).hexdigest()[:16]


def _rotated(party: Party, entry: KeyEntry, overlap: timedelta) -> tuple[Party, list[str]]:
    """``party`` with ``entry`` added; older keys still valid after ``entry.valid_from + overlap``
    end there (the rotation rule: the new key overlaps the old one, then the old one expires)."""
    retire_at = entry.valid_from + overlap
    keys: list[KeyEntry] = []
    notes: list[str] = []
    for old in party.keys:
        ends_later = old.valid_until is None or old.valid_until > retire_at
        if ends_later and old.valid_from < retire_at:
            old = old.model_copy(update={"valid_until": retire_at})
            notes.append(f"key {old.key_id} now ends at {retire_at.isoformat()}")
        keys.append(old)
    keys.append(entry)
    return Party.model_validate({**party.model_dump(), "keys": keys}), notes


@app.command("generate")
def generate(
    party: Annotated[str, typer.Option("--party", help="Party id, e.g. zvh-utrecht.")],
    role: Annotated[
        PartyRole | None, typer.Option("--role", help="Party role (needed for a new party).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the private key file (mode 0700).")
    ] = DEFAULT_KEY_DIR,
    registry: Annotated[
        Path | None,
        typer.Option("--registry", help="Registry YAML to add the public key to (else print)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name of a new party.")] = None,
    region: Annotated[str | None, typer.Option(help="Levensloop region of a new party.")] = None,
    agb: Annotated[str | None, typer.Option(help="AGB code (8 digits).")] = None,
    ura: Annotated[str | None, typer.Option(help="URA number (8 digits).")] = None,
    uzovi: Annotated[str | None, typer.Option(help="UZOVI code (4 digits).")] = None,
    municipality: Annotated[
        str | None, typer.Option(help="Municipality (gemeente) code (4 digits).")
    ] = None,
    key_id: Annotated[
        str | None, typer.Option(help="Key id (default <party>-<yyyymmdd>-<rand4>).")
    ] = None,
    valid_from: Annotated[
        str | None, typer.Option(help="Start of validity, ISO 8601 with zone (default now).")
    ] = None,
    overlap_days: Annotated[
        float,
        typer.Option(
            help="When adding to an existing party: older keys end this long after "
            "the new key's valid_from."
        ),
    ] = 7.0,
) -> None:
    """Generate a key pair: write the private key file (0600) and print the public registry
    entry, or add it to --registry (rotating the party's older keys out after the overlap)."""
    try:
        check_party_id(party)
        if key_id is not None:
            check_key_id(key_id)
    except ValueError as exc:
        _fail(str(exc))
    start = _parse_time(valid_from, "--valid-from")
    if overlap_days < 0:
        _fail("--overlap-days must not be negative")
    ids = {"agb": agb, "ura": ura, "uzovi": uzovi, "municipality": municipality}
    try:
        identifiers = Identifiers.model_validate({k: v for k, v in ids.items() if v is not None})
    except ValueError as exc:
        _fail(str(exc))

    current = _load(registry) if registry is not None else PartyRegistry()
    existing = current.get(party) if party in current else None
    if existing is not None and role is not None and role is not existing.role:
        _fail(f"party {party} is registered with role {existing.role.value}, not {role.value}")
    if registry is not None and existing is None and role is None:
        _fail(f"party {party} is new in {registry}: --role is required")
    keys = generate_party_keys(party, key_id)
    if any(keys.key_id == k.key_id for p in current for k in p.keys):
        _fail(f"key id {keys.key_id} is already in the registry")

    new_party: Party | None = None
    notes: list[str] = []
    try:
        if existing is None and role is not None:
            new_party = registry_entry(
                keys,
                role=role,
                name=name or party,
                region=region,
                identifiers=identifiers,
                valid_from=start,
            )
            entry = new_party.keys[0]
        else:
            public = keys.public()
            entry = KeyEntry(
                key_id=keys.key_id,
                signing_public=public.signing_public,
                encryption_public=public.encryption_public,
                valid_from=start or keys.created,
            )
            if existing is not None:
                changes: dict[str, object] = {}
                if name is not None:
                    changes["name"] = name
                if region is not None:
                    changes["region"] = region
                if any(v is not None for v in ids.values()):
                    changes["identifiers"] = identifiers
                new_party, notes = _rotated(
                    existing.model_copy(update=changes), entry, timedelta(days=overlap_days)
                )
    except ValueError as exc:
        _fail(str(exc))

    try:
        path = write_party_keys(keys, out)
    except TrustConfigError as exc:
        _fail(str(exc))
    typer.echo(f"wrote private key file {path} (mode 0600); keep it secret", err=True)

    if registry is not None and new_party is not None:
        updated = current.with_party(new_party)
        # the party's own audit chain may be signed by its new key too (signer binding): the
        # chain itself hands over with a key-rotation record signed by the old key
        decl = updated.audit_chain_of(party)
        chain = decl.chain if decl else keys.key_id
        kids = [*(decl.keys if decl else []), keys.key_id]
        updated = updated.with_audit_chain(AuditChainDecl(chain=chain, writer=party, keys=kids))
        # a new serial, unsigned: components take it once administrators sign it (party sign)
        dump_registry(updated.with_serial(updated.serial + 1), registry)
        action = "added key" if existing is not None else "added party"
        typer.echo(f"{action} {party} / {keys.key_id} to {registry}", err=True)
        for note in notes:
            typer.echo(note, err=True)
        return
    if new_party is not None:
        document = [new_party.model_dump(mode="json", exclude_none=True)]
        typer.echo("# add under `parties:` in the registry")
    else:
        document = [entry.model_dump(mode="json", exclude_none=True)]
        typer.echo(f"# add under `keys:` of party {party} in the registry")
    typer.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)


@app.command("show")
def show(
    registry: Annotated[Path, typer.Option("--registry", help="Registry YAML file.")],
    at: Annotated[
        str | None, typer.Option("--at", help="Judge validity at this time (default now).")
    ] = None,
) -> None:
    """List the registry's parties and their keys with validity (public data only)."""
    if not registry.exists():
        _fail(f"{registry} does not exist")
    loaded = _load(registry)
    when = _parse_time(at, "--at") or utc_now()
    table = Table(title=f"{registry} at {when.isoformat(timespec='seconds')}")
    for column in ("party", "role", "region", "key id", "valid from", "valid until", "status"):
        table.add_column(column)
    table.add_column("signing key (sha256)", no_wrap=True)
    for party in loaded:
        for index, entry in enumerate(party.keys):
            status = entry.status_at(when)
            style = {"valid": "green", "expired": "red", "revoked": "red"}.get(status, "yellow")
            table.add_row(
                party.id if index == 0 else "",
                party.role.value if index == 0 else "",
                escape(party.region or "") if index == 0 else "",
                entry.key_id,
                entry.valid_from.isoformat(timespec="seconds"),
                entry.valid_until.isoformat(timespec="seconds") if entry.valid_until else "-",
                f"[{style}]{status}[/{style}]",
                _fingerprint(entry.signing_public),
            )
    Console(file=sys.stdout, width=200).print(table)


@app.command("intake-token")
def intake_token(
    party: Annotated[str, typer.Option("--party", help="The party (already in the registry).")],
    registry: Annotated[Path, typer.Option("--registry", help="Registry YAML file.")],
    out: Annotated[
        Path, typer.Option("--out", help="New token file (mode 0600); must not exist yet.")
    ],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Drop the party's earlier tokens (end of a rotation)."),
    ] = False,
) -> None:
    """A bearer token for the party's HTTP intake: the token goes to ``--out`` (0600), only
    its SHA-256 to the registry, beside the earlier ones unless ``--replace`` (a rotation has
    both valid until the old one is dropped)."""
    from broker.trust.intake_token import load_or_create_token, token_digest

    current = _load(registry)
    if party not in current:
        _fail(f"{party} is not in {registry}; add it first (keys generate --registry)")
    if out.exists():
        _fail(f"{out} exists; a token file is never overwritten")
    try:
        digest = token_digest(load_or_create_token(out))
    except TrustConfigError as exc:
        _fail(str(exc))
    entry = current.get(party)
    kept = [] if replace else [d for d in entry.intake_tokens if d != digest]
    dump_registry(
        current.with_party(entry.model_copy(update={"intake_tokens": [*kept, digest]})), registry
    )
    typer.echo(f"wrote intake token file {out} (mode 0600); keep it secret", err=True)
    typer.echo(f"{party}: intake token sha256 {digest} added to {registry}"
               + (f" ({len(kept)} earlier kept)" if kept else ""), err=True)
