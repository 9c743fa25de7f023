"""The conformance report: a Rich table for the person running it, and files an integrator can
attach to a go-live request (JSON, and JUnit XML for a CI system)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Writing XML only, from our own strings; nothing is parsed here (defusedxml guards parsing).
from xml.etree.ElementTree import Element, ElementTree, SubElement

from rich.table import Table

from broker.apps.conformance.runner import CaseResult


def summary(results: list[CaseResult]) -> dict[str, int]:
    failed = sum(1 for r in results if not r.passed)
    return {"cases": len(results), "passed": len(results) - failed, "failed": failed}


def table(suite: str, target: str, results: list[CaseResult]) -> Table:
    s = summary(results)
    t = Table(title=f"Conformance {suite} — {target}: {s['passed']}/{s['cases']} passed")
    for col in ("case", "channel", "result", "what came of it", "documented in"):
        t.add_column(col, overflow="fold")
    for r in results:
        got = f"{r.got.get('adapter')}"
        if r.got.get("reasons"):
            got += f" ({', '.join(r.got['reasons'])})"
        if "http" in r.got:
            got += f", HTTP {r.got['http']}"
        if r.router_checked:
            got += f"; router {r.got.get('router')}"
        verdict = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]: " + "; ".join(r.problems)
        t.add_row(r.case, r.channel, verdict, got, r.doc)
    return t


def as_json(suite: str, target: str, results: list[CaseResult]) -> dict[str, Any]:
    return {
        "suite": suite,
        "target": target,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": summary(results),
        "results": [r.as_dict() for r in results],
    }


def write_json(path: Path, suite: str, target: str, results: list[CaseResult]) -> None:
    text = json.dumps(as_json(suite, target, results), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def write_junit(path: Path, suite: str, target: str, results: list[CaseResult]) -> None:
    """JUnit XML: one testcase per case and channel, its problems as the failure."""
    s = summary(results)
    root = Element("testsuites", name=f"ketenbus conformance {suite}")
    ts = SubElement(root, "testsuite", name=f"{suite} ({target})", tests=str(s["cases"]),
                    failures=str(s["failed"]), errors="0",
                    time=f"{sum(r.seconds for r in results):.3f}")
    for r in results:
        tc = SubElement(ts, "testcase", classname=f"{suite}.{r.channel}", name=r.case,
                        time=f"{r.seconds:.3f}")
        if not r.passed:
            failure = SubElement(tc, "failure", message="; ".join(r.problems))
            failure.text = json.dumps(r.got, ensure_ascii=False)
        SubElement(tc, "system-out").text = f"{r.about} ({r.doc})"
    ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
