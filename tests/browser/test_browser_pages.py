"""The web app in a real browser against a running ``ketenbus up --scenario demo``: each page
loads with live data, the filters work, an operations user is refused the compliance page, a
compliance officer searches by BSN, exports CSV and verifies the chain; screenshots are saved.

The demo itself supplies consents, referrals (accepted and refused), a malformed file, capacity
reports, an escalation and claims. The tests add a known person (so the compliance officer has
a BSN to type) and a capacity report for a new region (to watch the dashboard change live).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import io
import json
import re
import time
from collections.abc import Coroutine
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.apps import deployment
from broker.apps.monitoring.sample import SampleTraffic, Ward, person
from broker.apps.scenarios import demo
from broker.apps.web import i18n
from broker.config import Settings
from schemas import topics
from schemas.vocab import SecurityLevel
from tests.browser.conftest import ARTIFACTS, Running
from tests.helpers.kafka import consume_all

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]

PSEUDONYM = re.compile(r"p-[a-z2-7]{26}")
LANGS = pytest.mark.parametrize("lang", i18n.LANGUAGES)  # issue 17: Dutch and English
DUTCH_TIME = re.compile(r"^\d\d-\d\d-20\d\d \d\d:\d\d:\d\d$")


def T(lang: str, key: str, **values: Any) -> str:
    """The page's text in ``lang``, from the one catalogue the pages use."""
    return i18n.text(lang, key, **values)


def M(lang: str, group: str, code: str) -> str:
    """The meaning of a code in ``lang``."""
    return i18n.meaning(lang, group, code)


def speak(page: Any, running: Running, lang: str) -> None:
    """Choose the language as the switch does (its cookie), before the first page."""
    page.context.add_cookies([{"name": i18n.COOKIE, "value": lang, "url": running.url}])


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to its end from a sync test (in a thread: Playwright owns this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, running: Running, user: str, target: str = "/dashboard") -> None:
    page.goto(running.url + target)
    assert "/login" in page.url, "pages need a sign-in"
    page.fill("#username", user)
    page.fill("#password", running.credentials[user])
    page.click("#sign-in")
    page.wait_for_url(f"**{target}*")
    assert user in page.inner_text("#who")


