"""The claims path end to end on the embedded broker over TCP: a ZVH CSV batch → router →
provider; the provider's decisions (a CSV batch) → the ZVH outbox in the ZVH format; the claims
they lead to → the right payers' outboxes in each payer's format; a payer's answer → the
claimant; financing gaps and, once the clock passes four weeks, unpaid claims → escalations to
the national coordination point. The tests share one stack and run in file order."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.financing.book import ClaimStatus
from adapters.financing.desk import short_id
from adapters.payer.formats import vektis, wmo, wmo301
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack, StackOptions
from broker.apps.synthetic import synthetic_bsn
from broker.config import Settings
from broker.policy import default_policy
from broker.router.facts import Fact, FactKind
from schemas import topics
from tests.helpers.kafka import consume_all
from tests.unit.financing import parties as P

pytestmark = pytest.mark.integration

BSN_A = "999990019"  # synthetic, passes the 11-check
BSN_B = "999990032"
CONSENT_CATEGORIES = [
    "identity",
    "contact",
    "referral-signal",
    "risk-assessment",
    "legal-title",
    "process",
    "care-episode",
]
REFERRALS_CSV = (
    "case_id;region;registered_on;bsn;family_name;given_names;birth_date;municipality;"
    "signaller_name;signaller_sector;signal;risk_level;legal_titles;care_avoider\n"
    "MN-2020-0042;midden-nederland;2020-10-01;{a};Testpersoon;Kees;1985-04-03;0344;"
    "Gemeente Utrecht;municipality;Ernstige dreiging richting buren.;high;;ja\n"
    "MN-2023-0007;midden-nederland;2023-10-01;{b};Voorbeeld;Anna|Maria;1990-07-15;0307;"
    "Politie Midden-Nederland;police;Herhaald geweld.;high;strafrechtelijk/2023-12-10;nee\n"
    "MN-2023-0008;midden-nederland;2023-13-01;{b};Voorbeeld;Anna;1990-07-15;0307;"
    "Politie;police;Kapotte regel.;high;;nee\n"
)
ASSESSMENTS_CSV = (
    "assessment_id;zvh;case_id;assessed_on;bsn;family_name;given_names;birth_date;municipality;"
    "decision;dangerous_behaviour;multi_problem;structure_need;legal_title;reasons;alternative;"
    "inclusion_date;episode_id;insurer_uzovi;wmo_allocation;decided_by\n"
    "BEO-1;{zvh};MN-2020-0042;2020-11-20;{a};Testpersoon;Kees;1985-04-03;0344;not-included;"
    "met;not-met;met;met;Voorliggende zorg volstaat.;mental-health-care;;;;;employee:beo-7\n"
    "BEO-2;{zvh};MN-2023-0007;2023-11-10;{b};Voorbeeld;Anna|Maria;1990-07-15;0307;included;"
    "met;met;met;met;Alle criteria vervuld.;;2023-11-15;EP-MN-2023-0007;3311;;agb:01234567\n"
)


class Clock:
    """The business clock of the claims desks and payers; the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
async def world(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[LocalStack, Clock, list[Fact]]]:
    state = tmp_path_factory.mktemp("claims-state")
    settings = Settings(bootstrap_servers=kafka_bootstrap, state_dir=state)
    deployment = create_local(state, P.PARTIES)
    clock = Clock(datetime(2024, 2, 5, 9, 0, tzinfo=UTC))
    facts: list[Fact] = []
    stack = LocalStack(
        settings,
        deployment,
        default_policy(),
        StackOptions(
            data_dir=state / "data",
            session_timeout_ms=2000,
            poll_interval=0.1,
            tick_interval=0.5,
            clock=clock,
            on_fact=facts.append,
        ),
    )
    await stack.start()
    yield stack, clock, facts
    await stack.stop()


async def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    for _ in range(int(timeout / 0.1)):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.exists() else []


def delivered_events(stack: LocalStack, party: str, event: str) -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text()) for p in files(stack.outbox(party), "*.json")]
    return [
        d
        for d in docs
        if d.get("type") == event
        or (
            d.get("resourceType") == "Bundle"
            and d["entry"][0]["resource"]["eventCoding"]["code"] == event
        )
    ]


