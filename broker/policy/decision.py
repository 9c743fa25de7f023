"""Decide whether one message may go to one recipient, and which data categories it may carry.

:func:`decide` checks, in this order, and the first failing check is the reason of the denial:

1. the flow has a rule (``no-rule-for-flow``);
2. counts-only flows (capacity reports): any personal data, a person pseudonym or any category
   other than ``aggregate`` refuses the message outright (``personal-data-in-aggregate``);
3. the sender's role may send this flow (``sender-not-allowed``);
4. the recipient's role has a rule for this flow (``no-rule-for-flow-and-role``);
5. the purpose is allowed for that role (``purpose-not-allowed``);
6. the legal basis is accepted for that role, and for that purpose (``legal-basis-not-accepted``);
7. what the basis needs: a cited statute for legal-obligation (``statute-missing`` /
   ``statute-not-accepted``), a cited task for public-task (``task-missing`` /
   ``task-not-accepted``), a justification and the professional who decided for
   conflict-of-duties (``justification-missing`` / ``professional-missing``), and for consent a
   person (``person-missing``) with a consent in force for this recipient and purpose
   (``no-consent``, ``consent-revoked``, ``consent-expired``, ``consent-not-yet-valid``);
8. the categories: the recipient gets *present ∩ rule (∩ basis) ∩ consented* categories. The
   message must carry at least one of the flow's **essential** categories
   (``essential-category-missing``), and at least one essential category present in it must
   reach the recipient; when every essential category present is disallowed (by the rule or
   the consent) the message is denied (``essential-category-not-allowed``, or
   ``consent-categories-insufficient`` when the consent is what falls short). Delivering only
   the envelope (say, identity alone) would disclose that a person is in the Levensloopaanpak
   without serving the purpose. Otherwise the permit may be **partial**: the categories outside
   ``allowed_categories`` are listed in ``withheld_categories`` and minimisation removes them.
   ``contact`` is only allowed together with ``identity`` (its elements live in the Patient).

Among several consents in force, the one that lets the most requested categories through is
used (the newest on a tie); its id is in the decision.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from broker.policy.consent_view import ConsentLookup, ConsentView
from broker.policy.model import BasisRule, Policy
from schemas.messaging import BasisDetail
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

MIN_JUSTIFICATION = 10  # characters: a word or two is not a recorded justification
_CONTACT = frozenset({DataCategory.CONTACT})


class ReasonCode(StrEnum):
    """Stable codes for why a decision came out as it did (logged in AuditEvent.outcomeDesc)."""

    PERMITTED = "permitted"
    NO_RULE_FOR_FLOW = "no-rule-for-flow"
    NO_RULE_FOR_FLOW_AND_ROLE = "no-rule-for-flow-and-role"
    SENDER_NOT_ALLOWED = "sender-not-allowed"
    PURPOSE_NOT_ALLOWED = "purpose-not-allowed"
    LEGAL_BASIS_NOT_ACCEPTED = "legal-basis-not-accepted"
    STATUTE_MISSING = "statute-missing"
    STATUTE_NOT_ACCEPTED = "statute-not-accepted"
    TASK_MISSING = "task-missing"
    TASK_NOT_ACCEPTED = "task-not-accepted"
    JUSTIFICATION_MISSING = "justification-missing"
    PROFESSIONAL_MISSING = "professional-missing"
    PERSON_MISSING = "person-missing"
    NO_CONSENT = "no-consent"
    CONSENT_REVOKED = "consent-revoked"
    CONSENT_EXPIRED = "consent-expired"
    CONSENT_NOT_YET_VALID = "consent-not-yet-valid"
    CONSENT_CATEGORIES_INSUFFICIENT = "consent-categories-insufficient"
    ESSENTIAL_CATEGORY_MISSING = "essential-category-missing"
    ESSENTIAL_CATEGORY_NOT_ALLOWED = "essential-category-not-allowed"
    PERSONAL_DATA_IN_AGGREGATE = "personal-data-in-aggregate"


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One message about to go to one recipient.

    ``categories`` are the categories present in the message; ``personal_data`` are the paths
    that :func:`broker.policy.minimise.contains_personal_data` found (the router fills it for
    every message; it matters for counts-only flows).
    """

    event: EventCode
    sender: str
    sender_role: PartyRole
    recipient: str
    recipient_role: PartyRole
    purpose: PurposeOfUse
    legal_basis: LegalBasis
    basis_detail: BasisDetail | None
    categories: frozenset[DataCategory]
    pseudonym: str | None
    on: date
    personal_data: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.categories, frozenset):
            object.__setattr__(self, "categories", frozenset(self.categories))


