"""The messages every benchmark uses: the demo parties, synthetic people with consent, and
referrals sealed by a ZVH exactly as its adapter would send them.

Every referral is about a person with an active consent for coordination of care, so the router
takes its most expensive path: verify, decrypt, validate, decide, minimise, seal for the
provider, seal a response for the ZVH, and two audit facts' worth of work (one permit).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from adapters.zvh.format import ZvhConsent, ZvhReferral, parse_document
from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_birth_date, synthetic_bsn, synthetic_name
from broker.policy import default_policy
from broker.router.pipeline import ROUTER_DOMAIN, RouterState
from broker.router.records import Incoming, Outgoing
from broker.trust import EnvelopeMeta, seal
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.consent import ConsentRecord, consent_message
from schemas.flows.referral import Referral, referral_message
from schemas.messaging import MessageMeta, dumps
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

ZVH = "zvh-midden-nederland"
PROVIDER = "fivoor"
REGION = "midden-nederland"
INSTANCES = ("router-1", "router-2")
"""Router instances declared in the bench's deployment (own keys and audit chains), for the
runs with routers side by side; a single router runs with the router's own key."""


@dataclass
class Workload:
    """A local deployment (keys under ``state_dir``) plus people, consents and referrals."""

    deployment: Deployment
    state_dir: Path
    zvh: PartyClient
    bsns: list[str]
    consents: list[ConsentRecord]
    referrals: list[Referral]

    @classmethod
    def create(cls, state_dir: Path, persons: int = 200, seed: int = 1) -> Workload:
        """Keys for the demo parties and ``persons`` synthetic people, each with a consent."""
        deployment = create_local(state_dir, demo.PARTIES, router_instances=INSTANCES)
        rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        today = date.today()
        bsns: list[str] = []
        seen: set[str] = set()
        while len(bsns) < persons:
            bsn = synthetic_bsn(rng)
            if bsn not in seen:
                seen.add(bsn)
                bsns.append(bsn)
        consents, referrals = [], []
        for i, bsn in enumerate(bsns):
            doc = parse_document(demo.consent(f"bench-{i}", bsn, today))
            assert isinstance(doc, ZvhConsent)
            consents.append(doc.to_record(ZVH))
            given, family = synthetic_name(rng)
            person = {
                "bsn": bsn,
                "family_name": family,
                "given_names": [given],
                "birth_date": synthetic_birth_date(rng, today).isoformat(),
                "gender": rng.choice(["male", "female"]),
                "municipality": "0344",
            }
            ref = parse_document(demo.referral(f"BENCH-{i:06d}", REGION, person, today))
            assert isinstance(ref, ZvhReferral)
            referrals.append(ref.to_referral(ZVH))
        return cls(deployment, state_dir, deployment.party_client(ZVH), bsns, consents, referrals)

    # --- router side ----------------------------------------------------------------------

    def router_state(self, *, full_validation: bool = False, consents: bool = True) -> RouterState:
        """A fresh router state (empty replay cache), with every consent applied when asked."""
        state: RouterState = self.deployment.router_state(default_policy())
        state.full_validation = full_validation
        if consents:
            for record in self.consents:
                pseudo = state.pseudonyms.pseudonym(ROUTER_DOMAIN, record.person_bsn)
                state.consents.apply(pseudo, record)
        return state

    # --- messages -------------------------------------------------------------------------

    def referral_bundle(self, i: int, now: datetime | None = None) -> tuple[dict[str, object], str]:
        """Referral number ``i`` (person ``i mod persons``) as a new message, and its BSN."""
        ref = self.referrals[i % len(self.referrals)]
        meta = MessageMeta.new(
            EventCode.REFERRAL, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT, now=now
        )
        return referral_message(ref, meta), ref.person.bsn

    def sealed_referrals(self, n: int, start: int = 0, *, batch: int = 1) -> list[Incoming]:
        """``n`` referrals sealed by the ZVH for the router, each with a fresh message id;
        ``batch > 1`` seals them as the ZVH adapter sends an inbox file: ``batch`` at a time
        under one batch signature (docs/trust.md 3.4.1)."""
        out = []
        for first in range(start, start + n, batch):
            last = min(first + batch, start + n)
            messages = [self.referral_bundle(i) for i in range(first, last)]
            for key, value, headers in self.zvh.seal_messages(messages):
                out.append(Incoming(topics.IN_REFERRAL.name, key, value, headers))
        return out

    def consent_log_records(self, n: int) -> list[Outgoing]:
        """``n`` records of the ``consent`` topic as the router writes them (sealed for itself).

        The first ``len(consents)`` are the workload's people; beyond that, versions of
        further synthetic consents (fresh consent ids for the same people), so a rebuild of
        ``n`` events applies ``n`` distinct consents.
        """
        router = self.deployment.keyring(self.deployment.router_id).current
        pseudonyms = self.deployment.pseudonymiser(self.deployment.router_id)
        kid, pub = self.deployment.registry.encryption_key(router.party_id, datetime.now(UTC))
        out = []
        for i in range(n):
            base = self.consents[i % len(self.consents)]
            record = (
                base
                if i < len(self.consents)
                else base.model_copy(update={"consent_id": f"extra-{i}"})
            )
            meta = MessageMeta.new(EventCode.CONSENT, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT)
            payload = dumps(consent_message(record, meta))
            pseudo = pseudonyms.pseudonym(ROUTER_DOMAIN, record.person_bsn)
            env = EnvelopeMeta(
                message_id=meta.message_id,
                event=EventCode.CONSENT.value,
                sender=router.party_id,
                recipient=router.party_id,
                timestamp=datetime.now(UTC),
                pseudonym=f"{pseudo}.{record.consent_id}",
            )
            sealed = seal(payload, env, router, kid, pub)
            out.append(Outgoing(topics.CONSENT.name, sealed.key, sealed.value, sealed.headers))
        return out


def fresh_id(prefix: str) -> str:
    """A consumer group or topic name no earlier run used (reusing a group id is slow)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
