"""The router's garbage-collector settings (``broker/router/heap.py``): the state built at start
leaves every collection, the young generation is collected less often, and garbage cycles made
afterwards are still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from broker.router import heap


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settle_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    state = [{"consent": i} for i in range(1000)]  # the long-lived state a router builds
    heap.settle()
    assert gc.get_freeze_count() >= len(state)
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
    heap.settle()  # again after a rebuild: the threshold stays, nothing breaks
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD


def test_a_higher_threshold_someone_set_is_kept() -> None:
    gc.set_threshold(50_000, 10, 10)
    heap.settle()
    assert gc.get_threshold()[0] == 50_000


def test_garbage_from_before_is_collected_not_frozen_and_cycles_after_are_collected() -> None:
    before = _cycle()  # garbage start left: collected first, never kept for good
    heap.settle()
    assert before() is None
    later = _cycle()
    gc.collect()
    assert later() is None
