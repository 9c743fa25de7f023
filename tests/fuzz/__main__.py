"""Longer fuzzing runs than CI's: ``python -m tests.fuzz --minutes N`` (from the repository root).

Engines:

* ``hypothesis`` (default): every target gets an equal share of the time, in rounds of fresh
  random cases; a failure is shrunk to a minimal example and printed, and the run goes on with
  the other targets. Exit status 1 if any target failed.
* ``atheris``: coverage-guided (libFuzzer) over the same hypothesis strategies, each target in
  its own process for its share of the time (``pip install atheris``, Linux x86-64). Crash inputs
  are written to ``--artifacts`` (default ``.fuzz-artifacts/``).

``--target`` picks targets by name (repeatable; a prefix like ``flows.`` picks a group);
``--list`` prints their names.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _selected(names: list[str] | None) -> list[str]:
    from tests.fuzz.targets import TARGETS

    if not names:
        return list(TARGETS)
    chosen = [t for t in TARGETS if any(t == n or t.startswith(n) for n in names)]
    if not chosen:
        raise SystemExit(f"no target matches {names}; see --list")
    return chosen


def _property(name: str, max_examples: int, counter: list[int]) -> Any:
    from hypothesis import HealthCheck, given, settings

    from tests.fuzz.targets import TARGETS

    t = TARGETS[name]

    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(t.strategy)
    def prop(value: Any) -> None:
        counter[0] += 1
        t.check(value)

    return prop


def run_hypothesis(names: list[str], seconds: float) -> int:
    share = seconds / len(names)
    failed: list[str] = []
    print(f"hypothesis: {len(names)} targets, {share:.0f} s each")
    for name in names:
        counter = [0]
        deadline = time.monotonic() + share
        ok = True
        while time.monotonic() < deadline and ok:
            try:
                _property(name, 200, counter)()
            except Exception:
                ok = False
                failed.append(name)
                print(f"\nFAILED {name}:")
                traceback.print_exc()
        print(f"  {name:45} {counter[0]:>8,} cases  {'ok' if ok else 'FAILED'}")
    print(f"\n{len(names) - len(failed)}/{len(names)} targets without a crash")
    return 1 if failed else 0


def run_atheris(names: list[str], seconds: float, artifacts: Path) -> int:
    share = max(1, int(seconds / len(names)))
    artifacts.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        print(f"atheris: {name} for {share} s", flush=True)
        rc = subprocess.call(
            [sys.executable, "-m", "tests.fuzz", "--atheris-child", name,
             f"-max_total_time={share}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"],
            cwd=ROOT,
        )  # fmt: skip
        if rc != 0:
            failed.append(name)
    print(f"\n{len(names) - len(failed)}/{len(names)} targets without a crash")
    return 1 if failed else 0


def atheris_child(name: str, libfuzzer_args: list[str]) -> None:
    """Run one target under atheris (never returns: libFuzzer exits the process)."""
    import atheris

    with atheris.instrument_imports(include=["adapters", "broker", "schemas"]):
        for module in (
            "adapters.zvh.format",
            "adapters.zvh.translate",
            "broker.router.pipeline",
            "broker.trust.envelope",
            "schemas.flows.registry",
            "schemas.messaging",
        ):
            importlib.import_module(module)
    prop = _property(name, 1, [0])
    atheris.Setup([sys.argv[0], *libfuzzer_args], prop.hypothesis.fuzz_one_input)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--atheris-child"]:
        atheris_child(argv[1], argv[2:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="total time (default 5)")
    parser.add_argument("--target", action="append", help="target name or prefix (repeatable)")
    parser.add_argument("--engine", choices=("hypothesis", "atheris"), default="hypothesis")
    parser.add_argument("--artifacts", type=Path, default=ROOT / ".fuzz-artifacts")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args(argv)
    names = _selected(args.target)
    if args.list:
        print("\n".join(names))
        return 0
    os.environ.setdefault("KETENBUS_FUZZ_PROFILE", "fuzz-long")
    seconds = args.minutes * 60
    if args.engine == "atheris":
        return run_atheris(names, seconds, args.artifacts)
    return run_hypothesis(names, seconds)


if __name__ == "__main__":
    sys.exit(main())