async def test_referral_to_decision_to_claims_to_payers_and_back(
    world: tuple[LocalStack, Clock, list[Fact]],
) -> None:
    stack, clock, facts = world
    zvh, provider = stack.zvh[P.ZVH], stack.providers[P.PROVIDER]
    today = datetime.now(UTC).date()

    # consents for both people: the provider may assess, the ZVH may hear the decision
    for i, bsn in enumerate((BSN_A, BSN_B)):
        doc = demo.consent(f"toestemming-{i}", bsn, today)
        doc["recipient_roles"] = ["coordinating-provider", "zvh"]
        doc["categories"] = CONSENT_CATEGORIES
        doc["holders"] = [P.ZVH, P.PROVIDER]  # whose data it opens (issue 16 §3)
        accepted = await zvh.submit_json(doc)
        answer = await zvh.wait_response(accepted.message_id, 20)
        assert answer is not None and answer["status"] == "accepted", answer

    # 1. a ZVH CSV batch: two good rows, one with a bad date; nothing else in the batch is lost
    demo.drop(
        stack.inbox(P.ZVH), "aanmeldingen.csv", REFERRALS_CSV.format(a=BSN_A, b=BSN_B).encode()
    )
    receipt_path = stack.inbox(P.ZVH) / "processed" / "aanmeldingen.csv.receipt.json"
    receipt = json.loads(
        (await wait_for("the CSV receipt", receipt_path.exists) and receipt_path).read_text()
    )
    assert [r["line"] for r in receipt["accepted"]] == [2, 3]
    [bad] = receipt["refused"]
    assert bad["line"] == 4 and bad["issues"][0]["path"] == "line 4: registered_on"
    for r in receipt["accepted"]:
        answer = await zvh.wait_response(r["message_id"], 20)
        assert answer is not None and answer["status"] == "accepted", answer
    await wait_for(
        "both referrals at the provider",
        lambda: len(delivered_events(stack, P.PROVIDER, "referral")) == 2,
    )

    # 2. the provider's decisions as a CSV batch
    demo.drop(
        stack.inbox(P.PROVIDER),
        "besluiten.csv",
        ASSESSMENTS_CSV.format(zvh=P.ZVH, a=BSN_A, b=BSN_B).encode(),
    )
    decisions = await wait_for(
        "both decisions in the ZVH outbox, in the ZVH format",
        lambda: (d := delivered_events(stack, P.ZVH, "assessment-outcome")) and len(d) == 2 and d,
    )
    by_case = {d["case_id"]: d for d in decisions}
    assert by_case["MN-2020-0042"]["decision"] == "not-included"
    assert by_case["MN-2020-0042"]["advised_alternative"] == "mental-health-care"
    included = by_case["MN-2023-0007"]
    assert (included["decision"], included["inclusion_date"], included["episode_id"]) == (
        "included",
        "2023-11-15",
        "EP-MN-2023-0007",
    )
    assert "fhir" not in included and "criteria" not in included, "no clinical grounds for a ZVH"
    # issue 17, NEN 7513: the professional the EPD names in decided_by is the user of the
    # router's audit records of each decision
    audit = await consume_all(stack.settings.bootstrap_servers or "", topics.AUDIT.name)
    users = set()
    for record in audit:
        event = json.loads(record.value)["event"]
        if (event.get("subtype") or [{}])[0].get("code") == "assessment-outcome" and event["type"][
            "code"
        ] == "decision-permit":
            users |= {a["who"]["identifier"]["value"] for a in event["agent"]
                      if a["type"]["coding"][0]["code"] == "humanuser"}
    assert users == {"employee:beo-7", "agb:01234567"}

    # 3. the registration claim to the municipality waits for its WMO301 allocation (iWmo 3.2:
    # a WMO323 Prestatie cites its ToewijzingNummer); the municipality's WMO301 arrives in the
    # provider's inbox: one addressed to another provider is refused whole (failed/, dead
    # letter, audit), the right one is recorded and releases the claim, citing its number
    held_id = short_id("REG", "MN-2020-0042")
    await wait_for(
        "the registration claim held for its allocation",
        lambda: getattr(provider.desk.held.get(held_id), "reason", None) == "allocation",
    )
    assert not files(stack.outbox(P.MUNICIPALITY), "*.xml")
    allocation = wmo301.WmoAllocation(
        BSN_A, "0344", "20072", "10", "LLA01", date(2020, 10, 1), None, P.PROVIDER_AGB
    )

    def wmo301_file(a: wmo301.WmoAllocation) -> bytes:
        return wmo301.write_allocation([a], "TW1", date(2020, 9, 30), date(1985, 4, 3), "Test")

    other = wmo301_file(replace(allocation, receiver="12345678"))
    demo.drop(stack.inbox(P.PROVIDER), "toewijzing-ander.xml", other)
    report = stack.inbox(P.PROVIDER) / "failed" / "toewijzing-ander.xml.error.json"
    await wait_for("the refusal of an allocation for another provider", report.exists)
    refusal = json.loads(report.read_text())
    assert refusal["reason"] == "wrong-receiver"

    async def dead_lettered() -> bool:
        bootstrap = stack.settings.bootstrap_servers or ""
        return any(
            dict(r.headers).get("kb-ref") == refusal["reference"].encode()
            and dict(r.headers).get("kb-reason") == b"wrong-receiver"
            for r in await consume_all(bootstrap, topics.DEAD_LETTER.name)
        )

    for _ in range(50):
        if await dead_lettered():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the refused WMO301 is not on dead-letter")
    digest = hashlib.sha256(other).hexdigest().encode()
    for _ in range(50):  # NEN 7513: the refusal is on the audit trail, named by its digest
        audit = await consume_all(stack.settings.bootstrap_servers or "", topics.AUDIT.name)
        if any(digest in (r.value or b"") for r in audit):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the refusal of the WMO301 is not on the audit trail")
    demo.drop(stack.inbox(P.PROVIDER), "toewijzing.xml", wmo301_file(allocation))
    receipt = stack.inbox(P.PROVIDER) / "processed" / "toewijzing.xml.receipt.json"
    await wait_for("the allocation's receipt", receipt.exists)
    assert [a["number"] for a in json.loads(receipt.read_text())["accepted"]] == ["20072"]

    # the claims, each at the payer the rules name, in that payer's format
    [wmo323] = await wait_for(
        "the registration claim at the municipality of residence",
        lambda: files(stack.outbox(P.MUNICIPALITY), "*.xml"),
    )
    xml = wmo323.read_bytes()
    assert b"<wmo323:BerichtCode>484</wmo323:BerichtCode>" in xml
    assert f"<wmo323:Bsn>{BSN_A}</wmo323:Bsn>".encode() in xml
    assert b"<iwmo:TotaalBedrag>200000</iwmo:TotaalBedrag>" in xml
    assert b"<wmo323:ToewijzingNummer>20072</wmo323:ToewijzingNummer>" in xml
    assert b"registration-pilot@2" in xml, "the claim carries its explanation"
    assert b"seed 000" in xml, "and the source of its rule"
    insurer = await wait_for(
        "two coordination claims at the insurer",
        lambda: (f := files(stack.outbox(P.INSURER), "*.asc")) and len(f) == 2 and f,
    )
    dji = await wait_for(
        "one coordination claim at DJI", lambda: files(stack.outbox(P.DJI), "*.asc")
    )
    # the payer on the inclusion date got the inclusion notice (issue 15 point 7), minimised
    [notice] = await wait_for(  # delivered on its own: it may come after the claims
        "the inclusion notice at the insurer",
        lambda: [
            d
            for p in files(stack.outbox(P.INSURER), "*.json")
            if (d := json.loads(p.read_text())).get("kind") == "inclusion-notice"
        ],
    )
    assert (notice["episode"], notice["inclusion_date"], notice["regime"]) == (
        "EP-MN-2023-0007",
        "2023-11-15",
        "zvw",
    )
    assert "EP-MN-2023-0007" in stack.payers[P.INSURER].inclusions
    periods = sorted(
        (vektis.fields(ln)["datum_prestatie"], vektis.fields(ln)["einddatum_prestatie"], who)
        for who, paths in (("insurer", insurer), ("dji", dji))
        for path in paths
        for ln in path.read_bytes().decode("ascii").split("\r\n")
        if ln.startswith("04")
    )
    assert periods == [
        ("20231115", "20231130", "insurer"),
        ("20231201", "20231209", "insurer"),
        ("20231210", "20231231", "dji"),
    ]
    # coordination from 2024 has no rule: escalated, not claimed; registration of 2023 is
    # the ministries' (held): no claim file for the municipality, no escalation
    assert not files(stack.outbox(P.OTHER_MUNICIPALITY), "*.xml")
    # what it does get is the ZVH's notice of its resident's referral (issue 15 point 3)
    other = files(stack.outbox(P.OTHER_MUNICIPALITY), "*.json")
    assert {json.loads(p.read_text())["type"] for p in other} <= {"referral-notice"}
    gaps = await wait_for(
        "a gap escalation at the national coordination point",
        lambda: (
            (
                e := [
                    f
                    for f in facts
                    if f.kind is FactKind.PERMIT
                    and f.event == "escalation"
                    and f.recipient == P.NATIONAL
                ]
            )
            and len(e) >= 1
            and e
        ),
    )
    assert {f.sender for f in gaps} == {P.PROVIDER}
    raised = {e for e in provider.desk.raised}
    # registration 2023: the ministries VWS and JenV cover it at no tariff -- held, not raised
    assert not any(e.startswith("GAP-REG-MN-2023-0007") for e in raised), raised
    held = provider.desk.held[short_id("REG", "MN-2023-0007")]
    assert (held.reason, held.ruling.target.value) == ("no-price", "ministries")
    assert any(e.startswith("GAP-CO-EP-MN-2023-0007") for e in raised), raised

    # 4. the municipality pays: its WMO325 answer reaches the claimant
    claim = next(
        e.claim
        for e in provider.desk.book.entries.values()
        if e.claim.claim_id == "REG-MN-2020-0042"
    )
    demo.drop(
        stack.inbox(P.MUNICIPALITY),
        "antwoord.xml",
        wmo.write_answer(claim, "2024-02-06", paid=("2024-02-10", 200_000)),
    )
    await wait_for(
        "the claim response at the provider",
        lambda: delivered_events(stack, P.PROVIDER, "claim-response"),
    )
    await wait_for(
        "the claim paid in the provider's book",
        lambda: provider.desk.book.entries["REG-MN-2020-0042"].status is ClaimStatus.PAID,
    )
    assert all(e.router is not None for e in provider.desk.book.entries.values())

    # 5. four weeks and a day later the unpaid coordination claims are escalated, the paid one not
    clock.now += timedelta(days=29)
    await provider.tick()
    late = [e for e in provider.desk.raised if e.startswith("LATE-")]
    assert len(late) == 3 and not any("REG-" in e for e in late), late
    await wait_for(
        "the overdue escalations delivered",
        lambda: (
            sum(
                1
                for f in facts
                if f.kind is FactKind.PERMIT
                and f.event == "escalation"
                and f.recipient == P.NATIONAL
            )
            >= len(gaps) + 3
        ),
    )