@dataclass(frozen=True, slots=True)
class Decision:
    permit: bool
    reason: ReasonCode
    detail: str
    legal_basis: LegalBasis
    consent_id: str | None = None
    allowed_categories: frozenset[DataCategory] = frozenset()
    withheld_categories: frozenset[DataCategory] = frozenset()
    rule: str = ""  # policy file:line of the rule applied (or of the flow, when no role rule)


def _names(categories: frozenset[DataCategory] | set[DataCategory]) -> str:
    return _joined(frozenset(categories))  # a frozenset is taken as it is, a set copied


@functools.cache  # at most 2^11 sets of categories
def _joined(categories: frozenset[DataCategory]) -> str:
    return ", ".join(sorted(categories)) or "none"  # members are str: sorted by code


# "<event> to <recipient> (<role>) for <purpose> on <basis>", the start of every permit's detail
@functools.lru_cache(maxsize=4096)  # parties x flows x purposes x bases
def _permit_head(
    event: EventCode, recipient: str, role: PartyRole, purpose: PurposeOfUse, basis: LegalBasis
) -> str:
    return f"{event} to {recipient} ({role}) for {purpose} on {basis}"


def decide(request: DecisionRequest, policy: Policy, consents: ConsentView) -> Decision:
    """Decide one message for one recipient; see the module documentation for the order."""
    req = request
    basis = req.legal_basis

    def deny(
        reason: ReasonCode, detail: str, rule: str = "", consent: str | None = None
    ) -> Decision:
        return Decision(False, reason, detail, basis, consent, rule=rule)

    flow = policy.flow(req.event)
    if flow is None:
        return deny(
            ReasonCode.NO_RULE_FOR_FLOW,
            f"the policy {policy.name!r} has no rule for flow {req.event}",
            policy.source,
        )
    flow_where = policy.rule_where(req.event)
    if flow.aggregate_only:
        problems = []
        if req.personal_data:
            problems.append("personal data at " + ", ".join(req.personal_data))
        if req.pseudonym is not None:
            problems.append("a person pseudonym")
        extra = req.categories - {DataCategory.AGGREGATE}
        if extra:
            problems.append(f"categories {_names(extra)}")
        if problems:
            return deny(
                ReasonCode.PERSONAL_DATA_IN_AGGREGATE,
                f"{req.event} is counts only and is refused outright: it carries "
                + "; ".join(problems),
                flow_where,
            )
    if req.sender_role not in flow.senders:
        return deny(
            ReasonCode.SENDER_NOT_ALLOWED,
            f"role {req.sender_role} may not send {req.event} "
            f"(senders: {', '.join(r.value for r in flow.senders)})",
            flow_where,
        )
    rule = flow.recipients.get(req.recipient_role)
    if rule is None:
        return deny(
            ReasonCode.NO_RULE_FOR_FLOW_AND_ROLE,
            f"no rule lets role {req.recipient_role} receive {req.event}",
            flow_where,
        )
    where = policy.rule_where(req.event, req.recipient_role)
    if req.purpose not in rule.purposes:
        return deny(
            ReasonCode.PURPOSE_NOT_ALLOWED,
            f"purpose {req.purpose} is not allowed for {req.event} to {req.recipient_role} "
            f"(allowed: {', '.join(p.value for p in rule.purposes)})",
            where,
        )
    basis_rule = rule.basis_rule(basis)
    if basis_rule is None or (
        basis_rule.purposes is not None and req.purpose not in basis_rule.purposes
    ):
        accepted = [
            b.basis.value
            for b in rule.legal_bases
            if b.purposes is None or req.purpose in b.purposes
        ]
        return deny(
            ReasonCode.LEGAL_BASIS_NOT_ACCEPTED,
            f"legal basis {basis} is not accepted for {req.event} to {req.recipient_role} "
            f"for purpose {req.purpose} (accepted: {', '.join(accepted) or 'none'})",
            where,
        )
    refusal = _check_basis_detail(req, basis_rule)
    if refusal is not None:
        return deny(refusal[0], refusal[1], where)

    present = req.categories
    allowed = present & rule.category_set
    if basis_rule.category_set is not None:
        allowed &= basis_rule.category_set
    essential = flow.essential_for(rule)
    essential_present = essential & present
    if not essential_present:
        return deny(
            ReasonCode.ESSENTIAL_CATEGORY_MISSING,
            f"the message carries none of the essential categories of {req.event} "
            f"({_names(essential)}); it carries {_names(present)}",
            where,
        )
    if not allowed & essential_present:
        return deny(
            ReasonCode.ESSENTIAL_CATEGORY_NOT_ALLOWED,
            f"{req.recipient_role} may not receive {_names(essential_present)} of {req.event} "
            f"on {basis} (allowed: {_names(allowed)})",
            where,
        )

    consent_id: str | None = None
    if basis is LegalBasis.CONSENT:
        if req.pseudonym is None:
            return deny(
                ReasonCode.PERSON_MISSING,
                "legal basis consent, but the message names no person to look the consent up for",
                where,
            )
        lookup = consents.lookup(
            req.pseudonym,
            recipient=req.recipient,
            role=req.recipient_role,
            purpose=req.purpose,
            on=req.on,
        )
        if not lookup.in_force:
            reason, detail = _no_consent(req, lookup)
            return deny(reason, detail, where)
        best = max(
            lookup.in_force,
            key=lambda m: (len(m.categories & allowed), m.recorded_us, m.consent_id),
        )
        consent_id = best.consent_id
        consented = allowed & best.categories
        if not consented & essential_present:
            return deny(
                ReasonCode.CONSENT_CATEGORIES_INSUFFICIENT,
                f"consent {best.consent_id} does not cover {_names(essential_present)} "
                f"(it covers {_names(best.categories)})",
                where,
                consent_id,
            )
        allowed = consented

    if DataCategory.IDENTITY not in allowed:
        allowed -= _CONTACT  # contact elements live in the Patient: never without identity
    withheld = present - allowed
    detail = _permit_head(req.event, req.recipient, req.recipient_role, req.purpose, basis)
    if basis_rule.citations and req.basis_detail and req.basis_detail.citation:
        detail += f" ({req.basis_detail.citation})"
    if consent_id is not None:
        detail += f", consent {consent_id}"
    detail += f"; categories: {_names(allowed)}"
    if withheld:
        detail += f"; withheld: {_names(withheld)}"
    return Decision(
        True,
        ReasonCode.PERMITTED,
        detail,
        basis,
        consent_id,
        allowed,
        withheld,
        where,
    )


