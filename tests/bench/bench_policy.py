"""Benchmark the policy hot path: decision latency and the consent view's memory and rebuild time.

Run from the repository root (not collected by pytest)::

    python tests/bench/bench_policy.py [--max 1000000] [--decisions 20000]

For 10k, 100k and 1M active consents (up to ``--max``), side by side in one run:

* rebuild: the time to build the consent view by ``apply()``-ing that many consent events (one
  grant per consent, ~2 consents per person, as when a router replays the ``consent`` topic), and
  the rate;
* churn: then 10% more events (updates, late older versions, revocations), their rate;
* memory: RSS growth per consent (the view is the only thing kept), and for the smallest size the
  exact traced allocation per consent (tracemalloc) as a cross-check;
* decisions: ``decide()`` latency per message (p50/p99, each call timed) and decisions per second
  (an untimed loop), over a mix of 80% messages about persons with consents (consent basis), 10%
  about persons without one, and 10% claims on a legal obligation.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from broker.policy import (
    BasisDetail,
    ConsentView,
    DecisionRequest,
    decide,
    default_policy,
)
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.vocab import (
    DataCategory,
    EventCode,
    LegalBasis,
    PartyRole,
    PurposeOfUse,
)

C = DataCategory
T0 = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
ON = date(2024, 6, 1)
PROVIDERS = [f"provider-{i:02d}" for i in range(50)]
CATEGORY_SETS = [
    (C.IDENTITY, C.CONTACT, C.REFERRAL_SIGNAL, C.RISK_ASSESSMENT, C.LEGAL_TITLE),
    (C.IDENTITY, C.REFERRAL_SIGNAL),
    (C.IDENTITY, C.CONTACT, C.CARE_EPISODE, C.CLINICAL),
]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pseudonym(person: int) -> str:
    digest = hashlib.blake2b(person.to_bytes(8, "big"), digest_size=32).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def consent_record(i: int, *, recorded: datetime | None = None,
                   status: ConsentStatus = ConsentStatus.ACTIVE) -> ConsentRecord:
    """Consent number i (person i // 2). Built with model_construct: generation is not timed
    work, and every value is valid by construction."""
    by_id = i % 5 == 0
    return ConsentRecord.model_construct(
        consent_id=str(uuid.UUID(int=i * 7919 + 1)),
        person_bsn=f"{100_000_000 + i // 2:09d}",
        status=status,
        grantor=Grantor.PERSON,
        representative_name=None,
        recipients=(PROVIDERS[i % 50],) if by_id else (),
        recipient_roles=() if by_id else (PartyRole.COORDINATING_PROVIDER, PartyRole.ZVH),
        purposes=(PurposeOfUse.COC, PurposeOfUse.SAFETY),
        categories=CATEGORY_SETS[i % 3],
        period_start=date(2024, 1, 1),
        period_end=None if i % 4 else date(2025, 12, 31),
        recorded_at=recorded or T0 + timedelta(seconds=i),
        recorded_by="zvh-utrecht",
        legal_basis=LegalBasis.CONSENT,
    )


def build(n: int) -> tuple[ConsentView, float]:
    """Apply n grant events; returns the view and the seconds spent inside apply()."""
    view = ConsentView()
    spent = 0.0
    clock = time.perf_counter
    for i in range(n):
        rec, key = consent_record(i), pseudonym(i // 2)
        t = clock()
        view.apply(key, rec)
        spent += clock() - t
    return view, spent


def churn(view: ConsentView, n: int, rnd: random.Random) -> tuple[int, float]:
    """10% more events: updates, late older versions and revocations of existing consents."""
    events = []
    for _ in range(n // 10):
        i = rnd.randrange(n)
        kind = rnd.random()
        if kind < 0.5:  # update: newer version
            rec = consent_record(i, recorded=T0 + timedelta(days=30, seconds=i))
        elif kind < 0.8:  # an older version arriving late
            rec = consent_record(i, recorded=T0 - timedelta(days=1))
        else:  # revocation
            rec = consent_record(i, recorded=T0 + timedelta(days=60, seconds=i),
                                 status=ConsentStatus.INACTIVE)
        events.append((pseudonym(i // 2), rec))
    t = time.perf_counter()
    for key, rec in events:
        view.apply(key, rec)
    return len(events), time.perf_counter() - t


def requests(n_consents: int, count: int, rnd: random.Random) -> Iterator[DecisionRequest]:
    persons = max(1, n_consents // 2)
    referral = frozenset({C.IDENTITY, C.CONTACT, C.REFERRAL_SIGNAL, C.RISK_ASSESSMENT,
                          C.CLINICAL})
    claim = frozenset({C.IDENTITY, C.FINANCIAL})
    for _ in range(count):
        r = rnd.random()
        if r < 0.9:
            person = rnd.randrange(persons) if r < 0.8 else persons + rnd.randrange(persons)
            yield DecisionRequest(
                EventCode.REFERRAL, "zvh-utrecht", PartyRole.ZVH, PROVIDERS[rnd.randrange(50)],
                PartyRole.COORDINATING_PROVIDER, PurposeOfUse.COC, LegalBasis.CONSENT, None,
                referral, pseudonym(person), ON)
        else:
            yield DecisionRequest(
                EventCode.CLAIM, "provider-01", PartyRole.COORDINATING_PROVIDER, "menzis",
                PartyRole.HEALTH_INSURER, PurposeOfUse.HPAYMT, LegalBasis.LEGAL_OBLIGATION,
                BasisDetail(citation="Zvw art. 11"), claim, pseudonym(rnd.randrange(persons)), ON)


def bench_decisions(view: ConsentView, n: int, count: int,
                    rnd: random.Random) -> tuple[float, float, float, float]:
    policy = default_policy()
    reqs = list(requests(n, count, rnd))
    clock = time.perf_counter_ns
    samples = []
    permits = 0
    for req in reqs:
        t = clock()
        d = decide(req, policy, view)
        samples.append(clock() - t)
        permits += d.permit
    t = time.perf_counter()
    for req in reqs:
        decide(req, policy, view)
    rate = len(reqs) / (time.perf_counter() - t)
    q = statistics.quantiles(samples, n=100)
    return q[49] / 1000, q[98] / 1000, rate, permits / len(reqs)


def traced_bytes_per_consent(n: int) -> float:
    records = [(pseudonym(i // 2), consent_record(i)) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    view = ConsentView()
    for key, rec in records:
        view.apply(key, rec)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(view) == n
    return used / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max", type=int, default=1_000_000, help="largest number of consents")
    ap.add_argument("--decisions", type=int, default=20_000, help="decisions timed per size")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sizes = [n for n in (10_000, 100_000, 1_000_000) if n <= args.max] or [args.max]
    rnd = random.Random(args.seed)

    print(f"ketenbus policy benchmark: Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPU(s); {args.decisions} decisions per size")
    print(f"exact allocation per consent (tracemalloc, {min(sizes)} consents): "
          f"{traced_bytes_per_consent(min(sizes)):.0f} B")
    header = (f"{'consents':>10} {'active':>9} {'persons':>8} | {'rebuild s':>9} "
              f"{'events/s':>9} | {'churn ev/s':>10} | {'RSS MB':>7} {'B/consent':>9} | "
              f"{'p50 µs':>7} {'p99 µs':>7} {'decisions/s':>11} {'permit':>6}")
    print(header)
    print("-" * len(header))
    # "active" is counted after the churn (which revokes about 2% of the consents)
    for n in sizes:
        gc.collect()
        rss0 = rss_bytes()
        view, spent = build(n)
        gc.collect()
        grown = rss_bytes() - rss0
        events, churn_s = churn(view, n, rnd)
        p50, p99, rate, permit_share = bench_decisions(view, n, args.decisions, rnd)
        print(f"{n:>10,} {view.active_count:>9,} {view.persons:>8,} | {spent:>9.2f} "
              f"{n / spent:>9,.0f} | {events / churn_s:>10,.0f} | {grown / 2**20:>7.1f} "
              f"{grown / n:>9.0f} | {p50:>7.1f} {p99:>7.1f} {rate:>11,.0f} "
              f"{permit_share:>6.0%}")
        del view
        gc.collect()


if __name__ == "__main__":
    main()
