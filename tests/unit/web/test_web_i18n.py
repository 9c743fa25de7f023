"""The web app in its users' language (issue 17): every text in Dutch and English from one
catalogue, no template text outside it, every code the pages show with its meaning, Dutch by
default with an English switch, and times in Dutch time (Europe/Amsterdam)."""

from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from broker.apps.web import app as web_app
from broker.apps.web import i18n
from broker.apps.web.auth import Role
from broker.audit import AuditKind
from broker.policy.decision import ReasonCode
from broker.router.ladder import EscalationStatus
from broker.trust.errors import Reason
from schemas.vocab import (
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    EventCode,
    LegalBasis,
    PartyRole,
    PurposeOfUse,
)
from tests.unit.web.test_web_app import Web

ROOT = Path(web_app.__file__).parent
TEMPLATES = sorted((ROOT / "templates").glob("*.html"))
CODE = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
TAG = re.compile(r"<[^>]*>", re.S)
SHOWN_ATTRS = re.compile(r"""\b(?:placeholder|aria-label|title|alt)=["']([^"']*)["']""")
ALLOWED = {"ketenbus"}  # the product's name is not translated


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_key_exists_in_both_languages_with_the_same_placeholders() -> None:
    assert set(i18n.NL) == set(i18n.EN)
    for key in i18n.NL:
        assert i18n.NL[key].strip() and i18n.EN[key].strip(), key
        assert _fields(i18n.NL[key]) == _fields(i18n.EN[key]), key
    for key, (nl, en) in i18n.CODES.items():
        assert nl.strip() and en.strip(), key


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_template_text_goes_through_the_catalogue(path: Path) -> None:
    """After taking out the template code ({{ }}, {% %}) nothing readable is left: no text
    between tags, and none in the attributes a person sees."""
    source = path.read_text(encoding="utf-8")
    bare = CODE.sub("", source)
    for shown in SHOWN_ATTRS.findall(bare):
        assert not re.search(r"[A-Za-z]", shown), f"{path.name}: attribute text {shown!r}"
    text = re.sub(r"&[a-z]+;", "", TAG.sub(" ", bare))
    words = set(re.findall(r"[A-Za-zÀ-ÿ]+", text)) - ALLOWED
    assert not words, f"{path.name}: text outside the catalogue: {sorted(words)}"


def test_every_key_the_code_names_is_in_the_catalogue() -> None:
    sources = [p.read_text(encoding="utf-8") for p in [*TEMPLATES, *ROOT.glob("*.py")]]
    used = {k for s in sources for k in re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_]+)["']""", s)}
    used |= {k for s in sources for k in re.findall(r"""["']((?:refused|compliance|trace|"""
                                                    r"""reprocess|escalations|stuck|dashboard|"""
                                                    r"""operations)\.(?!html\b)[a-z_]+)["']""", s)}
    assert used, "the scan found the keys"
    missing = sorted(k for k in used if k not in i18n.NL)
    assert not missing, missing
    groups = {g for s in sources for g in re.findall(r"""meaning\(\s*["']([a-z-]+)["']""", s)}
    known = {k.split(".", 1)[0] for k in i18n.CODES}
    assert groups <= known, groups - known


@pytest.mark.parametrize(("group", "codes"), [
    ("reason", [*ReasonCode, *Reason]),
    ("flow", list(EventCode)),
    ("kind", list(AuditKind)),
    ("purpose", list(PurposeOfUse)),
    ("basis", list(LegalBasis)),
    ("esc-reason", list(EscalationReason)),
    ("level", list(EscalationLevel)),
    ("action", list(EscalationAction)),
    ("state", list(EscalationStatus)),
    ("outcome", list(web_app.OUTCOMES)),
    ("party", list(PartyRole)),
])
def test_every_code_the_pages_show_has_a_meaning_in_both_languages(
    group: str, codes: list[str]
) -> None:
    for code in codes:
        assert f"{group}.{code}" in i18n.CODES, f"{group}.{code}"
        nl, en = i18n.meaning("nl", group, code), i18n.meaning("en", group, code)
        assert nl and en and (nl != str(code) or group in ("state", "party")), code
    assert i18n.meaning("nl", "reason", "no-consent") == "geen toestemming"
    assert i18n.meaning("en", "reason", "no-consent") == "no consent"
    assert i18n.meaning("nl", "purpose", "COC") == "coördinatie van zorg"
    assert i18n.meaning("nl", "reason", "never-heard-of") == "never-heard-of", "the code, not ''"


