"""The policy as typed data: which flows may go to which recipient roles, for which purposes, on
which legal bases, carrying which data categories.

The YAML file (see ``docs/policy.md``) is validated into :class:`PolicyDocument`; the loader wraps
it in a :class:`Policy`, which also remembers the source file and the line of every rule so that
errors and decisions can point at the rule they come from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse
from schemas.vocab.citations import Citation, covers
from schemas.vocab.grounds import SpecialException

# Bases that must cite something (a statute, or the public task) unless the rule says otherwise.
CITING_BASES = frozenset({LegalBasis.LEGAL_OBLIGATION, LegalBasis.PUBLIC_TASK})
# A conflict of duties is decided per occasion (KNMG): a decision may not reach further ahead.
DEFAULT_CONFLICT_VALIDITY_DAYS = 30


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class BasisRule(_Strict):
    """One legal basis that is acceptable for a flow to a recipient role.

    ``citations`` lists the accepted provisions by their id in the closed list
    (``schemas.vocab.citations``); a statute's id accepts its articles too. A request's citation
    must name a listed provision exactly (id or alias) and one that this rule accepts.

    ``purposes`` and ``categories``, when given, narrow the recipient rule for this basis (e.g.
    conflict of duties only for the purpose ``safety``). ``exceptions``, when given, are the
    only AVG art. 9/10 exceptions accepted with this basis. ``legal_title_reference`` requires a
    citation of a legal-title statute (Wvggz, Wzd, Wfz) to reference the person's title.
    ``max_validity_days`` bounds how far ahead a conflict-of-duties decision may reach.
    """

    basis: LegalBasis
    citations: tuple[str, ...] = ()
    citation_required: bool | None = Field(
        default=None,
        description="Whether a request must cite; default true for legal-obligation and "
        "public-task, false otherwise. legal-obligation always requires a citation.",
    )
    purposes: tuple[PurposeOfUse, ...] | None = None
    categories: tuple[DataCategory, ...] | None = None
    exceptions: tuple[SpecialException, ...] | None = None
    legal_title_reference: bool = False
    max_validity_days: int = Field(default=DEFAULT_CONFLICT_VALIDITY_DAYS, ge=0, le=366)
    note: str = ""

    @cached_property
    def category_set(self) -> frozenset[DataCategory] | None:
        return None if self.categories is None else frozenset(self.categories)

    @property
    def requires_citation(self) -> bool:
        if self.citation_required is None:
            return self.basis in CITING_BASES
        return self.citation_required

    def accepts_citation(self, citation: Citation) -> bool:
        """Whether this rule accepts the listed provision ``citation`` (the entry or its
        statute is among ``citations``)."""
        return any(covers(accepted, citation) for accepted in self.citations)


class RecipientRule(_Strict):
    """What one recipient role may receive in one flow."""

    purposes: tuple[PurposeOfUse, ...] = Field(min_length=1)
    categories: tuple[DataCategory, ...] = Field(min_length=1)
    legal_bases: tuple[BasisRule, ...] = Field(min_length=1)
    essential: tuple[DataCategory, ...] | None = Field(
        default=None, description="Overrides the flow's essential categories for this role."
    )
    note: str = ""

    @cached_property
    def category_set(self) -> frozenset[DataCategory]:
        return frozenset(self.categories)

    def basis_rule(self, basis: LegalBasis) -> BasisRule | None:
        for rule in self.legal_bases:
            if rule.basis is basis:
                return rule
        return None


class FlowRule(_Strict):
    """One flow (message event): who may send it, what makes it meaningful, and its recipients."""

    description: str = ""
    senders: tuple[PartyRole, ...] = Field(min_length=1)
    essential: tuple[DataCategory, ...] = Field(
        min_length=1,
        description="The categories that carry the message's meaning; a recipient that may get "
        "none of those present in the message gets nothing (the message is denied).",
    )
    aggregate_only: bool = Field(
        default=False,
        description="Counts only: any personal data, person pseudonym or non-aggregate "
        "category refuses the message outright.",
    )
    recipients: dict[PartyRole, RecipientRule] = Field(default_factory=dict)

    @cached_property
    def essential_set(self) -> frozenset[DataCategory]:
        return frozenset(self.essential)

    def essential_for(self, rule: RecipientRule) -> frozenset[DataCategory]:
        """The essential categories for one recipient rule (its override, or the flow's)."""
        return self.essential_set if rule.essential is None else frozenset(rule.essential)


class PolicyDocument(_Strict):
    """The content of a policy file."""

    version: Literal[1]
    name: str = Field(min_length=1)
    description: str = ""
    flows: dict[EventCode, FlowRule]


def normalise_citation(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy: the document plus where each rule came from.

    ``lines`` maps a rule path (``flows.referral.recipients.zvh``) to its line in ``source``.
    """

    document: PolicyDocument
    source: str = "<memory>"
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.document.name

    def flow(self, event: EventCode) -> FlowRule | None:
        return self.document.flows.get(event)

    def recipient_rule(self, event: EventCode, role: PartyRole) -> RecipientRule | None:
        flow = self.document.flows.get(event)
        return None if flow is None else flow.recipients.get(role)

    def where(self, path: str) -> str:
        """``file:line`` of a rule path, or just the file when the line is unknown."""
        line = self.lines.get(path)
        return f"{self.source}:{line}" if line is not None else self.source

    def rule_where(self, event: EventCode, role: PartyRole | None = None) -> str:
        """``file:line`` of a flow's rule, or of one recipient role's rule under it."""
        found = self._places.get((event, role))
        return found if found is not None else self.where(self.rule_path(event, role))

    @cached_property
    def _places(self) -> dict[tuple[EventCode, PartyRole | None], str]:
        """:meth:`rule_where` of every flow and role, worked out once (decide asks twice)."""
        return {
            (event, role): self.where(self.rule_path(event, role))
            for event in EventCode
            for role in (None, *PartyRole)
        }

    def rule_path(self, event: EventCode, role: PartyRole | None = None) -> str:
        path = f"flows.{event.value}"
        return path if role is None else f"{path}.recipients.{role.value}"
