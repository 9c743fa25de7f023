"""The consent view snapshot at scale (issue 19 point 7: 1M consents ready in 30 s or less).

Side by side in one run, on the bench's embedded broker: a view of N consents (about two per
person, ``broker.apps.bench.consents``) is sealed into a snapshot (build), published (write),
then a starting router's :func:`broker.router.consent_snapshot.load_latest` reads, verifies,
decrypts and restores it (load). Beside it, the full replay of a consent log of the same size,
as :class:`broker.router.consent_log.ConsentLog` reads it at start: measured on
``replay_events`` real consent-log records and scaled to N (replaying a million takes minutes;
the rate does not depend on the log's length).

Every person gets a data key first (untimed: a running router made it when the consent was
routed); the loading router's key store is filled from the same key records in memory
(untimed: it reads the key store at start with or without a snapshot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.apps.bench import consents as consent_bench
from broker.apps.bench.report import Table, rate
from broker.config import Settings
from broker.policy import default_policy
from broker.router import consent_snapshot
from broker.router.consent_log import ConsentLog
from broker.router.pipeline import AUDIT_DOMAIN
from schemas import topics

if TYPE_CHECKING:
    from broker.apps.bench.kafka_runs import KafkaBench


def bsn(person: int) -> str:
    """A distinct BSN that passes the eleven test for each person number (synthetic)."""
    for first in (20_000_000 + 2 * person, 20_000_001 + 2 * person):
        digits = [int(c) for c in f"{first:08d}"]
        check = sum(d * (9 - i) for i, d in enumerate(digits)) % 11
        if check < 10:
            return f"{first:08d}{check}"
    raise AssertionError("two consecutive numbers cannot both fail")


@dataclass(frozen=True)
class SnapshotRun:
    consents: int
    persons: int
    build_seconds: float
    write_seconds: float
    size: int
    chunks: int
    load_seconds: float
    loaded: int
    replay_events: int
    replay_seconds: float

    @property
    def replay_rate(self) -> float:
        return self.replay_events / self.replay_seconds if self.replay_seconds else 0.0

    @property
    def full_replay_seconds(self) -> float:
        """The full replay of ``consents`` events at the measured rate."""
        return self.consents / self.replay_rate if self.replay_rate else float("inf")


async def measure(bench: KafkaBench, consents: int, replay_events: int) -> SnapshotRun:
    settings = Settings(bootstrap_servers=bench.bootstrap, consent_snapshot_seconds=0)
    dep = bench.workload.deployment
    writer = dep.router_state(default_policy(), settings=settings)
    assert writer.datakeys is not None
    for i in range(consents):  # the view, and every person's data key (untimed)
        record = consent_bench.consent_record(i).model_copy(update={"person_bsn": bsn(i // 2)})
        writer.consents.apply(consent_bench.pseudonym(i // 2), record)
        if i % 2 == 0:
            writer.datakeys.for_person(
                writer.pseudonyms.pseudonym(AUDIT_DOMAIN, record.person_bsn)
            )
    keys = list(writer.datakeys.pending)
    writer.datakeys.pending.clear()

    began = time.perf_counter()
    snap = await consent_snapshot.build(writer, {p: 0 for p in range(topics.CONSENT.partitions)})
    built = time.perf_counter() - began
    began = time.perf_counter()
    await consent_snapshot.write(bench.producer, writer, snap)
    written = time.perf_counter() - began
    del writer

    reader = dep.router_state(default_policy(), settings=settings)
    assert reader.datakeys is not None
    reader.datakeys.store.load((k.dkid.encode(), k.value()) for k in keys)
    del keys
    began = time.perf_counter()
    loaded = await consent_snapshot.load_latest(settings, reader)
    load_seconds = time.perf_counter() - began
    if loaded is None or loaded.head.snapshot_id != snap.snapshot_id:
        raise RuntimeError("the bench's snapshot did not load")

    # the full replay, as a router without a snapshot reads the consent log
    base = len(bench.workload.consents)
    await bench.produce(bench.workload.consent_log_records(base + replay_events)[base:])
    state = bench.workload.router_state(consents=False)
    began = time.perf_counter()
    log = ConsentLog(settings, state)
    try:
        replayed = await log.start(timeout=600.0)
    finally:
        await log.stop()
    replay_seconds = time.perf_counter() - began
    return SnapshotRun(
        consents, snap.persons, built, written, snap.size, len(snap.chunks), load_seconds,
        len(loaded.view), replayed, replay_seconds,
    )  # fmt: skip


def table(run: SnapshotRun) -> Table:
    t = Table(
        "snapshot",
        f"Consent view snapshot of {run.consents:,} consents ({run.persons:,} persons) against "
        "a full replay of the consent log, as a starting router loads them",
        ["consents", "build s", "write s", "size MB", "chunks", "load s", "full replay s",
         "load vs replay", "goal: load ≤ 30 s at 1M"],
    )  # fmt: skip
    scaled = run.load_seconds * 1_000_000 / max(1, run.consents)
    t.add(
        f"{run.loaded:,}",
        f"{run.build_seconds:.2f}",
        f"{run.write_seconds:.2f}",
        f"{run.size / 1e6:,.1f}",
        f"{run.chunks:,}",
        f"{run.load_seconds:.2f}",
        f"{run.full_replay_seconds:,.0f}",
        f"×{run.full_replay_seconds / run.load_seconds:,.0f}" if run.load_seconds else "-",
        ("met" if scaled <= 30 else "not met") + ("" if run.consents >= 1_000_000
                                                  else f" (≈{scaled:.0f} s scaled to 1M)"),
    )  # fmt: skip
    t.notes.append(
        f"full replay: {run.replay_events:,} consent-log records read as ConsentLog does at "
        f"start ({rate(run.replay_rate)} events/s), scaled to {run.consents:,}; load: read, "
        "verify (signature, chunk hashes), decrypt each person's part under their data key, "
        "restore; build: seal the view (the router keeps routing: it yields every 2,000 persons)"
    )
    return t