async def test_payer_answers_are_refused_per_item_and_the_rest_goes_through(
    world: tuple[LocalStack, Clock, list[Fact]],
) -> None:
    stack, _, facts = world
    insurer_claims = await wait_for(
        "insurer claims", lambda: files(stack.outbox(P.INSURER), "*.asc")
    )
    decl = insurer_claims[0].read_bytes()
    answer = vektis.write_answer(decl, datetime(2024, 2, 20).date(), codes=("R001",)).decode(
        "ascii"
    )
    lines = answer.split("\r\n")
    unknown = lines[2][:131] + "NO-SUCH-CLAIM".ljust(20) + lines[2][151:]
    lines = [*lines[:3], unknown, *lines[3:]]
    lines[-2] = lines[-2][:14] + "000002" + lines[-2][20:]
    demo.drop(stack.inbox(P.INSURER), "retour.asc", "\r\n".join(lines).encode("ascii"))
    receipt_path = stack.inbox(P.INSURER) / "processed" / "retour.asc.receipt.json"
    await wait_for("the insurer's receipt", receipt_path.exists)
    receipt = json.loads(receipt_path.read_text())
    assert [a["outcome"] for a in receipt["accepted"]] == ["rejected"]
    [refused] = receipt["refused"]
    assert refused["reason"] == "unknown-claim" and refused["issues"][0]["path"] == "line 4"
    # "no payment title" reaches the claimant, whose desk raises it as a financing gap
    claim_id = receipt["accepted"][0]["claim"]
    desk = stack.providers[P.PROVIDER].desk
    await wait_for(
        "the rejection in the claimant's book and its gap escalation",
        lambda: (
            desk.book.entries[claim_id].status is ClaimStatus.REJECTED
            and any(e.startswith("GAP-REJ-") for e in desk.raised)
        ),
    )

    # a capacity report from the EPD's CSV reaches the national coordination point
    demo.drop(
        stack.inbox(P.PROVIDER),
        "capaciteit.csv",
        b"report_id;location_id;region;measured_at;level_3_in_service;level_3_occupied;"
        b"level_3_available\nCAP-1;kliniek-3;midden-nederland;2024-02-05T08:00:00+01:00;12;11;1\n",
    )
    await wait_for(
        "the capacity report delivered",
        lambda: any(
            f.kind is FactKind.PERMIT and f.event == "capacity-report" and f.recipient == P.NATIONAL
            for f in facts
        ),
    )

    # an entity bomb is refused as a file; the adapter carries on
    demo.drop(
        stack.inbox(P.MUNICIPALITY),
        "bom.xml",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<x>&b;</x>",
    )
    report = stack.inbox(P.MUNICIPALITY) / "failed" / "bom.xml.error.json"
    await wait_for("the bomb's error report", report.exists)
    assert json.loads(report.read_text())["reason"] == "xml-forbidden"


