"""The escalation ladder in the national scenario (issue 15 point 8).

The router's ladder and watchdogs run with thresholds scaled to the scenario's compressed time
(:func:`scaled_settings`). A small simulated actor then plays the ladder's people: it reads what
reached the regional steps' (the coordinating providers') and the national coordination point's
``out.<party>`` topics, and answers through the real paths -- a regional step as its EPD does,
with a CSV file of answers (``answer_id``) in the provider adapter's inbox; the national point
with its own key, as the web app's escalation page does (:mod:`broker.apps.web.answers`). The
router checks each answer (asked? still open?), audits it and delivers it, so the summary counts
what the run observed on the topics -- escalations, ``move-national`` and ``resolve`` answers --
and not what the actor meant to do.

The ministers' letter (seeds/004) promises a national coordination point for cases that get
stuck; the VNG letter (seeds/000) asks for "een heldere escalatieladder": regional first,
national after a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from broker.apps.scenarios.national_parties import VWS, region_of_zvh
from broker.apps.web.answers import make_answer
from broker.config import Settings
from broker.kafka import make_consumer, make_producer
from broker.router.ladder import LadderTimes
from broker.trust import TrustError
from broker.trust.party import PartyClient
from schemas import topics
from schemas.errors import MessageError
from schemas.flows.escalation import escalation_from_message
from schemas.flows.escalation_answer import answer_from_message
from schemas.flows.response import response_from_message
from schemas.messaging import parse_message
from schemas.vocab import EscalationAction, EscalationLevel, EventCode

log = logging.getLogger(__name__)

# Thresholds in simulated days, scaled to seconds by the scenario's pace (Settings for the run).
REGIONAL_AFTER_DAYS = 14  # two weeks at the regional step, then national (an EPD answers
# through its inbox, behind the day's other files: a simulated week of slack for that)
UNDECIDED_AFTER_DAYS = 30  # decisions come 14-42 days after the referral (national_plan)
NO_CARE_START_AFTER_DAYS = 10  # care starts 0-21 days after the decision
NO_PLACEMENT_AFTER_DAYS = 7
# Watchdog causes the router closes itself when they go away: the steps acknowledge, not resolve.
SELF_CLOSING = ("WD-undecided-", "WD-no-care-start-", "WD-no-placement-")
FINANCING = ("no-payer", "payment-overdue")


def scaled_settings(settings: Settings, seconds_per_month: float) -> Settings:
    """``settings`` with the ladder's and the watchdogs' thresholds in the scenario's time: a
    simulated day lasts ``seconds_per_month / 30`` seconds (at least; the clock may wait)."""
    day = seconds_per_month / 30
    times = ladder_times(day)
    return settings.model_copy(
        update={
            "escalation_regional_seconds": times.regional_after.total_seconds(),
            "watchdog_undecided_seconds": times.undecided_after.total_seconds(),
            "watchdog_no_care_start_seconds": times.no_care_start_after.total_seconds(),
            "watchdog_no_placement_seconds": times.no_placement_after.total_seconds(),
            "escalation_tick_seconds": max(0.05, day / 2),
        }
    )


def ladder_times(seconds_per_day: float) -> LadderTimes:
    """The thresholds in wall-clock time at a pace of ``seconds_per_day`` per simulated day.
    The router's ladder ages escalations by its own clock; the simulated clock waits for the
    components now and then, so the scenario re-times the router to the pace it measures
    (:class:`Pace`), or a week at the regional step would last a day or two."""
    day = timedelta(seconds=seconds_per_day)
    return LadderTimes(
        regional_after=REGIONAL_AFTER_DAYS * day,
        undecided_after=UNDECIDED_AFTER_DAYS * day,
        no_care_start_after=NO_CARE_START_AFTER_DAYS * day,
        no_placement_after=NO_PLACEMENT_AFTER_DAYS * day,
    )


class Pace:
    """The wall-clock seconds a simulated day takes, as a moving average (never below the
    nominal pace)."""

    def __init__(self, nominal: float, weight: float = 0.2) -> None:
        self.nominal, self.weight = nominal, weight
        self.seconds = nominal
        self._last: float | None = None

    def tick(self, now: float) -> float:
        """Call at the start of every simulated day with a monotonic time; the pace."""
        if self._last is not None:
            self.seconds += self.weight * (now - self._last - self.seconds)
        self._last = now
        return max(self.nominal, self.seconds)

    def rest(self, began: float, now: float) -> float:
        """Seconds left of a day that began at ``began``: its own work counts toward the floor,
        so a day whose work took the nominal pace or longer waits no more."""
        return max(0.0, began + self.nominal - now)


def _stable(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:4], "big")


@dataclass
class Seen:
    """One escalation as the steps' topics showed it, in simulated days."""

    raised_by: str
    escalation_id: str
    zvh: str
    case: str
    reason: str
    raised_on: date
    steps: set[str] = field(default_factory=set)  # regional steps it reached
    national_on: date | None = None
    resolved_on: date | None = None
    resolved_level: str | None = None
    resolved_by: str | None = None
    sent: set[str] = field(default_factory=set)  # "<step>:<action>" the actor sent

    @property
    def level(self) -> str:
        if self.resolved_level is not None:
            return self.resolved_level
        return "national" if self.national_on is not None else "regional"


