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
        "registration-pilot@1",
        "coordination-temporary-2022-2023@1",
        "2000.00",
        "20.00",
        "gap",
        "vws-emergency-rule@1",
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
    assert code == 0 and "dji" in text and "coordination-temporary-2022-2023@1" in text
    assert "criminal-law-title = in force" in text
    code, text = run(
        "judge", "--service", "registration", "--date", "2021-06-01", "--municipality", "0344"
    )
    assert code == 1 and "gap (no-rule)" in text and "recalibrated" in text
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