async def test_a_payer_answer_over_the_xml_limit_is_refused_unread(
    world: tuple[LocalStack, Clock, list[Fact]],
) -> None:
    """docs/adapters/limits.md, ``max_xml_bytes``: an XML answer over the limit is refused as
    ``too-large`` from its directory entry (never parsed: XML parsers are where entity bombs
    live), ends in ``failed/`` with its ``.error.json``, is dead-lettered by its digest and the
    refusal is audited (NEN 7513: every refusal on the trail)."""
    stack, _, _ = world
    box = stack.inbox(P.MUNICIPALITY)
    size = stack.settings.max_xml_bytes + 1
    tmp = box / ".groot.xml.tmp"
    with tmp.open("wb") as f:  # sparse: the size is what counts, the content is never read
        f.write(b'<?xml version="1.0"?><x>')
        f.truncate(size)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, box / "groot.xml")
    report_path = box / "failed" / "groot.xml.error.json"
    await wait_for("the error report of the oversized answer", report_path.exists)
    report = json.loads(report_path.read_text())
    assert report["reason"] == "too-large", report
    assert (box / "failed" / "groot.xml").stat().st_size == size
    assert not (box / "processing" / "groot.xml").exists()
    bootstrap = stack.settings.bootstrap_servers or ""

    async def dead_letter() -> dict[str, bytes] | None:
        for r in await consume_all(bootstrap, topics.DEAD_LETTER.name):
            if dict(r.headers).get("kb-ref") == report["reference"].encode():
                return dict(r.headers)
        return None

    headers = None
    for _ in range(50):
        if headers := await dead_letter():
            break
        await asyncio.sleep(0.1)
    assert headers is not None, "no dead letter for the oversized answer"
    assert headers["kb-reason"] == b"too-large"
    assert headers["kb-digest"] == digest.encode(), "named by its digest"
    assert "kb-parked" not in headers, "refused unread: nothing read, nothing to park"
    assert headers["kb-source"] == P.MUNICIPALITY.encode(), "never the file name"
    for _ in range(50):
        audit = await consume_all(bootstrap, topics.AUDIT.name)
        if any(digest.encode() in (r.value or b"") for r in audit):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the refusal of the oversized answer is not on the audit trail")


