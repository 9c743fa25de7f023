"""Structured errors: every refusal of a message becomes a FHIR OperationOutcome naming the path
and the problem, so a sender can fix its input without reading our code or a stack trace."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.vocab.base import KETENBUS_CS

ISSUE_CODE_SYSTEM = KETENBUS_CS + "issue"


@dataclass(frozen=True)
class Issue:
    """One problem: where (a FHIRPath-like expression), what kind (FHIR issue-type), and why."""

    path: str
    code: str  # FHIR IssueType: invalid, structure, required, value, security, not-found, ...
    message: str
    reason: str | None = None  # our stable machine code, e.g. "bsn-check"

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": self.code,
            "diagnostics": self.message,
        }
        if self.path:
            issue["expression"] = [self.path]
        if self.reason:
            issue["details"] = {
                "coding": [{"system": ISSUE_CODE_SYSTEM, "code": self.reason}],
                "text": self.message,
            }
        return issue


class MessageError(ValueError):
    """A message (or adapter input) that cannot be accepted; carries its issues."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = tuple(issues)
        if not self.issues:
            raise ValueError("a MessageError needs at least one issue")
        super().__init__("; ".join(f"{i.path or '(root)'}: {i.message}" for i in self.issues))

    @property
    def reason(self) -> str:
        """The first issue's machine code (or its FHIR issue type)."""
        return self.issues[0].reason or self.issues[0].code

    def outcome(self) -> dict[str, Any]:
        """The OperationOutcome resource (dict) for these issues."""
        return operation_outcome(self.issues)


def operation_outcome(issues: Iterable[Issue], outcome_id: str | None = None) -> dict[str, Any]:
    oo: dict[str, Any] = {"resourceType": "OperationOutcome"}
    if outcome_id:
        oo["id"] = outcome_id
    oo["issue"] = [i.to_fhir() for i in issues]
    return oo


def _loc_to_path(loc: tuple[int | str, ...], root: str) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or part in {"function-after", "function-before"}:
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def issues_from_validation(err: ValidationError, root: str = "") -> list[Issue]:
    """Turn a pydantic error into issues with paths; messages stay free of input values."""
    issues = []
    for e in err.errors(include_url=False, include_input=False):
        kind = e.get("type", "value_error")
        code = "required" if kind == "missing" else "invalid" if "extra" in kind else "value"
        msg = str(e.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ")
        cause = (e.get("ctx") or {}).get("error")
        rule = getattr(cause, "rule", None)
        if isinstance(rule, str):  # an IdentifierError: report its rule, not its field twice
            msg, kind = rule, "identifier"
        issues.append(Issue(_loc_to_path(tuple(e.get("loc", ())), root), code, msg, kind))
    return issues
