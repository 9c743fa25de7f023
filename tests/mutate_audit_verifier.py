"""Mutation check of the audit verifier (issue 14): disable one check at a time in a copy of the
source tree and run the audit tests; every mutant must make at least one test fail.

    PYTHONPATH=. python -m tests.mutate_audit_verifier [--only NAME]

Each mutant is a source edit that must match exactly once, so a refactoring that moves a check
makes this script stop with an error instead of silently testing nothing. Exit 0 when every
mutant is caught. Not a pytest module: a run takes minutes (one test run per mutant)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/unit/audit", "tests/unit/web/test_web_verify.py"]


@dataclass(frozen=True)
class Mutant:
    name: str  # the check it disables
    path: str
    old: str
    new: str


CHAIN = "broker/audit/chain.py"
MUTANTS = [
    Mutant("signature", CHAIN,
           "            signer.public.verify(bytes.fromhex(rec.sig), signed)\n",
           "            pass\n"),
    Mutant("hash", CHAIN,
           "    if computed != rec.hash:\n        return _Item(\n",
           "    if False:\n        return _Item(\n"),
    Mutant("link to the predecessor", CHAIN,
           "        findings += _link_findings(chain, accepted)\n", ""),
    Mutant("sequence: gaps", CHAIN,
           "        findings += _gap_findings(chain, accepted, loose, len(items))\n", ""),
    Mutant("sequence: order", CHAIN, "        findings += _order_findings(chain, accepted)\n", ""),
    Mutant("sequence: duplicates", CHAIN,
           "        accepted, dups = _pick_unique(genuine)\n",
           "        accepted, dups = _pick_unique(genuine)\n        dups = []\n"),
    Mutant("proof: path", CHAIN,
           '        return _Item(pos, _Status.BAD_SIGNATURE, rec, f"batch proof does not fit: '
           '{exc}")\n',
           "        return _Item(pos, _Status.GENUINE, rec)\n"),
    Mutant("proof: batch of one", CHAIN,
           "        if proof is not None and int(proof[8:16], 16) < 2:\n",
           "        if False:\n"),
    Mutant("proof: batch completeness", CHAIN, "    _check_batches(items)\n", ""),
    Mutant("strict reading: canonical bytes", CHAIN, "        if again != raw:\n",
           "        if False:\n"),
    Mutant("strict reading: line rules", CHAIN,
           "    if isinstance(raw, BadLine):\n", "    if False:\n"),
    Mutant("signer binding: declared chain", CHAIN,
           "    declared = signers.get(rec.chain)\n",
           "    declared = signers.get(rec.chain) or next(iter(signers.values()), None)\n"),
    Mutant("signer binding: the chain's own keys", CHAIN,
           "    key = declared.key(rec.kid)\n",
           "    key = declared.key(rec.kid) or by_kid.get(rec.kid, (None, None))[1]\n"),
    Mutant("signer binding: key validity", CHAIN,
           "    if recorded is None or not key.valid_at(recorded):\n", "    if False:\n"),
    Mutant("signer binding: what the writer may record", CHAIN,
           "    if not declared.may_record(", "    if False and not declared.may_record("),
    Mutant("signer binding: rotation", CHAIN, "    _check_rotations(items, signers)\n", ""),
    Mutant("checkpoint: signature", CHAIN,
           "            verify_checkpoint(cp, signers)\n", "            pass\n"),
    Mutant("checkpoint: truncated", CHAIN,
           "        elif (top is None or cp.seq > top) and (chain, cp.seq) not in claimed:\n",
           "        elif False:\n"),
    Mutant("checkpoint: forked", CHAIN,
           "        if it is not None and _rec(it).hash != cp.hash:\n", "        if False:\n"),
    Mutant("checkpoint: missing chain", CHAIN,
           "        if chain not in present:\n", "        if False:\n"),
]


def run(mutant: Mutant, work: Path) -> tuple[bool, str, float]:
    """(caught, last output line, seconds) for one mutant applied in ``work``."""
    target = work / mutant.path
    original = (ROOT / mutant.path).read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        raise SystemExit(f"{mutant.name}: the edit matches {original.count(mutant.old)} times "
                         f"in {mutant.path}; update this script")
    target.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(work)}
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             "-k", "not topic", *TESTS],
            cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False)
    finally:
        target.write_text(original, encoding="utf-8")
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    last = lines[-1] if lines else done.stderr[-200:]
    return done.returncode != 0, last, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the mutants whose name contains this")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if not args.only or args.only in m.name]
    with tempfile.TemporaryDirectory(prefix="audit-mutants-") as tmp:
        work = Path(tmp)
        for part in ("broker", "schemas", "adapters", "tests", "docs"):
            shutil.copytree(ROOT / part, work / part,
                            ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
        shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
        caught = 0
        for mutant in mutants:
            ok, last, seconds = run(mutant, work)
            caught += ok
            print(f"{'caught' if ok else 'SURVIVED':8} {mutant.name:40} {seconds:5.0f} s  {last}",
                  flush=True)
    print(f"{len(mutants)} checks disabled, {caught} caught")
    return 0 if caught == len(mutants) else 1


if __name__ == "__main__":
    sys.exit(main())