async def test_the_provider_rebuilds_its_claims_desk_from_its_journal(
    world: tuple[LocalStack, Clock, list[Fact]],
) -> None:
    stack, clock, _ = world
    live = stack.providers[P.PROVIDER]
    await wait_for("claims sent", lambda: len(live.desk.book.entries) >= 4)
    from adapters.provider.service import ProviderAdapter

    fresh = ProviderAdapter(
        stack.settings,
        stack.deployment.party_client(P.PROVIDER),
        stack.outbox(P.PROVIDER),
        clock=clock,
        # the journal's records about a person are under the provider's data keys
        datakeys=stack.deployment.key_store(stack.settings, write=True, party=P.PROVIDER),
    )
    await fresh.journal.read(fresh._replay)

    def state(desk: Any) -> tuple[Any, ...]:
        return (
            {k: e.status for k, e in desk.book.entries.items()},
            set(desk.raised),
            set(desk.cases),
        )

    assert state(fresh.desk) == state(live.desk)
    assert fresh.desk.received == live.desk.received, "the WMO301 allocation is journalled"
    assert fresh.desk.received
    # and its outcomes from the router's responses in its outbox (issue 20 point 5): what the
    # live adapter learnt as they arrived, the fresh one reads back
    assert not fresh.attempts.outcomes
    assert fresh.load_responses() >= 2
    assert fresh.attempts.outcomes == live.attempts.outcomes
    work = fresh.desk.due(clock())
    assert not work.claims and not work.escalations, "a rebuilt desk claims nothing twice"
    # the journal is sealed for the provider alone: no BSN or name on the topic
    records = await consume_all(stack.settings.bootstrap_servers or "", f"journal.{P.PROVIDER}")
    assert records and all(dict(r.headers)["kb-recipient"] == P.PROVIDER.encode() for r in records)
    for r in records:
        for secret in (BSN_A.encode(), BSN_B.encode(), b"Testpersoon", b"Voorbeeld"):
            assert secret not in (r.value or b"") and secret not in (r.key or b"")


