"""Issue 17, "Done when" 4 (API side): a compliance officer of organisation A cannot see B's
records, however they fill in the search form or the export; a deployment-wide officer sees
both; every search is logged with the person (NEN 7513 7.3: the user is the person who acted,
not only the organisation). The scope is set by the server from the user, never from the form."""

from __future__ import annotations

import csv
import io
import logging
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.apps.web.auth import Role, UserStore
from broker.audit import AuditChain, AuditKind, AuditRecord, TrailTrust, build_audit_event
from schemas.vocab import LegalBasis, PartyRole, PurposeOfUse
from tests.unit.web.test_web_app import NOW, PASSWORD, Web, declared, web  # noqa: F401

A, B = "zvh-a", "zvh-b"


def two_organisations(router: Ed25519PrivateKey) -> list[bytes]:
    """Three referrals from A and three from B, each permitted and delivered to a provider."""
    chain = AuditChain("router", router, "router-2026a")
    out = []
    for i, sender in enumerate([A, B] * 3):
        out.append(chain.append(build_audit_event(AuditRecord(
            kind=AuditKind.DECISION_PERMIT, event_id=f"e{i}", recorded=NOW, source="router",
            reason="permitted", actor=sender, actor_role=PartyRole.ZVH,
            recipient=f"provider-of-{sender}", recipient_role=PartyRole.COORDINATING_PROVIDER,
            purpose=PurposeOfUse.COC, legal_basis=LegalBasis.CONSENT,
            pseudonym="p-" + "a" * 26, message_id=f"msg-{sender}-{i}"))))
    return out


@pytest.fixture
def scoped(web: Web) -> Web:  # noqa: F811
    router = Ed25519PrivateKey.generate()
    web.compliance.trail = two_organisations(router)
    web.compliance.trust = TrailTrust(declared({"router": ("router-2026a", router)}))
    users: UserStore = web.users
    users.set("anna", Role.COMPLIANCE, PASSWORD, organisation=A)
    users.set("bob", Role.COMPLIANCE, PASSWORD, organisation=B,
              responsible_for=frozenset({"provider-of-zvh-b"}))
    users.set("aud", Role.AUDITOR, PASSWORD, organisation=A)
    users.set("coco", Role.COORDINATION, PASSWORD, organisation="lcp")
    return web


POSITION = {"0": "msg-zvh-a-0", "1": "msg-zvh-b-1", "2": "msg-zvh-a-2", "3": "msg-zvh-b-3",
            "4": "msg-zvh-a-4", "5": "msg-zvh-b-5"}  # the trail's order: A, B, A, B, A, B


def message_ids(html: str) -> set[str]:
    """The messages of the rows shown (each row carries its trail position)."""
    return {POSITION[p] for p in re.findall(r'<tr class="kind-[^"]*" data-position="(\d+)"', html)}


async def test_an_officer_of_a_sees_only_a(scoped: Web, caplog: pytest.LogCaptureFixture) -> None:
    client = await scoped.login("anna")
    with caplog.at_level(logging.INFO, logger="broker.apps.web.app"):
        page = await client.post("/compliance/search", data={"csrf": await scoped.csrf()})
    assert page.status_code == 200
    assert message_ids(page.text) == {"msg-zvh-a-0", "msg-zvh-a-2", "msg-zvh-a-4"}
    # hostile form: asking for B by sender or recipient, or posting a scope of one's own
    for form in ({"sender": B}, {"party": "provider-of-zvh-b"}, {"organisations": B},
                 {"sender": B, "organisation": B}):
        r = await client.post("/compliance/search", data={"csrf": await scoped.csrf(), **form})
        assert r.status_code == 200 and not message_ids(r.text) & {
            "msg-zvh-b-1", "msg-zvh-b-3", "msg-zvh-b-5"}, form
    export = await client.post("/compliance/export.csv", data={"csrf": await scoped.csrf()})
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert rows and {r["sender"] for r in rows} == {A}
    # the query each search was audited with names the scope and the person
    assert all(c["officer"] == "anna" for c in scoped.compliance.calls)
    assert all(c["query"].organisations == frozenset({A}) for c in scoped.compliance.calls)
    assert any("by anna (compliance, zvh-a)" in m for m in caplog.messages)


async def test_an_officer_responsible_for_more_sees_those_too(scoped: Web) -> None:
    client = await scoped.login("bob")
    page = await client.post("/compliance/search", data={"csrf": await scoped.csrf()})
    assert message_ids(page.text) == {"msg-zvh-b-1", "msg-zvh-b-3", "msg-zvh-b-5"}
    assert scoped.compliance.calls[-1]["query"].organisations == frozenset(
        {B, "provider-of-zvh-b"})


async def test_a_deployment_officer_sees_every_organisation(scoped: Web) -> None:
    client = await scoped.login("cora")  # no organisation: the deployment's own officer
    page = await client.post("/compliance/search", data={"csrf": await scoped.csrf()})
    assert len(message_ids(page.text)) == 6


async def test_roles_an_auditor_searches_a_coordinator_does_not(scoped: Web) -> None:
    client = await scoped.login("aud")
    page = await client.post("/compliance/search", data={"csrf": await scoped.csrf()})
    assert message_ids(page.text) == {"msg-zvh-a-0", "msg-zvh-a-2", "msg-zvh-a-4"}
    await client.post("/logout", data={"csrf": await scoped.csrf("/dashboard")})
    client = await scoped.login("coco")
    assert (await client.get("/compliance")).status_code == 403
    assert (await client.get("/trace?id=msg-zvh-a-0")).status_code == 403
    assert (await client.get("/dashboard")).status_code == 200


def test_users_keep_their_organisation_across_a_restart(scoped: Web) -> None:
    again = UserStore(scoped.users.path)
    user = again.authenticate("bob", PASSWORD)
    assert user is not None and user.organisation == B
    assert user.scope == frozenset({B, "provider-of-zvh-b"})
    with pytest.raises(ValueError, match="organisation"):
        again.set("eve", Role.COMPLIANCE, PASSWORD, organisation="B/../../etc")


async def test_only_operations_and_administrators_may_reprocess(scoped: Web) -> None:
    for name in ("cora", "coco"):  # a compliance officer, the coordination point
        client = await scoped.login(name)
        r = await client.post("/reprocess", data={"csrf": await scoped.csrf("/dashboard"),
                                                  "id": "msg-zvh-a-0"})
        assert r.status_code == 403, name
        await client.post("/logout", data={"csrf": await scoped.csrf("/dashboard")})
    client = await scoped.login("olga")
    csrf = await scoped.csrf("/dashboard")
    assert (await client.post("/reprocess", data={"csrf": "forged", "id": "m-1"})).status_code \
        == 403
    bad = await client.post("/reprocess", data={"csrf": csrf, "id": "<script>"})
    assert bad.status_code == 422 and "<script>" not in bad.text
    # this test backend has no deployment keys: a clear answer, nothing sent
    r = await client.post("/reprocess", data={"csrf": csrf, "id": "msg-zvh-a-0"})
    assert r.status_code == 503 and "not available here" in r.text
