"""Users, password hashes, lockout and session expiry."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from broker.apps.web.auth import (
    DEMO_CREDENTIALS_FILE,
    MAX_FAILURES,
    USERS_FILE,
    Role,
    SessionStore,
    User,
    UserStore,
    demo_users,
)

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def test_passwords_are_stored_as_argon2_hashes_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    UserStore(path).set("Alice", Role.COMPLIANCE, "correct horse battery")  # real parameters
    text = path.read_text()
    assert "correct horse battery" not in text
    entry = json.loads(text)["users"][0]
    assert entry["name"] == "alice" and entry["role"] == "compliance"
    assert entry["hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = UserStore(path)  # read back from the file
    assert again.authenticate("alice", "correct horse battery") == User("alice", Role.COMPLIANCE)
    assert again.authenticate("alice", "wrong horse battery") is None
    assert again.authenticate("nobody", "correct horse battery") is None


def test_short_passwords_and_odd_names_are_refused(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json", hasher=FAST)
    with pytest.raises(ValueError, match="12 characters"):
        store.set("bob", Role.OPERATIONS, "short")
    with pytest.raises(ValueError, match="user name"):
        store.set("bob smith", Role.OPERATIONS, "long enough password")


def test_repeated_failures_lock_the_name_for_a_while(tmp_path: Path) -> None:
    clock = Clock()
    store = UserStore(tmp_path / "users.json", clock=clock, hasher=FAST)
    store.set("carol", Role.OPERATIONS, "the right password")
    for _ in range(MAX_FAILURES):
        assert store.authenticate("carol", "a wrong password") is None
    assert store.authenticate("carol", "the right password") is None, "locked"
    clock.advance(minutes=2)
    assert store.authenticate("carol", "the right password") == User("carol", Role.OPERATIONS)


def test_sessions_expire_when_idle_and_after_an_absolute_time() -> None:
    clock = Clock()
    sessions = SessionStore(idle=timedelta(minutes=10), absolute=timedelta(minutes=30),
                            clock=clock)
    user = User("dave", Role.OPERATIONS)
    s = sessions.create(user)
    assert s.token and s.csrf and s.token != s.csrf
    clock.advance(minutes=9)
    assert sessions.get(s.token) is s
    clock.advance(minutes=9)
    assert sessions.get(s.token) is s, "each request keeps it alive"
    clock.advance(minutes=11)
    assert sessions.get(s.token) is None, "idle too long"
    s2 = sessions.create(user)
    for _ in range(4):
        clock.advance(minutes=8)
        sessions.get(s2.token)
    assert sessions.get(s2.token) is None, "absolute maximum"
    s3 = sessions.create(user)
    sessions.drop(s3.token)
    assert sessions.get(s3.token) is None
    assert sessions.get(None) is None and sessions.get("forged") is None


def test_demo_users_are_generated_once_into_the_state_dir(tmp_path: Path) -> None:
    store, creds = demo_users(tmp_path, FAST)
    assert set(creds) == {"operations", "compliance"}
    assert store.authenticate("operations", creds["operations"]) == User("operations",
                                                                         Role.OPERATIONS)
    assert store.authenticate("compliance", creds["compliance"]) == User("compliance",
                                                                         Role.COMPLIANCE)
    for f in (USERS_FILE, DEMO_CREDENTIALS_FILE):
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o600
    _, again = demo_users(tmp_path, FAST)
    assert again == creds, "a second run keeps the same passwords"
    _, fresh = demo_users(tmp_path / "elsewhere", FAST)
    assert fresh != creds, "generated per machine, not fixed"
