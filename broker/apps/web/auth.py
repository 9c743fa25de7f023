"""Users, roles, password hashes and sessions of the web app.

Roles (issue 17): ``operations`` sees the dashboard, the operations page and traces, and may
re-process; ``compliance`` (compliance officer) and ``auditor`` also see the audit search;
``coordination`` (the national coordination point's staff) sees the dashboard and operations;
``administrator`` manages and may re-process. A user belongs to an organisation (a party id of
the registry) and a compliance officer or auditor sees only the trail of the organisations they
are responsible for (their own and ``responsible_for``); a user without an organisation works
for the deployment itself and sees every organisation (the router operator's own staff).
NEN 7513: every search, export, trace and re-process is logged with the person. Passwords are
stored as Argon2id hashes in ``<state dir>/web/users.json`` (mode 0600). Sessions live in
memory only (a restart signs every user out) and end after a period of inactivity and after an
absolute maximum.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

USERS_FILE = Path("web") / "users.json"
DEMO_CREDENTIALS_FILE = Path("web") / "demo-credentials.json"
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=1)


class Role(StrEnum):
    OPERATIONS = "operations"
    COMPLIANCE = "compliance"
    COORDINATION = "coordination"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"

    @property
    def label(self) -> str:
        return _LABELS[self.value]


_LABELS = {
    "operations": "operations",
    "compliance": "compliance officer",
    "coordination": "coordination point",
    "auditor": "auditor",
    "administrator": "administrator",
}
AUDIT_ROLES = (Role.COMPLIANCE, Role.AUDITOR)  # may search the audit trail
TRACE_ROLES = (Role.OPERATIONS, Role.COMPLIANCE, Role.AUDITOR, Role.ADMINISTRATOR)
REPROCESS_ROLES = (Role.OPERATIONS, Role.ADMINISTRATOR)


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    organisation: str | None = None  # the party the user works for; None: the deployment
    responsible_for: frozenset[str] = frozenset()  # further organisations whose trail they see

    @property
    def may_search_audit(self) -> bool:
        return self.role in AUDIT_ROLES

    @property
    def may_trace(self) -> bool:
        return self.role in TRACE_ROLES

    @property
    def scope(self) -> frozenset[str] | None:
        """The organisations whose records this user may see; None: every organisation."""
        if self.organisation is None:
            return None
        return frozenset({self.organisation}) | self.responsible_for


@dataclass(frozen=True)
class _Entry:
    role: Role
    hash: str
    organisation: str | None = None
    responsible_for: frozenset[str] = frozenset()

    def user(self, name: str) -> User:
        return User(name, self.role, self.organisation, self.responsible_for)


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_name(name: str) -> str:
    clean = name.strip().lower()
    if not 1 <= len(clean) <= 64 or not set(clean) <= NAME_CHARS:
        raise ValueError("a user name is 1-64 of a-z, 0-9, '.', '_' and '-'")
    return clean


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class UserStore:
    """The users file: name, role and Argon2id hash per user."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        self._hasher = hasher or PasswordHasher()  # Argon2id, RFC 9106 low-memory profile
        self._dummy: str | None = None
        self._users: dict[str, _Entry] = {}
        self._failures: dict[str, list[datetime]] = {}
        self._lock = threading.Lock()
        self._loaded: float | None = None
        self._load()

    def _load(self) -> None:
        """Read the users file (again when it changed: ``ketenbus web add-user`` while the
        web app runs takes effect at the user's next sign-in, and a removed user cannot sign
        in any more)."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self._loaded:
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        users: dict[str, _Entry] = {}
        for entry in data.get("users", []):
            users[entry["name"]] = _Entry(
                Role(entry["role"]),
                entry["hash"],
                entry.get("organisation"),
                frozenset(entry.get("responsible_for", ())),
            )
        self._users, self._loaded = users, mtime

    def __contains__(self, name: object) -> bool:
        return name in self._users

    def __len__(self) -> int:
        return len(self._users)

    def _save(self) -> None:
        users: list[dict[str, object]] = []
        for n, e in sorted(self._users.items()):
            entry: dict[str, object] = {"name": n, "role": e.role.value, "hash": e.hash}
            if e.organisation is not None:
                entry["organisation"] = e.organisation
            if e.responsible_for:
                entry["responsible_for"] = sorted(e.responsible_for)
            users.append(entry)
        _write_private(self.path, json.dumps({"users": users}, indent=2) + "\n")
        self._loaded = self.path.stat().st_mtime

    def set(
        self,
        name: str,
        role: Role,
        password: str,
        *,
        organisation: str | None = None,
        responsible_for: frozenset[str] = frozenset(),
    ) -> User:
        """Add a user or change its role, organisation and password."""
        if len(password) < 12:
            raise ValueError("a password has at least 12 characters")
        name = check_name(name)
        self._load()  # another process may have changed the file
        for org in (organisation, *responsible_for):
            if org is not None and (not org or not set(org) <= NAME_CHARS or len(org) > 64):
                raise ValueError("an organisation is a party id (a-z, 0-9, '.', '_', '-')")
        entry = _Entry(role, self._hasher.hash(password), organisation, frozenset(responsible_for))
        self._users[name] = entry
        self._save()
        return entry.user(name)

    def role_of(self, name: str) -> Role | None:
        """The role of a user, or None for a name that is not a user."""
        entry = self._users.get(name)
        return entry.role if entry else None

    def remove(self, name: str) -> bool:
        self._load()
        found = self._users.pop(check_name(name), None) is not None
        if found:
            self._save()
        return found

    def locked(self, name: str) -> bool:
        now = self.clock()
        recent = [t for t in self._failures.get(name, []) if now - t < LOCKOUT]
        self._failures[name] = recent
        return len(recent) >= MAX_FAILURES

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password matches; None otherwise, also while the name is locked
        after repeated failures."""
        try:
            name = check_name(name)
        except ValueError:
            return None
        with self._lock:
            self._load()
            if self.locked(name):
                return None
            entry = self._users.get(name)
            if entry is None and self._dummy is None:  # equal work for unknown names
                self._dummy = self._hasher.hash(secrets.token_hex(16))
            try:
                self._hasher.verify(entry.hash if entry else str(self._dummy), password)
                ok = entry is not None
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok:
                self._failures.setdefault(name, []).append(self.clock())
                return None
            self._failures.pop(name, None)
            assert entry is not None
            return entry.user(name)


