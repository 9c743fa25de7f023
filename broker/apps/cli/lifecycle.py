"""The data lifecycle (``docs/retention.md``, ``docs/erasure.md``): ``ketenbus prune`` deletes
what ketenbus keeps in files past its term; ``ketenbus erase`` forgets a person's (or a case's)
data keys, so that everything ketenbus sealed under them -- consent log, parked records, the
audit's sealed detail, the person's messages on ``in.*`` and ``out.*`` -- is unreadable on any
broker, from then on and after any rebuild (AVG art. 17), and tells every party that exchanged
the person's messages (AVG art. 19).

Runs on the router's machine (it needs the router's signing key, pseudonym secret and the KEK
files). The BSN is read from ``--person`` or stdin (``--person -``), pseudonymised here and
never printed or logged. The erasure is itself audited, as an ``erasure`` event on the router's
``-erase`` chain, *before* the old KEK is destroyed: an erasure that could not be audited is not
done.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from broker.apps.deployment import Deployment
    from broker.config import Settings
    from broker.trust.keys import PartyKeys

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def erase(
    person: Annotated[
        str | None,
        typer.Option(
            "--person",
            metavar="BSN",
            help="The person's BSN ('-': read it from stdin, which keeps it out of the shell "
            "history and the process list). Pseudonymised here; never printed.",
        ),
    ] = None,
    case: Annotated[
        str | None, typer.Option("--case", metavar="ID", help="A case id instead of a person.")
    ] = None,
    party: Annotated[
        str | None,
        typer.Option(
            "--party",
            metavar="PARTY_ID",
            help="Erase in this party's own key store (its journal and its channel keys), on "
            "the party's machine, after the router's erasure notice told it (AVG art. 19). "
            "Default: the router's (which also erases the person on every party's channel and "
            "sends each party that exchanged the person's messages an erasure notice).",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Config file (YAML/TOML).", dir_okay=False)
    ] = None,
) -> None:
    """Erase a person or a case: destroy their data keys (crypto-shredding) and audit it."""
    from broker.apps.cli.kafka import _load
    from broker.apps.cli.services import _deployment
    from broker.trust import is_valid_bsn

    if (person is None) == (case is None):
        err.print("[red]error:[/red] give exactly one of --person and --case")
        raise typer.Exit(2)
    if person == "-":
        person = sys.stdin.readline().strip()
    if person is not None and not is_valid_bsn(person):
        err.print("[red]error:[/red] --person is not a valid BSN (8 or 9 digits, eleven test)")
        raise typer.Exit(2)
    settings = _load(config)
    if settings.bootstrap_servers is None:
        err.print("[red]error:[/red] KETENBUS_BOOTSTRAP_SERVERS is not set: erasure writes to "
                  "the key-store and audit topics")
        raise typer.Exit(2)
    dep = _deployment(settings)
    try:
        result = asyncio.run(erase_subject(settings, dep, bsn=person, case=case, party=party))
    except (OSError, TimeoutError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] erasure not done: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"erased: {result} data key(s) destroyed; audited on the erase chain")
    if result == 0:
        console.print(
            "note: no data key was found: nothing was sealed under one for this subject (no "
            "payload is keyed per case yet; a person's data is under the person's key)"
        )


async def erase_subject(
    settings: Settings,
    dep: Deployment,
    *,
    bsn: str | None = None,
    case: str | None = None,
    party: str | None = None,
) -> int:
    """Erase one person (by BSN) or case in the router's key store, or in ``party``'s own;
    returns the number of data keys destroyed. Used by the command and by tests (one path).

    The router's erasure of a person also erases the person's keys on every party's channel
    (the data layer of ``in.*`` and ``out.*``: ``docs/erasure.md``) and then sends each party
    that had such a key, i.e. that sent or received the person's messages, an erasure notice
    on its own topic (AVG art. 17(2) and 19), so that it can act on its own copy. A party's
    erasure (``--party``) covers its journal and its channel keys."""
    from broker.apps.deployment import ERASE_CHAIN_SUFFIX
    from broker.audit.event import erasure_record
    from broker.audit.keystore import TopicKeyStore
    from broker.audit.writer import ChainWriter
    from broker.kafka import make_producer
    from broker.router.pipeline import AUDIT_DOMAIN
    from broker.trust.datakeys import channel_subject
    from schemas import topics

    writer = party or dep.router_id
    keys = dep.keyring(writer).current
    store = dep.key_store(settings, write=True, party=party)
    await store.load()
    pseudonym: str | None = None
    more: tuple[str, ...] = ()
    if bsn is not None and party is None:  # the audit's pseudonym of the person
        subject = dep.pseudonymiser(writer).pseudonym(AUDIT_DOMAIN, bsn)
        pseudonym = subject
    elif bsn is not None:  # the party's own pseudonym, as its journal keys it
        subject = dep.pseudonymiser(writer).pseudonym(writer, bsn)
        more = (store.store.owner(channel_subject(bsn)),)  # and its channel keys
    else:
        subject = "case:" + str(case)
    owner = store.store.owner(subject)
    # every party's channel that holds a key of the person (the router holds their KEKs)
    channels: list[tuple[str, TopicKeyStore, str]] = []
    if bsn is not None and party is None:
        for p in dep.registry.parties:
            found = None if p.id == dep.router_id else dep.channel_store(p.id, keys)
            if found is None:
                continue
            channel = TopicKeyStore(settings, found, topics.party_key_store(p.id).name)
            await channel.load()
            who = found.owner(channel_subject(bsn))
            if found.live_keys(who):
                channels.append((p.id, channel, who))
    declared = [c.chain for c in dep.registry.audit_chains_of(writer)]
    chain = next((c for c in declared if c.endswith(ERASE_CHAIN_SUFFIX)), None)
    if chain is None:
        raise RuntimeError(f"the registry declares no {ERASE_CHAIN_SUFFIX} chain for {writer}")
    audit = ChainWriter(settings, keys, chain)
    producer = make_producer(settings)
    await producer.start()
    try:

        async def send(topic: str, key: bytes, value: bytes) -> None:
            await producer.send_and_wait(topic, value=value, key=key)

        records, new = store.store.erase(owner, *more)
        rotated = [(channel, *channel.store.erase(who)) for _, channel, who in channels]
        erased = sum(1 for r in records if r.erased)
        erased += sum(1 for _, recs, _ in rotated for r in recs if r.erased)
        told = tuple(sorted(p for p, _, _ in channels))
        # audited first: an erasure that cannot be audited is not done (the KEK stays)
        await audit.write(
            [
                erasure_record(
                    actor=writer,
                    source=chain,
                    keys=erased,
                    subject="person" if bsn is not None else "case",
                    owner=owner,
                    pseudonym=pseudonym,
                    actor_role=dep.registry.get(writer).role,
                    told=told,
                )
            ],
            send,
        )
        # the ledger before the tombstones: a process the broker loss overtakes before it saw
        # them (or the re-wraps) can still tell the erased keys from the survivors
        store.store.kek.record_erasure(new, (r.dkid for r in records if r.erased))
        for channel, recs, gen in rotated:
            channel.store.kek.record_erasure(gen, (r.dkid for r in recs if r.erased))
        for r in records:
            await send(store.topic, r.dkid.encode("ascii"), r.value())
        for channel, recs, _ in rotated:
            for r in recs:
                await send(channel.topic, r.dkid.encode("ascii"), r.value())
        await producer.flush()
        await audit.checkpoint(send)
        # every survivor is on its topic under the new generation: the old KEKs go
        store.store.kek.destroy_older(than=new)
        for channel, _, gen in rotated:
            channel.store.kek.destroy_older(than=gen)
        if bsn is not None and party is None:
            await _tell(producer, dep, keys, bsn, told)
        return erased
    finally:
        await producer.stop()


async def _tell(
    producer: Any, dep: Deployment, keys: PartyKeys, bsn: str, parties: tuple[str, ...]
) -> None:
    """An erasure notice to each of ``parties`` on its own topic, sealed by the router and
    keyed by the person's pseudonym on that topic: only the fact and the pseudonym."""
    import uuid
    from datetime import UTC, datetime

    from broker.trust import seal_for
    from schemas.erasure_notice import ERASURE_NOTICE_EVENT, ErasureNotice

    now = datetime.now(UTC)
    for party_id in parties:
        pseudo = dep.pseudonymiser(dep.router_id).pseudonym(party_id, bsn)
        notice = ErasureNotice(str(uuid.uuid4()), now.isoformat(timespec="seconds"), pseudo)
        sealed = seal_for(
            notice.to_json(),
            keys,
            dep.registry,
            party_id,
            event=ERASURE_NOTICE_EVENT,
            message_id=notice.id,
            pseudonym=pseudo,
            timestamp=now,
        )
        topic = dep.registry.get(party_id).outbound_topic
        await producer.send_and_wait(
            topic, value=sealed.value, key=sealed.key, headers=list(sealed.headers)
        )


def prune(
    data_dir: Annotated[
        Path, typer.Option("--data", help="The adapters' data folder (with <party>/inbox/).")
    ] = Path("data"),
    config: Annotated[
        Path | None, typer.Option(help="Config file (YAML/TOML).", dir_okay=False)
    ] = None,
) -> None:
    """Delete inbox copies (processed/, failed/) older than their retention term."""
    from adapters.common.prune import prune_files
    from broker.apps.cli.kafka import _load

    settings = _load(config)
    report = prune_files(data_dir, retention_days=settings.retention_days)
    for kind in sorted({*report.removed, *report.kept}):
        console.print(
            f"{kind}: {report.removed.get(kind, 0)} removed, {report.kept.get(kind, 0)} kept"
        )
