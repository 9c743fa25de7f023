"""Routing rules: who may send which event, and who receives it.

Who may send what is the policy's ``senders`` (``broker/policy/default-policy.yaml``); the router
keeps no table of its own, so the two cannot disagree. Recipients come from the message's
destinations and from rules: a referral goes to the coordinating provider of the referral's
region; an escalation on the regional step to the region's escalation step (configured per region,
default its coordinating provider), on the national step to the national coordination point; a
capacity report to the dashboard and the national coordination point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.policy import Policy
from broker.trust import PartyRegistry, TrustError
from schemas.flows.escalation import Escalation
from schemas.flows.referral import EXT_REGION
from schemas.messaging import ParsedMessage
from schemas.vocab import EscalationLevel, EventCode, PartyRole


@dataclass(frozen=True)
class Recipient:
    party_id: str
    role: PartyRole
    why: str  # "destination" or the rule that chose it


class Unroutable(Exception):
    """No recipient can be determined; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


def sender_may_send(policy: Policy, role: PartyRole, event: EventCode) -> bool:
    """Whether ``role`` may send ``event``: the policy's ``senders`` of that flow, the one source
    of truth (issue 15 point 5). A flow the policy does not list (``response``) is sent by no
    party: the router makes responses itself."""
    flow = policy.flow(event)
    return flow is not None and role in flow.senders


def _region_of(msg: ParsedMessage) -> str | None:
    """The referral's region code; None when absent or malformed (the router then refuses it
    as ``no-region``: input from outside is never trusted to have the right shape)."""
    for sr in msg.resources("ServiceRequest"):
        extensions = sr.get("extension")
        for x in extensions if isinstance(extensions, list) else ():
            if isinstance(x, dict) and x.get("url") == EXT_REGION:
                coding = x.get("valueCoding")
                code = coding.get("code") if isinstance(coding, dict) else None
                return code if isinstance(code, str) and code else None
    return None


def regional_step(
    zvh: str, registry: PartyRegistry, steps: Mapping[str, str] | None = None
) -> list[Recipient]:
    """The escalation step of the region of ``zvh``: the party ``steps`` names for the region
    (``Settings.escalation_regional_steps``), else the region's coordinating provider(s)."""
    try:
        region = registry.get(zvh).region
    except (KeyError, TrustError):
        raise Unroutable("unknown-zvh", f"the escalation names no known ZVH ({zvh!r})") from None
    if not region:
        raise Unroutable("no-region", f"ZVH {zvh!r} has no Levensloop region")
    named = (steps or {}).get(region)
    if named:
        try:
            party = registry.get(named)
        except (KeyError, TrustError):
            raise Unroutable("no-regional-step", f"regional step {named!r} is unknown") from None
        return [Recipient(party.id, party.role, f"regional escalation step of {region}")]
    found = [
        Recipient(p.id, p.role, f"regional escalation step of {region}")
        for p in registry.by_role(PartyRole.COORDINATING_PROVIDER)
        if p.region == region
    ]
    if not found:
        raise Unroutable("no-regional-step", f"region {region!r} has no escalation step")
    return found


def resolve(
    msg: ParsedMessage,
    registry: PartyRegistry,
    *,
    escalation: Escalation | None = None,
    steps: Mapping[str, str] | None = None,
) -> list[Recipient]:
    """Recipients of a message, in a stable order, without duplicates; raises ``Unroutable``.
    An escalation (read by the caller) goes to its ladder step."""
    out: dict[str, Recipient] = {}
    for d in msg.meta.destinations:
        try:
            party = registry.get(d)
        except (KeyError, TrustError):
            raise Unroutable(
                "unknown-destination", f"destination {d!r} is not a known party"
            ) from None
        out.setdefault(d, Recipient(d, party.role, "destination"))
    event = msg.meta.event
    if event is EventCode.REFERRAL and not out:
        region = _region_of(msg)
        if not region:
            raise Unroutable("no-region", "the referral names no Levensloop region")
        for p in registry.by_role(PartyRole.COORDINATING_PROVIDER):
            if p.region == region:
                out.setdefault(p.id, Recipient(p.id, p.role, f"coordinating provider of {region}"))
        if not out:
            raise Unroutable(
                "no-coordinating-provider", f"region {region!r} has no coordinating provider"
            )
    elif event is EventCode.ESCALATION and (
        escalation is not None and escalation.level is EscalationLevel.REGIONAL
    ):
        for r in regional_step(escalation.zvh, registry, steps):
            out.setdefault(r.party_id, r)
    elif event is EventCode.ESCALATION:
        for p in registry.by_role(PartyRole.NATIONAL_COORDINATION):
            out.setdefault(p.id, Recipient(p.id, p.role, "national coordination point"))
    elif event is EventCode.CAPACITY_REPORT:
        for role in (PartyRole.CAPACITY_DASHBOARD, PartyRole.NATIONAL_COORDINATION):
            for p in registry.by_role(role):
                out.setdefault(p.id, Recipient(p.id, p.role, "capacity subscribers"))
    out.pop(msg.meta.sender, None)  # never deliver a message back to its own sender
    if not out:
        raise Unroutable("no-recipient", f"no recipient for a {event.value} message")
    return list(out.values())
