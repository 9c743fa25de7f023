"""``ketenbus up --scenario national`` for two simulated months, as the README's command runs it
(a subprocess on its own embedded broker): it exits 0 after its summary, and the summary's
figures hang together."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.apps.bench import national as national_bench
from broker.kafka.embedded import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The scenario's own broker, started here so that it outlives the run: the deliveries are
    read afterwards by an independent client (its party names are not the session broker's)."""
    broker = EmbeddedBroker(state_dir=tmp_path_factory.mktemp("national-kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, kafka: EmbeddedBroker
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """The run, made and timed by the bench's national section (one run serves both)."""
    state = tmp_path_factory.mktemp("national")
    measured = national_bench.measure(
        2, seconds_per_month=2, state_dir=state, bootstrap=kafka.bootstrap, timeout=360
    )
    STATE["dir"] = state
    TIMED.append(measured.run)
    proc = subprocess.CompletedProcess(
        national_bench.command(2, 2), 0, measured.output, measured.errors
    )
    return proc, json.loads((Path(state) / "national-summary.json").read_text())


STATE: dict[str, Path] = {}
TIMED: list[national_bench.NationalRun] = []


def test_the_bench_times_the_run_and_scales_it_to_the_year(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """Issue 19 point 9: the national year in the bench. Its split comes from the scenario's
    own summary; two months are scaled to twelve and say so."""
    _, s = run
    (timed,) = TIMED
    assert timed.days == national_bench.simulated_days(2) == s["timing"]["days"]
    assert timed.referrals == s["referrals"] and timed.claims == s["claims_total"]["count"]
    assert timed.start_seconds > 0 and timed.paced_seconds <= timed.run_seconds
    assert timed.start_seconds + timed.run_seconds < timed.wall_seconds
    assert timed.cpu_seconds > 0
    assert timed.scaled and timed.year_seconds > timed.wall_seconds
    assert "2 month(s) in" in timed.figures() and "scaled to 12" in timed.figures()
    assert "the year (scaled to 12 months)" in national_bench.table(timed).row_labels()


def test_it_exits_after_printing_the_summary(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    proc, _ = run
    for title in ("National scenario: cases", "Claims per regime", "Refusals by reason",
                  "Escalations raised by the claims desks and the municipalities",
                  "Escalations by reason and level", "Where to look"):  # fmt: skip
        assert title in proc.stdout, title
    assert "ketenbus monitor" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_cases_add_up(run: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, s = run
    assert s["referrals"] >= 40, "two months at ~375 a year"
    assert s["answered"] == s["referrals"], "every referral has the router's answer"
    assert s["routed"] + s["refused"] == s["referrals"]
    assert s["refused"] >= 1 and sum(s["refusal_reasons"].values()) >= s["refused"]
    assert set(s["refusal_reasons"]) <= {"no-consent", "consent-expired", "consent-revoked"}
    assert 0 < s["included"] + s["not_included"] <= s["routed"]
    assert s["included"] > 0 and 0 <= s["care_avoiders"] <= s["included"]
    assert s["transitions"].get("start", 0) <= s["included"]
    assert s["capacity_reports"] > 0 and s["capacity_delivered"] == 2 * s["capacity_reports"]
    assert s["input_refused"] == 0, "the EPDs' and payers' files are all valid"


def test_conflict_of_duties_is_per_occasion(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """Issue 16: transitions travel on consent or the legal title; a conflict of duties only
    for an occasion (a scale-up to a high security level), never as the episode's basis."""
    proc, s = run
    by_basis = s["delivered_by_basis"]
    assert by_basis.get("referral on consent", 0) > 0
    assert by_basis.get("care-transition on consent", 0) > 0
    assert by_basis.get("care-transition on conflict-of-duties", 0) <= s["transitions"].get(
        "scale-up", 0
    )
    assert s["transitions_not_for_zvh"] >= 0
    assert "Deliveries by flow and basis" in proc.stdout


def test_claims_add_up_and_unpaid_claims_are_escalated(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    _, s = run
    claims = s["claims"]
    assert {"justice", "zvw"} <= set(claims), claims
    assert sum(c["count"] for c in claims.values()) == s["claims_total"]["count"]
    assert sum(c["cents"] for c in claims.values()) == s["claims_total"]["cents"]
    assert sum(s["claim_status"].values()) == s["claims_total"]["count"]
    assert "sent" not in s["claim_status"], "every claim has the router's answer"
    assert 0 < s["paid"]["count"] <= s["claims_total"]["count"]
    assert s["claim_status"].get("paid", 0) == s["paid"]["count"]
    esc = s["escalations"]
    # 2023: the ministries VWS and JenV cover the registration phase (implementation plan
    # 2022, 2.2) at no tariff: every assessed referral is attributed to them and held, and
    # none is a no-payer escalation to the coordination point
    assert "no-payer: registration phase without a rule" not in esc
    assert s["held"].get("ministries: registration (no-price)") == (
        s["included"] + s["not_included"]
    )
    if s["payer_answers"].get("withheld"):
        assert esc.get("payment-overdue (28-day watchdog)", 0) >= 1
    # only claims a payer withholds by plan are overdue: a claim whose answer was merely slow
    # to travel back is not (the clock waits for it, unless it gave up, which it must not here)
    assert s["clock_waits"]["gave_up"] == 0, s["clock_waits"]
    assert esc.get("payment-overdue (28-day watchdog)", 0) <= s["payer_answers"].get("withheld", 0)


def test_escalations_are_counted_by_reason_and_level(
    run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """Issue 15 point 8: the ladder runs in the scenario's time -- the claims desks escalate
    financing nationally, the municipalities and the router's watchdogs escalate stuck cases
    regionally; the regional steps (the coordinating providers' EPDs) resolve some in time, the
    rest move to the national coordination point, which assigns and resolves -- and the summary
    counts them by reason, the level they were resolved at and the simulated days it took, as
    the steps' topics showed it (a resolve answer the router delivered, not the actor's plan)."""
    proc, s = run
    assert "Escalations by reason and level" in proc.stdout
    rows = s["escalations_by_reason_and_level"]
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_reason.setdefault(r["reason"], []).append(r)
    assert len(by_reason) >= 3, rows
    assert "no-payer" in by_reason, "the 2023 registration gaps"
    assert {"no-decision", "no-care-start", "early-end"} & set(by_reason), f"no watchdog: {rows}"
    assert {r["level"] for r in rows} == {"regional", "national"}, rows
    resolved = [r for r in rows if r["resolved"]]
    assert {r["level"] for r in resolved} == {"regional", "national"}, rows
    for r in rows:
        assert 0 <= r["resolved"] <= r["raised"]
        if r["resolved"]:
            assert r["median_days"] is not None and r["median_days"] >= 0
        else:
            assert r["median_days"] is None
    # financing is settled nationally: never resolved at the regional step
    financing = by_reason["no-payer"] + by_reason.get("payment-overdue", [])
    assert all(r["level"] == "national" for r in financing), rows
    # the router's watchdogs close their own escalations when the cause goes away
    watchdogs = [r for r in rows if r["reason"] in ("no-decision", "no-care-start")]
    assert any(r["level"] == "regional" and r["resolved"] for r in watchdogs), rows
    # a regional step (a provider's EPD, through its inbox) resolves a municipality's stuck case
    municipal = [r for r in rows if r["reason"] in ("no-provider", "other")]
    assert any(r["level"] == "regional" and r["resolved"] for r in municipal), rows
    # every escalation the claims desks raised reached the coordination point
    desk = sum(n for k, n in s["escalations"].items() if "municipality" not in k)
    assert s["escalations_delivered"] >= desk
    assert sum(r["raised"] for r in rows) >= sum(s["escalations"].values())
    assert s["referral_notices"] >= s["referrals"] // 2, "most residents' municipality is told"
    assert s["municipality_information"] > 0
    assert s["delivered_by_basis"].get("referral on public-task", 0) >= s["referral_notices"]


# --- issue 16 §4: an independent read of every delivery ---------------------------------------

POLICY_FILE = Path(__file__).parents[2] / "broker" / "policy" / "default-policy.yaml"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _codes(item: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in (item.get("type") or {}).get("coding", [])}


def free_texts(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(category, where) of every free text in a delivered resource, by this test's own reading
    of the flows' FHIR mapping (docs/flows/*.md), not by the minimiser's table."""
    rtype = resource.get("resourceType")
    found = [("clinical", f"{rtype}.note") for _ in resource.get("note") or ()]
    if rtype == "Observation" and "valueString" in resource:  # the referral's police facts
        found.append(("police-data", "Observation.valueString"))
    if rtype == "Encounter":
        found += [("clinical", "Encounter.reasonCode.text") for r in resource.get("reasonCode", [])
                  if "text" in r]  # fmt: skip
    if rtype == "Task":
        for o in resource.get("output", []):
            if "reasons" in _codes(o):
                found.append(("clinical", "Task.output[reasons]"))
            if "advised-alternative" in _codes(o) and "text" in o.get("valueCodeableConcept", {}):
                found.append(("clinical", "Task.output[advised-alternative].text"))
    if rtype == "ServiceRequest":
        found += [("referral-signal", "ServiceRequest.reasonCode.text")
                  for r in resource.get("reasonCode", []) if "text" in r]  # fmt: skip
    return found


def explanation_dates(claim: dict[str, Any]) -> set[str]:
    """Dates in a claim's financing explanation that the claim does not carry anyway."""
    own = {claim.get("created"), *(claim.get("billablePeriod") or {}).values()}
    for item in claim.get("item", []):
        own |= set((item.get("servicedPeriod") or {}).values())
        own.add(item.get("servicedDate"))
    explained = [x for x in claim.get("extension", []) if "financing-explanation" in x["url"]]
    text = json.dumps(explained)
    return set(ISO_DATE.findall(text)) - own


async def read_deliveries(bootstrap: str, state: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(party, role, bundle) of every record on every out.<party> topic, opened with that
    party's own keys from the deployment the run made."""
    from broker.apps.deployment import KEYS_DIR, REGISTRY_FILE, SECRETS_DIR, load
    from tests.helpers.kafka import consume_all

    deployment = load(state / REGISTRY_FILE, state / KEYS_DIR, state / SECRETS_DIR)
    parties = [
        p for p in deployment.registry.parties
        if p.outbound_topic and p.id != deployment.router_id
    ]  # fmt: skip

    async def read(topic: str) -> list[Any]:
        try:
            return await consume_all(bootstrap, topic, timeout=30)
        except LookupError:  # a party that never got anything
            return []

    per_party = await asyncio.gather(*(read(p.outbound_topic) for p in parties))
    out = []
    for party, records in zip(parties, per_party, strict=True):
        client = deployment.party_client(party.id)
        for r in records:
            opened = client.open(r.key, r.value, list(r.headers))
            out.append((party.id, party.role.value, json.loads(opened.payload)))
    return out


def test_no_delivery_carries_free_text_of_a_category_its_role_may_not_receive(
    run: tuple[subprocess.CompletedProcess[str], dict], kafka: EmbeddedBroker
) -> None:
    """Done when (issue 16): what a role may receive is read from the policy file itself."""
    import yaml

    policy = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    deliveries = asyncio.run(read_deliveries(kafka.bootstrap, STATE["dir"]))
    assert len(deliveries) > 100, len(deliveries)
    seen: Counter[tuple[str, str, str]] = Counter()
    delivered: Counter[tuple[str, str]] = Counter()
    for party, role, bundle in deliveries:
        header = bundle["entry"][0]["resource"]
        event = header["eventCoding"]["code"]
        if "response" in header:
            continue  # the router's answers to a sender: its own message back
        may = set(policy["flows"][event]["recipients"][role]["categories"])
        if event == "referral":  # the ZVH processes for its partner, the controller (§2)
            # a municipality's own information to the ZVH: it is the controller, the sender
            controller = (header.get("responsible") or header["sender"])["identifier"]["value"]
            assert controller.startswith("gemeente-"), header
        for e in bundle["entry"][1:]:
            res = e["resource"]
            for category, where in free_texts(res):
                seen[(event, role, category)] += 1
                assert category in may, f"{where} ({category}) reached {party} ({role}): {event}"
            if res["resourceType"] == "Claim":
                assert not explanation_dates(res), (party, res["extension"])
        delivered[(event, role)] += 1
    # the run exercised what is kept from whom: police facts to the ZVH's assessor, clinical
    # reasons to the executing side, and the ZVH and municipalities got assessments without them
    assert seen[("referral", "coordinating-provider", "police-data")] > 0, seen
    assert delivered[("assessment-outcome", "zvh")] > 0, delivered
    assert delivered[("care-transition", "zvh")] + delivered[("care-transition", "dji")] > 0


def test_the_audit_topic_names_no_legal_title_in_clear(
    run: tuple[subprocess.CompletedProcess[str], dict], kafka: EmbeddedBroker
) -> None:
    """The audit records are JSON in clear by design: a permit's description says flow, party,
    purpose and basis; the citation (wfz next to a pseudonym reveals a criminal-law title) is in
    the sealed detail only."""
    from schemas.vocab.citations import CITATIONS
    from tests.helpers.kafka import consume_all

    records = asyncio.run(consume_all(kafka.bootstrap, "audit", timeout=30))
    ids = {c.id for c in CITATIONS}
    to_dji = 0
    for r in records:
        event = json.loads(r.value)["event"]
        if event.get("outcomeDesc") != "permitted":
            continue
        for entity in event.get("entity", []):
            words = set(re.findall(r"[a-z0-9:.-]+", entity.get("description", "").lower()))
            assert not words & ids, entity.get("description")
            to_dji += " dji " in f" {entity.get('description', '')} "
    assert to_dji > 0, "the run disclosed claims to DJI"
