"""``ketenbus party``: a party's lifecycle as signed registry changes (docs/onboarding.md).

``admin-key`` makes a registry administrator's key and pins it in the trust anchor; ``onboard``
makes a new party's keys (0600 files) and its public entry; ``rotate`` registers a new key that
overlaps the old one; ``revoke`` stops a key everywhere (a stolen key). Each change raises the
registry's serial and is signed by the administrators' keys given with ``--admin-key``: with as
many as the anchor's threshold it replaces the registry, which running components pick up within
``registry_poll_seconds``; with fewer it is written as a proposal that the other administrators
``sign``. The logic is in ``broker.trust.registry_change`` and ``broker.trust.registry_signing``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from broker.apps.cli.common import load_or_exit
from broker.config import Settings
from broker.trust import (
    Identifiers,
    PartyRegistry,
    TrustConfigError,
    generate_party_keys,
    registry_entry,
    write_party_keys,
)
from broker.trust._encoding import b64decode_strict, require_aware, utc_now
from broker.trust._files import write_file_atomic as _write_public
from broker.trust.registry import parse_registry_document, read_registry_text
from broker.trust.registry_change import REVOCATION_REASONS, key_entry, onboard, revoke, rotate
from broker.trust.registry_signing import (
    AdminKey,
    RegistryAnchor,
    add_signatures,
    check_signatures,
    generate_admin_key,
    load_admin_key,
    load_anchor,
    load_signed_registry,
    sign_registry,
    verify_registry,
    write_admin_key,
    write_anchor,
)
from schemas.vocab.roles import PartyRole

app = typer.Typer(
    name="party",
    help="A party's lifecycle: onboard, rotate, revoke, as registry changes signed by the "
    "registry's administrators.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Config file (YAML/TOML).")]
RegistryOpt = Annotated[
    Path | None, typer.Option("--registry", help="Registry file (default: the settings').")
]
AnchorOpt = Annotated[
    Path | None, typer.Option("--anchor", help="Trust anchor file (default: the settings').")
]
AdminOpt = Annotated[
    list[Path] | None,
    typer.Option("--admin-key", help="An administrator's key file; repeat for each signer."),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _paths(settings: Settings, registry: Path | None, anchor: Path | None) -> tuple[Path, Path]:
    from broker.apps import deployment

    state = Path(settings.state_dir)
    reg = registry or settings.registry_file or state / deployment.REGISTRY_FILE
    return reg, anchor or deployment.anchor_file_of(settings)


def _time(text: str | None, option: str) -> datetime:
    if text is None:
        return utc_now()
    try:
        return require_aware(datetime.fromisoformat(text), option)
    except ValueError as exc:
        _fail(f"{option}: {exc} (use e.g. 2026-12-01T00:00:00Z)")


def _change(
    config: Path | None, registry: Path | None, anchor: Path | None, admin_key: list[Path] | None
) -> tuple[Settings, Path, RegistryAnchor, list[AdminKey], PartyRegistry]:
    """What every registry change starts from: the settings, the registry file, its pinned
    anchor, the administrators who sign the change, and the registry in use, verified."""
    settings = load_or_exit(config)
    reg_path, anchor_path = _paths(settings, registry, anchor)
    pinned = _anchor(anchor_path)
    return settings, reg_path, pinned, _admins(admin_key), _current(reg_path, pinned)


def _admins(files: list[Path] | None) -> list[AdminKey]:
    if not files:
        _fail("give at least one --admin-key: a registry change is signed by its administrators")
    try:
        return [load_admin_key(f) for f in files]
    except TrustConfigError as exc:
        _fail(str(exc))


def _current(registry: Path, anchor: RegistryAnchor) -> PartyRegistry:
    """The registry in use, verified (a change is made only on top of a signed registry)."""
    try:
        return load_signed_registry(registry, anchor)
    except TrustConfigError as exc:
        _fail(str(exc))


def proposal_path(registry: Path) -> Path:
    return registry.with_name(registry.stem + ".proposed.yaml")


def _publish(
    changed: PartyRegistry, keys: list[AdminKey], registry: Path, anchor: RegistryAnchor
) -> None:
    """Install the signed change, or leave it as a proposal until the threshold is met."""
    text = sign_registry(changed, keys)
    _install_or_propose(text, registry, anchor)


def _install_or_propose(text: str, registry: Path, anchor: RegistryAnchor) -> None:
    check = check_signatures(text, anchor)
    for problem in check.problems:
        typer.echo(f"warning: {problem}", err=True)
    serial = parse_registry_document(text)[0].serial
    if len(check.valid) >= anchor.threshold:
        verify_registry(text, anchor, str(registry))
        _write_public(registry, text.encode("utf-8"))
        proposal_path(registry).unlink(missing_ok=True)
        typer.echo(
            f"registry serial {serial} signed by {', '.join(check.valid)}; installed in {registry}"
        )
        return
    proposal = proposal_path(registry)
    _write_public(proposal, text.encode("utf-8"))
    missing = anchor.threshold - len(check.valid)
    typer.echo(
        f"registry serial {serial} signed by {', '.join(check.valid) or 'nobody'}; "
        f"{missing} more administrator signature(s) needed: "
        f"ketenbus party sign --admin-key <file> (proposal in {proposal})"
    )


def _fingerprint(public_b64: str) -> str:
    return hashlib.sha256(b64decode_strict(public_b64, 32)).hexdigest()[:16]


@app.command("admin-key")
def admin_key(
    admin: Annotated[str, typer.Option("--id", help="Administrator id, e.g. admin-beheer.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the private key (0700).")],
    anchor: AnchorOpt = None,
    threshold: Annotated[
        int | None, typer.Option(help="Signatures a change needs (default: keep, or 1).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Make a registry administrator's key (file 0600) and pin its public key in the anchor."""
    settings = load_or_exit(config)
    _, anchor_path = _paths(settings, None, anchor)
    try:
        key = generate_admin_key(admin)
    except ValueError as exc:
        _fail(str(exc))
    current = load_anchor(anchor_path) if anchor_path.exists() else None
    if current is not None and admin in current.administrators:
        _fail(f"administrator {admin} is already pinned in {anchor_path}")
    admins = {**(current.administrators if current else {}), admin: key.public}
    wanted = threshold if threshold is not None else (current.threshold if current else 1)
    try:
        pinned = RegistryAnchor(admins, wanted, str(anchor_path))
        path = write_admin_key(key, out)
    except TrustConfigError as exc:
        _fail(str(exc))
    write_anchor(pinned, anchor_path)
    typer.echo(f"wrote administrator key {path} (mode 0600); keep it offline", err=True)
    typer.echo(
        f"pinned {admin} (sha256 {_fingerprint(key.public)}) in {anchor_path}: "
        f"{pinned.threshold} of {len(admins)} signatures needed"
    )


