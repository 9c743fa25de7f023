"""Synthetic traffic for the demo and the tests: secure-bed capacity reports, an escalation,
claims and a claim response, each sealed by the party that would send it in real life and
produced to its inbound topic, so the router checks, routes and audits them like any other.

People are synthetic and made at run time; capacity reports carry counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from broker.apps.deployment import Deployment
from broker.apps.synthetic import synthetic_birth_date, synthetic_bsn, synthetic_name
from broker.config import Settings
from broker.kafka import make_producer
from broker.trust import seal_for
from schemas import topics
from schemas.flows.capacity import CapacityReport, LevelCapacity, capacity_message
from schemas.flows.claim import Claim, ClaimResponse, Payer, claim_message, claim_response_message
from schemas.flows.common import Gender, Person
from schemas.flows.escalation import Escalation, escalation_message
from schemas.flows.referral import Referral, referral_message
from schemas.messaging import BasisDetail, MessageMeta, dumps, read_meta
from schemas.vocab import (
    ClaimOutcome,
    ClaimService,
    EscalationLevel,
    EscalationReason,
    EventCode,
    FinancingRegime,
    LegalBasis,
    PartyRole,
    PurposeOfUse,
    SecurityLevel,
    SignalSource,
)

log = logging.getLogger(__name__)

Levels = dict[SecurityLevel, tuple[int, int]]  # level -> (in service, occupied)


@dataclass(frozen=True)
class Ward:
    """One location with secure beds, reported by its provider."""

    provider: str
    location_id: str
    region: str
    levels: tuple[tuple[SecurityLevel, int], ...]  # level, beds in service


def wards_for(deployment: Deployment) -> list[Ward]:
    """Two wards per provider in the deployment, in its region."""
    out = []
    for p in deployment.registry.parties:
        if p.role not in (PartyRole.COORDINATING_PROVIDER, PartyRole.EXECUTING_PROVIDER):
            continue
        region = p.region or "onbekend"
        out.append(Ward(p.id, f"{p.id}-kliniek", region,
                        ((SecurityLevel.LEVEL_2, 16), (SecurityLevel.LEVEL_3, 12))))
        out.append(Ward(p.id, f"{p.id}-fpk", region, ((SecurityLevel.LEVEL_4, 6),)))
    return out


def person(rng: random.Random, today: date, bsn: str | None = None) -> Person:
    given, family = synthetic_name(rng)
    return Person(
        bsn=bsn or synthetic_bsn(rng),
        family_name=family,
        given_names=(given,),
        birth_date=synthetic_birth_date(rng, today),
        gender=rng.choice([Gender.MALE, Gender.FEMALE]),
    )


class SampleTraffic:
    """Sends synthetic messages as the parties of a local deployment (which has every key)."""

    def __init__(
        self, settings: Settings, deployment: Deployment, rng: random.Random | None = None
    ) -> None:
        self.settings = settings
        self.deployment = deployment
        self.rng = rng or random.Random()  # noqa: S311 - synthetic data, not security
        self._producer: AIOKafkaProducer | None = None
        self._live: asyncio.Task[None] | None = None
        self._occupied: dict[tuple[str, SecurityLevel], int] = {}

    async def start(self) -> None:
        self._producer = make_producer(self.settings)
        await self._producer.start()

    async def stop(self) -> None:
        if self._live is not None:
            self._live.cancel()
            await asyncio.gather(self._live, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, sender: str, bundle: dict[str, Any], key: str) -> str:
        """Seal ``bundle`` for the router as ``sender`` and produce it; returns the message id.
        ``key`` is the record key: the sender's pseudonym of the person, or a location id."""
        assert self._producer is not None, "start() first"
        meta = read_meta(bundle)
        ring = self.deployment.keyring(sender)
        now = datetime.now(UTC)
        sealed = seal_for(
            dumps(bundle),
            ring.current,
            self.deployment.registry,
            self.deployment.router_id,
            event=meta.event.value,
            message_id=meta.message_id,
            pseudonym=key,
            timestamp=meta.timestamp,
            key_at=now,
        )
        topic = topics.inbound_for(meta.event.value).name
        await self._producer.send_and_wait(
            topic, value=sealed.value, key=sealed.key, headers=list(sealed.headers)
        )
        return meta.message_id

    def _ident(self) -> str:
        """A short random id of letters only (ids in counts-only messages may not hold long
        digit runs)."""
        return "".join(self.rng.choice(string.ascii_uppercase) for _ in range(8))

    def _person_key(self, sender: str, bsn: str) -> str:
        return self.deployment.pseudonymiser(sender).pseudonym(sender, bsn)

    # --- messages ------------------------------------------------------------------------------

    async def capacity(self, ward: Ward, occupied: dict[SecurityLevel, int],
                       at: datetime | None = None) -> str:
        """Report the ward's beds: in service from the ward, occupied as given, the rest free."""
        at = at or datetime.now(UTC)
        levels = tuple(
            LevelCapacity(security_level=level, in_service=beds,
                          occupied=min(beds, occupied.get(level, 0)),
                          available=beds - min(beds, occupied.get(level, 0)))
            for level, beds in ward.levels
        )
        report = CapacityReport(
            report_id=f"CAP-{ward.location_id}-{self._ident()}",
            provider=ward.provider,
            location_id=ward.location_id,
            region=ward.region,
            measured_at=at,
            levels=levels,
        )
        meta = MessageMeta.new(EventCode.CAPACITY_REPORT, ward.provider, PurposeOfUse.HOPERAT,
                               LegalBasis.PUBLIC_TASK, now=at)
        return await self.send(ward.provider, capacity_message(report, meta), ward.location_id)

    async def referral(self, zvh: str, case: str) -> str:
        """A referral of a synthetic person to the region's coordinating provider, on a
        conflict of duties (safety), so no consent is needed; returns the message id."""
        today = datetime.now(UTC).date()
        who = person(self.rng, today)
        ref = Referral(
            referral_id=case,
            zvh=zvh,
            region=self.deployment.registry.get(zvh).region or "midden-nederland",
            registered_on=today,
            person=who,
            signaller_name="Politie",
            signaller_source=SignalSource.POLICE,
            signal="Synthetisch signaal voor de demo.",
        )
        meta = MessageMeta.new(
            EventCode.REFERRAL, zvh, PurposeOfUse.SAFETY, LegalBasis.CONFLICT_OF_DUTIES,
            basis_detail=BasisDetail(justification="Acuut gevaar (demo).",
                                     decided_by="Demo-professional"),
        )
        return await self.send(zvh, referral_message(ref, meta), self._person_key(zvh, who.bsn))

    async def escalation(self, zvh: str, reason: EscalationReason, stuck_days: int,
                         case: str | None = None) -> str:
        """An escalation of a case the router knows (a referral is sent first when ``case`` is
        not given: the router refuses an escalation for an unknown case)."""
        if case is None:
            case = f"CASE-{self._ident()}"
            await self.referral(zvh, case)
            await asyncio.sleep(1.0)  # let the referral be routed before its escalation
        now = datetime.now(UTC)
        esc = Escalation(
            escalation_id=f"ESC-{self._ident()}",
            raised_by=zvh,
            raised_at=now,
            zvh=zvh,
            referral_id=case,
            reason=reason,
            stuck_since=(now - timedelta(days=stuck_days)).date(),
            security_level=SecurityLevel.LEVEL_3 if reason is EscalationReason.NO_BED else None,
            level=EscalationLevel.NATIONAL,
        )
        meta = MessageMeta.new(
            EventCode.ESCALATION, zvh, PurposeOfUse.ESCALATION, LegalBasis.PUBLIC_TASK,
            basis_detail=BasisDetail(citation="Landelijk coördinatiepunt Levensloopaanpak"),
        )
        return await self.send(zvh, escalation_message(esc, meta), "none")

    def _payer(self, payer: str) -> Payer:
        party = self.deployment.registry.get(payer)
        return Payer(party_id=payer, role=party.role,
                     identifier=party.identifiers.uzovi or "9999")

    async def claim(self, provider: str, payer: str, who: Person, days: int = 30) -> str:
        """Coordination days (EUR 20 a day) under the Zvw; returns the claim id."""
        today = datetime.now(UTC).date()
        start = today - timedelta(days=days)
        claim_id = f"DEC-{self._ident()}"
        agb = self.deployment.registry.get(provider).identifiers.agb
        claim = Claim(
            claim_id=claim_id,
            provider=provider,
            provider_agb=agb,
            created=today,
            person=who,
            service=ClaimService.COORDINATION_DAY,
            period_start=start,
            period_end=today - timedelta(days=1),
            quantity=days,
            unit_price_cents=2_000,
            amount_cents=days * 2_000,
            regime=FinancingRegime.ZVW,
            payer=self._payer(payer),
            episode_id=f"LLA-{self._ident()}",
        )
        meta = MessageMeta.new(
            EventCode.CLAIM, provider, PurposeOfUse.HPAYMT, LegalBasis.LEGAL_OBLIGATION,
            destinations=(payer,), basis_detail=BasisDetail(citation="Zorgverzekeringswet"),
        )
        await self.send(provider, claim_message(claim, meta), self._person_key(provider, who.bsn))
        return claim_id

    async def claim_paid(self, payer: str, provider: str, claim_id: str, bsn: str,
                         amount_cents: int) -> str:
        today = datetime.now(UTC).date()
        response = ClaimResponse(
            response_id=f"ANT-{self._ident()}",
            claim_id=claim_id,
            provider=provider,
            payer=self._payer(payer),
            person_bsn=bsn,
            decided_on=today,
            outcome=ClaimOutcome.PAID,
            approved_cents=amount_cents,
            paid_cents=amount_cents,
            paid_on=today,
        )
        meta = MessageMeta.new(
            EventCode.CLAIM_RESPONSE, payer, PurposeOfUse.HPAYMT, LegalBasis.LEGAL_OBLIGATION,
            destinations=(provider,), basis_detail=BasisDetail(citation="Zorgverzekeringswet"),
        )
        return await self.send(
            payer, claim_response_message(response, meta), self._person_key(payer, bsn)
        )

    # --- scenarios -----------------------------------------------------------------------------

    def _walk(self, ward: Ward) -> dict[SecurityLevel, int]:
        occupied = {}
        for level, beds in ward.levels:
            key = (ward.location_id, level)
            held = self._occupied.get(key, max(0, beds - self.rng.randrange(1, 4)))
            held = min(beds, max(0, held + self.rng.choice((-1, 0, 0, 1))))
            self._occupied[key] = occupied[level] = held
        return occupied

    async def report_all(self) -> int:
        """One capacity report per ward of the deployment; returns how many."""
        wards = wards_for(self.deployment)
        for ward in wards:
            await self.capacity(ward, self._walk(ward))
        return len(wards)

    async def demo(self, stuck_case: str | None = None) -> None:
        """What the demo adds to its referrals: capacity everywhere, a stuck case (``stuck_case``
        of the first ZVH, or one referred here first), two claims of which one is paid."""
        await self.report_all()
        zvhs = [p.id for p in self.deployment.registry.by_role(PartyRole.ZVH)]
        providers = [p.id for p in self.deployment.registry.by_role(
            PartyRole.COORDINATING_PROVIDER)]
        payers = [p.id for p in self.deployment.registry.by_role(PartyRole.HEALTH_INSURER)]
        if zvhs:
            await self.escalation(zvhs[0], EscalationReason.NO_BED, 12, stuck_case)
        if providers and payers:
            today = datetime.now(UTC).date()
            first, second = person(self.rng, today), person(self.rng, today)
            paid = await self.claim(providers[0], payers[0], first, days=30)
            await self.claim(providers[0], payers[0], second, days=30)
            await asyncio.sleep(0.5)  # let the claim be routed before its answer
            await self.claim_paid(payers[0], providers[0], paid, first.bsn, 30 * 2_000)

    def follow(self, interval: float) -> None:
        """Keep reporting capacity every ``interval`` seconds (a live dashboard)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                with contextlib.suppress(Exception):
                    await self.report_all()

        self._live = asyncio.create_task(loop(), name="sample-capacity")
