"""``ketenbus financing`` through Typer's CliRunner: exit codes and what an operator reads."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from broker.apps.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["financing", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_rules_are_listed_with_gaps_and_the_emergency_rule() -> None:
    code, text = run("rules")
    assert code == 0
    for words in (
        "registration-pilot@2",
        "coordination-temporary-2022-2023@2",
        "2000.00",
        "20.00",
        "gap",
        "vws-emergency-rule@2",
        "28 days",
    ):
        assert words in text, words


def test_judge_names_payer_rule_and_inputs_and_a_gap_exits_1() -> None:
    code, text = run(
        "judge",
        "--service",
        "coordination-day",
        "--date",
        "2023-12-15",
        "--criminal-title",
        "2023-12-10",
        "--insurer",
        "3311",
    )
    assert code == 0 and "dji" in text and "coordination-temporary-2022-2023@2" in text
    assert "criminal-law-title = in force" in text and "since" not in text
    code, text = run(
        "judge", "--service", "registration", "--date", "2021-06-01", "--municipality", "0344"
    )
    assert code == 1 and "gap (no-rule)" in text and "1 April 2021" in text
    code, _ = run("judge", "--service", "registration", "--date", "2021-13-01")
    assert code == 2


def test_accrue_shows_months_payers_and_gaps() -> None:
    code, text = run(
        "accrue",
        "--inclusion",
        "2023-11-15",
        "--today",
        "2024-03-01",
        "--insurer",
        "3311",
        "--criminal-title",
        "2023-12-10",
    )
    assert code == 0
    assert "320.00" in text and "440.00" in text and "29" in text and "gap" in text


def test_a_broken_rules_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nrules: []\n")
    code, text = run("rules", "--rules", str(bad))
    assert code == 2 and "rules refused" in text


def test_judge_a_coordination_month_splits_where_the_payer_changes() -> None:
    """Seed 002, 2.5: EUR 20 a day to DJI under a criminal title, else the insurer."""
    code, text = run(
        "judge", "--service", "coordination-day", "--date", "2023-05-17", "--month",
        "--criminal-title", "2023-05-10", "--insurer", "3311",
    )  # fmt: skip
    assert code == 0, text
    assert "2023-05-01" in text and "2023-05-09" in text and "180.00" in text  # 9 days insurer
    assert "2023-05-10" in text and "2023-05-31" in text and "440.00" in text  # 22 days DJI


def test_judge_names_the_source_and_a_placement_goes_to_dji_without_the_wfz() -> None:
    code, text = run(
        "judge", "--service", "coordination-day", "--date", "2022-02-01", "--placement", "0344"
    )
    assert code == 0 and "dji" in text and "Tijdelijke regeling" in text
    assert "source: Implementatie- en onderhoudsplan" in text and "(Wfz)" not in text
    code, text = run("judge", "--service", "registration", "--date", "2022-02-01")
    assert code == 0 and "ministries" in text and "no fixed price" in text


def test_case_shows_claims_holds_and_escalations_with_explanations() -> None:
    code, text = run(
        "case", "--registered", "2020-10-01", "--assessed", "2020-11-20", "--today", "2021-01-15",
        "--municipality", "0344", "--allocation", "20072",
    )  # fmt: skip
    assert code == 0, text
    assert "claim REG-case" in text and "2000.00" in text and "allocation 20072" in text
    assert "registration-pilot@2" in text and "seed 000" in text
    code, text = run(
        "case", "--registered", "2020-10-01", "--assessed", "2020-11-20", "--today", "2021-01-15",
        "--municipality", "0344",
    )  # fmt: skip
    assert "held REG-case (allocation)" in text and "escalation HOLD-REG-case" in text


def test_watchdog_says_when_an_unpaid_claim_escalates() -> None:
    """Seed 004: "Wanneer betaling over een langere periode van vier weken uitblijft zal VWS
    deze voorschieten": sent 1 March 2021, the 29th is quiet, the 30th escalates."""
    code, text = run("watchdog", "--sent", "2021-03-01", "--today", "2021-03-29", "--emergency")
    assert code == 0 and "2021-03-30" in text and "wait" in text and "VWS advances" in text
    code, text = run("watchdog", "--sent", "2021-03-01", "--today", "2021-03-30")
    assert code == 0 and "escalate" in text
    code, text = run("watchdog", "--sent", "2021-04-01", "--emergency")
    assert "does not cover" in text


def test_case_with_unpaid_shows_the_watchdog_escalation() -> None:
    code, text = run(
        "case", "--registered", "2020-10-01", "--assessed", "2020-11-20", "--today", "2020-12-19",
        "--municipality", "0344", "--allocation", "20072", "--unpaid",
    )  # fmt: skip
    assert code == 0 and "escalation LATE-REG-case" in text and "payment-overdue" in text
