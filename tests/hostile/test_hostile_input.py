"""Hostile input against a live local stack (issue 20): every input an attacker or a careless
integrator sends is refused with its reason, ends in ``failed/`` with its ``.error.json``, is
dead-lettered and audited, never sticks, never loops, never leaks, never speaks for someone
else; the good input around it is delivered once; health returns to ok. At the end an
independent client scans every topic (keys, headers, values) for the test data's BSNs, names
and birth dates (AVG art. 5(1)(f) and 32: no personal data in clear on the bus).

One stack serves the whole module (tests/helpers/stack.py); the tests run in file order and the
scan comes last. Limits are those of docs/adapters/limits.md (Settings defaults).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from adapters.common.inbox import Inbox, report_name
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.apps.synthetic import synthetic_bsn
from broker.router.facts import Fact, FactKind
from broker.router.service import RouterService
from schemas import topics
from schemas.flows.referral import referral_message
from schemas.messaging import MessageMeta
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse
from tests.helpers.kafka import consume_all
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration

ZVH = "zvh-midden-nederland"
OTHER_ZVH = "zvh-ijsselland"
PROVIDER = "fivoor"
RSS_BOUND_MB = 64
"""The adapter process may grow by at most this much while a 50 MB file or post is refused
(docs/adapters/limits.md): such input is refused from its size, never read whole."""

RNG = random.Random()  # synthetic test data, not security
SECRETS: list[str] = []
"""Every BSN, name and birth date of this module's test data: none may be on any topic."""


def person() -> dict[str, Any]:
    bsn = synthetic_bsn(RNG)
    family = f"Vijandig{RNG.randrange(10**6):06d}"
    given = f"Kwaadwillig{RNG.randrange(10**6):06d}"
    born = (date(1931, 1, 1) + timedelta(days=RNG.randrange(20000))).isoformat()
    SECRETS.extend([bsn, family, given, born])
    return {
        "bsn": bsn,
        "family_name": family,
        "given_names": [given],
        "birth_date": born,
        "gender": "female",
        "municipality": "0344",
    }


def referral(p: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    case = f"HOSTILE-{RNG.randrange(10**9)}"
    return demo.referral(case, "midden-nederland", p or person(), date.today(), **extra)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    async with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("state"), demo.PARTIES) as s:
        yield s


async def until(check: Any, timeout: float = 15.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        got = check()
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {getattr(check, '__name__', check)}")


def inbox(stack: LocalStack) -> Inbox:
    zvh = stack.zvh[ZVH].inbox
    assert zvh is not None
    return zvh


async def refused_file(stack: LocalStack, name: str, content: bytes | None = None) -> Any:
    """Drop ``name`` (unless already there) and wait for its error report in ``failed/``."""
    if content is not None:
        demo.drop(stack.inbox(ZVH), name, content)
    report = inbox(stack).error_report(name)
    await until(report.exists)
    assert (inbox(stack).failed / name).exists() or (inbox(stack).failed / name).is_symlink()
    assert not (inbox(stack).processing / name).exists(), "a refused file must not stick"
    return json.loads(report.read_text())


async def receipt(stack: LocalStack, name: str, content: bytes) -> Any:
    demo.drop(stack.inbox(ZVH), name, content)
    path = inbox(stack).processed / report_name(name, ".receipt.json")
    await until(path.exists)
    return json.loads(path.read_text())


async def dead_letter_of(stack: LocalStack, ref: str) -> dict[str, bytes]:
    """The dead letter with reference ``ref``, and check its refusal is on the audit trail
    (by the input's SHA-256, the only way the trail names refused input)."""
    bootstrap = stack.settings.bootstrap_servers or ""

    async def find() -> dict[str, bytes] | None:
        for r in await consume_all(bootstrap, topics.DEAD_LETTER.name):
            h = dict(r.headers)
            if h.get("kb-ref") == ref.encode():
                return h
        return None

    headers = None
    for _ in range(100):
        headers = await find()
        if headers:
            break
        await asyncio.sleep(0.1)
    assert headers is not None, f"no dead letter for {ref}"
    digest = headers["kb-digest"]
    for _ in range(100):
        audit = await consume_all(bootstrap, topics.AUDIT.name)
        if any(digest in (r.value or b"") for r in audit):
            return headers
        await asyncio.sleep(0.1)
    raise AssertionError(f"the refusal {ref} is not on the audit trail")


async def assert_refused(stack: LocalStack, name: str, content: bytes | None, reason: str) -> Any:
    report = await refused_file(stack, name, content)
    if "refused" in report:  # a file read whose every item was refused: its first item
        assert not report["accepted"]
        report = report["refused"][0]
    assert report["reason"] == reason, report
    assert report["operationOutcome"]["resourceType"] == "OperationOutcome"
    headers = await dead_letter_of(stack, report["reference"])
    assert headers["kb-reason"] == reason.encode()
    return report, headers


class RssWatch:
    """The peak resident set size of this process (the adapters run in it), from /proc."""

    def __init__(self) -> None:
        self.start = self.now()
        self.peak = self.start
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def now() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            await asyncio.sleep(0.02)

    def __enter__(self) -> RssWatch:
        self._task = asyncio.create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.now())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    piece = b'{"x":"' + b"a" * (size - 8) + b'"}'
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


