"""Fuzz targets for the web console's forms (issue 20 point 7): every field of sign-in, the
compliance search and export, trace, re-process and the escalation answer gets hostile text --
huge, deeply nested, UTF-16 bytes, control characters, BSN-like numbers, HTML and script --
posted by a signed-in user with a valid CSRF token, so the input reaches the handler.

For every case: never a 500 (a specific 4xx, or a normal page; 503 only as the page that says
the service behind it is away, here because the fakes below have no broker), nothing from the
input echoed unescaped (no ``<script>`` or attribute break from the input in the answer, OWASP
ASVS 5.3.3), a sign-in never redirects off the site, and no BSN-like value from the input in
any log line (AVG art. 5(1)(c) and 32; NEN 7513 logs the person who acted, not what was asked).

In process (httpx over ASGI, the real app), the backend faked as in
``tests/unit/web``: nothing here needs Kafka. Bounded by the fuzz profile (``tests/fuzz/conftest``)
and at most ``WEB_EXAMPLES`` cases per form, deadline off: a few seconds in all."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from tempfile import mkdtemp
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.apps.deployment import create_local
from broker.apps.monitoring.state import EscalationBoard
from broker.apps.synthetic import synthetic_bsn
from broker.apps.web import i18n
from broker.apps.web.app import ANSWER_ACTIONS, create_app
from broker.apps.web.auth import Role, SessionStore, UserStore
from broker.apps.web.backend import WebBackend
from broker.apps.web.compliance import SearchNotAudited
from broker.config import Settings
from schemas.flows.escalation import Escalation
from schemas.vocab import EscalationLevel, EscalationReason
from tests.fuzz.conftest import PROFILE
from tests.unit.financing import parties as P
from tests.unit.web.test_web_app import SNAP, FakeCompliance, registry

WEB_EXAMPLES = 150
PASSWORD = "a password for the fuzzer"
MARKERS = ("<script>kbFuzz()</script>", '"><img src=x onerror=kbFuzz()>', "'><svg onload=kbFuzz()>")
"""Planted in a field of every case: none may come back as it went in."""
PLACES = ("{v}{m}", "{m}{v}", "/{m}", "/dashboard?q={m}", "/operations/{m}")
"""Where the marker goes: also where a local path is expected (``next``)."""

FORMS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # name: (method and path, signed-in user, the form's fields)
    "login": ("POST /login", "", ("username", "password", "next")),
    "compliance-search": (
        "POST /compliance/search",
        "cora",
        ("bsn", "person_audit", "person_router", "party", "sender", "purpose", "legal_basis",
         "since", "until", "outcome", "kind", "flow"),
    ),
    "compliance-export": ("POST /compliance/export.csv", "cora", ("bsn", "since", "flow")),
    "trace": ("GET /trace", "olga", ("id",)),
    "reprocess": ("POST /reprocess", "olga", ("id", "send")),
    "escalation-answer": (
        "POST /escalations/answer",
        "olga",
        ("action", "escalation", "raised_by", "assignee", "note"),
    ),
}
ALLOWED = {200, 303, 401, 403, 404, 413, 422, 503}
NOW = datetime.now(UTC)
ESCALATION = Escalation(
    escalation_id="ESC-FUZZ-1", raised_by=P.PROVIDER, raised_at=NOW, zvh=P.ZVH,
    referral_id="MN-2026-0001", reason=EscalationReason.NO_PROVIDER,
    stuck_since=(NOW - timedelta(days=9)).date(), level=EscalationLevel.NATIONAL,
)
NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")


@dataclass
class Collector:
    """The figures without Kafka (as ``tests/unit/web``), with a real, empty escalation board."""

    snapshot: Any = SNAP
    version: int = 1
    escalation_board: EscalationBoard = field(default_factory=EscalationBoard)

    async def wait_for_change(self, version: int, timeout: float) -> int:
        return self.version


class Compliance(FakeCompliance):
    """The fake search of ``tests/unit/web``; a trace cannot be audited (no broker), which the
    page answers with its 503 before anything is read."""

    async def audit_trace(self, message_id: str, *, user: str, role: str) -> None:
        raise SearchNotAudited("the trace could not be audited: broker down")


@dataclass
class Console:
    loop: asyncio.AbstractEventLoop  # the clients' own: hypothesis drives plain functions
    anonymous: httpx.AsyncClient
    signed_in: dict[str, tuple[httpx.AsyncClient, str]]  # user -> (client, its CSRF token)

    def run(self, call: Any) -> Any:
        return self.loop.run_until_complete(call)


@cache
def console() -> Console:
    """One app for the whole run (sessions in memory): built on first use, not per case."""
    state = Path(mkdtemp(prefix="kb-webfuzz-"))
    users = UserStore(state / "users.json", hasher=PasswordHasher(1, 1024, 1))  # tests only
    for name, role in (("olga", Role.OPERATIONS), ("cora", Role.COMPLIANCE),
                       ("nina", Role.OPERATIONS)):
        users.set(name, role, PASSWORD)
    collector: Any = Collector()  # duck-typed fakes, as in tests/unit/web
    compliance: Any = Compliance()
    collector.escalation_board.apply(ESCALATION)
    # the coordination point's real keys, so a well-formed answer is made, sealed and sent;
    # the broker is away (a closed port): the page must say so, not fail
    deployment = create_local(state / "deployment", P.PARTIES)
    backend = WebBackend(Settings(state_dir=state, bootstrap_servers="127.0.0.1:1"),
                         registry(), collector, compliance, "capacity-dashboard",
                         coordination=deployment.party_client(P.NATIONAL))
    app = create_app(backend, users, SessionStore())

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver", follow_redirects=False)

    c = Console(asyncio.new_event_loop(), client(), {})
    for name in ("olga", "cora"):
        signed = client()
        r = c.run(signed.post("/login", data={"username": name, "password": PASSWORD}))
        assert r.status_code == 303, r.text
        m = re.search(r'name="csrf" value="([^"]+)"', c.run(signed.get("/dashboard")).text)
        assert m, "no CSRF token on the page"
        c.signed_in[name] = (signed, m.group(1))
    return c


# --- hostile text ------------------------------------------------------------------------------

def _bsn(seed: int) -> str:
    return synthetic_bsn(random.Random(seed))  # synthetic test data, not security


BSNS = st.integers(0, 2**32).map(_bsn)
"""Valid (11-check) BSNs: a log or a page must never carry one from the input."""

CORPUS = [
    "", " ", "\x00", "\r\nSet-Cookie: kb=1", "\t", "\u202e", "\ufeff", "\ud7ff",
    "%00", "%0d%0aLocation:%20//evil.example", "//evil.example", "/\\evil.example",
    "/\t/evil.example", "https://evil.example/", "javascript:kbFuzz()", "{{7*7}}", "${7*7}",
    "' OR '1'='1", "../../../../etc/passwd", "msg-zvh-a-0", "m-1", "-", ".", "9" * 64,
    "2026-13-45", "9999-12-31T23:59:59+99:00", "0001-01-01", "NaN", "1e400",
    "[" * 2000, '{"a":' * 1000, "a[b][c][d][e][f]", "x" * 20_000, "ä" * 9000,
    "acknowledge", "assign", "request-info", "resolve", "COC", "consent", "decision-permit",
]
TEXT = st.one_of(
    st.sampled_from(CORPUS),
    st.text(max_size=300),  # any code point: controls, surrogates left out by hypothesis
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=50),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.text(max_size=60).map(lambda t: t.encode("utf-16").decode("latin-1")),  # UTF-16 bytes
    BSNS,
    st.tuples(BSNS, st.sampled_from([" ", "-", ".", "\u00a0", ""])).map(
        lambda t: t[0][:4] + t[1] + t[0][4:]
    ),
    st.integers(1, 3000).map(lambda n: "<a>" * n),  # deeply nested markup
)


@dataclass(frozen=True)
class Case:
    form: str
    fields: dict[str, str]
    raw: bytes | None  # a body sent as it is (not form-encoded): UTF-16, binary, huge


@st.composite
def cases(draw: st.DrawFn, form: str) -> Case:
    _, _, names = FORMS[form]
    fields = {n: draw(TEXT) for n in names if draw(st.booleans()) or n in ("bsn", "id")}
    target = draw(st.sampled_from(names))
    if form == "login" and draw(st.booleans()):  # the right password, with any ``next``
        fields.update(username="nina", password=PASSWORD)
        target = "next"
    if form == "escalation-answer" and draw(st.booleans()):  # one on the board: the answer
        fields.update(escalation=ESCALATION.escalation_id, raised_by=ESCALATION.raised_by,
                      action=draw(st.sampled_from(ANSWER_ACTIONS)))  # is made from the rest
        target = draw(st.sampled_from(["assignee", "note"]))
    marker, value = draw(st.sampled_from(MARKERS)), fields.get(target, "")
    fields[target] = draw(st.sampled_from(PLACES)).format(v=value, m=marker)
    raw = None
    if FORMS[form][0].startswith("POST") and draw(st.integers(0, 9)) == 0:
        raw = draw(st.one_of(
            st.binary(max_size=2000),
            st.just(urlencode(fields).encode("utf-16")),
            st.integers(16 * 1024, 40 * 1024).map(lambda n: b"note=" + b"A" * n),
        ))
    return Case(form, fields, raw)


class Lines(logging.Handler):
    """The server's log lines (not those of the fuzzer's own HTTP client, which logs its URLs)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore")):
            self.text.append(self.format(record))