class LadderActor:
    """The regional steps' and the national point's people, simulated. ``drop_csv(party, rows)``
    puts a CSV file of answers in a provider adapter's inbox (the scenario's ``_drop``)."""

    def __init__(
        self,
        settings: Settings,
        national: PartyClient,
        steps: dict[str, PartyClient],
        drop_csv: Callable[[str, list[dict[str, Any]]], None],
        seed: int,
        raisers: dict[str, PartyClient] | None = None,
    ) -> None:
        self.settings, self.national, self.steps = settings, national, steps
        self.drop_csv, self.seed = drop_csv, seed
        self.seen: dict[tuple[str, str], Seen] = {}
        self.refused = 0  # answers of the national point the router refused (raced a close)
        # A step's own answer goes to the escalating party, not back to the step: the
        # escalating parties' topics (``raisers``: the municipalities) show its resolutions.
        readers = [national, *steps.values(), *(raisers or {}).values()]
        self._clients = {c.registry.get(c.party_id).outbound_topic: c for c in readers}
        self._pending: list[tuple[str, Any]] = []  # (party, parsed message) not yet applied
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None

    # --- reading the steps' out topics -------------------------------------------------------

    async def start(self) -> None:
        self._consumer = make_consumer(self.settings, group_id=None, auto_offset_reset="earliest")
        await self._consumer.start()
        tps = [TopicPartition(t, p) for t in sorted(self._clients) for p in await self._parts(t)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._producer = make_producer(self.settings)
        await self._producer.start()
        self._task = asyncio.create_task(self._follow(), name="scenario-ladder")

    async def _parts(self, topic: str) -> set[int]:
        assert self._consumer is not None
        for _ in range(40):
            await self._consumer.topics()
            parts: set[int] | None = self._consumer.partitions_for_topic(topic)
            if parts:
                return parts
            await asyncio.sleep(0.05)
        return {0}

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for records in batch.values():
                for r in records:
                    self._read(r.topic, r.key, r.value or b"", list(r.headers or ()))

    def _read(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        client = self._clients[topic]
        try:
            msg = parse_message(client.open(key, value, headers).payload, full=False)
        except (TrustError, MessageError) as err:
            reason = getattr(err, "reason", "")
            log.warning("%s: delivery not readable (%s)", client.party_id, reason)
            return
        wanted = (EventCode.ESCALATION, EventCode.ESCALATION_ANSWER, EventCode.RESPONSE)
        if msg.meta.event in wanted:
            self._pending.append((client.party_id, msg))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for c in (self._consumer, self._producer):
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.stop()

    # --- what was seen ------------------------------------------------------------------------

    def observe(self, today: date) -> None:
        """Apply what reached the steps since the last call, dated ``today``."""
        pending, self._pending = self._pending, []
        for party, msg in pending:
            try:
                if msg.meta.event is EventCode.ESCALATION:
                    self._escalation(party, escalation_from_message(msg), today)
                elif msg.meta.event is EventCode.ESCALATION_ANSWER:
                    self._answer(answer_from_message(msg), today)
                elif party == self.national.party_id and msg.meta.sender != party:
                    self._response(msg)
            except MessageError as err:
                log.warning("escalation delivery not readable (%s)", err.reason)

    def _escalation(self, party: str, e: Any, today: date) -> None:
        key = (e.raised_by, e.escalation_id)
        s = self.seen.get(key)
        if s is None:
            s = self.seen[key] = Seen(
                e.raised_by, e.escalation_id, e.zvh, e.referral_id, e.reason.value, today
            )
        if e.level is EscalationLevel.NATIONAL:
            s.national_on = s.national_on or today
        elif party in self.steps:
            s.steps.add(party)

    def _answer(self, a: Any, today: date) -> None:
        s = self.seen.get((a.raised_by, a.escalation_id))
        if s is None:
            return
        if a.action is EscalationAction.MOVE_NATIONAL:
            s.national_on = s.national_on or today
        elif a.action is EscalationAction.RESOLVE and s.resolved_on is None:
            s.resolved_on, s.resolved_level, s.resolved_by = today, a.level.value, a.answered_by

    def _response(self, msg: Any) -> None:
        if response_from_message(msg).code.value != "ok":
            self.refused += 1

    # --- answering ----------------------------------------------------------------------------

    async def day(self, today: date) -> None:
        """Observe, then answer what is due today: a regional step acknowledges the next day,
        assigns a third to the ZVH and resolves about half of what it can within two days (the
        rest moves on to national after ``REGIONAL_AFTER_DAYS``); a watchdog's escalation it leaves
        alone (the router's own: an answer would go to nobody, refused as ``no-recipient``);
        the national point acknowledges, assigns a third, and resolves after 3-12 days."""
        self.observe(today)
        rows: dict[str, list[dict[str, Any]]] = {}
        national: list[tuple[Seen, EscalationAction, str | None, str]] = []
        for s in self.seen.values():
            if s.resolved_on is not None:
                continue
            h = _stable(str(self.seed), s.raised_by, s.escalation_id)
            self_closing = s.escalation_id.startswith(SELF_CLOSING)
            if s.national_on is None:
                for step in sorted(s.steps):
                    age = (today - s.raised_on).days
                    # a watchdog's escalation is the router's own: an answer from the regional
                    # step would go to nobody (the router refuses it as no-recipient)
                    watchdog = s.escalation_id.startswith("WD-")
                    if age >= 1 and not watchdog and f"{step}:ack" not in s.sent:
                        s.sent.add(f"{step}:ack")
                        rows.setdefault(step, []).append(
                            _row(s, "acknowledge", "In behandeling bij de regio.")
                        )
                    if (
                        not watchdog and h % 3 == 1 and age >= 1 and f"{step}:assign" not in s.sent
                    ):  # the ZVH's process director takes the case on
                        s.sent.add(f"{step}:assign")
                        rows.setdefault(step, []).append(
                            _row(s, "assign", "Procesregisseur ZVH pakt het op.", s.zvh)
                        )
                    if not watchdog and h % 2 == 0 and age >= 2 and f"{step}:resolve" not in s.sent:
                        s.sent.add(f"{step}:resolve")
                        rows.setdefault(step, []).append(
                            _row(s, "resolve", "Regionaal opgelost: plek en aanbieder gevonden.")
                        )
                continue
            age = (today - s.national_on).days
            if age >= 1 and "national:ack" not in s.sent:
                s.sent.add("national:ack")
                national.append((s, EscalationAction.ACKNOWLEDGE, None, "Ontvangen."))
            if h % 3 == 0 and age >= 2 and "national:assign" not in s.sent:
                s.sent.add("national:assign")
                # money to the ministry (the emergency rule is VWS's), care to the region
                who = VWS if s.reason in FINANCING else region_of_zvh(s.zvh).provider
                national.append((s, EscalationAction.ASSIGN, who, "Toegewezen."))
            if not self_closing and age >= 3 + h % 10 and "national:resolve" not in s.sent:
                s.sent.add("national:resolve")
                national.append((s, EscalationAction.RESOLVE, None, "Landelijk opgelost."))
        for step, items in rows.items():
            self.drop_csv(step, items)
        for s, action, assignee, note in national:
            await self._send_national(s, action, assignee, note)

    async def _send_national(
        self, s: Seen, action: EscalationAction, assignee: str | None, note: str
    ) -> None:
        _, bundle = make_answer(
            self.national,
            escalation_id=s.escalation_id,
            raised_by=s.raised_by,
            zvh=s.zvh,
            case_id=s.case,
            action=action,
            assignee=assignee,
            note=note,
        )
        key, value, headers = self.national.seal_message(dict(bundle), None)
        assert self._producer is not None
        await self._producer.send_and_wait(
            topics.IN_ESCALATION.name, value=value, key=key, headers=headers
        )


def _row(s: Seen, action: str, note: str, assignee: str | None = None) -> dict[str, Any]:
    """One row of a regional step's answers file (docs/adapters/provider.md)."""
    return {
        "answer_id": f"{action}-{s.escalation_id}"[:64],
        "escalation_id": s.escalation_id,
        "raised_by": s.raised_by,
        "zvh": s.zvh,
        "case_id": s.case,
        "action": action,
        "assignee": assignee,
        "note": note,
    }
