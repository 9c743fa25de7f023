"""Load and validate a policy file; every error names the file, the line and the rule it breaks.

The YAML is composed into nodes (so each value keeps its line), converted to plain data while a
``path -> line`` map is recorded, validated by the pydantic models in :mod:`broker.policy.model`
and then checked against the semantic rules below. The router loads its policy at start-up and
refuses to start on any problem.

Semantic rules (the ``rule`` named in an error):

* ``yaml-syntax``, ``duplicate-key``, ``key-type``: the file is not a clean YAML mapping.
* ``schema:<type>``: a value has the wrong type, an unknown code, a missing or unknown field.
* ``citation-required``: ``legal-obligation`` must list the laws it accepts and cannot switch
  citing off; a basis that requires a citation must list the accepted citations.
* ``citation-not-listed``: a citation is not the id of an entry in the closed list of
  provisions (``schemas/vocab/citations.py``).
* ``citation-not-applicable``: ``consent`` and ``conflict-of-duties`` are not cited.
* ``basis-purposes-subset`` / ``basis-categories-subset``: a basis may only narrow its rule.
* ``duplicate-basis``, ``duplicate-value``: the same basis or code listed twice.
* ``essential-reachable``: every basis of a recipient must be able to deliver at least one of
  the flow's essential categories, or it could never permit anything.
* ``aggregate-only``: a counts-only flow permits only the ``aggregate`` category, and no other
  flow permits ``aggregate``.
* ``router-not-recipient``: the router is never a recipient of a flow.
* ``contact-needs-identity``: ``contact`` (address, telecom, contacts of the Patient) cannot be
  delivered without ``identity``, so a rule or basis that lists it must list identity too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from broker.policy.model import (
    BasisRule,
    FlowRule,
    Policy,
    PolicyDocument,
    RecipientRule,
)
from schemas.vocab import DataCategory, LegalBasis, PartyRole
from schemas.vocab.citations import BY_ID, CITATION_LIST_VERSION

DEFAULT_POLICY_RESOURCE = "default-policy.yaml"

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class PolicyProblem:
    """One problem in a policy file."""

    file: str
    line: int
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line}:{where} {self.message} [rule: {self.rule}]"


class PolicyError(ValueError):
    """The policy file is invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.path, p.rule))
        count = len(self.problems)
        head = f"invalid policy ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


