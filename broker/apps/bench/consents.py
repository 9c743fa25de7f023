"""The consent view at scale: decision latency, memory per consent and rebuild time.

For each size (10k, 100k, 1M consents), side by side in one run:

* rebuild: build the view by ``apply()``-ing that many consent events (one grant per consent,
  about two consents per person, as a router replaying the ``consent`` topic does after the
  records are decrypted and read), and the rate;
* churn: then 10 % more events (updates, late older versions, revocations), their rate;
* memory: RSS growth per consent (the view is the only thing kept), and for the smallest size
  the exact traced allocation per consent (tracemalloc) as a cross-check;
* decisions: ``decide()`` latency per message (p50/p99, each call timed) and decisions per second
  (an untimed loop), over a mix of 80 % messages about persons with consents (consent basis),
  10 % about persons without one, and 10 % claims on a legal obligation.

The records are made with ``model_construct`` (generating them is not the work being timed).
Reading them from Kafka (decrypt, parse) is measured separately, in ``kafka_runs``.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import os
import random
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from broker.policy import ConsentView, DecisionRequest, decide, default_policy
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.messaging import BasisDetail
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

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
    """Resident set size of this process (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def pseudonym(person: int) -> str:
    digest = hashlib.blake2b(person.to_bytes(8, "big"), digest_size=32).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def consent_record(
    i: int, *, recorded: datetime | None = None, status: ConsentStatus = ConsentStatus.ACTIVE
) -> ConsentRecord:
    """Consent number ``i`` (of person ``i // 2``); every value valid by construction."""
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
    """Apply ``n`` grant events; returns the view and the seconds spent inside ``apply()``."""
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
    """10 % more events: updates, late older versions and revocations of existing consents."""
    events = []
    for _ in range(max(1, n // 10)):
        i = rnd.randrange(n)
        kind = rnd.random()
        if kind < 0.5:  # update: a newer version
            rec = consent_record(i, recorded=T0 + timedelta(days=30, seconds=i))
        elif kind < 0.8:  # an older version arriving late
            rec = consent_record(i, recorded=T0 - timedelta(days=1))
        else:  # revocation
            rec = consent_record(
                i, recorded=T0 + timedelta(days=60, seconds=i), status=ConsentStatus.INACTIVE
            )
        events.append((pseudonym(i // 2), rec))
    t = time.perf_counter()
    for key, rec in events:
        view.apply(key, rec)
    return len(events), time.perf_counter() - t


def requests(n_consents: int, count: int, rnd: random.Random) -> Iterator[DecisionRequest]:
    persons = max(1, n_consents // 2)
    referral = frozenset({C.IDENTITY, C.CONTACT, C.REFERRAL_SIGNAL, C.RISK_ASSESSMENT, C.CLINICAL})
    claim = frozenset({C.IDENTITY, C.FINANCIAL})
    for _ in range(count):
        r = rnd.random()
        if r < 0.9:
            person = rnd.randrange(persons) if r < 0.8 else persons + rnd.randrange(persons)
            yield DecisionRequest(
                EventCode.REFERRAL, "zvh-utrecht", PartyRole.ZVH, PROVIDERS[rnd.randrange(50)],
                PartyRole.COORDINATING_PROVIDER, PurposeOfUse.COC, LegalBasis.CONSENT, None,
                referral, pseudonym(person), ON,
            )  # fmt: skip
        else:
            yield DecisionRequest(
                EventCode.CLAIM, "provider-01", PartyRole.COORDINATING_PROVIDER, "menzis",
                PartyRole.HEALTH_INSURER, PurposeOfUse.HPAYMT, LegalBasis.LEGAL_OBLIGATION,
                BasisDetail(citation="Zvw art. 11"), claim, pseudonym(rnd.randrange(persons)), ON,
            )  # fmt: skip


@dataclass(frozen=True)
class Decisions:
    p50: float  # seconds
    p99: float
    rate: float  # decisions per second
    permit_share: float


def bench_decisions(view: ConsentView, n: int, count: int, rnd: random.Random) -> Decisions:
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
    t0 = time.perf_counter()
    for req in reqs:
        decide(req, policy, view)
    rate = len(reqs) / (time.perf_counter() - t0)
    q = statistics.quantiles(samples, n=100) if len(samples) > 1 else samples * 99
    return Decisions(q[49] / 1e9, q[98] / 1e9, rate, permits / max(1, len(reqs)))


def traced_bytes_per_consent(n: int) -> float:
    """Exact bytes allocated per consent by the view (tracemalloc), inputs made beforehand."""
    records = [(pseudonym(i // 2), consent_record(i)) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        view = ConsentView()
        for key, rec in records:
            view.apply(key, rec)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return used / max(1, n)


@dataclass(frozen=True)
class SizeResult:
    consents: int
    active: int
    persons: int
    rebuild_seconds: float
    churn_rate: float
    rss_per_consent: float
    decisions: Decisions

    @property
    def rebuild_rate(self) -> float:
        return self.consents / self.rebuild_seconds if self.rebuild_seconds else 0.0


def measure(n: int, decisions: int, rnd: random.Random) -> SizeResult:
    gc.collect()
    rss0 = rss_bytes()
    view, spent = build(n)
    gc.collect()
    grown = rss_bytes() - rss0
    events, churn_s = churn(view, n, rnd)
    result = SizeResult(
        consents=n,
        active=view.active_count,
        persons=view.persons,
        rebuild_seconds=spent,
        churn_rate=events / churn_s if churn_s else 0.0,
        rss_per_consent=grown / n,
        decisions=bench_decisions(view, n, decisions, rnd),
    )
    del view
    gc.collect()
    return result
