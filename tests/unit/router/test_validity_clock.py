"""docs/policy.md §1: the router judges a conflict-of-duties decision on its own clock, never on
the message's timestamp, which the sender sets. (The router bounds that timestamp as well: more
than a day old is ``stale``, more than two minutes ahead ``future-timestamp``; so a scenario
that replays a past year cannot date its messages in that year either.)"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from adapters.zvh.format import parse_document
from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from schemas import topics
from schemas.flows.referral import referral_message
from schemas.messaging import BasisDetail, MessageMeta
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

ZVH = "zvh-midden-nederland"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(Path(tmp_path_factory.mktemp("dep")), demo.PARTIES)


def _referral(deployment: Deployment, valid_until: date, stamp: datetime) -> Incoming:
    client = deployment.party_client(ZVH)
    bsn = synthetic_bsn(random.Random())
    p = {"bsn": bsn, "family_name": "Test", "birth_date": "1980-01-01", "municipality": "0344"}
    doc = parse_document(demo.referral("CASE-1", "midden-nederland", p, stamp.date()))
    ref = doc.to_referral(ZVH)  # type: ignore[union-attr]
    detail = BasisDetail(
        None, "Aanmelding: acuut gevaar voor derden.", "procesregisseur ZVH", valid_until
    )
    meta = MessageMeta.new(
        EventCode.REFERRAL, ZVH, PurposeOfUse.SAFETY, LegalBasis.CONFLICT_OF_DUTIES,
        basis_detail=detail,
    )  # fmt: skip
    meta = dataclasses.replace(meta, timestamp=stamp)
    key, value, headers = client.seal_message(referral_message(ref, meta), bsn)
    return Incoming(topics.IN_REFERRAL.name, key, value, headers)


def _decisions(
    deployment: Deployment, rec: Incoming, now: datetime
) -> list[tuple[FactKind, str]]:
    pipeline = Pipeline(deployment.router_state(default_policy()))
    facts = pipeline.route(rec, now).facts
    return [(f.kind, f.reason) for f in facts if f.kind in (FactKind.PERMIT, FactKind.DENY)]


def test_a_decision_for_the_messages_day_has_ended_on_the_routers_next_day(
    deployment: Deployment,
) -> None:
    """Sent today, valid until today, routed one second after midnight: refused as ended.
    Judged on the message's timestamp it would pass."""
    stamp = datetime.now(UTC)
    routed = datetime.combine(stamp.date() + timedelta(days=1), time(0, 0, 1), tzinfo=UTC)
    if routed - stamp >= timedelta(days=1):
        pytest.skip("sent in the first second after midnight: routed the next day is stale")
    rec = _referral(deployment, stamp.date(), stamp)
    assert _decisions(deployment, rec, stamp) == [(FactKind.PERMIT, "permitted")]
    rec = _referral(deployment, stamp.date(), stamp)
    assert _decisions(deployment, rec, routed) == [(FactKind.DENY, "conflict-of-duties-expired")]
