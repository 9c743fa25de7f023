"""Which ketenbus party is the payer a rule names: looked up in the party registry by role and
national identifier (municipality code, UZOVI, or the single DJI / VWS party with its OIN)."""

from __future__ import annotations

from broker.trust import PartyRegistry
from schemas.flows.claim import Payer
from schemas.vocab import PartyRole


class NoPayerParty(LookupError):
    """The rule names a payer that has no party in this deployment (raised as a gap)."""


class PayerDirectory:
    def __init__(self, registry: PartyRegistry) -> None:
        self.registry = registry

    def payer(self, role: PartyRole, identifier: str | None) -> Payer:
        """The :class:`Payer` for ``role`` and ``identifier`` (``NoPayerParty`` if none)."""
        for party in self.registry.by_role(role):
            ids = party.identifiers
            if role is PartyRole.MUNICIPALITY and ids.municipality == identifier:
                return Payer(party_id=party.id, role=role, identifier=ids.municipality)
            if (
                role in (PartyRole.HEALTH_INSURER, PartyRole.CARE_OFFICE)
                and ids.uzovi
                and (ids.uzovi == identifier)
            ):
                return Payer(party_id=party.id, role=role, identifier=ids.uzovi)
            if role in (PartyRole.DJI, PartyRole.VWS) and identifier is None and ids.oin:
                return Payer(party_id=party.id, role=role, identifier=ids.oin)
        what = f"{role} {identifier}" if identifier else f"{role} (with an OIN)"
        raise NoPayerParty(f"no party in the registry is {what}")

    def zvh_municipality(self, zvh: str | None) -> str | None:
        """The central municipality of a ZVH (its ``municipality`` identifier), if registered."""
        if zvh is None or zvh not in self.registry:
            return None
        return self.registry.get(zvh).identifiers.municipality

    def agb_party(self, agb: str) -> str | None:
        """The party whose AGB code is ``agb`` (a claimant named in a payer's answer)."""
        return next((p.id for p in self.registry if p.identifiers.agb == agb), None)


class DescribedPayers(PayerDirectory):
    """Payers named by role and identifier alone, for questions about a *described* person
    (``ketenbus financing case``) without a deployment: party id ``<role>[-<identifier>]``,
    and an all-zero OIN for the national payers (DJI, VWS), which no real file carries."""

    def __init__(self, zvh_municipality: str | None = None) -> None:
        self._zvh_municipality = zvh_municipality

    def payer(self, role: PartyRole, identifier: str | None) -> Payer:
        party = f"{role.value}-{identifier}" if identifier else role.value
        return Payer(party_id=party, role=role, identifier=identifier or "0" * 20)

    def zvh_municipality(self, zvh: str | None) -> str | None:
        return self._zvh_municipality

    def agb_party(self, agb: str) -> str | None:
        return None
