"""Epoch ids sort by creation time, so the newest epoch is the one every reader takes (issue 19:
a leftover epoch topic that sorted above a new one kept a router restoring)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker.kafka.epoch import EPOCH_PREFIX, epoch_of, new_epoch_id


def test_a_later_epoch_sorts_after_an_earlier_one_whatever_its_randomness() -> None:
    start = datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=UTC)
    ids = [new_epoch_id(start + timedelta(microseconds=i)) for i in range(0, 5000, 7)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_the_listing_takes_the_newest_epoch() -> None:
    older = new_epoch_id(datetime(2026, 1, 1, tzinfo=UTC))
    newer = new_epoch_id(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    names = {EPOCH_PREFIX + newer: 1, "in.referral": 6, EPOCH_PREFIX + older: 1}
    assert epoch_of(names) == newer


def test_the_claim_topic_is_not_an_epoch() -> None:
    assert epoch_of({"ketenbus.epoch-claim": 1}) is None
