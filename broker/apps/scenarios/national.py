"""``ketenbus up --scenario national``: the Levensloopaanpak for the whole country, one synthetic
year compressed in time, through the real components.

Every ZVH drops its consents and referrals as JSON files in its adapter's inbox (a consent first:
the adapter waits for the router's acknowledgement before the referral that relies on it); every
coordinating provider's EPD drops CSV files (assessment outcomes, care transitions, capacity
reports, treatment and support claims) in its adapter's inbox; the claims desks make the
registration and coordination claims and escalate gaps and, with the 28-day watchdog, unpaid
claims; every payer's system reads the claims its adapter wrote and drops answer files in the
payer's format. A business clock moves one day at a time; the figures at the end are read from
what the components did (receipts, router answers, router facts, claims books).

Grounds (issue 16): a person without consent is disclosed on a conflict of duties only per
occasion, each decision with its own justification and a validity of a week from the router's
day; the transitions of such a person's care episode travel on the legal title (Wfz or Wvggz).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import signal
import statistics
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.financing.book import ClaimStatus
from adapters.municipality.service import MunicipalityAdapter
from adapters.payer.formats import vektis, vws, wlz, wmo
from adapters.payer.formats.common import reference
from broker.apps.deployment import create_local, router_instance_ids
from broker.apps.scenarios import demo
from broker.apps.scenarios.console import FlowConsole
from broker.apps.scenarios.national_ladder import LadderActor, Pace, ladder_times, scaled_settings
from broker.apps.scenarios.national_parties import (
    DJI,
    NATIONAL,
    REGIONS,
    municipality_id,
    parties,
)
from broker.apps.scenarios.national_plan import (
    BEDS,
    DAY_RATE,
    SUPPORT_MONTH,
    Case,
    Plan,
    Transition,
    make_plan,
    payer_fate,
)
from broker.apps.scenarios.stack import HttpPortInUse, LocalStack, StackOptions
from broker.config import Settings
from broker.kafka import kafka_connection
from broker.policy import default_policy
from broker.router.facts import Fact, FactKind
from schemas.flows.claim import Claim
from schemas.vocab import EventCode, PartyRole

CONSENT_CATEGORIES = [
    "identity",
    "contact",
    "referral-signal",
    "risk-assessment",
    "legal-title",
    "process",
    "care-episode",
    "police-data",
]
IN_FLIGHT_GRACE_DAYS = 3  # simulated days a claim may travel before the clock waits for it
TAIL_DAYS = 35  # after the year: last month's claims, answers, and the watchdog's 28 days
# A conflict of duties lifts secrecy for one occasion (KNMG): each decision has its own
# justification, the professional who took it and a short validity, never a standing basis.
CONFLICT_VALIDITY_DAYS = 7
CONFLICT_REASON = "acuut gevaar voor derden; toestemming niet te verkrijgen"
SAFETY_LEVELS = frozenset({"3", "4"})  # a scale-up to these is an occasion to inform the ZVH
INFORMATION_AFTER_DAYS = 3  # a municipality brings what it knows a few days after the notice
MUNICIPAL_ESCALATION_AFTER_DAYS = 21  # ... and escalates some cases undecided after 3 weeks
# "no-bed" needs a security level, which a municipality does not know (its document has none)
MUNICIPAL_REASONS = ("no-provider", "no-decision", "other")
# Free text of a category of its own (issue 16 §4), synthetic: the router must keep the police
# facts from roles without police-data, and the clinical reasons from roles without clinical.
POLICE_FACTS = "Twee registraties bedreiging in de BVH (synthetisch)."
SCALE_UP_REASON = "Toename psychotische klachten (synthetisch)."
NOT_INCLUDED_NOTE = "Voortzetten ambulante behandeling (synthetisch)."


@dataclass
class NationalOptions:
    months: int = 12
    year: int = 2023
    seed: int = 2023
    # The pace's floor: a simulated day lasts at least this / 30 wall seconds (the components
    # may make it longer: the clock waits for them). 2 s: a year's 400 days have a floor of 27 s,
    # and the ladder's regional 14 days (0.9 s) stay longer than an EPD's answer takes to travel
    # (inbox poll 0.2 s, then the router); 5 s made the floor alone 67 s (issue 19: <= 1 min).
    seconds_per_month: float = 2.0
    referrals_per_year: int = 375


class BusinessClock:
    """The claims desks' and payers' time; the scenario moves it one day at a time."""

    def __init__(self, day: date) -> None:
        self.now = datetime.combine(day, time(9), tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass
class Tally:
    """What the scenario saw, for the summary."""

    facts: list[Fact] = field(default_factory=list)
    referral_answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # case -> answer
    assessments: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    capacity_reports: int = 0
    claims_entered: Counter[str] = field(default_factory=Counter)  # treatment | support
    input_refused: int = 0  # items the adapters refused in a receipt
    answers: Counter[str] = field(default_factory=Counter)  # paid | rejected | withheld
    waits: int = 0  # simulated days on which the clock waited for the components
    gave_up: int = 0  # ... and went on after the wait's time limit (figures may then suffer)


def _csv(rows: list[dict[str, Any]]) -> bytes:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols, delimiter=";", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue().encode()


def _person_cols(c: Case) -> dict[str, Any]:
    p = c.person
    return {
        "bsn": p["bsn"],
        "family_name": p["family_name"],
        "given_names": "|".join(p["given_names"]),
        "birth_date": p["birth_date"],
        "gender": p["gender"],
        "municipality": p.get("municipality"),
        "homeless": "ja" if p["homeless"] else "nee",
    }


def router_today() -> date:
    """The day the router judges a conflict-of-duties decision on: its own clock (UTC), not the
    message's timestamp, which the sender sets (``docs/policy.md`` §1a). The scenario replays a
    past year at today's date, so a decision it makes is dated by the router's day."""
    return datetime.now(UTC).date()


def conflict_of_duties(occasion: str, day: date, decided_by: str) -> dict[str, Any]:
    """One conflict-of-duties decision, for one occasion (the basis columns of an EPD row)."""
    valid_until = router_today() + timedelta(days=CONFLICT_VALIDITY_DAYS)
    return {
        "purpose": "safety",
        "basis": "conflict-of-duties",
        "basis_justification": f"{occasion} {day.isoformat()}: {CONFLICT_REASON}",
        "basis_decided_by": decided_by,
        "basis_valid_until": valid_until.isoformat(),
    }


def _assessment_basis(c: Case, day: date) -> dict[str, Any]:
    if c.basis != "conflict-of-duties":
        return {}  # consent (the adapter's default)
    return conflict_of_duties("Inclusiebesluit", day, f"regiebehandelaar {c.region.provider}")


def transition_basis(c: Case, t: Transition) -> dict[str, Any]:
    """What a care transition travels on. With consent: the consent. Without: a scale-up to a
    high security level is an occasion for a new conflict-of-duties decision to inform the ZVH;
    every other transition travels on the person's legal title (Wfz for a criminal-law title,
    else the Wvggz zorgmachtiging), which reaches DJI for a Wfz title and not the ZVH, which has
    no basis of its own (the router refuses it there, and the summary counts it)."""
    if c.basis != "conflict-of-duties":
        return {}
    if t.kind == "scale-up" and t.level in SAFETY_LEVELS:
        return conflict_of_duties("Opschaling", t.on, f"regiebehandelaar {c.region.provider}")
    cols: dict[str, Any] = {
        "purpose": "COC",
        "basis": "legal-obligation",
        "basis_citation": "wfz" if c.criminal_title else "wvggz",
    }
    if c.criminal_title:
        cols["notify"] = DJI
    return cols


def transition_row(c: Case, t: Transition) -> dict[str, Any]:
    """The EPD's CSV row for one care transition, with the basis it travels on."""
    secure = t.level != "ambulant"
    return {
        "transition_id": f"TR-{c.case_id}-{t.on:%Y-%m-%d}-{t.kind}",
        "episode_id": c.episode_id,
        "kind": t.kind,
        "effective_on": t.on.isoformat(),
        **_person_cols(c),
        "security_level": t.level,
        "previous_level": t.previous,
        "location_id": f"{c.region.provider}-kliniek-{t.level}" if secure else None,
        "location_name": f"Kliniek niveau {t.level}" if secure else None,
        "reason": SCALE_UP_REASON if t.kind == "scale-up" else None,
        **transition_basis(c, t),
    }