@app.command("onboard")
def onboard_party(
    party: Annotated[str, typer.Option("--party", help="New party id, e.g. zvh-zeeland.")],
    role: Annotated[PartyRole, typer.Option("--role", help="Its role.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    keys_out: Annotated[
        Path | None, typer.Option("--keys-out", help="Directory for its private key (0700).")
    ] = None,
    region: Annotated[str | None, typer.Option(help="Levensloop region.")] = None,
    agb: Annotated[str | None, typer.Option(help="AGB code (8 digits).")] = None,
    ura: Annotated[str | None, typer.Option(help="URA number (8 digits).")] = None,
    uzovi: Annotated[str | None, typer.Option(help="UZOVI code (4 digits).")] = None,
    municipality: Annotated[str | None, typer.Option(help="Gemeente code (4 digits).")] = None,
    valid_from: Annotated[str | None, typer.Option(help="Key valid from (default now).")] = None,
    admin_key: AdminOpt = None,
    registry: RegistryOpt = None,
    anchor: AnchorOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A new party: its keys (0600), its public entry and the signed registry change."""
    from broker.apps import deployment

    settings, reg_path, pinned, admins, current = _change(config, registry, anchor, admin_key)
    ids = {"agb": agb, "ura": ura, "uzovi": uzovi, "municipality": municipality}
    try:
        keys = generate_party_keys(party)
        entry = registry_entry(
            keys,
            role=role,
            name=name,
            region=region,
            identifiers=Identifiers.model_validate({k: v for k, v in ids.items() if v}),
            valid_from=_time(valid_from, "--valid-from"),
        )
        changed = onboard(current, entry)
    except ValueError as exc:
        _fail(str(exc))
    folder = keys_out or settings.keys_dir or Path(settings.state_dir) / deployment.KEYS_DIR
    try:
        path = write_party_keys(keys, folder)
    except TrustConfigError as exc:
        _fail(str(exc))
    typer.echo(f"wrote private key file {path} (mode 0600); hand it to {party} only", err=True)
    fingerprint = _fingerprint(entry.keys[0].signing_public)
    typer.echo(f"party {party} key {keys.key_id} (sha256 {fingerprint})")
    _publish(changed, admins, reg_path, pinned)


@app.command("rotate")
def rotate_key(
    party: Annotated[str, typer.Option("--party", help="Party id.")],
    keys_out: Annotated[
        Path | None, typer.Option("--keys-out", help="Directory for the new private key.")
    ] = None,
    valid_from: Annotated[
        str | None, typer.Option(help="New key valid from (default now).")
    ] = None,
    overlap_hours: Annotated[
        float, typer.Option(min=0, help="The old key stays valid this long after --valid-from.")
    ] = 168.0,
    admin_key: AdminOpt = None,
    registry: RegistryOpt = None,
    anchor: AnchorOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A new key for a party; its older keys end --overlap-hours after the new one starts."""
    from broker.apps import deployment

    settings, reg_path, pinned, admins, current = _change(config, registry, anchor, admin_key)
    if party not in current:
        _fail(f"party {party} is not in the registry: onboard it first")
    keys = generate_party_keys(party)
    try:
        changed, notes = rotate(
            current,
            party,
            key_entry(keys, _time(valid_from, "--valid-from")),
            timedelta(hours=overlap_hours),
        )
    except ValueError as exc:
        _fail(str(exc))
    folder = keys_out or settings.keys_dir or Path(settings.state_dir) / deployment.KEYS_DIR
    try:
        path = write_party_keys(keys, folder)
    except TrustConfigError as exc:
        _fail(str(exc))
    typer.echo(f"wrote private key file {path} (mode 0600)", err=True)
    typer.echo(f"party {party} new key {keys.key_id}")
    for note in notes:
        typer.echo(note)
    _publish(changed, admins, reg_path, pinned)


@app.command("revoke")
def revoke_key(
    party: Annotated[str, typer.Option("--party", help="Party id.")],
    key_id: Annotated[str, typer.Option("--key-id", help="The key to revoke.")],
    reason: Annotated[
        str, typer.Option(help=f"Why: {', '.join(REVOCATION_REASONS)}.")
    ] = "key-compromise",
    at: Annotated[str | None, typer.Option(help="Revoked from (default now).")] = None,
    admin_key: AdminOpt = None,
    registry: RegistryOpt = None,
    anchor: AnchorOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: every running component refuses it within registry_poll_seconds."""
    _, reg_path, pinned, admins, current = _change(config, registry, anchor, admin_key)
    try:
        changed = revoke(current, party, key_id, _time(at, "--at"), reason)
    except (ValueError, TrustConfigError, KeyError) as exc:
        _fail(str(exc))
    typer.echo(f"key {key_id} of {party} revoked ({reason})")
    _publish(changed, admins, reg_path, pinned)


@app.command("sign")
def sign(
    admin_key: AdminOpt = None,
    proposal: Annotated[
        Path | None, typer.Option(help="Proposal file (default: <registry>.proposed.yaml).")
    ] = None,
    registry: RegistryOpt = None,
    anchor: AnchorOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add your signature to a proposed registry change; installed once enough have signed."""
    settings = load_or_exit(config)
    reg_path, anchor_path = _paths(settings, registry, anchor)
    pinned = _anchor(anchor_path)
    admins = _admins(admin_key)
    # the pending proposal; without one, the registry in use (co-signing it, e.g. after the
    # anchor gained an administrator or a higher threshold)
    source = proposal or proposal_path(reg_path)
    if proposal is None and not source.exists():
        source = reg_path
    try:
        text = read_registry_text(source)
        changed = parse_registry_document(text, str(source))[0]
        if source != reg_path and reg_path.exists():
            try:
                in_use: PartyRegistry | None = load_signed_registry(reg_path, pinned)
            except TrustConfigError:
                in_use = None
            if in_use is not None and changed.serial <= in_use.serial:
                _fail(f"{source} has serial {changed.serial}, not newer than {in_use.serial}")
        signed = add_signatures(text, admins, str(source))
    except TrustConfigError as exc:
        _fail(str(exc))
    _install_or_propose(signed, reg_path, pinned)


@app.command("verify")
def verify(
    registry: RegistryOpt = None, anchor: AnchorOpt = None, config: ConfigOpt = None
) -> None:
    """Check the registry's administrator signatures as every component does before loading."""
    settings = load_or_exit(config)
    reg_path, anchor_path = _paths(settings, registry, anchor)
    pinned = _anchor(anchor_path)
    try:
        text = read_registry_text(reg_path)
        loaded = verify_registry(text, pinned, str(reg_path))
    except TrustConfigError as exc:
        _fail(str(exc))
    check = check_signatures(text, pinned)
    typer.echo(
        f"{reg_path}: serial {loaded.serial}, {len(loaded)} parties, signed by "
        f"{', '.join(check.valid)} ({pinned.threshold} needed)"
    )


def _anchor(path: Path) -> RegistryAnchor:
    try:
        return load_anchor(path)
    except TrustConfigError as exc:
        _fail(str(exc))
