"""Structured errors: every refusal of a message becomes a FHIR OperationOutcome naming the path
and the problem, so a sender can fix its input without reading our code or a stack trace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from schemas.vocab.base import KETENBUS_CS

ISSUE_CODE_SYSTEM = KETENBUS_CS + "issue"
M = TypeVar("M")


@dataclass(frozen=True)
class Issue:
    """One problem: where (a FHIRPath-like expression), what kind (FHIR issue-type), and why."""

    path: str
    code: str  # FHIR IssueType: invalid, structure, required, value, security, not-found, ...
    message: str
    reason: str | None = None  # our stable machine code, e.g. "bsn-check"

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error", "code": self.code}
        if self.message:
            issue["diagnostics"] = self.message
        if self.path:
            issue["expression"] = [self.path]
        if self.reason:
            issue["details"] = {"coding": [{"system": ISSUE_CODE_SYSTEM, "code": self.reason}]}
            if self.message:
                issue["details"]["text"] = self.message
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


def _issue_of(e: Any, path: str) -> Issue:
    kind = str(e.get("type", "value_error"))
    code = "required" if kind == "missing" else "invalid" if "extra" in kind else "value"
    msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
    cause = (e.get("ctx") or {}).get("error")
    reason = getattr(cause, "reason", None) if isinstance(cause, ValueError) else None
    rule = getattr(cause, "rule", None)
    if isinstance(rule, str):  # an IdentifierError: its rule, without repeating the field name
        msg = rule
    return Issue(path, code, msg, reason if isinstance(reason, str) else kind)


UNKNOWN_FIELD = "(unknown field)"
"""Stands in a path for a field name that is not in the schema: the name is the sender's text
(it has held a BSN or a name), and paths travel in dead-letter headers and logs."""


def _safe_loc(e: Any) -> tuple[int | str, ...]:
    """The error's location with an unknown field's name replaced by :data:`UNKNOWN_FIELD`."""
    loc = tuple(e.get("loc", ()))
    if loc and str(e.get("type", "")) == "extra_forbidden":
        return (*loc[:-1], UNKNOWN_FIELD)
    return loc


def issues_from_validation(err: ValidationError, root: str = "") -> list[Issue]:
    """Turn a pydantic error into issues with paths; messages and paths stay free of input
    values (an unknown field is named :data:`UNKNOWN_FIELD`)."""
    return [
        _issue_of(e, _loc_to_path(_safe_loc(e), root))
        for e in err.errors(include_url=False, include_input=False)
    ]


def issues_at(err: ValidationError, paths: Mapping[str, str], root: str) -> list[Issue]:
    """Like :func:`issues_from_validation`, but name each model field by the FHIR path its value
    was read from (``paths``: field name -> path). Errors of a model-level rule name the field
    in their context (``ctx["field"]``, see :func:`rule_error`), else the ``root`` path."""
    issues = []
    for e in err.errors(include_url=False, include_input=False):
        loc = _safe_loc(e)
        ctx = e.get("ctx") or {}
        if loc:
            head = str(loc[0])
            base = paths.get(head) or _loc_to_path((head,), root)
            path = _loc_to_path(loc[1:], base)
        else:
            field = ctx.get("field")
            path = paths.get(str(field), root) if field else root
        issues.append(_issue_of(e, path))
    return issues


def rule_error(reason: str, message: str, field: str | None = None) -> PydanticCustomError:
    """An error for a model-level rule (raise it from a model validator): ``reason`` becomes the
    issue's machine code and ``field`` tells :func:`issues_at` which path to name."""
    return PydanticCustomError(
        reason, message.replace("{", "(").replace("}", ")"), {"field": field} if field else None
    )


def build_model(cls: type[M], data: Mapping[str, Any], paths: Mapping[str, str], root: str) -> M:
    """Construct a business model from values read out of a message; a refusal becomes a
    ``MessageError`` whose issues name the FHIR path of the offending value."""
    try:
        return cls(**data)
    except ValidationError as err:
        raise MessageError(issues_at(err, paths, root)) from None