async def achunks(total: int) -> AsyncIterator[bytes]:
    """A body streamed in 1 MB pieces (chunked: no Content-Length to refuse it by)."""
    for c in chunks(total):
        yield c


# --- files that used to stick, loop or leak ---------------------------------------------------


async def test_deep_json_is_refused_not_stuck(stack: LocalStack) -> None:
    await assert_refused(stack, "deep.json", b"[" * 5000 + b"]" * 5000, "too-deep")


async def test_a_huge_csv_cell_refuses_its_row(stack: LocalStack) -> None:
    p = person()
    header = "case_id;region;registered_on;bsn;family_name;birth_date;signaller_name;"
    header += "signaller_sector;signal"
    row = f"C-1;midden-nederland;{date.today()};{p['bsn']};{p['family_name']};"
    row += f"{p['birth_date']};Politie;police;" + "x" * 200_000
    report, _ = await assert_refused(
        stack, "bigcell.csv", f"{header}\n{row}\n".encode(), "cell-too-large"
    )
    assert report["issues"][0]["path"] == "line 2: signal"


async def test_refused_input_too_big_for_a_record_is_parked_with_its_digest(
    stack: LocalStack,
) -> None:
    doc = referral(signal="s" * 2_000_000)  # valid JSON, 2 MB, refused (signal too long)
    raw = json.dumps(doc).encode()
    _, headers = await assert_refused(stack, "big.json", raw, "string_too_long")
    assert headers["kb-digest"] == hashlib.sha256(raw).hexdigest().encode()
    parked = stack.settings.state_dir / headers["kb-parked"].decode()
    assert parked.exists() and raw not in parked.read_bytes(), "kept sealed, not in clear"


async def test_a_50mb_file_is_refused_unread_within_the_rss_bound(stack: LocalStack) -> None:
    path = stack.inbox(ZVH) / ".huge.json.tmp"
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for c in chunks(50 * 2**20):
            f.write(c)
            digest.update(c)
    with RssWatch() as rss:
        os.replace(path, stack.inbox(ZVH) / "huge.json")
        _, headers = await assert_refused(stack, "huge.json", None, "too-large")
    assert headers["kb-digest"] == digest.hexdigest().encode(), "named by its digest, unread"
    print(f"50 MB file: RSS grew {rss.growth_mb:.1f} MB")  # shown with -s
    assert rss.growth_mb < RSS_BOUND_MB, f"RSS grew {rss.growth_mb:.0f} MB"


async def test_personal_data_in_a_file_name_or_field_name_stays_off_the_bus(
    stack: LocalStack,
) -> None:
    p = person()
    name = f"aanmelding-{p['bsn']}-{p['family_name']}.json"
    doc = referral(p)
    doc[p["bsn"]] = p["given_names"][0]  # an unknown field named by a BSN
    report, headers = await assert_refused(stack, name, demo.dump(doc), "extra_forbidden")
    assert p["bsn"] not in json.dumps(report["issues"]), "the report names the rule, not the field"
    for value in headers.values():
        assert p["bsn"].encode() not in value and p["family_name"].encode() not in value
    csv_name = f"export-{p['given_names'][0]}.csv"
    await assert_refused(
        stack, csv_name, f"case_id;{p['family_name']}\nX;Y\n".encode(), "missing-column"
    )


