"""Decide whether one message may go to one recipient, and which data categories it may carry.

:func:`decide` checks, in this order, and the first failing check is the reason of the denial:

1. the flow has a rule (``no-rule-for-flow``);
2. counts-only flows (capacity reports): any personal data, a person pseudonym or any category
   other than ``aggregate`` refuses the message outright (``personal-data-in-aggregate``);
3. the sender's role may send this flow (``sender-not-allowed``);
4. the recipient's role has a rule for this flow (``no-rule-for-flow-and-role``);
5. the purpose is allowed for that role (``purpose-not-allowed``);
6. the legal basis is accepted for that role, and for that purpose (``legal-basis-not-accepted``);
7. what the basis needs: a cited statute for legal-obligation (``statute-missing``), a cited
   task for public-task (``task-missing``); any citation must name an entry of the closed list
   of provisions (``citation-not-listed``) that the rule accepts (``statute-not-accepted`` /
   ``task-not-accepted``), and where the rule asks it, a legal-title statute's citation must
   reference the person's title (``legal-title-reference-missing``); for conflict-of-duties a
   justification and the professional who decided (``justification-missing`` /
   ``professional-missing``) and a validity that has not ended
   (``conflict-of-duties-expired``) and does not reach beyond the rule's ``max_validity_days``
   (``conflict-of-duties-validity-too-long``); without a stated validity the decision covers
   the day of the message only (one occasion);
7a. the grounds of what the recipient would get (``broker.policy.grounds``): health data need
   an AVG art. 9(2) exception (``special-category-exception-missing``), police and justice data
   an art. 10 ground (``criminal-data-ground-missing``), both among those the rule accepts
   (``special-category-exception-not-accepted``); a care provider (Wgbo, BW art. 7:457) needs a
   ground to break secrecy for health data (``secrecy-ground-missing``); and for consent a
   person (``person-missing``) with a consent in force for this recipient and purpose, for data
   the sender holds and, when the consent names a case, about that case
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
from broker.policy.grounds import Grounds, grounds_of
from broker.policy.model import BasisRule, Policy
from schemas.messaging import BasisDetail
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse
from schemas.vocab.citations import CITATION_LIST_VERSION
from schemas.vocab.grounds import (
    CRIMINAL_CATEGORIES,
    HEALTH_CATEGORIES,
    SECRECY_BOUND_ROLES,
    GroundsReason,
    SecrecyGround,
)

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
    # the grounds checks (issue 16); the codes live in schemas.vocab.grounds.GroundsReason
    CITATION_NOT_LISTED = GroundsReason.CITATION_NOT_LISTED.value
    LEGAL_TITLE_REFERENCE_MISSING = GroundsReason.LEGAL_TITLE_REFERENCE_MISSING.value
    CONFLICT_OF_DUTIES_EXPIRED = GroundsReason.CONFLICT_OF_DUTIES_EXPIRED.value
    CONFLICT_OF_DUTIES_TOO_LONG = GroundsReason.CONFLICT_OF_DUTIES_TOO_LONG.value
    SPECIAL_CATEGORY_EXCEPTION_MISSING = GroundsReason.SPECIAL_CATEGORY_EXCEPTION_MISSING.value
    SPECIAL_CATEGORY_EXCEPTION_NOT_ACCEPTED = (
        GroundsReason.SPECIAL_CATEGORY_EXCEPTION_NOT_ACCEPTED.value
    )
    CRIMINAL_DATA_GROUND_MISSING = GroundsReason.CRIMINAL_DATA_GROUND_MISSING.value
    SECRECY_GROUND_MISSING = GroundsReason.SECRECY_GROUND_MISSING.value


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
    case: str | None = None  # the ZVH case the message is about (a consent may be limited to it)

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
    grounds: Grounds | None = None  # the grounds judged (None: denied before the basis check)


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
    grounds = grounds_of(basis, req.basis_detail)

    def deny_on(reason: ReasonCode, detail: str, consent: str | None = None) -> Decision:
        return Decision(False, reason, detail, basis, consent, rule=where, grounds=grounds)

    refusal = _check_basis_detail(req, basis_rule, grounds)
    if refusal is not None:
        return deny_on(*refusal)

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

    refusal = _check_grounds(req, basis_rule, grounds, allowed)
    if refusal is not None:
        return deny_on(*refusal)

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
            holder=req.sender,  # the sender discloses what it holds (Mitz: the data holder)
            case=req.case,
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
    # No citation here: the detail stands in clear in the audit record, and a citation such as
    # wfz next to the person's pseudonym reveals a criminal-law title; the audit keeps it in
    # the sealed detail for the compliance role (docs/audit-format.md §5.1, issue 16 §4).
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
        grounds,
    )


def _check_basis_detail(
    req: DecisionRequest, rule: BasisRule, grounds: Grounds
) -> tuple[ReasonCode, str] | None:
    detail = req.basis_detail
    basis = req.legal_basis
    citation = (detail.citation or "").strip() if detail else ""
    statute = basis is LegalBasis.LEGAL_OBLIGATION
    if basis in (LegalBasis.LEGAL_OBLIGATION, LegalBasis.PUBLIC_TASK) and rule.requires_citation:
        accepted = ", ".join(rule.citations)
        if not citation:
            return (
                ReasonCode.STATUTE_MISSING if statute else ReasonCode.TASK_MISSING,
                f"{basis} must cite the {'statute' if statute else 'public task'} "
                f"(accepted: {accepted})",
            )
    if citation:
        cited = grounds.citation
        if cited is None:  # free text is never a citation; the text itself is not repeated
            return (
                ReasonCode.CITATION_NOT_LISTED,
                "the citation is not an entry of the list of provisions (version "
                f"{CITATION_LIST_VERSION}, accepted here: {', '.join(rule.citations) or 'none'})",
            )
        if rule.citations and not rule.accepts_citation(cited):
            return (
                ReasonCode.STATUTE_NOT_ACCEPTED if statute else ReasonCode.TASK_NOT_ACCEPTED,
                f"citation {cited.id} is not accepted for this flow and role "
                f"(accepted: {', '.join(rule.citations)})",
            )
        if rule.legal_title_reference and cited.legal_title and not (
            detail and (detail.legal_title or "").strip()
        ):
            return (
                ReasonCode.LEGAL_TITLE_REFERENCE_MISSING,
                f"{cited.id} is a legal-title statute: the message must reference the person's "
                "legal title in force (legal-basis-legal-title)",
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
        until = detail.valid_until if detail and detail.valid_until else req.on
        if until < req.on:
            return (
                ReasonCode.CONFLICT_OF_DUTIES_EXPIRED,
                f"the conflict-of-duties decision was valid until {until}; it is {req.on}: "
                "a new decision is needed for this occasion",
            )
        if (until - req.on).days > rule.max_validity_days:
            return (
                ReasonCode.CONFLICT_OF_DUTIES_TOO_LONG,
                f"a conflict-of-duties decision may reach at most {rule.max_validity_days} days "
                f"ahead; this one runs until {until}. A lasting need calls for consent or a "
                "legal title",
            )
    return None


def _check_grounds(
    req: DecisionRequest, rule: BasisRule, grounds: Grounds, disclosed: frozenset[DataCategory]
) -> tuple[ReasonCode, str] | None:
    """The art. 9/10 and secrecy checks on what the recipient would get."""
    health = disclosed & HEALTH_CATEGORIES
    criminal = disclosed & CRIMINAL_CATEGORIES
    if health and not grounds.article9:
        return (
            ReasonCode.SPECIAL_CATEGORY_EXCEPTION_MISSING,
            f"{_names(health)} are health data (AVG art. 9(1)): the disclosure on "
            f"{req.legal_basis} needs an art. 9(2) exception (legal-basis-exception)",
        )
    if criminal and not grounds.article10:
        return (
            ReasonCode.CRIMINAL_DATA_GROUND_MISSING,
            f"{_names(criminal)} are criminal data: the disclosure needs an AVG art. 10 ground "
            "(UAVG art. 32 or 33)",
        )
    if (health or criminal) and rule.exceptions is not None:
        relevant = [  # an art. 9 exception matters for health data, an art. 10 ground for criminal
            e for e in grounds.exceptions if (criminal if e.article10 else health)
        ]
        refused = [e.value for e in relevant if e not in rule.exceptions]
        if refused:
            return (
                ReasonCode.SPECIAL_CATEGORY_EXCEPTION_NOT_ACCEPTED,
                f"exception {', '.join(refused)} is not accepted for this flow and role "
                f"(accepted: {', '.join(e.value for e in rule.exceptions) or 'none'})",
            )
    if health and req.sender_role in SECRECY_BOUND_ROLES and grounds.secrecy is SecrecyGround.NONE:
        return (
            ReasonCode.SECRECY_GROUND_MISSING,
            f"a {req.sender_role} is bound by professional secrecy (BW art. 7:457): disclosing "
            f"{_names(health)} on {req.legal_basis} needs consent, a legal duty or a conflict of "
            "duties",
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
    if lookup.other_holder:
        detail += (
            f"; {lookup.other_holder} consent(s) cover data held by other organisations than "
            f"{req.sender}"
        )
    if lookup.other_case:
        detail += f"; {lookup.other_case} consent(s) are limited to another case"
    return ReasonCode.NO_CONSENT, detail
