"""The trackers that turn records into the monitor's figures, fed by hand (no Kafka)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from broker.apps.monitoring.model import Snapshot, age_text
from broker.apps.monitoring.state import (
    AuditTracker,
    CapacityBoard,
    EscalationBoard,
    LagTracker,
    RecordMeta,
    RefusalTracker,
    TopicTracker,
    scrub,
)
from broker.audit import AuditRow
from schemas.flows.capacity import CapacityReport, LevelCapacity
from schemas.flows.escalation import Escalation
from schemas.vocab import EscalationReason, SecurityLevel

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def rec(topic: str, at: datetime, **headers: str) -> RecordMeta:
    return RecordMeta.of(topic, 0, 0, int(at.timestamp() * 1000),
                         [(k.replace("_", "-"), v.encode()) for k, v in headers.items()])


def row(kind: str, flow: str, *, person: str = "p-a", sender: str = "zvh", recipient: str = "",
        recipient_role: str = "", at: datetime = NOW, mid: str = "m1") -> AuditRow:
    return AuditRow(position=0, chain="router", seq=0, event_id=mid + kind + recipient,
                    recorded=at, kind=kind, action="E", outcome="0", reason="x", flow=flow,
                    sender=sender, recipient=recipient or None,
                    recipient_role=recipient_role or None, pseudonym=person, message_id=mid)


def test_rates_count_the_last_minute_and_the_last_quarter() -> None:
    t = TopicTracker()
    for seconds in (5, 20, 50):  # within the last minute
        t.add(rec("in.referral", NOW - timedelta(seconds=seconds), kb_event="referral"))
    for minutes in (3, 10):  # within 15 minutes, not the last one
        t.add(rec("in.referral", NOW - timedelta(minutes=minutes), kb_event="referral"))
    t.add(rec("in.referral", NOW - timedelta(hours=2), kb_event="referral"))  # too old for rates
    [fig] = t.figures(NOW, {"in.referral": 6}, {"in.referral": 6})
    assert (fig.partitions, fig.messages, fig.last_minute) == (6, 6, 3)
    assert fig.per_minute_15 == round(5 / 15, 2)
    assert fig.last_at == NOW - timedelta(seconds=5)


def test_flows_per_hour_count_inbound_topics_by_event_only() -> None:
    t = TopicTracker()
    t.add(rec("in.referral", NOW - timedelta(minutes=5), kb_event="referral"))
    t.add(rec("in.claim", NOW - timedelta(minutes=70), kb_event="claim-response"))
    t.add(rec("out.fivoor", NOW, kb_event="referral"))  # a delivery, not a flow in
    flows = {(h.hour, f): n for h, f, n in t.flows_per_hour()}
    assert flows == {(11, "referral"): 1, (10, "claim-response"): 1}


def test_refusals_are_counted_by_reason_and_details_lose_digit_runs() -> None:
    r = RefusalTracker()
    r.add(rec("rejected", NOW, kb_reason="no-consent", kb_sender="zvh-a",
              kb_detail="person 999990019 has no consent"))
    r.add(rec("rejected", NOW, kb_reason="no-consent", kb_sender="zvh-a"))
    r.add(rec("dead-letter", NOW, kb_reason="not-json", kb_source="inbox.json"))
    r.add(rec("in.referral", NOW, kb_reason="ignored"))
    counts = {(f.topic, f.reason): f.count for f in r.figures()}
    assert counts == {("rejected", "no-consent"): 2, ("dead-letter", "not-json"): 1}
    details = " ".join(d.detail for d in r.recent())
    assert "999990019" not in details and "[…]" in details
    assert {d.source for d in r.recent()} >= {"inbox.json"}


def test_scrub_shortens_and_removes_long_numbers() -> None:
    assert scrub("a" * 300, limit=20) == "a" * 19 + "…"
    assert scrub("bsn 123456789 and agb 73730101") == "bsn […] and agb […]"


def test_a_referral_waits_until_its_provider_decides() -> None:
    a = AuditTracker()
    a.add(row("decision-permit", "referral", person="p-a", recipient="fivoor",
              recipient_role="coordinating-provider", at=NOW - timedelta(days=3), mid="r1"))
    a.add(row("decision-permit", "referral", person="p-b", recipient="fivoor",
              recipient_role="coordinating-provider", at=NOW - timedelta(days=1), mid="r2"))
    a.add(row("decision-deny", "referral", person="p-c", recipient="fivoor",
              recipient_role="coordinating-provider", mid="r3"))
    waiting = a.referrals()
    assert waiting.count == 2 and waiting.oldest_since == NOW - timedelta(days=3)
    assert waiting.by_provider == (("fivoor", 2),)
    # another provider's outcome about p-a does not answer fivoor's referral
    a.add(row("decision-permit", "assessment-outcome", person="p-a", sender="transfore",
              recipient="zvh", mid="o0"))
    assert a.referrals().count == 2
    a.add(row("decision-permit", "assessment-outcome", person="p-a", sender="fivoor",
              recipient="zvh", mid="o1"))
    a.add(row("decision-permit", "assessment-outcome", person="p-a", sender="fivoor",
              recipient="municipality", mid="o1"))
    after = a.referrals()
    assert (after.count, after.decided, after.oldest_since) == (1, 1, NOW - timedelta(days=1))


def test_claims_by_state_first_in_first_out_with_the_four_week_rule() -> None:
    a = AuditTracker()
    for i, days in enumerate((40, 10)):
        a.add(row("decision-permit", "claim", person="p-a", sender="fivoor",
                  recipient="zilveren-kruis", at=NOW - timedelta(days=days), mid=f"c{i}"))
    a.add(row("decision-deny", "claim", person="p-b", sender="fivoor", recipient="dji", mid="c9"))
    claims = {c.state: c for c in a.claims(NOW)}
    assert claims["awaiting-answer"].count == 2 and claims["awaiting-answer"].over_four_weeks == 1
    assert claims["refused"].count == 1
    a.add(row("decision-permit", "claim-response", person="p-a", sender="zilveren-kruis",
              recipient="fivoor", mid="a1"))
    claims = {c.state: c for c in a.claims(NOW)}
    assert claims["answered"].count == 1
    assert claims["awaiting-answer"].count == 1
    assert claims["awaiting-answer"].oldest_since == NOW - timedelta(days=10), "oldest answered"
    assert claims["awaiting-answer"].over_four_weeks == 0


def test_a_record_routed_twice_counts_once() -> None:
    a = AuditTracker()
    r = row("decision-permit", "referral", recipient="fivoor",
            recipient_role="coordinating-provider", mid="same")
    a.add(r)
    a.add(replace(r, event_id="another-event", seq=7))  # same message, routed again
    a.add(row("decision-permit", "referral", person="p-z", recipient="fivoor",
              recipient_role="coordinating-provider", mid="other"))
    assert a.referrals().count == 2


def test_escalations_counted_from_the_audit_trail() -> None:
    a = AuditTracker()
    a.add(row("decision-permit", "escalation", recipient="lcp",
              recipient_role="national-coordination", mid="e1"))
    a.add(row("refusal", "escalation", mid="e2"))
    s = a.escalations()
    assert (s.delivered, s.refused, s.last_at) == (1, 1, NOW)


def report(location: str, at: datetime, region: str | None = "limburg",
           **levels: tuple[int, int, int]) -> CapacityReport:
    return CapacityReport(
        report_id=f"r-{location}-{at.minute}", provider="rooyse-wissel", location_id=location,
        region=region, measured_at=at,
        levels=tuple(LevelCapacity(security_level=SecurityLevel(k.removeprefix("l")),
                                   in_service=v[0], occupied=v[1], available=v[2])
                     for k, v in levels.items()),
    )


def test_capacity_board_sums_the_latest_report_per_location() -> None:
    b = CapacityBoard()
    b.apply(report("ward-a", NOW, l3=(10, 8, 2), l4=(4, 4, 0)))
    b.apply(report("ward-b", NOW, l3=(6, 1, 5)))
    b.apply(report("ward-c", NOW, region=None, l2=(3, 0, 3)))
    cells = {(c.region, c.level): (c.in_service, c.occupied, c.available, c.locations)
             for c in b.cells()}
    assert cells == {("limburg", "3"): (16, 9, 7, 2), ("limburg", "4"): (4, 4, 0, 1),
                     ("onbekend", "2"): (3, 0, 3, 1)}
    # a newer report is the whole state of its ward: level 4 is gone there
    assert b.apply(report("ward-a", NOW + timedelta(minutes=5), l3=(10, 10, 0)))
    # an older one arriving late changes nothing
    assert not b.apply(report("ward-a", NOW - timedelta(minutes=5), l3=(10, 0, 10)))
    cells = {(c.region, c.level): c.available for c in b.cells()}
    assert cells == {("limburg", "3"): 5, ("onbekend", "2"): 3}
    history = b.history()
    assert history[-1].available == {"limburg|3": 5, "onbekend|2": 3}
    assert [p.at for p in history] == sorted(p.at for p in history)


def test_capacity_history_runs_forward_when_reports_arrive_out_of_order() -> None:
    b = CapacityBoard()
    b.apply(report("ward-a", NOW + timedelta(seconds=2), l3=(10, 8, 2)))
    b.apply(report("ward-b", NOW + timedelta(seconds=1), l3=(6, 1, 5)))  # older, other ward
    b.apply(report("ward-c", NOW + timedelta(seconds=3), l3=(4, 0, 4)))
    points = [(p.at - NOW).seconds for p in b.history()]
    assert points == [2, 3], "the older report joins the state as of the latest moment"
    assert [p.available["limburg|3"] for p in b.history()] == [7, 11]


def test_escalation_board_keeps_no_person_case_or_text() -> None:
    from schemas.flows.common import Gender, Person

    e = Escalation(
        escalation_id="ESC-1", raised_by="zvh-a", raised_at=NOW, zvh="zvh-a",
        referral_id="CASE-SECRET", reason=EscalationReason.NO_BED,
        security_level=SecurityLevel.LEVEL_3,
        stuck_since=(NOW - timedelta(days=9)).date(), explanation="Jan Voorbeeld wacht al lang",
        person=Person(bsn="999990019", family_name="Voorbeeld", birth_date=NOW.date()
                      - timedelta(days=40 * 365), gender=Gender.MALE),
    )
    board = EscalationBoard()
    board.apply(e)
    board.apply(e)  # the same escalation again replaces it
    [fig] = board.figures()
    assert (fig.reason, fig.zvh, fig.stuck_since) == ("no-bed", "zvh-a", e.stuck_since)
    text = json.dumps(Snapshot(taken_at=NOW, escalations=board.figures()).to_dict())
    for secret in ("CASE-SECRET", "Voorbeeld", "999990019", "ESC-1"):
        assert secret not in text


def test_lag_is_highwater_minus_committed_on_the_groups_topics() -> None:
    lags = LagTracker()
    hw = {("in.referral", 0): 10, ("in.referral", 1): 4, ("out.x", 0): 7}
    committed = {
        "router": {("in.referral", 0): 10, ("in.referral", 1): -1, ("out.x", 0): -1},
        "adapter-x": {("in.referral", 0): -1, ("in.referral", 1): -1, ("out.x", 0): 7},
    }
    groups = {g.group: g for g in lags.update(committed, hw, NOW)}
    assert groups["router"].lag == 4, "an uncommitted partition of its topic lags entirely"
    assert groups["router"].topics == ("in.referral",)
    assert groups["router"].lagging_since == NOW
    assert groups["adapter-x"].lag == 0 and groups["adapter-x"].lagging_since is None
    later = {g.group: g for g in lags.update(committed, hw, NOW + timedelta(minutes=1))}
    assert later["router"].lagging_since == NOW, "behind since it first fell behind"
    committed["router"][("in.referral", 1)] = 4
    caught = {g.group: g for g in lags.update(committed, hw, NOW + timedelta(minutes=2))}
    assert caught["router"].lag == 0 and caught["router"].lagging_since is None


def test_age_text() -> None:
    assert age_text(None, NOW) == "-"
    assert age_text(NOW - timedelta(seconds=45), NOW) == "45 s"
    assert age_text(NOW - timedelta(minutes=12, seconds=3), NOW) == "12 min"
    assert age_text(NOW - timedelta(hours=2, minutes=5), NOW) == "2 h 5 min"
    assert age_text((NOW - timedelta(days=3)).date(), NOW) == "3 d 12 h"
