"""What ``ketenbus reprocess`` selects, before anything touches Kafka: one record per message (its
latest refusal), by id, reason, sender and time window; an empty selection is refused; a record
the router never read as a message cannot be re-processed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.apps.deployment import LocalParty, create_local
from broker.apps.operations.parked import ParkedRecord
from broker.apps.operations.reprocess import (
    Reprocessor,
    ReprocessRefused,
    Selection,
    choose,
    delivered_per_audit,
    select,
)
from broker.config import Settings
from broker.policy import default_policy
from schemas.vocab import PartyRole

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def parked(offset: int, mid: str, reason: str, sender: str = "zvh-a", at: datetime = T0,
           topic: str = "rejected") -> ParkedRecord:
    headers = [("kb-id", mid.encode()), ("kb-sender", sender.encode()),
               ("kb-reason", reason.encode()), ("kb-source-topic", b"in.referral"),
               ("kb-refused-at", at.isoformat().encode()), ("kb-original-key", b"p-key")]
    return ParkedRecord(topic, 0, offset, sender.encode(), b"sealed", headers)


RECORDS = [
    parked(0, "m1", "no-consent"),
    parked(1, "m2", "no-consent", sender="zvh-b", at=T0 + timedelta(days=1)),
    parked(2, "m1", "reprocess-not-authorised", at=T0 + timedelta(hours=1)),
    parked(0, "m3", "invalid-bsn", at=T0 + timedelta(days=2), topic="dead-letter"),
]


def test_one_record_per_message_its_latest_refusal() -> None:
    chosen = select(RECORDS, Selection(ids=frozenset({"m1"})))
    assert [(r.message_id, r.offset) for r in chosen] == [("m1", 2)]


@pytest.mark.parametrize(("selection", "expected"), [
    (Selection(reasons=frozenset({"no-consent"})), ["m1", "m2"]),  # the latest that matches
    (Selection(senders=frozenset({"zvh-b"})), ["m2"]),
    (Selection(since=T0 + timedelta(hours=12)), ["m2", "m3"]),
    (Selection(until=T0 + timedelta(hours=12)), ["m1"]),
    (Selection(since=T0, parking=("dead-letter",)), ["m3"]),
])
def test_filters(selection: Selection, expected: list[str]) -> None:
    assert [r.message_id for r in select(RECORDS, selection)] == expected


def test_the_audit_trails_deliveries_per_message() -> None:
    assert delivered_per_audit([b"not a record"]) == {}


async def test_an_empty_selection_is_refused_before_kafka(tmp_path: Path) -> None:
    dep = create_local(tmp_path, [LocalParty("console", "c", PartyRole.CAPACITY_DASHBOARD)])
    worker = Reprocessor(Settings(bootstrap_servers="127.0.0.1:1", state_dir=tmp_path), dep,
                         default_policy(), "anna")
    with pytest.raises(ReprocessRefused, match="select something"):
        await worker.plan(Selection())


def test_without_a_console_key_here_nothing_can_be_signed(tmp_path: Path) -> None:
    dep = create_local(tmp_path, [LocalParty("zvh-a", "z", PartyRole.ZVH)])
    with pytest.raises(ReprocessRefused, match="no console party"):
        Reprocessor(Settings(state_dir=tmp_path), dep, default_policy(), "anna")


def test_unknown_ids_and_too_many_records_are_refused() -> None:
    with pytest.raises(ReprocessRefused, match="no longer on the broker"):
        choose(RECORDS, Selection(ids=frozenset({"m1", "gone"})), 100)
    with pytest.raises(ReprocessRefused, match="more than --limit 1"):
        choose(RECORDS, Selection(since=T0), 1)
    assert len(choose(RECORDS, Selection(since=T0), 3)) == 3