def test_every_role_has_a_name_in_both_languages() -> None:
    for role in Role:
        assert i18n.text("nl", f"role.{role.value}") and i18n.text("en", f"role.{role.value}")
    assert i18n.text("nl", "role.compliance") == "functionaris gegevensbescherming"


@pytest.mark.parametrize(("query", "cookie", "accept", "expected"), [
    (None, None, None, "nl"),  # Dutch by default
    (None, None, "en-GB,en;q=0.9", "en"),
    (None, None, "de-DE,en;q=0.5,nl;q=0.8", "nl"),  # the weights count
    (None, None, "fr, de", "nl"),
    (None, "en", "nl", "en"),  # the switch beats the browser
    ("nl", "en", "en", "nl"),  # and the query beats the cookie
    ("xx", None, None, "nl"),  # not a language of ours
    (None, "<script>", None, "nl"),
    (None, None, "en;q=abc," * 5000, "nl"),  # hostile header: no crash, no English by accident
])
def test_the_language_is_chosen_from_query_cookie_and_accept_language(
    query: str | None, cookie: str | None, accept: str | None, expected: str
) -> None:
    assert i18n.choose(query, cookie, accept) == expected


def test_times_are_dutch_time_in_dutch_format() -> None:
    summer = datetime(2026, 7, 1, 12, 0, 5, tzinfo=UTC)  # CEST, UTC+2
    winter = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # CET, UTC+1
    assert i18n.when("nl", summer) == "01-07-2026 14:00:05"
    assert i18n.when("nl", winter, seconds=False) == "07-12-2026 02:30"
    assert i18n.when("en", winter) == "7 Dec 2026 02:30:00"
    assert i18n.when("nl", "2026-12-31T23:30:00+00:00") == "01-01-2027 00:30:00"
    assert i18n.when("nl", date(2026, 11, 1)) == "01-11-2026"
    assert i18n.age("nl", "3 d 4 h") == "3 d 4 u"


async def test_pages_are_dutch_by_default_and_english_on_request(web: Web) -> None:
    dutch = {"accept-language": ""}
    login = await web.client.get("/login", headers=dutch)
    assert '<html lang="nl">' in login.text and "Gebruikersnaam" in login.text
    assert "User name" not in login.text
    english = await web.client.get("/login", headers={"accept-language": "en-GB,en"})
    assert '<html lang="en">' in english.text and "User name" in english.text
    await web.login("olga")
    page = (await web.client.get("/operations", headers=dutch)).text
    assert "Weigeringen per reden" in page
    # a code with its meaning: never the bare code, and never a bare "0 granted"
    assert 'geen toestemming<code class="code">no-consent</code>' in page
    assert "geen bed" in page and "aanmelding(en) wachten op een inclusiebesluit" in page
    assert "01-11-2026" in page, "the escalation's date in Dutch format"
    # the switch: ?lang=en is kept in a cookie for the next pages, whatever the browser says
    switched = await web.client.get("/operations?lang=en", headers=dutch)
    assert "Refusals by reason" in switched.text and i18n.COOKIE in switched.cookies
    again = await web.client.get("/dashboard", headers={"accept-language": "nl"})
    assert "Available secure beds" in again.text
    back = await web.client.get("/dashboard?lang=nl&region=limburg")
    assert "Beschikbare beveiligde bedden" in back.text
    # the switch keeps the page and its filters; after a form, it leads to the form's page
    assert 'href="/dashboard?region=limburg&amp;lang=en"' in back.text
    csrf = await web.csrf("/dashboard")
    answer = await web.client.post("/compliance/search", data={"csrf": csrf})
    assert answer.status_code == 403 and 'href="/compliance?lang=en"' in answer.text
    refused = await web.client.get("/compliance", headers=dutch)
    assert refused.status_code == 403
    assert "deze pagina is alleen voor functionaris gegevensbescherming en auditor" in (
        refused.text)
