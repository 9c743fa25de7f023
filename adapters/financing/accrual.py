"""Client-bound coordination accrues per day from the inclusion date and is claimed per calendar
month: pure functions from an episode, the facts and "today" to claimable segments.

A segment is a run of consecutive days inside one calendar month with the same outcome (the
same rule, payer and price, or the same gap). Days split where a rule's validity ends, where a
criminal-law title starts or ends, at the end of care and at every month end. A month is
claimable once it is over (its last day is before today); after the end of care, the days up to
the end date are claimable the day after it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from adapters.financing.rules import Facts, Gap, Outcome, RuleSet
from schemas.vocab import ClaimService


@dataclass(frozen=True)
class Episode:
    """An included person's episode: coordination runs from ``inclusion`` to ``end`` inclusive
    (``end`` None: still running), except the ``paused`` periods (first and last day, last None:
    still paused): the days of a detention, which are not claimed (docs/financing.md)."""

    episode_id: str
    inclusion: date
    end: date | None = None
    paused: tuple[tuple[date, date | None], ...] = ()


def without_paused(
    segments: list[Segment], paused: tuple[tuple[date, date | None], ...]
) -> list[Segment]:
    """``segments`` with the paused days cut out (a segment may split in two)."""
    out = segments
    for first, last in paused:
        cut: list[Segment] = []
        for s in out:
            stop = last if last is not None else s.end
            if stop < s.start or first > s.end:
                cut.append(s)
                continue
            if s.start < first:
                cut.append(Segment(s.start, first - timedelta(days=1), s.outcome))
            if stop < s.end:
                cut.append(Segment(stop + timedelta(days=1), s.end, s.outcome))
        out = cut
    return out


@dataclass(frozen=True)
class Segment:
    start: date
    end: date
    outcome: Outcome

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def month_end(day: date) -> date:
    """The last day of ``day``'s calendar month."""
    first_next = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first_next - timedelta(days=1)


def months(start: date, end: date) -> Iterator[tuple[date, date]]:
    """(first, last) day of every calendar month piece of ``start..end`` (inclusive)."""
    cursor = start
    while cursor <= end:
        last = min(month_end(cursor), end)
        yield cursor, last
        cursor = last + timedelta(days=1)


def runs(
    rules: RuleSet, service: ClaimService, start: date, end: date, facts: Facts
) -> list[Segment]:
    """Judge every day of ``start..end`` and merge consecutive days with equal outcomes."""
    out: list[Segment] = []
    day = start
    while day <= end:
        outcome = rules.decide(service, day, facts)
        if out and out[-1].outcome.key == outcome.key and out[-1].end == day - timedelta(days=1):
            out[-1] = Segment(out[-1].start, day, out[-1].outcome)
        else:
            out.append(Segment(day, day, outcome))
        day += timedelta(days=1)
    return out


def coordination_segments(
    rules: RuleSet, episode: Episode, facts: Facts, today: date
) -> list[Segment]:
    """Every claimable segment of the episode up to ``today`` (exclusive), month by month."""
    last = today - timedelta(days=1)
    if episode.end is not None:
        last = min(last, episode.end)
    out: list[Segment] = []
    for first, month_last in months(episode.inclusion, last):
        if month_last == last and month_last != month_end(month_last) and month_last != episode.end:
            break  # the running month is not over yet
        out.extend(_month_runs(rules, ClaimService.COORDINATION_DAY, first, month_last, facts))
    return without_paused(out, episode.paused)


@functools.lru_cache(maxsize=32_768)
def _month_runs(
    rules: RuleSet, service: ClaimService, start: date, end: date, facts: Facts
) -> tuple[Segment, ...]:
    """``runs`` of one month, remembered: a desk looks at every month of every episode at each
    tick, and a finished month with the same facts and rules always judges the same (rules,
    facts and segments are immutable). Without it the national scenario spent half its CPU
    here, judging the same days again every 0.3 s."""
    return tuple(runs(rules, service, start, end, facts))


def gap_periods(segments: list[Segment]) -> list[Segment]:
    """Consecutive gap segments with the same gap merged across months: one escalation each."""
    merged: list[Segment] = []
    for s in segments:
        if not isinstance(s.outcome, Gap):
            continue
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.outcome.key == s.outcome.key
            and prev.end == s.start - timedelta(days=1)
        ):
            merged[-1] = Segment(prev.start, s.end, prev.outcome)
        else:
            merged.append(s)
    return merged