def path_str(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Composer:
    """Turn composed YAML nodes into plain data, recording the line of every path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[PathKey, int] = {}
        self.problems: list[PolicyProblem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(line, path, "key-type", "mapping keys must be plain strings")
                    continue
                key = str(self._scalars.construct_object(key_node))
                if key in out:
                    self._problem(line, (*path, key), "duplicate-key", f"key {key!r} repeated")
                    continue
                self.lines[(*path, key)] = line
                out[key] = self.convert(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node, deep=True)

    def _problem(self, line: int, path: PathKey, rule: str, message: str) -> None:
        self.problems.append(PolicyProblem(self.source, line, path_str(path), rule, message))


def _line_of(lines: dict[PathKey, int], path: PathKey) -> int:
    """The line of ``path``, or of its nearest ancestor that has one (a missing field)."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get((), 1)


def load_policy_text(text: str, source: str = "<memory>") -> Policy:
    """Parse and validate policy YAML; raises :class:`PolicyError` listing every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise PolicyError(
            [PolicyProblem(source, line, "", "yaml-syntax", str(exc.problem or exc))]
        ) from exc
    if root is None:
        raise PolicyError([PolicyProblem(source, 1, "", "schema:missing", "the file is empty")])
    composer = _Composer(source)
    data = composer.convert(root, ())
    if composer.problems:
        raise PolicyError(composer.problems)
    lines = composer.lines
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p != "[key]")
            problems.append(
                PolicyProblem(
                    source,
                    _line_of(lines, loc),
                    path_str(loc),
                    f"schema:{err['type']}",
                    _schema_message(err),
                )
            )
        raise PolicyError(problems) from exc
    problems = list(_semantic_problems(document, lines, source))
    if problems:
        raise PolicyError(problems)
    return Policy(
        document=document,
        source=source,
        lines={path_str(k): v for k, v in lines.items() if k},
    )


def _schema_message(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "enum" and "input" in err:
        return f"{err['input']!r}: {msg}"
    if err["type"] == "extra_forbidden":
        return "unknown field (not part of the policy format)"
    return msg


def load_policy(path: str | Path) -> Policy:
    """Load a policy file; :class:`PolicyError` names the file, line and rule of each problem."""
    p = Path(path)
    return load_policy_text(p.read_text(encoding="utf-8"), source=str(p))


@functools.cache
def default_policy() -> Policy:
    """The policy shipped with ketenbus (``broker/policy/default-policy.yaml``)."""
    ref = resources.files("broker.policy").joinpath(DEFAULT_POLICY_RESOURCE)
    return load_policy_text(ref.read_text(encoding="utf-8"), source=DEFAULT_POLICY_RESOURCE)


def _semantic_problems(
    doc: PolicyDocument, lines: dict[PathKey, int], source: str
) -> Iterable[PolicyProblem]:
    def problem(path: PathKey, rule: str, message: str) -> PolicyProblem:
        return PolicyProblem(source, _line_of(lines, path), path_str(path), rule, message)

    for event, flow in doc.flows.items():
        fpath: PathKey = ("flows", event.value)
        yield from _duplicates(problem, (*fpath, "senders"), flow.senders)
        yield from _duplicates(problem, (*fpath, "essential"), flow.essential)
        for role, rule in flow.recipients.items():
            rpath: PathKey = (*fpath, "recipients", role.value)
            yield from _check_recipient(problem, flow, role, rule, rpath)


def _duplicates(problem: Any, path: PathKey, values: Iterable[object]) -> Iterable[PolicyProblem]:
    seen: set[object] = set()
    for i, value in enumerate(values):
        if value in seen:
            yield problem((*path, i), "duplicate-value", f"{value} is listed twice")
        seen.add(value)


def _check_recipient(
    problem: Any, flow: FlowRule, role: PartyRole, rule: RecipientRule, rpath: PathKey
) -> Iterable[PolicyProblem]:
    if role is PartyRole.ROUTER:
        yield problem(rpath, "router-not-recipient", "the router is never a recipient of a flow")
    yield from _duplicates(problem, (*rpath, "purposes"), rule.purposes)
    yield from _duplicates(problem, (*rpath, "categories"), rule.categories)
    categories = set(rule.categories)
    essential = set(rule.essential if rule.essential is not None else flow.essential)
    if DataCategory.CONTACT in categories and DataCategory.IDENTITY not in categories:
        yield problem((*rpath, "categories"), "contact-needs-identity",
                      "contact is part of the Patient and needs identity")
    if flow.aggregate_only:
        if categories != {DataCategory.AGGREGATE}:
            yield problem(
                (*rpath, "categories"),
                "aggregate-only",
                "a counts-only flow permits only the aggregate category",
            )
    elif DataCategory.AGGREGATE in categories:
        yield problem(
            (*rpath, "categories"),
            "aggregate-only",
            "aggregate is reserved for counts-only flows (aggregate_only: true)",
        )
    seen: set[LegalBasis] = set()
    for i, basis in enumerate(rule.legal_bases):
        bpath: PathKey = (*rpath, "legal_bases", i)
        if basis.basis in seen:
            yield problem(bpath, "duplicate-basis", f"{basis.basis} is listed twice")
        seen.add(basis.basis)
        yield from _check_basis(problem, basis, bpath, rule, categories, essential)


def _check_basis(
    problem: Any,
    basis: BasisRule,
    bpath: PathKey,
    rule: RecipientRule,
    categories: set[DataCategory],
    essential: set[DataCategory],
) -> Iterable[PolicyProblem]:
    if basis.basis is LegalBasis.LEGAL_OBLIGATION and (
        not basis.citations or basis.citation_required is False
    ):
        yield problem(
            bpath,
            "citation-required",
            "legal-obligation must cite the law: list the accepted statutes in citations "
            "(e.g. 'Wvggz', 'Wfz') and do not set citation_required: false",
        )
    elif basis.requires_citation and not basis.citations:
        yield problem(
            bpath,
            "citation-required",
            f"{basis.basis} requires a citation: list the accepted citations, "
            "or set citation_required: false",
        )
    for j, cited in enumerate(basis.citations):
        if cited not in BY_ID:
            yield problem(
                (*bpath, "citations", j),
                "citation-not-listed",
                f"{cited!r} is not an id in the list of provisions (version "
                f"{CITATION_LIST_VERSION}, schemas/vocab/citations.py)",
            )
    if basis.basis in (LegalBasis.CONSENT, LegalBasis.CONFLICT_OF_DUTIES) and (
        basis.citations or basis.citation_required
    ):
        yield problem(
            bpath,
            "citation-not-applicable",
            f"{basis.basis} is not cited (consent is looked up; conflict of duties needs a "
            "justification and the professional instead)",
        )
    if basis.purposes is not None:
        extra = [p.value for p in basis.purposes if p not in rule.purposes]
        if extra:
            yield problem(
                (*bpath, "purposes"),
                "basis-purposes-subset",
                f"purposes {extra} are not among the recipient's purposes",
            )
    effective = categories
    if basis.categories is not None:
        extra = [c.value for c in basis.categories if c not in categories]
        if extra:
            yield problem(
                (*bpath, "categories"),
                "basis-categories-subset",
                f"categories {extra} are not among the recipient's categories",
            )
        effective = categories & set(basis.categories)
        if DataCategory.CONTACT in effective and DataCategory.IDENTITY not in effective:
            yield problem((*bpath, "categories"), "contact-needs-identity",
                          "contact is part of the Patient and needs identity")
    if not effective & essential:
        yield problem(
            bpath,
            "essential-reachable",
            f"{basis.basis} can deliver none of the essential categories "
            f"{sorted(c.value for c in essential)}",
        )