@contextmanager
def logged() -> Iterator[Lines]:
    """Every log line while a case runs, at every level (caplog is per test, not per case)."""
    root, handler = logging.getLogger(), Lines()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def send(case: Case) -> Any:
    c = console()
    method, path = FORMS[case.form][0].split(" ", 1)
    user = FORMS[case.form][1]
    if not user:  # sign-in: anonymous
        client, csrf = c.anonymous, ""
        fields = dict(case.fields)
    else:
        client, csrf = c.signed_in[user]
        fields = {"csrf": csrf, **case.fields}
    if method == "GET":
        return c.run(client.get(path, params=fields))
    if case.raw is not None:
        body = case.raw if not user else b"csrf=" + csrf.encode() + b"&" + case.raw
        return c.run(client.post(path, content=body, headers={
            "content-type": "application/x-www-form-urlencoded"}))
    return c.run(client.post(path, data=fields))


UNAVAILABLE = ("escalations.not_sent", "reprocess.unavailable", "trace.unavailable",
               "compliance.unavailable")
CATALOGUES = (i18n.NL, i18n.EN)


def check(case: Case) -> None:
    with logged() as log:
        r = send(case)
    assert r.status_code in ALLOWED, (case.form, r.status_code)
    if r.status_code == 503:  # in the page's language (Dutch by default): the catalogue's words
        away = [CATALOGUES[lang][key].split(" (")[0] for key in UNAVAILABLE for lang in (0, 1)]
        assert any(w in r.text for w in ("audit", *away)), "a 503 says what is away"
    text = r.text
    for marker in MARKERS:
        assert marker not in text, f"{case.form}: input echoed unescaped"
    if r.status_code in (302, 303, 307):
        where = r.headers["location"]
        assert where.startswith("/") and not where.startswith(("//", "/\\")), where
        assert "\r" not in where and "\n" not in where
    lines = "\n".join(log.text)
    values = [*case.fields.values(), (case.raw or b"").decode("latin-1")]
    for bsn in {m for v in values for m in NINE_DIGITS.findall(v)}:
        assert bsn not in lines, f"{case.form}: a BSN-like input value in the log"
    if case.form.startswith("compliance"):  # the person searched for is never shown again
        for bsn in NINE_DIGITS.findall(case.fields.get("bsn", "")):
            assert bsn not in text, f"{case.form}: the BSN searched for in the answer"


@pytest.mark.parametrize("form", list(FORMS))
def test_no_web_form_input_crashes_echoes_or_leaks(form: str) -> None:
    @settings(PROFILE, max_examples=min(PROFILE.max_examples, WEB_EXAMPLES))
    @given(case=cases(form))
    def run(case: Case) -> None:
        check(case)

    run()