async def test_unknown_types_and_symlinks_are_answered_not_followed(
    stack: LocalStack, tmp_path: Path
) -> None:
    await assert_refused(stack, "notes.txt", b"hello", "file-type")
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(referral()))
    link = stack.inbox(ZVH) / "link.json"
    link.symlink_to(secret)
    await assert_refused(stack, "link.json", None, "symlink")
    assert secret.exists()
    long_name = "n" * 243 + ".json"
    await assert_refused(stack, long_name, b"{", "not-json")


async def test_implausible_dates_are_refused(stack: LocalStack) -> None:
    p = person()
    p["birth_date"] = (date.today() + timedelta(days=3)).isoformat()
    report, _ = await assert_refused(
        stack, "future.json", demo.dump(referral(p)), "implausible-date"
    )
    assert report["issues"][0]["path"] == "person.birth_date"
    old = person()
    old["birth_date"] = "1850-01-01"
    await assert_refused(stack, "old.json", demo.dump(referral(old)), "implausible-date")


async def test_utf16_is_refused_alike_by_file_and_http(stack: LocalStack) -> None:
    raw = json.dumps(referral()).encode("utf-16")
    await assert_refused(stack, "utf16.json", raw, "encoding")
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=20, headers=stack.http_headers
    ) as c:
        r = await c.post("/referrals", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["reason"] == "encoding"
    await dead_letter_of(stack, r.json()["reference"])


async def test_a_file_that_keeps_failing_is_quarantined(stack: LocalStack, tmp_path: Path) -> None:
    adapter = stack.zvh[ZVH]
    box = Inbox(tmp_path / "inbox")
    demo.drop(box.directory, "a-poison.json", b"{}")
    demo.drop(box.directory, "b-next.json", b"{}")
    seen: list[str] = []

    async def process(path: Path) -> None:
        seen.append(path.name)
        if path.name.startswith("a-"):
            raise RuntimeError("fails for reasons of its own")
        box.done(path)

    for _ in range(stack.settings.inbox_max_attempts):
        await adapter.runtime.poll(box, process, adapter.quarantine)
    assert "b-next.json" in seen and (box.processed / "b-next.json").exists()
    report = json.loads(box.error_report("a-poison.json").read_text())
    assert report["reason"] == "quarantined"
    assert not list(box.processing.iterdir()), "nothing left to loop on"
    await dead_letter_of(stack, report["reference"])


# --- HTTP -------------------------------------------------------------------------------------


async def test_http_limits_answer_with_an_operation_outcome(stack: LocalStack) -> None:
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=30, headers=stack.http_headers
    ) as c:
        deep = await c.post("/referrals", content=b"[" * 3000 + b"]" * 3000)
        assert deep.status_code == 422 and deep.json()["reason"] == "too-deep"
        assert deep.json()["operationOutcome"]["resourceType"] == "OperationOutcome"
        big = await c.post("/referrals", json=referral(signal="s" * 2_000_000))
        assert big.status_code == 422, big.text
        headers = await dead_letter_of(stack, big.json()["reference"])
        assert b"kb-parked" not in headers or headers["kb-parked"]
        with RssWatch() as rss:
            try:
                huge = await c.post("/referrals", content=achunks(50 * 2**20))
                assert huge.status_code == 413 and huge.json()["reason"] == "too-large"
            except httpx.TransportError:
                pass  # the server may close while the client still writes; the refusal stands
        print(f"50 MB post: RSS grew {rss.growth_mb:.1f} MB")  # shown with -s
        assert rss.growth_mb < RSS_BOUND_MB, f"RSS grew {rss.growth_mb:.0f} MB"


# --- only authenticated senders are answered ---------------------------------------------------


async def give_consent(stack: LocalStack, bsn: str) -> None:
    assert stack.http_url
    doc = demo.consent(f"c-{RNG.randrange(10**9)}", bsn, date.today())
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        r = await c.post("/consents", json=doc)
    assert r.status_code == 202, r.text
    answer = await stack.zvh[ZVH].wait_response(r.json()["message_id"], 20)
    assert answer is not None and answer["status"] == "accepted", answer


