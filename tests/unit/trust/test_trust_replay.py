"""ReplayGuard: verdicts, window boundaries, response memory and bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.trust import Reason, ReplayGuard, Verdict

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)
US = timedelta(microseconds=1)


@pytest.fixture
def guard() -> ReplayGuard:
    return ReplayGuard(WINDOW)


def test_new_then_duplicate_with_response(guard: ReplayGuard) -> None:
    assert guard.check("a/1", T, T) is Verdict.NEW
    assert guard.check("a/1", T, T) is Verdict.NEW  # checking alone records nothing
    guard.remember("a/1", b"response-1")
    assert guard.check("a/1", T, T + timedelta(minutes=5)) is Verdict.DUPLICATE
    assert guard.response_for("a/1") == b"response-1"
    assert guard.response_for("a/2") is None
    guard.remember("a/1", b"response-1b")  # replaces the response
    assert guard.response_for("a/1") == b"response-1b"


def test_window_boundaries(guard: ReplayGuard) -> None:
    assert guard.check("m1", T - WINDOW, T) is Verdict.NEW  # exactly at the window: accepted
    assert guard.check("m2", T - WINDOW - US, T) is Verdict.STALE
    assert guard.check("m3", T + timedelta(minutes=2), T) is Verdict.NEW
    assert guard.check("m4", T + timedelta(minutes=2) + US, T) is Verdict.FUTURE


def test_custom_max_future() -> None:
    guard = ReplayGuard(WINDOW, max_future=timedelta(0))
    assert guard.check("m", T, T) is Verdict.NEW
    assert guard.check("m", T + US, T) is Verdict.FUTURE


def test_duplicate_until_the_window_passes_then_stale(guard: ReplayGuard) -> None:
    guard.check("m", T, T)
    guard.remember("m")
    assert guard.check("m", T, T + WINDOW) is Verdict.DUPLICATE
    assert len(guard) == 1
    assert guard.check("m", T, T + WINDOW + US) is Verdict.STALE
    assert len(guard) == 0  # expired ids are dropped
    assert guard.response_for("m") is None


def test_stale_and_future_take_precedence_over_duplicate(guard: ReplayGuard) -> None:
    guard.remember("m", b"r", timestamp=T)
    assert guard.check("m", T + timedelta(hours=5), T) is Verdict.FUTURE


def test_remember_uses_the_checked_timestamp(guard: ReplayGuard) -> None:
    early = T - timedelta(minutes=50)
    guard.check("m", early, T)
    guard.remember("m")
    # kept until early + window, not T + window
    assert guard.check("x", T, early + WINDOW) is Verdict.NEW
    assert "m" in guard
    guard.check("x", T, early + WINDOW + US)
    assert "m" not in guard


def test_remember_without_any_time_needs_a_timestamp() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        ReplayGuard(WINDOW).remember("m")


def test_remember_unchecked_id_is_kept_conservatively(guard: ReplayGuard) -> None:
    guard.check("other", T, T)
    guard.remember("m")  # unknown time: kept as if dated now + max_future
    assert guard.check("m", T + timedelta(minutes=2), T + WINDOW) is Verdict.DUPLICATE


def test_clock_never_goes_backwards(guard: ReplayGuard) -> None:
    guard.check("a", T, T + WINDOW)
    assert guard.latest_now == T + WINDOW
    assert guard.check("b", T - US, T) is Verdict.STALE  # judged at T + WINDOW


def test_capacity_evicts_expired_first_then_oldest() -> None:
    guard = ReplayGuard(WINDOW, capacity=3)
    for i in range(3):
        guard.remember(f"m{i}", timestamp=T + i * timedelta(minutes=1))
    guard.check("tick", T, T + WINDOW + timedelta(seconds=30))  # m0 expires
    assert len(guard) == 2 and guard.evicted_early == 0
    guard.remember("m3", timestamp=T + WINDOW)
    assert len(guard) == 3 and guard.evicted_early == 0
    guard.remember("m4", timestamp=T + WINDOW)
    assert len(guard) == 3 and guard.evicted_early == 1
    assert [i for i in ("m1", "m2", "m3", "m4") if i in guard] == ["m2", "m3", "m4"]


def test_verdict_reasons() -> None:
    assert Verdict.NEW.reason is None
    assert Verdict.DUPLICATE.reason == Reason.DUPLICATE
    assert Verdict.STALE.reason == Reason.STALE
    assert Verdict.FUTURE.reason == Reason.FUTURE_TIMESTAMP


def test_naive_times_are_refused(guard: ReplayGuard) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        guard.check("m", datetime(2026, 1, 1), T)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": timedelta(0)},
        {"window": WINDOW, "capacity": 0},
        {"window": WINDOW, "max_future": -US},
    ],
)
def test_bad_configuration(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ReplayGuard(**kwargs)


# --- model-based property: the guard agrees with an unbounded reference ----------------------

operations = st.lists(
    st.tuples(
        st.integers(0, 9),  # message id
        st.integers(-90, 10),  # message time, minutes relative to now
        st.integers(0, 20),  # clock advance in minutes before this message
        st.booleans(),  # processed (remembered) when new
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(ops=operations)
def test_agrees_with_a_reference_model(ops: list[tuple[int, int, int, bool]]) -> None:
    guard = ReplayGuard(WINDOW, max_future=timedelta(minutes=2), capacity=1000)
    seen: dict[str, datetime] = {}
    now = T
    for ident, offset, advance, process in ops:
        now += timedelta(minutes=advance)
        message_id, stamp = f"m{ident}", now + timedelta(minutes=offset)
        if stamp > now + timedelta(minutes=2):
            expected = Verdict.FUTURE
        elif stamp < now - WINDOW:
            expected = Verdict.STALE
        elif message_id in seen and seen[message_id] >= now - WINDOW:
            expected = Verdict.DUPLICATE
        else:
            expected = Verdict.NEW
        assert guard.check(message_id, stamp, now) is expected
        if expected is Verdict.NEW and process:
            guard.remember(message_id, message_id.encode())
            seen[message_id] = stamp
        if expected is Verdict.DUPLICATE:
            assert guard.response_for(message_id) == message_id.encode()
    assert guard.evicted_early == 0