class NationalScenario:
    def __init__(self, stack: LocalStack, clock: BusinessClock, plan: Plan, opts: NationalOptions):
        self.stack, self.clock, self.plan, self.opts = stack, clock, plan, opts
        self.tally = Tally()
        self.by_day: dict[date, list[Case]] = {}
        for c in plan.cases:
            self.by_day.setdefault(c.registered_on, []).append(c)
        self.referral_mid: dict[str, tuple[str, str]] = {}  # case -> (zvh, message id)
        self.pending_files: dict[Path, str] = {}  # receipt path -> party
        self.assessed: set[str] = set()
        self.claims_seen: dict[str, tuple[str, date]] = {}  # claim id -> (payer, received)
        self.answered: dict[str, date] = {}  # claim id -> the day its payer answered (or not)
        self.municipality_done: set[tuple[str, str]] = set()  # (case, what) already sent
        self.seq = 0
        self.ladder: LadderActor | None = None  # the ladder's people (national_ladder.py)

    # --- files -----------------------------------------------------------------------------

    def _drop(self, party: str, stem: str, suffix: str, content: bytes) -> None:
        self.seq += 1
        name = f"{stem}-{self.clock.today:%Y%m%d}-{self.seq:05d}{suffix}"
        demo.drop(self.stack.inbox(party), name, content)
        self.pending_files[self.stack.inbox(party) / "processed" / f"{name}.receipt.json"] = party

    def drop_answers(self, party: str, rows: list[dict[str, Any]]) -> None:
        """A regional step's EPD drops its escalation answers as CSV in its adapter's inbox."""
        self._drop(party, "escalatie-antwoorden", ".csv", _csv(rows))

    def _collect_receipts(self) -> None:
        for path, party in list(self.pending_files.items()):
            failed = (
                path.parent.parent / "failed" / path.name.replace(".receipt.json", ".error.json")
            )
            if path.exists():
                receipt = json.loads(path.read_text())
                self.tally.input_refused += len(receipt.get("refused", []))
                for a in receipt.get("accepted", []):
                    if a.get("event") == "referral":
                        self.referral_mid[a["case"]] = (party, a["message_id"])
                del self.pending_files[path]
            elif failed.exists():
                report = json.loads(failed.read_text())
                self.tally.input_refused += max(1, len(report.get("refused", [])))
                del self.pending_files[path]

    def _collect_answers(self) -> None:
        for case, (zvh, mid) in self.referral_mid.items():
            if case not in self.tally.referral_answers:
                answer = self.stack.zvh[zvh].responses.get(mid)
                if answer is not None:
                    self.tally.referral_answers[case] = answer

    # --- the ZVHs ---------------------------------------------------------------------------

    def _zvh_day(self, day: date) -> None:
        per_zvh: dict[str, list[dict[str, Any]]] = {}
        for c in self.by_day.get(day, []):
            docs = per_zvh.setdefault(c.zvh, [])
            if c.basis == "consent":
                consent = demo.consent("TOE-" + c.case_id, c.person["bsn"], day)
                consent["recipient_roles"] = ["coordinating-provider", "zvh"]
                consent["categories"] = CONSENT_CATEGORIES
                # whose data it lets through (Mitz: the data holders): the ZVH's referral and
                # the region's provider's assessment and transitions
                consent["holders"] = [c.zvh, c.region.provider]
                consent["valid_from"] = day.isoformat()
                # the router judges a consent at wall-clock time, the year is in the past
                consent["valid_until"] = (max(day, date.today()) + timedelta(days=730)).isoformat()
                docs.append(consent)
            sector = "municipality" if c.care_avoider else "police" if c.criminal_title else "care"
            doc = demo.referral(
                c.case_id,
                c.region.code,
                c.person,
                day,
                signaller={"name": f"Melder ({sector})", "sector": sector},
                care_avoider=c.care_avoider,
                legal_titles=[
                    {"kind": "strafrechtelijk", "start": c.criminal_title.isoformat()}
                    if c.criminal_title
                    else {
                        "kind": "wvggz-zorgmachtiging",
                        "start": (day - timedelta(days=60)).isoformat(),
                    }
                ],
            )
            if sector == "police":  # police facts travel apart from the signal (police-data)
                doc["police_facts"] = POLICE_FACTS
            if c.basis == "conflict-of-duties":
                decision = conflict_of_duties("Aanmelding", day, "procesregisseur ZVH")
                doc["basis"] = {
                    "kind": "conflict-of-duties",
                    "justification": decision["basis_justification"],
                    "decided_by": decision["basis_decided_by"],
                    "valid_until": decision["basis_valid_until"],
                }
            docs.append(doc)
        for zvh, docs in per_zvh.items():
            self._drop(zvh, "aanmeldingen", ".json", json.dumps(docs, ensure_ascii=False).encode())

    # --- the providers' EPDs ----------------------------------------------------------------

    def _delivered(self, c: Case) -> bool:
        a = self.tally.referral_answers.get(c.case_id)
        if a is None or a.get("status") != "accepted":
            return False
        # the EPD decides on a referral it has received (its desk dates the registration)
        case = self.stack.providers[c.region.provider].desk.cases.get((c.zvh, c.case_id))
        return case is not None and case.registered_on is not None

    def _provider_day(self, day: date) -> None:
        rows: dict[str, dict[str, list[dict[str, Any]]]] = {}

        def add(c: Case | str, kind: str, row: dict[str, Any]) -> None:
            provider = c if isinstance(c, str) else c.region.provider
            rows.setdefault(provider, {}).setdefault(kind, []).append(row)

        for c in self.plan.cases:
            if c.case_id in self.assessed:
                for t in c.transitions:
                    if t.on == day:
                        self._transition(c, t, add)
                if day.day == 1 and c.included and day <= self.plan.end + timedelta(days=1):
                    self._claims(c, day, add)
                continue
            if c.assessed_on > day or not self._delivered(c):
                continue
            self.assessed.add(c.case_id)
            self.tally.assessments["included" if c.included else "not-included"] += 1
            met = "met" if c.included else "not-met"
            row: dict[str, Any] = {
                "assessment_id": "BEO-" + c.case_id,
                "zvh": c.zvh,
                "case_id": c.case_id,
                "assessed_on": day.isoformat(),
                **_person_cols(c),
                "decision": "included" if c.included else "not-included",
                "dangerous_behaviour": "met",
                "multi_problem": met,
                "structure_need": "met",
                "legal_title": "met",
                "reasons": "Alle criteria vervuld."
                if c.included
                else "Voorliggende zorg volstaat.",
                "alternative": c.alternative,
                "alternative_note": None if c.included else NOT_INCLUDED_NOTE,
                "inclusion_date": c.inclusion_date.isoformat() if c.inclusion_date else None,
                "episode_id": c.episode_id if c.included else None,
                "insurer_uzovi": self._uzovi(c.insurer),
                "wlz_care_office": self._uzovi(c.care_office),
                # the WMO301 allocation the municipality sent for the registration phase
                "wmo_allocation": str(_stable("wmo301", c.case_id) % 999_999_999 + 1),
                # the care office's AW33 allocation and the AW35 start of care (iWlz)
                "wlz_allocation": str(_stable("aw33", c.case_id)) if c.care_office else None,
                "wlz_care_start": (c.inclusion_date or day).isoformat() if c.care_office else None,
                **_assessment_basis(c, day),
            }
            add(c, "beoordelingen", row)
            for t in c.transitions:  # a start on the day of the decision (or a late decision)
                if t.on <= day:
                    self._transition(c, t, add)
        if day.weekday() == 0:
            self._capacity(day, add)
        for provider, kinds in rows.items():
            for kind, items in kinds.items():
                self._drop(provider, kind, ".csv", _csv(items))

    def _uzovi(self, party: str | None) -> str | None:
        if party is None:
            return None
        ids = self.stack.deployment.registry.get(party).identifiers
        return ids.uzovi

    def _transition(self, c: Case, t: Transition, add: Any) -> None:
        self.tally.transitions[t.kind] += 1
        add(c, "transities", transition_row(c, t))

    def _claims(self, c: Case, day: date, add: Any) -> None:
        """On the first of a month the EPD enters last month's treatment and support."""
        last = day - timedelta(days=1)
        first = date(last.year, last.month, 1)
        in_care = [d for d in _days(first, last) if c.level_on(d) is not None]
        if not in_care:
            return
        start, end = in_care[0], in_care[-1]
        if c.criminal_title or c.care_office or c.insurer:
            amount = sum(DAY_RATE[c.level_on(d) or "ambulant"] for d in in_care)
            self.tally.claims_entered["treatment"] += 1
            add(c, "declaraties", self._claim_row(c, "BEH", "treatment", start, end, amount))
        if c.support and not c.person["homeless"]:
            self.tally.claims_entered["support"] += 1
            add(c, "declaraties", self._claim_row(c, "WMO", "support", start, end, SUPPORT_MONTH))

    @staticmethod
    def _claim_row(
        c: Case, prefix: str, service: str, start: date, end: date, cents: int
    ) -> dict[str, Any]:
        row = {
            "claim_id": f"{prefix}-{c.case_id}-{start:%Y%m}",
            "zvh": c.zvh,
            "case_id": c.case_id,
            "service": service,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "quantity": 1,
            "unit_price_cents": cents,
        }
        if service == "support":  # the municipality's WMO301 allocation (iWmo ToewijzingNummer)
            row["allocation"] = str(_stable("wmo301", c.case_id) % 999_999_999 + 1)
        return row

    def _capacity(self, day: date, add: Any) -> None:
        occupied: Counter[tuple[str, str]] = Counter()
        for c in self.plan.cases:
            if c.case_id in self.assessed and (lvl := c.level_on(day)) not in (None, "ambulant"):
                occupied[(c.region.provider, str(lvl))] += 1
        measured = datetime.combine(day, time(8), tzinfo=UTC).isoformat()
        for region in REGIONS:
            row: dict[str, Any] = {
                "report_id": f"CAP-{region.provider}-{day:%Y-%m-%d}",
                "location_id": f"{region.provider}-kliniek",
                "region": region.code,
                "measured_at": measured,
            }
            for level, beds in BEDS.items():
                base = _stable(region.code, level, day.isoformat()) % (beds // 2 + 1)
                used = min(beds, base + occupied[(region.provider, level)])
                row |= {
                    f"level_{level}_in_service": beds,
                    f"level_{level}_occupied": used,
                    f"level_{level}_available": beds - used,
                }
            self.tally.capacity_reports += 1
            add(region.provider, "capaciteit", row)

    # --- the payers' systems ----------------------------------------------------------------

    def _payer_day(self, day: date) -> None:
        claims: dict[str, Claim] = {}
        for pid, payer in self.stack.payers.items():
            for claim in list(payer.index.values()):
                if claim.claim_id not in self.claims_seen:
                    self.claims_seen[claim.claim_id] = (pid, max(day, claim.created))
                claims[claim.claim_id] = claim
        for claim_id, (pid, received) in self.claims_seen.items():
            if claim_id in self.answered:
                continue
            fate, days = payer_fate(self.opts.seed, claim_id)
            if received + timedelta(days=days) > day:
                continue
            self.answered[claim_id] = day
            self.tally.answers[fate] += 1
            if fate == "withheld":
                continue
            role = self.stack.payers[pid].role
            doc, suffix = _answer(role, claims[claim_id], day, fate == "paid")
            self._drop(pid, "antwoord", suffix, doc)

    # --- the municipalities -----------------------------------------------------------------

    def _municipality_day(self, day: date) -> None:
        """The municipalities take their part (issue 15 point 3): for a quarter of the referrals
        they were told of they bring what they know to the ZVH a few days later, and a tenth of
        those still undecided after three weeks they escalate, with reasons in turn."""
        for pid, adapter in self.stack.payers.items():
            if not isinstance(adapter, MunicipalityAdapter):
                continue
            docs: list[dict[str, Any]] = []
            for (zvh, case), known in list(adapter.cases.items()):
                if not known.notified:
                    continue
                age = (day - known.registered_on).days
                h = _stable(str(self.opts.seed), case, "municipality")
                informs = h % 4 == 0 and age >= INFORMATION_AFTER_DAYS
                if informs and (case, "information") not in self.municipality_done:
                    self.municipality_done.add((case, "information"))
                    docs.append(
                        {
                            "kind": "information",
                            "zvh": zvh,
                            "case": case,
                            "information": "Bekend bij de gemeente: Wmo-begeleiding en "
                            "schuldhulp in een eerder traject.",
                        }
                    )
                stuck = age >= MUNICIPAL_ESCALATION_AFTER_DAYS and case not in self.assessed
                if h % 10 == 1 and stuck and (case, "escalation") not in self.municipality_done:
                    self.municipality_done.add((case, "escalation"))
                    reason = MUNICIPAL_REASONS[(h // 10) % len(MUNICIPAL_REASONS)]
                    doc: dict[str, Any] = {
                        "kind": "escalation",
                        "zvh": zvh,
                        "case": case,
                        "reason": reason,
                        "stuck_since": known.registered_on.isoformat(),
                        "reference": f"ESC-GEM-{case}",
                    }
                    if reason == "other":
                        doc["explanation"] = "Geen besluit na drie weken; woonplek loopt af."
                    docs.append(doc)
            if docs:
                self._drop(pid, "gemeente", ".json", json.dumps(docs, ensure_ascii=False).encode())

    # --- the year ---------------------------------------------------------------------------

    async def run(self, console: Console) -> None:
        plan = self.plan
        last = plan.end + timedelta(days=TAIL_DAYS)
        total = (last - plan.start).days + 1
        day_seconds = self.opts.seconds_per_month / 30
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days · {task.fields[status]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("national year", total=total, status="")
            day = plan.start
            pace = Pace(day_seconds)
            loop = asyncio.get_running_loop()
            while day <= last:
                began = loop.time()
                self.clock.now = datetime.combine(day, time(9), tzinfo=UTC)
                times = ladder_times(pace.tick(began))
                for router in self.stack.routers:  # the ladder ages by the router's clock
                    router.ladder_times = times
                self._collect_receipts()
                self._collect_answers()
                if day <= plan.end:
                    self._zvh_day(day)
                self._provider_day(day)
                self._municipality_day(day)
                self._payer_day(day)
                if self.ladder is not None:
                    await self.ladder.day(day)
                # the day lasts day_seconds from its start, its own work included: the pace is
                # a floor, not a sleep added to the work (a year's days are 400 of them)
                await asyncio.sleep(pace.rest(began, loop.time()))
                await self._keep_up(day)
                progress.update(
                    task,
                    advance=1,
                    description=f"{day:%d %b %Y}",
                    status=(
                        f"{len(self.referral_mid)} referrals, {len(self.assessed)} assessed, "
                        f"{len(self.claims_seen)} claims"
                    ),
                )
                day += timedelta(days=1)
        await self.settle()

    def _claims_in_flight(self, today: date) -> int:
        """Claims the pipeline has carried for more than ``IN_FLIGHT_GRACE_DAYS`` simulated days
        without arriving: sent by a desk but not yet at their payer, or answered by the payer
        but the answer not yet back at the desk. Claims a payer deliberately leaves unpaid, or
        answers later by plan, do not count."""
        at_payer = {cid for payer in self.stack.payers.values() for cid in payer.index}
        n = 0
        for provider in self.stack.providers.values():
            for entry in provider.desk.book.entries.values():
                # DELIVERED: the router took it, the payer's answer has not reached the desk
                if entry.status not in (ClaimStatus.SENT, ClaimStatus.DELIVERED):
                    continue
                cid = entry.claim.claim_id
                travelling = cid not in at_payer and cid not in self.claims_seen
                since = entry.sent_on
                answered = self.answered.get(cid)
                if answered is not None and payer_fate(self.opts.seed, cid)[0] != "withheld":
                    travelling, since = True, answered
                if travelling and (today - since).days >= IN_FLIGHT_GRACE_DAYS:
                    n += 1
        return n

    async def _keep_up(self, today: date, limit: int = 40, timeout: float = 30.0) -> None:
        """Do not let the simulated clock run far ahead of the components: wait while many files
        wait in inboxes or claims are overdue in transit (else the 28-day watchdog would
        escalate claims that are merely slow to be routed, not unpaid). A few simulated days of
        slack let the pipeline work while the clock goes on, instead of a round trip per day."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waited = False
        while loop.time() < deadline:
            self._collect_receipts()
            self._collect_answers()
            if len(self.pending_files) <= limit and self._claims_in_flight(today) == 0:
                self.tally.waits += waited
                return
            waited = True
            await asyncio.sleep(0.05)
        self.tally.waits += 1
        self.tally.gave_up += 1

    async def settle(self, quiet: float = 1.0, timeout: float = 60.0) -> None:
        """Wait until every file is processed and the stream is quiet; desks tick once more,
        and what that tick sent is answered and quiet in turn. Quiet is ``quiet`` seconds
        without a new router fact: longer than the adapters' poll and tick intervals, so a
        delivery still on its way is waited for, and the end of the run is not a fixed sleep."""
        await self._quiet(quiet, timeout)
        for provider in self.stack.providers.values():
            await provider.tick()
        await self._quiet(quiet, timeout)
        self._collect_answers()
        if self.ladder is not None:
            self.ladder.observe(self.clock.today)

    async def _quiet(self, quiet: float, timeout: float, step: float = 0.1) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen, still = -1, 0.0
        while loop.time() < deadline:
            self._collect_receipts()
            self._collect_answers()
            n = len(self.tally.facts)
            unanswered = any(
                e.status is ClaimStatus.SENT
                for p in self.stack.providers.values()
                for e in p.desk.book.entries.values()
            )
            if not self.pending_files and not unanswered and n == seen:
                still += step
                if still >= quiet:
                    return
            else:
                still = 0.0
            seen = n
            await asyncio.sleep(step)


def _stable(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:4], "big")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _answer(role: PartyRole, claim: Claim, day: date, paid: bool) -> tuple[bytes, str]:
    codes = ("0200",) if paid else ("R001",)
    pay = (day.isoformat(), claim.amount_cents) if paid else None
    if role is PartyRole.MUNICIPALITY:
        return wmo.write_answer(claim, day.isoformat(), codes, paid=pay), ".xml"
    if role is PartyRole.CARE_OFFICE:
        return wlz.write_answer(claim, day.isoformat(), codes, paid=pay), wlz.SUFFIX
    if role in (PartyRole.HEALTH_INSURER, PartyRole.DJI):
        decl = vektis.write_declaration(claim)
        out = vektis.write_answer(
            decl, day, ("0000",) if paid else codes, paid_on=day if paid else None
        )
        return out, ".asc"
    row = {
        "reference": reference(claim.claim_id),
        "bsn": claim.person.bsn,
        "decided_on": day.isoformat(),
        "outcome": "paid" if paid else "rejected",
    }
    if paid:
        row |= {
            "approved_cents": str(claim.amount_cents),
            "paid_cents": str(claim.amount_cents),
            "paid_on": day.isoformat(),
        }
    else:
        row["rejection_reason"] = "no-payment-title"
    return vws.write_answer([row]), ".csv"


# --- the summary ----------------------------------------------------------------------------


@dataclass
class Summary:
    referrals: int
    answered: int
    routed: int
    refused: int
    refusal_reasons: Counter[str]
    included: int
    not_included: int
    care_avoiders: int
    transitions: Counter[str]
    capacity_reports: int
    capacity_delivered: int
    claims: dict[str, tuple[int, int]]  # regime -> (count, cents)
    claim_status: Counter[str]
    paid: tuple[int, int]
    answers: Counter[str]
    escalations: Counter[str]
    escalations_delivered: int
    router_refusals: Counter[str]
    input_refused: int
    clock_waits: tuple[int, int] = (0, 0)  # days the clock waited, of which it gave up
    # deliveries per "<flow> on <basis>": conflict of duties appears per occasion only
    delivered_by_basis: Counter[str] = field(default_factory=Counter)
    transitions_not_for_zvh: int = 0  # without consent, not an occasion: refused to the ZVH
    # costs attributed to a payer but held (no tariff, or a precondition unmet), per
    # "<payer>: <service> (<reason>)"; e.g. the 2022-2023 registration the ministries cover
    held: Counter[str] = field(default_factory=Counter)
    escalation_outcomes: list[EscalationOutcome] = field(default_factory=list)
    municipality_information: int = 0  # documents the municipalities sent the ZVHs
    referral_notices: int = 0  # referral notices the municipalities received
    ladder_answers_refused: int = 0  # national answers the router refused (raced a close)

    @property
    def claims_total(self) -> tuple[int, int]:
        return (
            sum(n for n, _ in self.claims.values()),
            sum(c for _, c in self.claims.values()),
        )


@dataclass(frozen=True)
class EscalationOutcome:
    """One escalation as the summary counts it: its reason (EscalationReason code), the level
    it was resolved at (or, while open, reached), the simulated day a step first saw it and the
    day a ``resolve`` answer was seen -- all read from the steps' topics (national_ladder.py)."""

    reason: str
    level: str
    since: date | None
    resolved_on: date | None = None

    @property
    def days(self) -> int | None:
        if self.since is None or self.resolved_on is None:
            return None
        return (self.resolved_on - self.since).days


def escalation_outcomes(s: NationalScenario) -> list[EscalationOutcome]:
    """Every escalation a step of the ladder saw: the claims desks' (financing gaps, unpaid
    claims, straight to national), the municipalities' (stuck cases) and the router's watchdogs'
    (regional first), with the level and day of their resolution as the topics showed them."""
    if s.ladder is None:
        return []
    return [
        EscalationOutcome(o.reason, o.level, o.raised_on, o.resolved_on)
        for _, o in sorted(s.ladder.seen.items())
    ]


def escalation_counts(
    outcomes: list[EscalationOutcome],
) -> list[tuple[str, str, int, int, float | None]]:
    """(reason, level, raised, resolved, median days to resolution) per reason and level."""
    groups: dict[tuple[str, str], list[EscalationOutcome]] = {}
    for o in outcomes:
        groups.setdefault((o.reason, o.level), []).append(o)
    rows = []
    for (reason, level), group in sorted(groups.items()):
        days = sorted(d for o in group if (d := o.days) is not None)
        median = float(statistics.median(days)) if days else None
        rows.append((reason, level, len(group), len(days), median))
    return rows


def summarise(s: NationalScenario) -> Summary:
    t = s.tally
    reasons: Counter[str] = Counter()
    refused = 0
    for answer in t.referral_answers.values():
        if answer.get("status") != "accepted":
            refused += 1
            codes = [r.get("code", "?") for r in answer.get("reasons", [])] or ["unspecified"]
            reasons.update(codes)
    claims: dict[str, tuple[int, int]] = {}
    status: Counter[str] = Counter()
    paid_n = paid_c = 0
    escalations: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for provider in s.stack.providers.values():
        for h in provider.desk.held.values():
            held[f"{h.ruling.target.value}: {h.ruling.service.value} ({h.reason})"] += 1
        for e in provider.desk.book.entries.values():
            n, cents = claims.get(e.claim.regime.value, (0, 0))
            claims[e.claim.regime.value] = (n + 1, cents + e.claim.amount_cents)
            status[e.status.value] += 1
            if e.status in (ClaimStatus.PAID, ClaimStatus.ADVANCED):
                paid_n += 1
                paid_c += e.claim.amount_cents
        for esc in provider.desk.raised:
            escalations[_escalation_kind(esc)] += 1
    information = sum(1 for _, what in s.municipality_done if what == "information")
    notices = 0
    for adapter in s.stack.payers.values():
        if isinstance(adapter, MunicipalityAdapter):
            for reason, _ in adapter.escalated.values():
                escalations[f"{reason.value} (a municipality: case undecided)"] += 1
            notices += sum(1 for known in adapter.cases.values() if known.notified)
    router: Counter[str] = Counter()
    for f in t.facts:
        if f.kind in (FactKind.DENY, FactKind.REFUSAL):
            router[f"{f.event or 'message'}: {f.reason}"] += 1
    permits = [f for f in t.facts if f.kind is FactKind.PERMIT]
    by_basis: Counter[str] = Counter(
        f"{f.event} on {f.legal_basis}" for f in permits if f.event and f.legal_basis
    )
    not_for_zvh = sum(
        1
        for f in t.facts
        if f.kind is FactKind.DENY
        and f.event is EventCode.CARE_TRANSITION
        and f.recipient_role is PartyRole.ZVH
        and f.reason == "legal-basis-not-accepted"
    )
    included = [c for c in s.plan.cases if c.case_id in s.assessed and c.included]
    return Summary(
        referrals=len(s.referral_mid),
        answered=len(t.referral_answers),
        routed=len(t.referral_answers) - refused,
        refused=refused,
        refusal_reasons=reasons,
        included=t.assessments["included"],
        not_included=t.assessments["not-included"],
        care_avoiders=sum(1 for c in included if c.care_avoider),
        transitions=t.transitions,
        capacity_reports=t.capacity_reports,
        capacity_delivered=sum(1 for f in permits if f.event == "capacity-report"),
        claims=claims,
        claim_status=status,
        paid=(paid_n, paid_c),
        answers=t.answers,
        escalations=escalations,
        escalations_delivered=sum(
            1 for f in permits if f.event == "escalation" and f.recipient == NATIONAL
        ),
        router_refusals=router,
        input_refused=t.input_refused,
        clock_waits=(t.waits, t.gave_up),
        delivered_by_basis=by_basis,
        transitions_not_for_zvh=not_for_zvh,
        held=held,
        escalation_outcomes=escalation_outcomes(s),
        municipality_information=information,
        referral_notices=notices,
        ladder_answers_refused=s.ladder.refused if s.ladder is not None else 0,
    )


def _escalation_kind(escalation_id: str) -> str:
    if escalation_id.startswith("LATE-"):
        return "payment-overdue (28-day watchdog)"
    if escalation_id.startswith("GAP-REJ"):
        return "no-payer: claim rejected, no payment title"
    if escalation_id.startswith("HOLD-"):
        return "claim held too long (allocation missing)"
    if escalation_id.startswith("GAP-REG"):
        return "no-payer: registration phase without a rule"
    if escalation_id.startswith("GAP-CO"):
        return "no-payer: coordination days without a rule or payer"
    return "no-payer: other"


def _eur(cents: int) -> str:
    return f"EUR {cents / 100:,.2f}"


def summary_tables(s: Summary, where: list[str]) -> list[Table]:
    cases = Table(title="National scenario: cases")
    cases.add_column("what")
    cases.add_column("count", justify="right")
    for label, value in (
        ("referrals sent by the 25 ZVHs", s.referrals),
        ("  routed to the coordinating provider", s.routed),
        ("  refused by the router", s.refused),
        ("assessed: included", s.included),
        ("assessed: not included", s.not_included),
        ("  care avoiders among the included", s.care_avoiders),
        *((f"care transitions: {k}", v) for k, v in sorted(s.transitions.items())),
        ("  transitions not for the ZVH (no consent, no occasion)", s.transitions_not_for_zvh),
        ("capacity reports sent / delivered", f"{s.capacity_reports} / {s.capacity_delivered}"),
        ("input items refused by an adapter", s.input_refused),
    ):
        cases.add_row(label, str(value))
    claims = Table(title="Claims per regime")
    for col in ("regime", "claims", "amount"):
        claims.add_column(col, justify="left" if col == "regime" else "right")
    for regime, (n, cents) in sorted(s.claims.items()):
        claims.add_row(regime, str(n), _eur(cents))
    n, cents = s.claims_total
    claims.add_row("[bold]total[/]", f"[bold]{n}[/]", f"[bold]{_eur(cents)}[/]")
    claims.add_row("paid (or advanced)", str(s.paid[0]), _eur(s.paid[1]), style="green")
    for what, count in sorted(s.held.items()):
        claims.add_row(f"held, attributed to {what}", str(count), "no tariff", style="yellow")
    status = ", ".join(f"{k} {v}" for k, v in sorted(s.claim_status.items()))
    answers = ", ".join(f"{k} {v}" for k, v in sorted(s.answers.items()))
    claims.caption = f"claim states: {status}\npayers' planned answers: {answers}"
    refusals = Table(title="Refusals by reason")
    refusals.add_column("where")
    refusals.add_column("reason")
    refusals.add_column("count", justify="right")
    for reason, count in s.refusal_reasons.most_common():
        refusals.add_row("referral answer to the ZVH", reason, str(count))
    for reason, count in s.router_refusals.most_common():
        refusals.add_row("router decision", reason, str(count))
    grounds = Table(title="Deliveries by flow and basis")
    grounds.add_column("flow on basis")
    grounds.add_column("delivered", justify="right")
    for key, count in sorted(s.delivered_by_basis.items()):
        grounds.add_row(key, str(count))
    grounds.caption = (
        f"conflict of duties: one decision per occasion, valid {CONFLICT_VALIDITY_DAYS} days; "
        "transitions without consent travel on the person's legal title"
    )
    esc = Table(title="Escalations raised by the claims desks and the municipalities")
    esc.add_column("reason")
    esc.add_column("count", justify="right")
    for reason, count in sorted(s.escalations.items()):
        esc.add_row(reason, str(count))
    waits, gave_up = s.clock_waits
    esc.caption = (
        f"{s.escalations_delivered} delivered to the coordination point\n"
        f"the simulated clock waited for the components on {waits} day(s)"
        + (
            f"; on {gave_up} it went on after 30 s, so some payment-overdue escalations "
            "may be claims that were only slow"
            if gave_up
            else ""
        )
    )
    ladder = Table(title="Escalations by reason and level")
    for col in ("reason", "level", "raised", "resolved", "median days"):
        ladder.add_column(col, justify="left" if col in ("reason", "level") else "right")
    for reason, level, raised, resolved, median in escalation_counts(s.escalation_outcomes):
        ladder.add_row(
            reason, level, str(raised), str(resolved), "—" if median is None else f"{median:g}"
        )
    ladder.caption = (
        "level: where it was resolved (or, open, reached); median days: simulated days from the "
        "first step seeing it to the resolution seen on the topics\n"
        f"municipalities: {s.referral_notices} referral notices received, "
        f"{s.municipality_information} times they brought what they knew to the ZVH"
        + (
            f"\n{s.ladder_answers_refused} answer(s) of the coordination point refused "
            "(the escalation was closed first)"
            if s.ladder_answers_refused
            else ""
        )
    )
    look = Table(title="Where to look", show_header=False)
    look.add_column("")
    for w in where:
        look.add_row(w)
    return [cases, claims, refusals, grounds, esc, ladder, look]


def summary_json(s: Summary) -> dict[str, Any]:
    return {
        "referrals": s.referrals,
        "answered": s.answered,
        "routed": s.routed,
        "refused": s.refused,
        "refusal_reasons": dict(s.refusal_reasons),
        "included": s.included,
        "not_included": s.not_included,
        "care_avoiders": s.care_avoiders,
        "transitions": dict(s.transitions),
        "capacity_reports": s.capacity_reports,
        "capacity_delivered": s.capacity_delivered,
        "claims": {k: {"count": n, "cents": c} for k, (n, c) in s.claims.items()},
        "claims_total": {"count": s.claims_total[0], "cents": s.claims_total[1]},
        "claim_status": dict(s.claim_status),
        "paid": {"count": s.paid[0], "cents": s.paid[1]},
        "payer_answers": dict(s.answers),
        "escalations": dict(s.escalations),
        "held": dict(s.held),
        "escalations_delivered": s.escalations_delivered,
        "router_refusals": dict(s.router_refusals),
        "input_refused": s.input_refused,
        "clock_waits": {"days": s.clock_waits[0], "gave_up": s.clock_waits[1]},
        "delivered_by_basis": dict(s.delivered_by_basis),
        "transitions_not_for_zvh": s.transitions_not_for_zvh,
        "escalations_by_reason_and_level": [
            {"reason": r, "level": lv, "raised": n, "resolved": done, "median_days": m}
            for r, lv, n, done, m in escalation_counts(s.escalation_outcomes)
        ],
        "referral_notices": s.referral_notices,
        "municipality_information": s.municipality_information,
        "ladder_answers_refused": s.ladder_answers_refused,
    }


# --- ketenbus up --scenario national ---------------------------------------------------------


async def up_national(
    settings: Settings,
    *,
    http_port: int | None,
    exit_when_done: bool = False,
    console: FlowConsole | None = None,
    options: NationalOptions | None = None,
) -> int:
    out = console or FlowConsole()
    opts = options or NationalOptions()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state_dir = Path(settings.state_dir)
    where = "configured" if settings.bootstrap_servers else "embedded"
    start = date(opts.year, 1, 1)
    settings = scaled_settings(settings, opts.seconds_per_month)
    plan = make_plan(opts.seed, start, opts.months, opts.referrals_per_year)
    clock = BusinessClock(start)
    began = loop.time()  # the timing the bench reads from the summary (broker/apps/bench)
    async with kafka_connection(settings) as bootstrap:
        settings = settings.with_bootstrap(bootstrap)
        out.note(f"Kafka at [bold]{bootstrap}[/] ({where})")
        party_list = parties()
        deployment = create_local(
            state_dir, party_list, router_instances=router_instance_ids(settings.routers)
        )
        facts: list[Fact] = []
        stack = LocalStack(
            settings,
            deployment,
            default_policy(),
            StackOptions(
                data_dir=state_dir / "data",
                session_timeout_ms=3000,
                http_port=http_port,
                poll_interval=0.2,
                tick_interval=0.3,
                clock=clock,
                on_fact=facts.append,
            ),
        )
        out.note(f"starting the router and {len(party_list)} parties' adapters…")
        try:
            await stack.start()
        except HttpPortInUse as e:
            out.note(f"[bold red]cannot start:[/] {e}")
            await stack.stop()
            return 2
        out.note(
            f"{len(stack.zvh)} ZVH, {len(stack.providers)} provider and {len(stack.payers)} payer "
            f"adapters running; data folders under [bold]{state_dir / 'data'}[/]"
        )
        out.note(
            f"simulating {opts.months} month(s) from {start.isoformat()}: "
            f"{len(plan.cases)} referrals planned (seed {opts.seed})"
        )
        code = 0
        scenario: NationalScenario | None = None
        try:
            scenario = NationalScenario(stack, clock, plan, opts)
            scenario.tally.facts = facts
            steps = {r.provider: deployment.party_client(r.provider) for r in REGIONS}
            scenario.ladder = LadderActor(
                settings,
                deployment.party_client(NATIONAL),
                steps,
                scenario.drop_answers,
                opts.seed,
                raisers={m: deployment.party_client(m) for m in map(municipality_id, REGIONS)},
            )
            await scenario.ladder.start()
            started = loop.time()
            if await _until_done_or_stopped(scenario.run(out.console), stop):
                timing = {
                    "start_seconds": round(started - began, 3),
                    "run_seconds": round(loop.time() - started, 3),
                    "days": (plan.end - plan.start).days + 1 + TAIL_DAYS,
                    "seconds_per_month": opts.seconds_per_month,
                }
                summary = summarise(scenario)
                for table in summary_tables(summary, _where(stack, state_dir)):
                    out.console.print(table)
                report = state_dir / "national-summary.json"
                doc = summary_json(summary) | {"timing": timing}
                report.write_text(json.dumps(doc, indent=2) + "\n")
                out.note(f"summary written to [bold]{report}[/]")
                if not exit_when_done:
                    out.note("running — press Ctrl-C to stop")
                    await stop.wait()
            else:
                out.note("interrupted before the end of the scenario: no summary")
                code = 130
        finally:
            out.note("stopping…")
            if scenario is not None and scenario.ladder is not None:
                await scenario.ladder.stop()
            await stack.stop()
    out.note("stopped cleanly")
    return code


async def _until_done_or_stopped(run: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run the scenario unless Ctrl-C or SIGTERM comes first (then cancel it: a year takes
    minutes, and an operator or ``docker stop`` must not wait for it). True when it finished."""
    task = asyncio.create_task(run, name="national-scenario")
    stopped = asyncio.create_task(stop.wait(), name="national-stop")
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        stopped.cancel()
        task.result()  # its error, if any, is the run's error
        return True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False


def _where(stack: LocalStack, state_dir: Path) -> list[str]:
    out = []
    web = getattr(stack, "web_url", None)
    if web:
        out.append(f"web pages: {web}")
    out.append("live health and traffic: ketenbus monitor (in another terminal)")
    if stack.http_url:
        out.append(f"ZVH HTTP endpoint: {stack.http_url}/referrals")
        if stack.http_party and stack.http_token:
            secret = state_dir / "secrets" / f"{stack.http_party}.intake-token"
            out.append(f"  with {stack.http_party}'s token: "
                       f'-H "Authorization: Bearer $(cat {secret})"')
    data = state_dir / "data"
    out += [
        f"each party's files: {data}/<party>/{{inbox,outbox}} (e.g. {data}/fivoor/outbox)",
        f"payer files: {data}/dji/outbox (Vektis), {data}/gemeente-utrecht/outbox (iWmo)",
        "the audit trail: ketenbus audit verify / ketenbus audit query",
    ]
    return out