async def test_a_refused_row_is_a_new_attempt_after_a_provider_restart(
    world: tuple[LocalStack, Clock, list[Fact]],
) -> None:
    """Issue 20 point 5, across a restart: the provider's outcomes are the router's responses
    in its outbox. A row refused (no consent) before the provider restarts is sent again after
    the consent was recorded: a new attempt, delivered; the same row once more: the original
    outcome, not delivered twice (docs/adapters/provider.md)."""
    stack, clock, _ = world
    from adapters.provider.service import ProviderAdapter

    bsn = synthetic_bsn(random.Random())  # synthetic test data, not security
    row = (
        ASSESSMENTS_CSV.splitlines()[0]
        + "\nBEO-9;{zvh};MN-2024-0101;2024-01-20;{c};Herhaling;Piet;1979-02-03;0344;"
        "not-included;met;not-met;met;met;Voorliggende zorg volstaat.;mental-health-care;;;;;\n"
    ).format(zvh=P.ZVH, c=bsn)

    async def send(name: str) -> dict[str, Any]:
        demo.drop(stack.inbox(P.PROVIDER), name, row.encode())
        path = stack.inbox(P.PROVIDER) / "processed" / f"{name}.receipt.json"
        await wait_for(f"the receipt of {name}", path.exists)
        [item] = json.loads(path.read_text())["accepted"]
        return dict(item)

    def outcome(adapter: ProviderAdapter, mid: str) -> bool | None:
        return adapter.attempts.outcomes.get(mid)

    def at_zvh() -> list[dict[str, Any]]:
        return [
            d
            for d in delivered_events(stack, P.ZVH, "assessment-outcome")
            if d.get("case_id") == "MN-2024-0101"
        ]

    live = stack.providers[P.PROVIDER]
    first = (await send("besluit-1.csv"))["message_id"]
    await wait_for("the refusal", lambda: outcome(live, first) is False)

    await live.stop()  # the restart: a new adapter, nothing in memory
    fresh = ProviderAdapter(
        stack.settings,
        stack.deployment.party_client(P.PROVIDER),
        stack.outbox(P.PROVIDER),
        inbox_dir=stack.inbox(P.PROVIDER),
        session_timeout_ms=2000,
        poll_interval=0.1,
        tick_interval=0.5,
        clock=clock,
        datakeys=stack.deployment.key_store(stack.settings, write=True, party=P.PROVIDER),
    )
    await fresh.start()
    stack.providers[P.PROVIDER] = fresh
    assert outcome(fresh, first) is False, "read back from the outbox"

    consent = demo.consent("toestemming-herhaling", bsn, datetime.now(UTC).date())
    consent["recipient_roles"] = ["coordinating-provider", "zvh"]
    consent["categories"] = CONSENT_CATEGORIES
    consent["holders"] = [P.ZVH, P.PROVIDER]
    zvh = stack.zvh[P.ZVH]
    accepted = await zvh.submit_json(consent)
    answer = await zvh.wait_response(accepted.message_id, 20)
    assert answer is not None and answer["status"] == "accepted", answer

    again = await send("besluit-2-herexport.csv")
    retry = again["message_id"]
    assert retry != first and not again.get("repeat"), "refused before: a new attempt"
    await wait_for("the new attempt accepted", lambda: outcome(fresh, retry) is True)
    await wait_for("the decision at the ZVH", at_zvh)
    third = await send("besluit-3.csv")
    assert third["message_id"] == retry, "accepted: the original outcome"
    await asyncio.sleep(0.5)
    assert len(at_zvh()) == 1, "not delivered twice"