def _check_basis_detail(req: DecisionRequest, rule: BasisRule) -> tuple[ReasonCode, str] | None:
    detail = req.basis_detail
    basis = req.legal_basis
    if basis in (LegalBasis.LEGAL_OBLIGATION, LegalBasis.PUBLIC_TASK) and rule.requires_citation:
        statute = basis is LegalBasis.LEGAL_OBLIGATION
        citation = (detail.citation or "").strip() if detail else ""
        accepted = ", ".join(repr(c) for c in rule.citations)
        if not citation:
            return (
                ReasonCode.STATUTE_MISSING if statute else ReasonCode.TASK_MISSING,
                f"{basis} must cite the {'statute' if statute else 'public task'} "
                f"(accepted: {accepted})",
            )
        if not rule.accepts_citation(citation):
            return (
                ReasonCode.STATUTE_NOT_ACCEPTED if statute else ReasonCode.TASK_NOT_ACCEPTED,
                f"citation {citation!r} is not accepted for this flow and role "
                f"(accepted: {accepted})",
            )
    if basis is LegalBasis.CONFLICT_OF_DUTIES:
        justification = (detail.justification or "").strip() if detail else ""
        professional = (detail.decided_by or "").strip() if detail else ""
        if len(justification) < MIN_JUSTIFICATION:
            return (
                ReasonCode.JUSTIFICATION_MISSING,
                "conflict-of-duties needs the recorded justification "
                f"(at least {MIN_JUSTIFICATION} characters)",
            )
        if not professional:
            return (
                ReasonCode.PROFESSIONAL_MISSING,
                "conflict-of-duties needs the name of the professional who decided",
            )
    return None


def _no_consent(req: DecisionRequest, lookup: ConsentLookup) -> tuple[ReasonCode, str]:
    who = f"{req.recipient} ({req.recipient_role})"
    if lookup.revoked:
        return (
            ReasonCode.CONSENT_REVOKED,
            f"the consent for {who} and purpose {req.purpose} has been revoked",
        )
    if lookup.expired:
        return (
            ReasonCode.CONSENT_EXPIRED,
            f"the consent for {who} and purpose {req.purpose} had expired by {req.on}",
        )
    if lookup.not_yet_valid:
        return (
            ReasonCode.CONSENT_NOT_YET_VALID,
            f"the consent for {who} and purpose {req.purpose} starts after {req.on}",
        )
    detail = f"no consent for {who} and purpose {req.purpose}"
    if lookup.other_purpose:
        detail += f"; {lookup.other_purpose} consent(s) for {who} name other purposes"
    if lookup.other_recipient:
        detail += f"; {lookup.other_recipient} consent(s) name other recipients"
    return ReasonCode.NO_CONSENT, detail
