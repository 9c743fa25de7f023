"""The parties whose deliveries the monitor and the web app may open, and how to find their keys.

The web app *is* the capacity-dashboard party (capacity reports reach it on its own ``out.``
topic, sealed for it) and, in a local deployment, also reads what reaches the national
coordination point, to show operations what is stuck. It signs the audit records of compliance
searches with the dashboard party's key, in a chain of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from broker.apps.deployment import Deployment, LocalParty
from broker.trust import Keyring, Pseudonymiser, generate_secret
from broker.trust.party import PartyClient
from schemas.vocab import PartyRole

log = logging.getLogger(__name__)

DASHBOARD = LocalParty(
    "capacity-dashboard",
    "Landelijk dashboard beveiligde zorg (ketenbus web app)",
    PartyRole.CAPACITY_DASHBOARD,
)
NATIONAL_COORDINATION = LocalParty(
    "landelijk-coordinatiepunt",
    "Landelijk coördinatiepunt Levensloopaanpak",
    PartyRole.NATIONAL_COORDINATION,
)
SAMPLE_PAYER = LocalParty(
    "zilveren-kruis",
    "Zilveren Kruis (zorgverzekeraar)",
    PartyRole.HEALTH_INSURER,
    "midden-nederland",
    {"uzovi": "3311"},
)
MONITORING_PARTIES = (DASHBOARD, NATIONAL_COORDINATION, SAMPLE_PAYER)


def with_monitoring_parties(parties: Sequence[LocalParty]) -> list[LocalParty]:
    """``parties`` plus the dashboard, the coordination point and a payer, unless a party with
    that id or (for the first two) that role is already there."""
    ids = {p.id for p in parties}
    roles = {p.role for p in parties}
    extra = [
        p for p in MONITORING_PARTIES
        if p.id not in ids and (p is SAMPLE_PAYER or p.role not in roles)
    ]
    return [*parties, *extra]


def reader(deployment: Deployment, role: PartyRole) -> PartyClient | None:
    """A client that can open deliveries to the first party of ``role`` whose private keys
    are here; None when there is none. It cannot pseudonymise (it has no secret of that party),
    so making it has no side effects in the state directory."""
    for party in deployment.registry.by_role(role):
        try:
            ring = Keyring.load(deployment.keys_dir, party.id)
        except Exception as exc:  # no key file for this party on this machine
            log.debug("no keys of %s here: %s", party.id, type(exc).__name__)
            continue
        return PartyClient(
            party_id=party.id,
            keys=ring.current,
            keyring=ring,
            registry=deployment.registry,
            pseudonyms=Pseudonymiser(generate_secret()),
            router_id=deployment.router_id,
        )
    return None