def intake_headers(running: Running, zvh: str = "zvh-midden-nederland") -> dict[str, str]:
    """The ZVH's bearer token, from the file ``ketenbus up`` made for it (its output says so)."""
    token = (running.state / deployment.SECRETS_DIR / f"{zvh}.intake-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def answered(running: Running, request_id: str, zvh: str = "zvh-midden-nederland") -> None:
    """Wait until the router's answer to ``request_id`` is in the ZVH's outbox."""
    outbox = running.state / "data" / zvh / "outbox"
    for _ in range(300):
        for f in outbox.glob("*.json"):
            if json.loads(f.read_text()).get("in_reply_to") == request_id:
                return
        time.sleep(0.1)
    raise AssertionError(f"no answer to {request_id} in {outbox}")


@pytest.fixture(scope="module")
def people(running: Running, rng: Any) -> dict[str, str]:
    """Person X (consent, referral delivered) and Y (referral refused), through the ZVH's
    HTTP endpoint; waits until X's referral reached the provider."""
    today = date.today()
    x, y = person(rng, today), person(rng, today)
    zvh = str(running.info["zvh_http_url"])

    def doc(case: str, who: Any) -> dict[str, Any]:
        return demo.referral(case, "midden-nederland", {
            "bsn": who.bsn, "family_name": who.family_name,
            "given_names": list(who.given_names), "birth_date": who.birth_date.isoformat(),
            "gender": who.gender.value, "municipality": "0344"}, today)

    with httpx.Client(base_url=zvh, timeout=20, headers=intake_headers(running)) as http:
        consent = http.post("/consents", json=demo.consent("c-browser-x", x.bsn, today))
        assert consent.status_code == 202
        answered(running, consent.json()["message_id"])  # before the referral relying on it
        mid = http.post("/referrals", json=doc("BROWSER-X", x)).json()["message_id"]
        refused = http.post("/referrals", json=doc("BROWSER-Y", y))
        assert refused.status_code == 202
    delivered = running.state / "data" / "fivoor" / "outbox" / f"{mid}.json"
    for _ in range(300):
        if delivered.exists():
            break
        time.sleep(0.1)
    assert delivered.exists(), "the referral with consent never reached the provider"
    return {"x": x.bsn, "y": y.bsn, "mid_x": mid, "mid_y": refused.json()["message_id"]}


@LANGS
def test_sign_in_is_required_and_a_wrong_password_refused(
    page: Any, running: Running, lang: str
) -> None:
    speak(page, running, lang)
    page.goto(running.url + "/operations")
    assert "/login" in page.url
    assert page.get_attribute("html", "lang") == lang
    page.fill("#username", "operations")
    page.fill("#password", "not the password")
    page.click("#sign-in")
    assert T(lang, "login.failed") in page.inner_text("#login-error")
    shot(page, f"login-refused-{lang}")


def test_dashboard_shows_beds_updates_live_and_filters_by_region(
    page: Any, running: Running
) -> None:
    login(page, running, "operations")
    page.wait_for_selector('#live-state[data-state="live"]')
    page.wait_for_selector('tr[data-region="midden-nederland"]')
    assert page.locator('tr[data-region="oost-nederland"]').count() == 1
    # attached, not "visible": a level whose free beds did not change is a flat line, whose
    # bounding box has no height, and Playwright counts that as invisible
    page.wait_for_selector("#chart polyline", state="attached")
    assert page.locator("#chart polyline").count() == 3, "one line per security level"
    # a provider reports a ward in a region not seen before: the page changes by itself
    dep = deployment.load(running.state / deployment.REGISTRY_FILE,
                          running.state / deployment.KEYS_DIR,
                          running.state / deployment.SECRETS_DIR)
    settings = Settings(bootstrap_servers=str(running.info["bootstrap"]), state_dir=running.state)
    ward = Ward("fivoor", "browser-ward", "limburg", ((SecurityLevel.LEVEL_3, 9),))

    async def report() -> None:
        traffic = SampleTraffic(settings, dep)
        await traffic.start()
        try:
            await traffic.capacity(ward, {SecurityLevel.LEVEL_3: 2})
        finally:
            await traffic.stop()

    url_before = page.url
    run(report())
    row = page.wait_for_selector('tr[data-region="limburg"]', timeout=30_000)
    assert page.url == url_before, "no reload: the server pushed it"
    cells = row.inner_text()
    assert "7" in cells and "/ 9" in cells, cells
    page.select_option("#region", "limburg")
    assert page.locator("#capacity-body tr").count() == 1
    assert page.inner_text("#chart-scope") == "limburg"
    assert "region=limburg" in page.url
    page.select_option("#region", "")
    assert page.locator("#capacity-body tr").count() >= 3
    assert DUTCH_TIME.match(page.inner_text("#updated")), "Dutch time, Dutch format"
    assert 'href="/compliance"' not in page.content(), "operations has no compliance link"
    shot(page, "dashboard")


def test_operations_shows_refusals_stuck_cases_and_filters(
    page: Any, running: Running, people: dict[str, str]
) -> None:
    lang = "en"  # the dashboard's test runs in Dutch, this one in English
    speak(page, running, lang)
    login(page, running, "operations", "/operations")
    refusals = page.inner_text("#refusals")
    assert "no-consent" in refusals and "consent-revoked" in refusals
    assert M(lang, "reason", "no-consent") in refusals, "the code with its meaning"
    assert "missing" in page.inner_text("#dead-letters"), "the demo's malformed file"
    stuck = page.inner_text("#stuck")
    assert "escalation: no bed" in stuck and "referral(s) waiting" in stuck
    header = page.inner_text("#flows thead")
    assert "referral" in header and "capacity report" in header
    first = page.inner_text("#figures-at")
    page.wait_for_function(
        "t => document.getElementById('figures-at').textContent !== t", arg=first,
        timeout=45_000)  # the figures refresh without a reload
    page.select_option("#flow", "capacity-report")
    page.click("#apply-filters")
    page.wait_for_url("**flow=capacity-report*")
    header = page.inner_text("#flows thead")
    assert "capacity report" in header and "referral" not in header
    page.select_option("#hours", "1")
    page.click("#apply-filters")
    page.wait_for_url("**hours=1*")
    html = page.content()
    assert people["x"] not in html and people["y"] not in html
    assert not PSEUDONYM.search(html), "no person-level data for operations"
    shot(page, "operations")


def test_the_escalation_page_shows_state_and_age_and_answers_through_the_router(
    page: Any, running: Running
) -> None:
    """The demo's stuck case at the national coordination point: its level, state and age;
    an acknowledgement sent from the page shows once the router accepted it."""
    login(page, running, "operations", "/escalations")
    row = page.locator('#escalations tr[data-escalation]').first
    row.wait_for()
    assert "no-bed" in row.inner_text() and row.get_attribute("data-state") == "open"
    assert M("nl", "esc-reason", "no-bed") in row.inner_text(), "Dutch by default"
    assert row.locator(".level").inner_text() == M("nl", "level", "national")
    assert row.locator(".age").inner_text() not in ("", "-")
    row.locator('select[name="action"]').select_option("acknowledge")
    row.locator('button[type="submit"]').click()
    page.wait_for_url("**/escalations?sent=acknowledge")
    for _ in range(100):
        if page.locator('#escalations tr[data-state="acknowledged"]').count():
            break
        time.sleep(0.2)
        page.reload()
    assert page.locator('#escalations tr[data-state="acknowledged"]').count() == 1
    shot(page, "escalations")


@LANGS
def test_an_operations_user_is_refused_the_compliance_page(
    page: Any, running: Running, lang: str
) -> None:
    speak(page, running, lang)
    login(page, running, "operations")
    assert page.locator('nav a[href="/compliance"]').count() == 0
    response = page.goto(running.url + "/compliance")
    assert response is not None and response.status == 403
    refused = page.inner_text("#refused")
    assert T(lang, "refused.title") in refused
    assert T(lang, "role.compliance") in refused, "who may, in the user's language"
    assert page.locator("#search-form").count() == 0
    shot(page, f"compliance-refused-{lang}")


def test_compliance_officer_searches_by_person_filters_exports_and_verifies(
    page: Any, running: Running, people: dict[str, str]
) -> None:
    login(page, running, "compliance", "/compliance")
    page.fill("#bsn", people["x"])
    page.click("#search")
    page.wait_for_selector("#result-count")
    kinds = page.locator("#results tbody tr td.decision code").all_inner_texts()
    assert "decision-permit" in kinds and "consent-change" in kinds, kinds
    assert page.locator("#trail-verified").count() == 1 and page.locator("#tampered").count() == 0
    verified = set(page.locator("#results td.verified").all_inner_texts())
    assert verified == {T("nl", "compliance.yes")}
    delivery = page.locator("#results tbody tr.kind-decision-permit").first
    assert "c-browser-x" in delivery.locator("td.consent").inner_text()
    assert delivery.locator("td.basis").get_attribute("data-basis") == "consent"
    assert delivery.locator("td.basis").inner_text().startswith(M("nl", "basis", "consent"))
    assert DUTCH_TIME.match(delivery.locator("td").first.inner_text()), "Dutch time"
    assert people["x"] not in page.content(), "the BSN is not sent back"
    shot(page, "compliance")
    # narrow down: the person's deliveries only (the person filter is kept as pseudonyms)
    page.select_option("#kind", "decision-permit")
    page.click("#search")
    page.wait_for_selector("#result-count")
    kinds = page.locator("#results tbody tr td.decision code").all_inner_texts()
    assert kinds and set(kinds) == {"decision-permit"}, kinds
    shot(page, "compliance-filtered")
    # nothing about this person was denied
    page.select_option("#kind", "")
    page.select_option("#outcome", "minor-failure")
    page.click("#search")
    page.wait_for_selector("#result-count")
    assert T("nl", "compliance.no_match") in page.inner_text("#results")
    # the same filters as a CSV download
    page.select_option("#outcome", "")
    page.select_option("#kind", "decision-permit")
    with page.expect_download() as download:
        page.click("#export")
    target = ARTIFACTS / "audit-export.csv"
    download.value.save_as(str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows and {r["kind"] for r in rows} == {"decision-permit"}
    assert any(r["consent_id"] == "c-browser-x" for r in rows)
    assert people["x"] not in target.read_text(encoding="utf-8")
    page.click("#verify")
    result = page.inner_text("#verify-result")
    assert "Intact" in result and "capacity-dashboard" in result and "router" in result


def test_the_typed_bsn_is_in_no_log_and_no_audit_record(
    running: Running, people: dict[str, str]
) -> None:
    records = run(consume_all(str(running.info["bootstrap"]), topics.AUDIT.name))
    searches = [r for r in records if b'"compliance-search"' in r.value]
    assert searches, "the searches themselves are in the audit trail"
    for r in records:
        assert people["x"].encode() not in r.value and people["y"].encode() not in r.value
    output = running.cli.text()
    assert people["x"] not in output and people["y"] not in output


@LANGS
def test_trace_page_shows_the_same_hops_as_the_cli(
    page: Any, running: Running, people: dict[str, str], lang: str
) -> None:
    """Issue 17: the web trace page shows every hop in order, the same as ``ketenbus trace``
    (in either language: the hops' codes are the same, their words the user's); the trace is
    audited with the person who asked."""
    from tests.helpers.cli import Cli

    mid = people["mid_y"]  # refused for lack of consent: received, denied, parked
    speak(page, running, lang)
    login(page, running, "operations", "/trace")
    page.fill("#message-id", mid)
    page.click("#trace-submit")
    for _ in range(60):  # the refusal may still be on its way to the topics
        if page.locator('#trace-hops tr.hop[data-what="parked on rejected"]').count():
            break
        time.sleep(0.25)
        page.goto(f"{running.url}/trace?id={mid}")
    hops = page.locator("#trace-hops tr.hop")
    web = [(hops.nth(i).get_attribute("data-what") or "",
            hops.nth(i).get_attribute("data-party") or "",
            hops.nth(i).get_attribute("data-reason") or "") for i in range(hops.count())]
    whats = [w for w, _, _ in web]
    assert whats.index("received") < whats.index("denied") < whats.index("parked on rejected")
    assert ("denied", "fivoor", "no-consent") in web
    denied = page.locator('#trace-hops tr.hop[data-what="denied"]').first
    assert denied.locator(".what").inner_text() == M(lang, "hop", "denied")
    assert M(lang, "reason", "no-consent") in denied.locator(".reason").inner_text()
    shot(page, f"trace-{lang}")
    # an unknown id, and one that is no id: a clear answer
    page.goto(running.url + "/trace?id=no-such-message")
    assert T(lang, "trace.none", id="no-such-message") in page.inner_text("#trace-none")
    page.goto(running.url + "/trace?id=%3Cscript%3E")
    assert page.get_attribute("#trace-error", "data-code") == "trace.bad_id"
    assert T(lang, "trace.bad_id") in page.inner_text("#trace-error")
    if lang != i18n.DEFAULT:  # the CLI and the audit record once: they have no language
        return
    cli = Cli("trace", mid, "--user", "operations", env={"KETENBUS_STATE_DIR": str(running.state),
                                 "KETENBUS_BOOTSTRAP_SERVERS": str(running.info["bootstrap"])})
    assert cli.proc.wait(60) == 0, cli.text()
    # the same hops, apart from the records of who traced it (the CLI audits its own trace)
    lines = [ln for ln in cli.text().splitlines()
             if re.match(r"^\s*[0-9]+\. ", ln) and " searched " not in ln]
    web = [hop for hop in web if hop[0] != "searched"]
    assert len(lines) == len(web), (lines, web)
    for line, (what, party, reason) in zip(lines, web, strict=True):
        assert f" {what}{' ' + party if party else ''}" in line, (line, what, party)
        assert not reason or f"[{reason}]" in line, (line, reason)
    # the trace was audited with the operator, not only the organisation (NEN 7513)
    records = run(consume_all(str(running.info["bootstrap"]), topics.AUDIT.name))
    traced = [json.loads(r.value) for r in records
              if b'"traced"' in r.value and mid.encode() in r.value]
    assert traced and "operations" in json.dumps(traced[-1])


def test_a_compliance_officer_of_one_organisation_sees_only_its_trail(
    page: Any, running: Running, people: dict[str, str]
) -> None:
    """Issue 17: the officer of the ZVH Midden-Nederland sees none of the ZVH IJsselland's
    records and cannot trace its messages; users added while the web app runs can sign in."""
    import secrets

    from broker.apps.web.auth import USERS_FILE, Role, UserStore

    store = UserStore(running.state / USERS_FILE)
    for name, org in (("officer.a", "zvh-midden-nederland"), ("officer.b", "zvh-ijsselland")):
        running.credentials[name] = secrets.token_urlsafe(16)
        store.set(name, Role.COMPLIANCE, running.credentials[name], organisation=org)
    seen: dict[str, set[str]] = {}
    for name, mine, theirs in (("officer.a", "zvh-midden-nederland", "zvh-ijsselland"),
                               ("officer.b", "zvh-ijsselland", "zvh-midden-nederland")):
        page.context.clear_cookies()
        login(page, running, name, "/compliance")
        assert f"{name} ({T('nl', 'role.compliance')}, {mine})" in page.inner_text("#who")
        page.click("#search")
        page.wait_for_selector("#result-count")
        rows = page.locator("#results tbody tr")
        parties = {rows.nth(i).locator("td").nth(3).inner_text().split(" ")[0]
                   for i in range(rows.count())}
        recipients = {rows.nth(i).locator("td").nth(4).inner_text().split(" ")[0]
                      for i in range(rows.count())}
        seen[name] = parties | recipients
        assert theirs not in page.inner_text("#results"), f"{name} sees {theirs}'s records"
        shot(page, f"compliance-scoped-{name}")
    assert "zvh-midden-nederland" in seen["officer.a"]
    assert "zvh-ijsselland" in seen["officer.b"], "B has records: A's not seeing them means it"
    # B's officer tracing A's message sees nothing of it
    page.goto(f"{running.url}/trace?id={people['mid_y']}")
    assert page.locator("#trace-none").count() == 1, "B's officer sees nothing of A's message"


def test_operations_reprocesses_a_refused_message_from_the_trace_page(
    page: Any, running: Running, people: dict[str, str]
) -> None:
    """Issue 17: once Y's consent is recorded, an operations user re-processes Y's refused
    referral from the web: the dry run says it would now be delivered, sending delivers it."""
    today = date.today()
    mid = people["mid_y"]
    with httpx.Client(
        base_url=str(running.info["zvh_http_url"]), timeout=20, headers=intake_headers(running)
    ) as http:
        r = http.post("/consents", json=demo.consent("c-browser-y", people["y"], today))
        assert r.status_code == 202
        answered(running, r.json()["message_id"])
    lang = "en"
    speak(page, running, lang)
    login(page, running, "operations", f"/trace?id={mid}")
    page.click("#reprocess-plan-button")
    page.wait_for_selector("#reprocess-plan")
    assert T(lang, "reprocess.would_deliver", who="fivoor") in page.inner_text("#reprocess-plan")
    shot(page, "reprocess-plan")
    page.click("#reprocess-send")
    page.wait_for_selector("#reprocess-sent")
    assert page.get_attribute("#reprocess-sent", "data-sent") == "1"
    assert T(lang, "reprocess.sent", sent=1, n=1) in page.inner_text("#reprocess-sent")
    delivered = running.state / "data" / "fivoor" / "outbox" / f"{mid}.json"
    for _ in range(300):
        if delivered.exists():
            break
        time.sleep(0.1)
    assert delivered.exists(), "the re-processed referral never reached the provider"
    # a compliance officer may not re-process
    page.context.clear_cookies()
    login(page, running, "compliance", f"/trace?id={mid}")
    assert page.locator("#reprocess-plan-button").count() == 0


def test_the_pages_speak_dutch_by_default_and_english_after_the_switch(
    page: Any, running: Running
) -> None:
    """Issue 17: a Dutch user's browser gets Dutch, with codes in words and times in Dutch time
    (no preference at all gets Dutch too: tests/unit/web/test_web_i18n.py); the switch in the
    header turns every next page English, and back."""
    login(page, running, "operations", "/operations")
    assert page.get_attribute("html", "lang") == "nl"
    assert page.inner_text("h1") == T("nl", "operations.title")
    assert "geen toestemming" in page.inner_text("#refusals")
    assert DUTCH_TIME.match(page.inner_text("#figures-at"))
    shot(page, "operations-nl")
    page.click("#lang-en")
    page.wait_for_url("**lang=en*")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == T("en", "operations.title")
    assert "no consent" in page.inner_text("#refusals")
    page.goto(running.url + "/escalations")  # no parameter: the switch is remembered
    assert page.inner_text("h1") == T("en", "escalations.title")
    page.click("#lang-nl")
    page.wait_for_url("**lang=nl*")
    assert page.inner_text("h1") == T("nl", "escalations.title")
