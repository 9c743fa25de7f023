"""Smoke tests of ``ketenbus bench`` with tiny sizes: every code path runs and yields the
expected tables and rows. The figures of such runs mean nothing and are never asserted."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.apps.bench import stages
from broker.apps.bench.report import Table
from broker.apps.bench.run import BenchConfig, run
from broker.apps.bench.workload import Workload
from broker.apps.cli.main import app


def by_key(tables: list[Table]) -> dict[str, Table]:
    return {t.key: t for t in tables}


def test_in_process_sections_give_their_tables() -> None:
    config = BenchConfig.tiny()
    tables = by_key(run(config, ("profile", "consents")))
    assert list(tables) == [
        "machine", "profile", "hotspots", "primitives", "consents", "verdict", "goals"
    ]  # fmt: skip
    profile = tables["profile"].row_labels()
    assert profile == [
        *stages.ORDER,
        "total",
        "CPU ceiling, msgs/s per core",
        "wall-clock rate in this run",
    ]
    assert tables["consents"].row_labels() == [f"{n:,}" for n in config.consent_sizes]
    assert "routing CPU, ingress-validated" in tables["verdict"].row_labels()
    assert "command" in tables["machine"].row_labels()
    for table in tables.values():
        assert table.text() and table.markdown().count("|") > 0


@pytest.mark.integration
def test_kafka_sections_give_their_tables() -> None:
    config = BenchConfig.tiny()
    tables = by_key(run(config, ("throughput", "latency", "rebuild", "snapshot", "scale")))
    assert list(tables) == [
        "machine", "throughput", "latency", "rebuild", "snapshot", "scale", "verdict", "goals"
    ]  # fmt: skip
    throughput = tables["throughput"].rows
    assert [r[0].split(" [")[0] for r in throughput] == [
        v.label for v in config.throughput_variants
    ]
    assert [r[1] for r in throughput] == ["aiokafka"] * 3 + ["FastStream aiokafka"]
    # every relay, the output-shape copy included, delivered every measured id in time
    assert not [r[0] for r in throughput if "in time]" in r[0]]
    latency = tables["latency"].rows
    assert [(r[0], r[1]) for r in latency] == [
        (v.label, f"{rate:g}") for v in config.latency_variants for rate in config.rates
    ]
    assert len(tables["rebuild"].rows) == 1
    # the snapshot loaded every consent it was built from (the first cell: consents loaded)
    assert [r[0] for r in tables["snapshot"].rows] == [f"{config.snapshot_consents:,}"]
    # end to end through the provider's adapter, measured (one versus two instances and the
    # pauses only in the quick and full runs: they start several more processes)
    scale = {r[0]: r[1] for r in tables["scale"].rows}
    for row in ("router's rate in the end-to-end run", "end to end (provider's outbox)"):
        assert scale[row] not in ("0 msgs/s", "not measured"), row
    goals = {r[0]: r[1] for r in tables["goals"].rows}
    assert goals["end to end / router rate (provider's adapter)"] != "not measured"
    assert goals["RouterService / batched loop (same pipeline)"] != "not measured"
    verdict = tables["verdict"].row_labels()
    assert "target (>= 0.50) met" in verdict
    assert "Kafka alone with the routed output shape / raw aiokafka" in verdict


def test_the_command_refuses_an_unknown_section() -> None:
    result = CliRunner().invoke(app, ["bench", "--only", "nonsense"])
    assert result.exit_code == 2
    assert "unknown section" in result.output


def test_the_command_is_registered_with_help() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    assert "--quick" in result.output


def test_the_profile_shows_the_channel_layer_and_leaves_the_collector_as_it_was(
    tmp_path: Path,
) -> None:
    """The channel layer (per-person keys inside the envelopes) is a stage of its own, not part
    of the glue; the profile runs under the router's collector settings and restores them."""
    workload = Workload.create(tmp_path, persons=4)
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    profile = stages.profile_stages(workload, 4, full_validation=False, warmup=2)
    assert workload.router_state().channels is not None  # the demo deployment has them
    assert profile.totals[stages.CHANNEL] > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() <= frozen  # unfrozen (a frozen state before: all of it)