def demo_users(
    state_dir: Path, hasher: PasswordHasher | None = None
) -> tuple[UserStore, dict[str, str]]:
    """The local demo users ``operations`` and ``compliance``: their passwords are generated at
    the first run and kept in ``<state dir>/web/demo-credentials.json`` (mode 0600), never in
    the repository. Returns the store and name -> password."""
    cred_path = state_dir / DEMO_CREDENTIALS_FILE
    store = UserStore(state_dir / USERS_FILE, hasher=hasher)
    try:
        creds: dict[str, str] = json.loads(cred_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        creds = {}
    wanted = {"operations": Role.OPERATIONS, "compliance": Role.COMPLIANCE}
    if set(creds) != set(wanted) or any(
        name not in store or store.authenticate(name, pw) is None for name, pw in creds.items()
    ):
        creds = {name: secrets.token_urlsafe(12) for name in wanted}
        for name, role in wanted.items():
            store.set(name, role, creds[name])
        _write_private(cred_path, json.dumps(creds, indent=2) + "\n")
    return store, creds


@dataclass
class Session:
    token: str
    user: User
    csrf: str
    created: datetime
    last_seen: datetime = field(compare=False)


class SessionStore:
    """Server-side sessions behind a random cookie token; they expire after ``idle`` without a
    request and ``absolute`` after sign-in, whichever comes first."""

    def __init__(
        self,
        idle: timedelta = timedelta(minutes=30),
        absolute: timedelta = timedelta(hours=8),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.idle = idle
        self.absolute = absolute
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, user: User) -> Session:
        now = self.clock()
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(24), now, now)
        self._sessions[s.token] = s
        self._purge(now)
        return s

    def _expired(self, s: Session, now: datetime) -> bool:
        return now - s.last_seen > self.idle or now - s.created > self.absolute

    def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        if not token:
            return None
        s = self._sessions.get(token)
        if s is None:
            return None
        now = self.clock()
        if self._expired(s, now):
            self._sessions.pop(token, None)
            return None
        if touch:
            s.last_seen = now
        return s

    def drop(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)

    def _purge(self, now: datetime) -> None:
        for token in [t for t, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[token]