def responses_to(stack: LocalStack, message_id: str) -> list[tuple[str, str]]:
    """(outbox, status) of every response about ``message_id`` in every party's outbox."""
    out = []
    for party in stack.deployment.registry.parties:
        folder = stack.outbox(party.id)
        if not folder.exists():
            continue
        for f in folder.glob("*.json"):
            doc = json.loads(f.read_text())
            if doc.get("type") == "response" and doc.get("in_reply_to") == message_id:
                out.append((party.id, doc["status"]))
    return out


async def test_a_forged_record_gets_no_response_in_any_outbox(stack: LocalStack) -> None:
    p = person()
    await give_consent(stack, p["bsn"])
    got = await receipt(stack, "genuine.json", demo.dump(referral(p)))
    mid = got["accepted"][0]["message_id"]
    await until(lambda: stack.zvh[ZVH].responses.get(mid))
    assert responses_to(stack, mid) == [(ZVH, "accepted")]

    # the same message id, claimed for the ZVH, signed with another party's valid key
    other = stack.deployment.party_client(OTHER_ZVH)
    meta = MessageMeta.new(
        EventCode.REFERRAL, ZVH, PurposeOfUse.COC, LegalBasis.CONSENT, message_id=mid
    )
    from adapters.zvh.format import parse_document

    forged_doc = parse_document(referral(p))
    assert not isinstance(forged_doc, dict)
    bundle = referral_message(forged_doc.to_referral(ZVH), meta)  # type: ignore[union-attr]
    [(key, value, headers)] = other.seal_messages([(bundle, p["bsn"])])
    claimed = [(k, ZVH.encode() if k == "kb-sender" else v) for k, v in headers]
    unsigned = [(k, v) for k, v in claimed if not k.startswith("kb-sig")]
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers)
    await producer.start()
    try:
        for h in (claimed, unsigned):
            await producer.send_and_wait(topics.IN_REFERRAL.name, value, key=key, headers=h)
    finally:
        await producer.stop()
    bootstrap = stack.settings.bootstrap_servers or ""

    async def parked() -> list[bytes]:
        out = []
        for t in (topics.REJECTED.name, topics.DEAD_LETTER.name):
            for r in await consume_all(bootstrap, t):
                h = dict(r.headers)
                if h.get("kb-id") == mid.encode():
                    out.append(h["kb-reason"])
        return out

    for _ in range(100):
        if len(await parked()) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(await parked()) >= 2, "both forgeries are parked with their reasons"
    await asyncio.sleep(1.0)  # anything the router would answer has arrived by now
    assert responses_to(stack, mid) == [(ZVH, "accepted")]
    assert stack.zvh[ZVH].responses[mid]["status"] == "accepted"


# --- idempotent intake by content --------------------------------------------------------------


async def test_the_same_referral_sent_three_ways_is_delivered_once(stack: LocalStack) -> None:
    p = person()
    await give_consent(stack, p["bsn"])
    doc = referral(p)
    first = await receipt(stack, "ref-a.json", demo.dump(doc))
    mid = first["accepted"][0]["message_id"]
    second = await receipt(stack, "ref-b-reexport.json", json.dumps(doc).encode())
    assert second["accepted"][0]["message_id"] == mid and second["accepted"][0]["repeat"]
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        r = await c.post("/referrals", json=doc)
    assert r.status_code == 202 and r.json()["message_id"] == mid and r.json()["repeat"]
    await until(lambda: (stack.outbox(PROVIDER) / f"{mid}.json").exists())
    await asyncio.sleep(0.5)
    topic = stack.deployment.registry.get(PROVIDER).outbound_topic
    records = await consume_all(stack.settings.bootstrap_servers or "", topic)
    assert [dict(r.headers).get("kb-id") for r in records].count(mid.encode()) == 1


