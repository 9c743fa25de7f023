"""Corrections and withdrawals in the routing pipeline (issue 16 point 5, AVG art. 16, 17, 19):
a follow-up reaches every recipient of the original and no one else, minimised as the original
was; only the original's sender may send one; every refusal has a stable reason, is parked on
``rejected`` and audited with the original's id."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.generate.examples import (
    INSURER,
    MUNICIPALITY,
    PARTY_ROLES,
    PROVIDER,
    PROVIDER_B,
    REGION,
    ROUTER,
    ZVH,
    example_meta,
    examples,
)
from broker.audit import build_audit_event
from broker.config import Settings
from broker.policy import default_policy
from broker.router.audit_sink import to_record
from broker.router.deliveries import INDEX_EVENT, DeliveryEntry, DeliveryIndex
from broker.router.delivery_log import DeliveryLog
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline, RouteResult
from broker.router.records import Incoming, header
from broker.trust import seal_for
from schemas import topics
from schemas.flows.consent import ConsentRecord
from schemas.flows.response import response_from_message
from schemas.flows.withdrawal import Withdrawal, withdrawal_message
from schemas.messaging import (
    EXT_FOLLOW_UP_OF,
    MessageMeta,
    category_of,
    dumps,
    new_id,
    parse_message,
)
from schemas.vocab import DataCategory, EventCode, LegalBasis, PartyRole, PurposeOfUse

REGIONAL = {PartyRole.ZVH, PartyRole.COORDINATING_PROVIDER, PartyRole.EXECUTING_PROVIDER}
RECIPIENTS = {ZVH, MUNICIPALITY, PROVIDER_B}  # the assessment-outcome example's destinations


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    parties = [
        LocalParty(pid, pid, role, REGION if role in REGIONAL else None)
        for pid, role in PARTY_ROLES.items()
        if pid != ROUTER
    ]
    return create_local(tmp_path_factory.mktemp("followups"), parties)


def _example(name: str) -> Any:
    return next(e for e in examples() if e.name == name)


def _bundle(name: str, now: datetime, **meta: Any) -> dict[str, Any]:
    """An example's message, assembled now, with a fresh id unless one is given."""
    ex = _example(name)
    model = ex.model
    if isinstance(model, ConsentRecord):
        model = model.model_copy(
            update={
                "period_start": now.date() - timedelta(days=30),
                "period_end": now.date() + timedelta(days=365),
            }
        )
    m = dataclasses.replace(example_meta(ex), timestamp=now, message_id=new_id(), **meta)
    return dict(ex.flow.to_message(model, m))


def _withdrawal(original: str, sender: str, now: datetime) -> dict[str, Any]:
    meta = MessageMeta.new(
        EventCode.WITHDRAWAL, sender, PurposeOfUse.COC, LegalBasis.LEGAL_OBLIGATION, now=now
    )
    w = Withdrawal(original_id=original, withdrawn_by=sender, withdrawn_at=now)
    return withdrawal_message(w, meta)


def _send(
    pipe: Pipeline, dep: Deployment, bundle: dict[str, Any], now: datetime, by: str | None = None
) -> RouteResult:
    """Seal ``bundle`` with the keys of ``by`` (default: the MessageHeader's sender)."""
    msg = parse_message(dumps(bundle))
    client = dep.party_client(by or msg.meta.sender)
    key, value, headers = client.seal_message(bundle, msg.subject_bsn(), now=now)
    topic = topics.inbound_for(msg.meta.event.value).name
    return pipe.route(Incoming(topic, key, value, headers), now)


def _delivered(result: RouteResult, dep: Deployment, sender: str) -> dict[str, dict[str, Any]]:
    """What each party other than the sender got, opened with its own keys."""
    out = {}
    for rec in result.records:
        party = rec.topic.removeprefix("out.")
        if rec.topic.startswith("out.") and party != sender:
            out[party] = json.loads(
                dep.party_client(party).open(rec.key, rec.value, rec.headers).payload
            )
    return out


