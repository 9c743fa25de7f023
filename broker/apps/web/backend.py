"""What the web app runs besides HTTP: the collector of operational figures (as the
capacity-dashboard party, which opens the capacity reports sealed for it) and the compliance
service (which signs its search records with that party's key)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from broker.apps.deployment import Deployment
from broker.apps.monitoring.collector import Collector
from broker.apps.monitoring.parties import reader
from broker.apps.web.compliance import ComplianceService, person_pseudonymiser
from broker.config import Settings
from broker.trust import PartyRegistry
from broker.trust.party import PartyClient
from schemas.vocab import PartyRole

log = logging.getLogger(__name__)


@dataclass
class WebBackend:
    settings: Settings
    registry: PartyRegistry
    collector: Collector
    compliance: ComplianceService | None
    party_id: str | None
    deployment: Deployment | None = None  # for re-processing (its console keys)
    coordination: PartyClient | None = None  # answers escalations (the escalation page)

    @classmethod
    def from_deployment(cls, settings: Settings, deployment: Deployment) -> WebBackend:
        """Use the capacity dashboard's keys (and the coordination point's, when present) and
        the derived pseudonym keys of the audit domains (when the router's secret is here)."""
        dashboard = reader(deployment, PartyRole.CAPACITY_DASHBOARD)
        coordination = reader(deployment, PartyRole.NATIONAL_COORDINATION)
        collector = Collector(settings, capacity=dashboard, escalations=coordination)
        pseudonyms = person_pseudonymiser(deployment)
        if pseudonyms is None:
            log.warning("no pseudonym secret of the router here: the audit search cannot take "
                        "a BSN")
        compliance = None
        if dashboard is not None:
            compliance = ComplianceService(settings, deployment.registry, dashboard.keys,
                                           pseudonyms, datakeys=deployment.reader_key_store(
                                               settings))
        else:
            log.warning("no capacity-dashboard keys: no bed counts and no audit search")
        return cls(settings, deployment.registry, collector, compliance,
                   dashboard.party_id if dashboard else None, deployment,
                   coordination)

    def knows_party(self, party_id: str) -> bool:
        """Whether ``party_id`` is a party of the registry (an identity provider may only name
        one of those as its user's organisation)."""
        return any(p.id == party_id for p in self.registry.parties)

    async def start(self) -> None:
        await self.collector.start()
        if self.compliance is not None:
            await self.compliance.start()

    async def stop(self) -> None:
        if self.compliance is not None:
            await self.compliance.stop()
        await self.collector.stop()