async def test_a_refused_document_sent_again_after_its_fix_is_a_new_attempt(
    stack: LocalStack,
) -> None:
    p = person()
    doc = referral(p)
    first = await receipt(stack, "noconsent-1.json", demo.dump(doc))
    mid = first["accepted"][0]["message_id"]
    answer = await stack.zvh[ZVH].wait_response(mid, 20)
    assert answer is not None and answer["status"] == "refused"
    await give_consent(stack, p["bsn"])  # the cause fixed
    again = await receipt(stack, "noconsent-2.json", demo.dump(doc))
    retry = again["accepted"][0]["message_id"]
    assert retry != mid and not again["accepted"][0].get("repeat")
    answer = await stack.zvh[ZVH].wait_response(retry, 20)
    assert answer is not None and answer["status"] == "accepted", answer


async def test_a_replay_after_a_router_restart_is_still_a_duplicate(stack: LocalStack) -> None:
    p = person()
    await give_consent(stack, p["bsn"])
    got = await receipt(stack, "before-restart.json", demo.dump(referral(p)))
    mid = got["accepted"][0]["message_id"]
    await until(lambda: (stack.outbox(PROVIDER) / f"{mid}.json").exists())
    bootstrap = stack.settings.bootstrap_servers or ""
    records = await consume_all(bootstrap, topics.IN_REFERRAL.name)
    [genuine] = [r for r in records if dict(r.headers).get("kb-id") == mid.encode()]
    await asyncio.sleep(0.5)  # the batch's offsets are committed once its effects are acked
    assert stack.router is not None
    old = stack.router
    await old.stop()
    facts: list[Fact] = []
    router = RouterService(
        stack.settings,
        stack.deployment.router_state(stack.policy),
        on_fact=facts.append,
        session_timeout_ms=2000,
    )
    await router.start()
    stack.router = router
    # and in the list the stack stops: a router left running would stay in the shared broker's
    # consumer group and take the next module's partitions with this deployment's keys
    stack.routers = [router if r is old else r for r in stack.routers]
    assert f"{ZVH}/{mid}" in router.state.replay, "rebuilt from the routed topics"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.IN_REFERRAL.name, genuine.value, key=genuine.key, headers=list(genuine.headers)
        )
    finally:
        await producer.stop()
    await until(lambda: [f for f in facts if f.message_id == mid], timeout=20)
    assert [f.kind for f in facts if f.message_id == mid] == [FactKind.DUPLICATE]
    topic = stack.deployment.registry.get(PROVIDER).outbound_topic
    out = await consume_all(bootstrap, topic)
    assert [dict(r.headers).get("kb-id") for r in out].count(mid.encode()) == 1


# --- the end: good files delivered, health ok, nothing personal on any topic ------------------


async def test_good_items_around_bad_ones_are_delivered_once(stack: LocalStack) -> None:
    p = person()
    await give_consent(stack, p["bsn"])
    good = referral(p)
    got = await receipt(stack, "mixed.json", json.dumps([good, {"type": "referral"}]).encode())
    assert [a["index"] for a in got["accepted"]] == [0] and len(got["refused"]) == 1
    mid = got["accepted"][0]["message_id"]
    await until(lambda: (stack.outbox(PROVIDER) / f"{mid}.json").exists())


async def test_health_is_ok_after_all_that(stack: LocalStack) -> None:
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        r = await c.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    for a in [*stack.zvh.values(), *stack.providers.values()]:
        assert a.runtime.health.ok, a.runtime.health.as_dict()
    assert not list(inbox(stack).processing.iterdir()), "nothing stuck in processing/"


async def test_an_independent_scan_of_every_topic_finds_no_personal_data(
    stack: LocalStack,
) -> None:
    bootstrap = stack.settings.bootstrap_servers or ""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    # every topic of this deployment (a session broker also holds other tests' topics)
    names = [t.name for t in topics.catalogue([p.id for p in stack.deployment.registry.parties])]
    assert set(names) <= existing
    assert topics.DEAD_LETTER.name in names and topics.AUDIT.name in names
    needles = [s.encode() for s in SECRETS]
    assert len(needles) > 20
    found = []
    scans = await asyncio.gather(*(consume_all(bootstrap, n) for n in names))
    for name, records in zip(names, scans, strict=True):
        for r in records:
            blobs = [r.key or b"", r.value or b""]
            blobs += [k.encode() + b"=" + v for k, v in r.headers]
            for needle in needles:
                if any(needle in b for b in blobs):
                    found.append((name, r.offset, needle.decode()))
    assert not found, found
