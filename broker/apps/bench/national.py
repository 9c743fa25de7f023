"""The national year in the bench (issue 19 point 9, goal: a year in a minute or less).

Runs ``ketenbus up --scenario national --exit-when-done`` exactly as an operator does: as its own
process, on its own embedded broker on a free loopback port (every ``KETENBUS_*`` variable of
the caller is left out, so a configured broker is never used), in a fresh state folder, and
times it on the wall clock from the command's start to its exit, with the process's CPU. The
figures of the run (referrals, claims, the clock's waits) and the split into starting, the
simulated days and stopping come from the summary the scenario writes
(``national-summary.json``, its ``timing``).

A run of fewer months than twelve is scaled to the year honestly labelled: the fixed part
(start and stop) once, the simulated days in proportion to the days of a year's run
(twelve months and the tail in which the last claims are answered).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from broker.apps.bench.kafka_runs import BenchError
from broker.apps.bench.report import Table

YEAR = 2023  # the scenario's default year
TAIL_DAYS = 35  # broker/apps/scenarios/national.py: the days after the last month


class NationalBenchError(BenchError):
    """The scenario did not finish with its summary (the output's tail says why)."""


def simulated_days(months: int, year: int = YEAR) -> int:
    """Days the scenario's clock moves through for ``months`` months and its tail (as
    ``national_plan.make_plan`` and ``NationalScenario.run`` count them)."""
    y, m = divmod(months, 12)
    end = date(year + y, m + 1, 1) - timedelta(days=1)
    return (end - date(year, 1, 1)).days + 1 + TAIL_DAYS


@dataclass(frozen=True)
class NationalRun:
    """One run of the scenario, timed. Seconds are wall-clock unless named CPU."""

    months: int
    seconds_per_month: float
    wall_seconds: float  # the command, from start to exit
    cpu_seconds: float  # the command's process and its children (the embedded broker)
    start_seconds: float  # broker and 58 adapters up
    run_seconds: float  # the simulated days and the settling after them
    days: int
    referrals: int
    answered: int
    claims: int
    clock_waits: int  # simulated days on which the clock waited for the components
    gave_up: int  # ... and went on after the wait's limit

    @property
    def fixed_seconds(self) -> float:
        """What does not grow with the months: start, summary, stop."""
        return max(0.0, self.wall_seconds - self.run_seconds)

    @property
    def paced_seconds(self) -> float:
        """The floor the pace alone puts under the simulated days."""
        return self.days * self.seconds_per_month / 30

    @property
    def year_seconds(self) -> float:
        """The year's wall clock: measured when twelve months ran, else scaled to them."""
        if self.months == 12:
            return self.wall_seconds
        return self.fixed_seconds + self.run_seconds * simulated_days(12) / self.days

    @property
    def scaled(self) -> bool:
        return self.months != 12

    def figures(self) -> str:
        """The goal row's figures: what ran, and how the year's figure was had."""
        ran = f"{self.months} month(s) in {self.wall_seconds:,.0f} s"
        if self.scaled:
            ran += f", scaled to 12: {self.year_seconds:,.0f} s"
        return f"{ran}; {self.referrals:,} referrals, {self.claims:,} claims"

    def why(self) -> str:
        """The reason the year takes what it takes, from this run's own split."""
        return (
            f"start {self.start_seconds:,.0f} s (the broker and 58 adapters); {self.days} "
            f"simulated days in {self.run_seconds:,.0f} s, of which the pace alone "
            f"({self.seconds_per_month:g} s a month) is {self.paced_seconds:,.0f} s and the clock "
            f"waited for the components on {self.clock_waits} day(s); CPU {self.cpu_seconds:,.0f} "
            f"s in {self.wall_seconds:,.0f} s of wall clock"
            + (f" (scaled from {self.months} months)" if self.scaled else "")
        )


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(months: int, seconds_per_month: float | None = None) -> list[str]:
    """The command as an operator runs it (ports chosen free, so it runs beside anything)."""
    argv = [
        sys.executable, "-m", "broker.apps.cli.main", "up", "--scenario", "national",
        "--months", str(months), "--exit-when-done", "--http-port", "0",
    ]  # fmt: skip
    if seconds_per_month is not None:
        argv += ["--seconds-per-month", f"{seconds_per_month:g}"]
    return argv


@dataclass(frozen=True)
class Measured:
    run: NationalRun
    summary: dict[str, Any]  # national-summary.json as the scenario wrote it
    output: str  # what the command printed (its summary tables)
    errors: str  # what it printed on stderr (its log)


def measure(
    months: int,
    seconds_per_month: float | None = None,
    state_dir: Path | None = None,
    bootstrap: str | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run and time the scenario. ``bootstrap``: a broker to use instead of the command's own
    embedded one (the integration test reads the deliveries from it afterwards)."""
    with tempfile.TemporaryDirectory(prefix="ketenbus-national-") as tmp:
        state = state_dir or Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KETENBUS_")}
        env |= {"KETENBUS_STATE_DIR": str(state), "COLUMNS": "120"}
        if bootstrap:
            env["KETENBUS_BOOTSTRAP_SERVERS"] = bootstrap
        cpu, began = _child_cpu(), time.monotonic()
        proc = subprocess.Popen(  # our own command, fixed arguments
            command(months, seconds_per_month),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        limit = timeout or 120 + 90 * months
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            # SIGTERM: the scenario stops its adapters and its embedded broker (exit 130); a
            # kill would leave the broker running
            proc.terminate()
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            raise NationalBenchError(
                f"the national scenario did not finish {months} month(s) in {limit:,.0f} s "
                "(stopped): " + err[-1000:].strip()
            ) from None
        wall, cpu = time.monotonic() - began, _child_cpu() - cpu
        report = state / "national-summary.json"
        if proc.returncode != 0 or not report.exists():
            raise NationalBenchError(
                f"the national scenario exited {proc.returncode}: "
                + (out[-2000:] + err[-2000:]).strip()
            )
        summary = json.loads(report.read_text(encoding="utf-8"))
    timing = summary.get("timing", {})
    waits = summary.get("clock_waits", {})
    run = NationalRun(
        months=months,
        seconds_per_month=float(timing.get("seconds_per_month", seconds_per_month or 0.0)),
        wall_seconds=wall,
        cpu_seconds=cpu,
        start_seconds=float(timing.get("start_seconds", 0.0)),
        run_seconds=float(timing.get("run_seconds", wall)),
        days=int(timing.get("days", simulated_days(months))),
        referrals=int(summary.get("referrals", 0)),
        answered=int(summary.get("answered", 0)),
        claims=int(summary.get("claims_total", {}).get("count", 0)),
        clock_waits=int(waits.get("days", 0)),
        gave_up=int(waits.get("gave_up", 0)),
    )
    return Measured(run, summary, out, err)


def table(run: NationalRun) -> Table:
    t = Table(
        "national",
        f"The national scenario, {run.months} month(s): `ketenbus up --scenario national "
        f"--months {run.months} --exit-when-done`, its own process and embedded broker",
        ["measure", "value"],
    )
    t.add("wall clock, start to exit", f"{run.wall_seconds:,.1f} s")
    t.add("  start (broker and adapters)", f"{run.start_seconds:,.1f} s")
    t.add(f"  {run.days} simulated days and settling", f"{run.run_seconds:,.1f} s")
    t.add("  summary and stop", f"{max(0.0, run.fixed_seconds - run.start_seconds):,.1f} s")
    t.add("the pace's floor (seconds per month / 30 per day)", f"{run.paced_seconds:,.1f} s")
    t.add("CPU (the command and its broker)", f"{run.cpu_seconds:,.1f} s")
    t.add("referrals sent / answered", f"{run.referrals:,} / {run.answered:,}")
    t.add("claims", f"{run.claims:,}")
    t.add("days the clock waited (gave up)", f"{run.clock_waits} ({run.gave_up})")
    t.add(
        "the year" + (" (scaled to 12 months)" if run.scaled else ""),
        f"{run.year_seconds:,.1f} s",
    )
    if run.scaled:
        t.notes.append(
            f"scaled: start and stop ({run.fixed_seconds:,.1f} s) once, the simulated days in "
            f"proportion ({run.days} days measured, {simulated_days(12)} in a year's run)"
        )
    return t


__all__ = ["Measured", "NationalBenchError", "NationalRun", "measure", "simulated_days", "table"]