def _answer(result: RouteResult, dep: Deployment, sender: str) -> tuple[str, list[str | None]]:
    [rec] = [r for r in result.records if r.topic == f"out.{sender}"]
    opened = dep.party_client(sender).open(rec.key, rec.value, rec.headers)
    resp = response_from_message(parse_message(opened.payload))
    return resp.code.value, [i.reason for i in resp.issues]


def _cats(bundle: dict[str, Any]) -> set[DataCategory | None]:
    return {category_of(e["resource"]) for e in bundle["entry"][1:]}


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def routed(deployment: Deployment, now: datetime) -> tuple[Pipeline, str, dict[str, Any]]:
    """A fresh router that delivered the assessment outcome to its three recipients."""
    pipe = Pipeline(deployment.router_state(default_policy()))
    _send(pipe, deployment, _bundle("consent", now), now)
    original = _bundle("assessment-outcome", now)
    got = _delivered(_send(pipe, deployment, original, now), deployment, PROVIDER)
    assert set(got) == RECIPIENTS
    return pipe, original["id"], got


def test_a_correction_reaches_exactly_the_original_recipients_minimised_as_before(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, original, first = routed
    # the correction names an insurer too: it never reaches a party that did not get the original
    correction = _bundle(
        "assessment-outcome", now, refers_to=original, destinations=(ZVH, MUNICIPALITY, INSURER)
    )
    result = _send(pipe, deployment, correction, now)
    got = _delivered(result, deployment, PROVIDER)
    assert set(got) == RECIPIENTS
    for party, bundle in got.items():
        header_ext = bundle["entry"][0]["resource"]["extension"]
        assert {"url": EXT_FOLLOW_UP_OF, "valueId": original} in header_ext
        assert _cats(bundle) == _cats(first[party]), party  # minimised like the original
    assert _answer(result, deployment, PROVIDER) == ("ok", [])
    kinds = [(f.kind, f.recipient, f.refers_to) for f in result.facts]
    assert sorted(kinds) == sorted(
        [(FactKind.CORRECTION, p, original) for p in RECIPIENTS]
        + [(FactKind.DELIVERY, p, original) for p in RECIPIENTS]
    )
    assert len([r for r in result.records if r.topic == topics.DELIVERIES.name]) == 1


def test_a_correction_follows_the_original_even_after_the_consent_is_revoked(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    """AVG art. 19 binds the controller to tell each recipient, whatever the policy says now."""
    pipe, original, _ = routed
    _send(pipe, deployment, _bundle("consent-revocation", now + timedelta(seconds=1)), now)
    fresh = _send(pipe, deployment, _bundle("assessment-outcome", now), now)
    assert _delivered(fresh, deployment, PROVIDER) == {}, "a new message is judged anew"
    result = _send(pipe, deployment, _bundle("assessment-outcome", now, refers_to=original), now)
    assert set(_delivered(result, deployment, PROVIDER)) == RECIPIENTS


def test_a_withdrawal_reaches_each_recipient_once_and_a_second_one_is_answered_not_delivered(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, original, _ = routed
    result = _send(pipe, deployment, _withdrawal(original, PROVIDER, now), now)
    got = _delivered(result, deployment, PROVIDER)
    assert set(got) == RECIPIENTS
    for bundle in got.values():
        [prov] = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"
        ]
        assert prov["target"][0]["identifier"]["value"] == f"urn:uuid:{original}"
    assert _answer(result, deployment, PROVIDER) == ("ok", [])
    assert {f.kind for f in result.facts} == {FactKind.WITHDRAWAL, FactKind.DELIVERY}
    again = _send(pipe, deployment, _withdrawal(original, PROVIDER, now), now)
    assert _delivered(again, deployment, PROVIDER) == {}
    assert _answer(again, deployment, PROVIDER) == ("fatal-error", ["already-withdrawn"])
    late = _send(pipe, deployment, _bundle("assessment-outcome", now, refers_to=original), now)
    assert _delivered(late, deployment, PROVIDER) == {}
    assert _answer(late, deployment, PROVIDER) == ("fatal-error", ["original-withdrawn"])


def _refused(result: RouteResult, reason: str, original: str) -> None:
    """Refused with ``reason``: parked on rejected, audited with the original's id."""
    parked = [r for r in result.records if r.topic == topics.REJECTED.name]
    assert [header(r.headers, "kb-reason") for r in parked] == [reason]
    [fact] = result.facts
    assert (fact.kind, fact.reason, fact.refers_to) == (FactKind.REFUSAL, reason, original)
    assert not [r for r in result.records if r.topic == topics.DELIVERIES.name]


@pytest.mark.parametrize("intruder", [ZVH, PROVIDER_B, MUNICIPALITY, INSURER])
def test_another_party_cannot_withdraw_or_correct_someone_elses_message(
    deployment: Deployment,
    now: datetime,
    routed: tuple[Pipeline, str, dict[str, Any]],
    intruder: str,
) -> None:
    """Each with its own valid key, naming the message id the original recipients know."""
    pipe, original, _ = routed
    result = _send(pipe, deployment, _withdrawal(original, intruder, now), now)
    assert _delivered(result, deployment, intruder) == {}
    assert _answer(result, deployment, intruder) == ("fatal-error", ["not-original-sender"])
    _refused(result, "not-original-sender", original)
    # the original is untouched: its own sender can still withdraw it
    ok = _send(pipe, deployment, _withdrawal(original, PROVIDER, now), now)
    assert set(_delivered(ok, deployment, PROVIDER)) == RECIPIENTS


def test_a_withdrawal_in_the_senders_name_signed_with_another_valid_key_is_refused(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, original, _ = routed
    forged = _withdrawal(original, PROVIDER, now)
    result = _send(pipe, deployment, forged, now, by=PROVIDER_B)
    assert _delivered(result, deployment, PROVIDER_B) == {}
    assert [f.reason for f in result.facts] == ["envelope-mismatch"]


def test_a_withdrawal_of_an_unknown_message_is_refused(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, _, _ = routed
    unknown = new_id()
    result = _send(pipe, deployment, _withdrawal(unknown, PROVIDER, now), now)
    assert _answer(result, deployment, PROVIDER) == ("fatal-error", ["unknown-original"])
    _refused(result, "unknown-original", unknown)


def test_a_correction_may_not_change_the_flow_or_the_person(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, original, _ = routed
    other_flow = _bundle("care-transition", now, refers_to=original)
    result = _send(pipe, deployment, other_flow, now)
    assert _answer(result, deployment, PROVIDER) == ("fatal-error", ["correction-event-mismatch"])
    _refused(result, "correction-event-mismatch", original)
    other_person = _bundle("assessment-outcome", now, refers_to=original)
    for e in other_person["entry"]:
        if e["resource"]["resourceType"] == "Patient":
            e["resource"]["identifier"][0]["value"] = "999990020"  # another valid BSN
    result = _send(pipe, deployment, other_person, now)
    assert _answer(result, deployment, PROVIDER) == ("fatal-error", ["correction-changes-subject"])
    _refused(result, "correction-changes-subject", original)


def test_a_withdrawal_whose_provenance_names_another_message_is_refused(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, original, _ = routed
    bundle = _withdrawal(original, PROVIDER, now)
    prov = bundle["entry"][1]["resource"]
    prov["target"][0]["identifier"]["value"] = f"urn:uuid:{new_id()}"
    result = _send(pipe, deployment, bundle, now)
    assert _delivered(result, deployment, PROVIDER) == {}
    assert _answer(result, deployment, PROVIDER)[0] == "fatal-error"


def test_the_audit_record_of_a_follow_up_names_the_original(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, original, _ = routed
    result = _send(pipe, deployment, _withdrawal(original, PROVIDER, now), now)
    fact = next(f for f in result.facts if f.kind is FactKind.WITHDRAWAL)
    event = build_audit_event(to_record(fact, "router-1"))
    assert event["type"]["code"] == "withdrawal" and event["action"] == "D"
    details = {
        d["type"]: d.get("valueString") for e in event["entity"] for d in e.get("detail", [])
    }
    assert details["refers-to"] == original


# --- the index rebuilt from the topic -----------------------------------------------------------


def test_index_records_merge_in_any_order() -> None:
    base = DeliveryEntry("p", new_id(), EventCode.REFERRAL, "pseudo")
    a = dataclasses.replace(base, recipients={"x": frozenset({DataCategory.IDENTITY})})
    b = dataclasses.replace(base, recipients={"y": frozenset()}, withdrawn_by="w")
    c = dataclasses.replace(base, corrections=["c1"])
    views = []
    for order in ((a, b, c), (c, b, a), (b, a, c)):
        index = DeliveryIndex()
        for entry in order:
            index.apply(DeliveryEntry.from_json(dataclasses.replace(entry).to_json()))
        views.append(index.get("p", base.message_id))
    assert views[0] == views[1] == views[2]
    assert (
        views[0] is not None
        and views[0].withdrawn_by == "w"
        and set(views[0].recipients) == {"x", "y"}
    )


def test_the_index_is_rebuilt_only_from_records_the_router_sealed(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    pipe, original, _ = routed
    state = deployment.router_state(default_policy())
    view = DeliveryLog(Settings(), state)
    for rec in pipe.route(Incoming("x", None, b"", [])).records:  # nothing valid: parked only
        assert rec.topic != topics.DELIVERIES.name
    entry = pipe.state.deliveries.get(PROVIDER, original)
    assert entry is not None
    # a party seals a forged index record for the router, adding itself as a recipient
    forged = dataclasses.replace(entry, recipients={INSURER: frozenset(DataCategory)})
    client = deployment.party_client(INSURER)
    s = seal_for(
        forged.to_json(),
        client.keys,
        deployment.registry,
        "router",
        event=INDEX_EVENT,
        message_id=original,
        pseudonym=forged.key,
        timestamp=now,
    )
    view._apply(s.key, s.value, list(s.headers))
    assert view.errors == 1 and state.deliveries.get(PROVIDER, original) is None
    # the router's own record is applied
    s = seal_for(
        entry.to_json(),
        pipe.state.keys,
        deployment.registry,
        "router",
        event=INDEX_EVENT,
        message_id=original,
        pseudonym=entry.key,
        timestamp=now,
    )
    view._apply(s.key, s.value, list(s.headers))
    rebuilt = state.deliveries.get(PROVIDER, original)
    assert rebuilt is not None and set(rebuilt.recipients) == RECIPIENTS


async def test_a_broker_that_lost_its_state_gets_the_index_back(
    deployment: Deployment,
    now: datetime,
    routed: tuple[Pipeline, str, dict[str, Any]],
    tmp_path: Any,
) -> None:
    """``RouterService._reseed_consent_log`` writes every index entry back to ``deliveries``,
    sealed by the router, so a restart (or another instance) rebuilds the same index."""
    from broker.router.service import RouterService

    pipe, original, _ = routed
    service = RouterService(Settings(state_dir=tmp_path), pipe.state)
    written: list[Any] = []

    async def publish(records: list[Any]) -> None:
        written.extend(records)

    service.publish = publish  # type: ignore[method-assign]  # capture instead of Kafka
    await service._reseed_consent_log()
    index = [r for r in written if r.topic == topics.DELIVERIES.name]
    assert len(index) == 1
    fresh = deployment.router_state(default_policy())
    view = DeliveryLog(Settings(state_dir=tmp_path), fresh)
    view._apply(index[0].key, index[0].value, list(index[0].headers))
    rebuilt = fresh.deliveries.get(PROVIDER, original)
    assert rebuilt is not None and set(rebuilt.recipients) == RECIPIENTS


def test_a_follow_up_routed_again_after_a_restart_is_delivered_again_not_refused(
    deployment: Deployment, now: datetime, routed: tuple[Pipeline, str, dict[str, Any]]
) -> None:
    """At-least-once: a router that crashed before its offsets were committed routes the same
    record again with a fresh replay guard but the index rebuilt from the topic."""
    pipe, original, _ = routed
    withdrawal = _withdrawal(original, PROVIDER, now)
    correction = _bundle("assessment-outcome", now, refers_to=original)
    first = [_send(pipe, deployment, b, now) for b in (correction, withdrawal)]
    restarted = Pipeline(dataclasses.replace(deployment.router_state(default_policy())))
    for entry in pipe.state.deliveries:
        restarted.state.deliveries.apply(entry)
    for bundle, before in zip((correction, withdrawal), first, strict=True):
        again = _send(restarted, deployment, bundle, now)
        assert set(_delivered(again, deployment, PROVIDER)) == RECIPIENTS
        assert _answer(again, deployment, PROVIDER) == _answer(before, deployment, PROVIDER)
    # a new withdrawal is still answered as a second one
    other = _send(restarted, deployment, _withdrawal(original, PROVIDER, now), now)
    assert _answer(other, deployment, PROVIDER) == ("fatal-error", ["already-withdrawn"])


def test_the_routers_own_index_record_read_back_is_not_opened_again(
    deployment: Deployment, now: datetime
) -> None:
    """A router applies its index record as it writes it; read back from the topic, that very
    record (byte for byte) is counted and left, a second copy of it is opened and applied as
    any record, one byte changed is refused, and another instance's record is applied."""
    pipe = Pipeline(deployment.router_state(default_policy()))
    _send(pipe, deployment, _bundle("consent", now), now)
    bundle = _bundle("assessment-outcome", now)
    result = _send(pipe, deployment, bundle, now)
    [rec] = [r for r in result.records if r.topic == topics.DELIVERIES.name]
    [entry] = [e for e in pipe.state.deliveries if e.message_id == bundle["id"]]
    view = DeliveryLog(Settings(), pipe.state)
    known = len(pipe.state.deliveries)
    # what the record says is in the index; take one recipient out to see whether it is folded
    party, _ = entry.recipients.popitem()
    view._apply(rec.key, rec.value, list(rec.headers))
    assert (view.applied, view.errors, len(pipe.state.deliveries)) == (1, 0, known)
    assert party not in entry.recipients  # not opened nor folded again: the router's own echo
    assert not pipe.state.deliveries.echo(rec.value)  # forgotten once read back
    view._apply(rec.key, rec.value, list(rec.headers))  # a second copy: opened, genuine
    assert (view.applied, view.errors) == (2, 0)
    assert party in entry.recipients  # folded in as any record
    pipe.state.deliveries.wrote(rec.value)
    tampered = rec.value[:-1] + bytes([rec.value[-1] ^ 1])
    view._apply(rec.key, tampered, list(rec.headers))
    assert (view.applied, view.errors) == (2, 1)
    # another instance (its own index, same router keys) routed a message: its record applies
    other = Pipeline(deployment.router_state(default_policy()))
    _send(other, deployment, _bundle("consent", now), now)
    theirs = _send(other, deployment, _bundle("assessment-outcome", now), now)
    [rec2] = [r for r in theirs.records if r.topic == topics.DELIVERIES.name]
    view._apply(rec2.key, rec2.value, list(rec2.headers))
    assert (view.applied, view.errors, len(pipe.state.deliveries)) == (3, 1, known + 1)


def test_the_echoes_remembered_are_bounded() -> None:
    index = DeliveryIndex()
    for i in range(DeliveryIndex.ECHOES + 10):
        index.wrote(i.to_bytes(4, "big"))
    assert not index.echo((0).to_bytes(4, "big"))  # the oldest went first
    assert index.echo((DeliveryIndex.ECHOES + 9).to_bytes(4, "big"))
