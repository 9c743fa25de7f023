"""A record routed again after a crash is a redelivery of the first decision, not a second
decision (issue 19 point 8): in one run 113 messages left two ``decision-permit`` records each,
which inflates what a compliance search shows. The delivery index (rebuilt from its topic at
start) says who already got the message; the router delivers it to them again, minimised as
before (recipients de-duplicate on the message id), and audits only the delivery."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from tests.unit.router.test_follow_ups import (
    PARTY_ROLES,
    PROVIDER,
    RECIPIENTS,
    REGION,
    REGIONAL,
    ROUTER,
    _bundle,
    _cats,
    _delivered,
    _send,
)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    parties = [
        LocalParty(pid, pid, role, REGION if role in REGIONAL else None)
        for pid, role in PARTY_ROLES.items()
        if pid != ROUTER
    ]
    return create_local(tmp_path_factory.mktemp("redelivery"), parties)


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_record_routed_again_after_a_crash_is_delivered_as_before_and_not_decided_again(
    deployment: Deployment, now: datetime
) -> None:
    pipe = Pipeline(deployment.router_state(default_policy()))
    _send(pipe, deployment, _bundle("consent", now), now)
    original = _bundle("assessment-outcome", now)
    first = _send(pipe, deployment, original, now)
    before = _delivered(first, deployment, PROVIDER)
    assert set(before) == RECIPIENTS
    assert sum(f.kind is FactKind.PERMIT for f in first.facts) == len(RECIPIENTS)

    # the crash: offsets not committed; a fresh router (replay guard and consent view empty,
    # as before it has read them back) with the index rebuilt from the deliveries topic
    restarted = Pipeline(dataclasses.replace(deployment.router_state(default_policy())))
    for entry in pipe.state.deliveries:
        restarted.state.deliveries.apply(entry)
    again = _send(restarted, deployment, original, now)

    after = _delivered(again, deployment, PROVIDER)
    assert set(after) == RECIPIENTS  # delivered again, to the same parties ...
    assert {p: _cats(b) for p, b in after.items()} == {p: _cats(b) for p, b in before.items()}
    kinds = [f.kind for f in again.facts if f.recipient in RECIPIENTS]
    assert FactKind.PERMIT not in kinds and FactKind.DENY not in kinds  # ... not decided again
    redelivered = [f for f in again.facts if f.reason == "redelivered"]
    assert {f.recipient for f in redelivered} == RECIPIENTS
    assert all(f.kind is FactKind.DELIVERY for f in redelivered)


def test_a_new_message_about_the_same_person_is_decided_as_ever(
    deployment: Deployment, now: datetime
) -> None:
    """Only the same message id counts as routed before: a new one without consent is denied."""
    pipe = Pipeline(deployment.router_state(default_policy()))
    _send(pipe, deployment, _bundle("consent", now), now)
    _send(pipe, deployment, _bundle("assessment-outcome", now), now)
    restarted = Pipeline(dataclasses.replace(deployment.router_state(default_policy())))
    for entry in pipe.state.deliveries:
        restarted.state.deliveries.apply(entry)
    fresh = _send(restarted, deployment, _bundle("assessment-outcome", now), now)
    assert not any(f.reason == "redelivered" for f in fresh.facts)
    assert any(f.kind in (FactKind.PERMIT, FactKind.DENY) for f in fresh.facts)
