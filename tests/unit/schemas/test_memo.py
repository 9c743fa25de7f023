"""``Memo`` against its spec: a dict that, when bounded, forgets the least recently used key."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.memo import Memo

_ops = st.lists(
    st.tuples(st.sampled_from(["get", "put", "make"]), st.integers(0, 7), st.integers(1, 99)),
    max_size=60,
)


@given(st.none() | st.integers(1, 4), _ops)
def test_memo_is_a_dict_that_forgets_the_least_recently_used(
    maxsize: int | None, ops: list[tuple[str, int, int]]
) -> None:
    memo: Memo[int, int] = Memo(maxsize)
    spec: OrderedDict[int, int] = OrderedDict()
    for op, key, value in ops:
        if op == "get" or (op == "make" and key in spec):
            expected = spec.get(key)
            if expected is not None:
                spec.move_to_end(key)
            got = memo.get(key) if op == "get" else memo.get_or_make(key, int, -1)
            assert got == expected
            continue
        made = memo.put(key, value) if op == "put" else memo.get_or_make(key, int, value)
        assert made == value
        spec[key] = value
        spec.move_to_end(key)
        if maxsize is not None and len(spec) > maxsize:
            spec.popitem(last=False)
        assert len(memo) == len(spec)
    assert {k: memo.get(k) for k in spec} == dict(spec)


def test_an_exception_while_making_stores_nothing() -> None:
    memo: Memo[str, int] = Memo(2)
    with pytest.raises(ValueError):
        memo.get_or_make("x", int, "not a number")
    assert len(memo) == 0 and memo.get("x") is None
    assert memo.get_or_make("x", int, "5") == 5
    memo.clear()
    assert len(memo) == 0
