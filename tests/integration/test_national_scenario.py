"""``ketenbus up --scenario national`` for two simulated months, as the README's command runs it
(a subprocess on its own embedded broker): it exits 0 after its summary, and the summary's
figures hang together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    state = tmp_path_factory.mktemp("national")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETENBUS_")}
    env |= {"KETENBUS_STATE_DIR": str(state), "COLUMNS": "120"}
    proc = subprocess.run(
        [sys.executable, "-m", "broker.apps.cli.main", "up", "--scenario", "national",
         "--exit-when-done", "--months", "2", "--seconds-per-month", "2", "--http-port", "0"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    report = Path(state) / "national-summary.json"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(report.read_text())


def test_it_exits_after_printing_the_summary(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    proc, _ = run
    for title in ("National scenario: cases", "Claims per regime", "Refusals by reason",
                  "Escalations to the national coordination point", "Where to look"):  # fmt: skip
        assert title in proc.stdout, title
    assert "ketenbus monitor" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_cases_add_up(run: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, s = run
    assert s["referrals"] >= 40, "two months at ~375 a year"
    assert s["answered"] == s["referrals"], "every referral has the router's answer"
    assert s["routed"] + s["refused"] == s["referrals"]
    assert s["refused"] >= 1 and sum(s["refusal_reasons"].values()) >= s["refused"]
    assert set(s["refusal_reasons"]) <= {"no-consent", "consent-expired", "consent-revoked"}
    assert 0 < s["included"] + s["not_included"] <= s["routed"]
    assert s["included"] > 0 and 0 <= s["care_avoiders"] <= s["included"]
    assert s["transitions"].get("start", 0) <= s["included"]
    assert s["capacity_reports"] > 0 and s["capacity_delivered"] == 2 * s["capacity_reports"]
    assert s["input_refused"] == 0, "the EPDs' and payers' files are all valid"


def test_conflict_of_duties_is_per_occasion(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """Issue 16: transitions travel on consent or the legal title; a conflict of duties only
    for an occasion (a scale-up to a high security level), never as the episode's basis."""
    proc, s = run
    by_basis = s["delivered_by_basis"]
    assert by_basis.get("referral on consent", 0) > 0
    assert by_basis.get("care-transition on consent", 0) > 0
    assert by_basis.get("care-transition on conflict-of-duties", 0) <= s["transitions"].get(
        "scale-up", 0
    )
    assert s["transitions_not_for_zvh"] >= 0
    assert "Deliveries by flow and basis" in proc.stdout


def test_claims_add_up_and_unpaid_claims_are_escalated(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    _, s = run
    claims = s["claims"]
    assert {"justice", "zvw"} <= set(claims), claims
    assert sum(c["count"] for c in claims.values()) == s["claims_total"]["count"]
    assert sum(c["cents"] for c in claims.values()) == s["claims_total"]["cents"]
    assert sum(s["claim_status"].values()) == s["claims_total"]["count"]
    assert "sent" not in s["claim_status"], "every claim has the router's answer"
    assert 0 < s["paid"]["count"] <= s["claims_total"]["count"]
    assert s["claim_status"].get("paid", 0) == s["paid"]["count"]
    esc = s["escalations"]
    # 2023: the ministries VWS and JenV cover the registration phase (implementation plan
    # 2022, 2.2) at no tariff: every assessed referral is attributed to them and held, and
    # none is a no-payer escalation to the coordination point
    assert "no-payer: registration phase without a rule" not in esc
    assert s["held"].get("ministries: registration (no-price)") == (
        s["included"] + s["not_included"]
    )
    if s["payer_answers"].get("withheld"):
        assert esc.get("payment-overdue (28-day watchdog)", 0) >= 1
    # only claims a payer withholds by plan are overdue: a claim whose answer was merely slow
    # to travel back is not (the clock waits for it, unless it gave up, which it must not here)
    assert s["clock_waits"]["gave_up"] == 0, s["clock_waits"]
    assert esc.get("payment-overdue (28-day watchdog)", 0) <= s["payer_answers"].get("withheld", 0)
    assert s["escalations_delivered"] == sum(esc.values())


def test_escalations_are_counted_by_reason_and_level(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """Issue 15 point 8 (the part this branch has): the municipalities take their part -- they
    receive referral notices, bring what they know to the ZVH and escalate cases still undecided
    after three weeks -- and the summary counts every escalation by reason and level. Levels
    and durations come from the escalation ladder (point 2): until then all are national and
    open."""
    proc, s = run
    assert "Escalations by reason and level" in proc.stdout
    rows = s["escalations_by_reason_and_level"]
    by_reason = {r["reason"]: r for r in rows}
    assert sum(r["raised"] for r in rows) == sum(s["escalations"].values())
    assert "no-payer" in by_reason, "the 2023 registration gaps"
    municipal = {k for k in by_reason if k in ("no-provider", "no-bed", "other")}
    assert municipal, f"the municipalities escalated nothing: {rows}"
    assert {r["level"] for r in rows} == {"national"}
    assert all(r["resolved"] == 0 and r["median_days"] is None for r in rows)
    assert s["referral_notices"] >= s["referrals"] // 2, "most residents' municipality is told"
    assert s["municipality_information"] > 0
    assert s["delivered_by_basis"].get("referral on public-task", 0) >= s["referral_notices"]
