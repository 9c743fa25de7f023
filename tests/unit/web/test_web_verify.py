"""The web app's "Verify the audit chains" on hostile trails: the real ComplianceService and
verifier, with the trail handed in where Kafka would be read (tests/helpers/audit_trails.py
holds the cases; the Python API and the CLI run the same table in tests/unit/audit)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from broker.apps.web.app import create_app
from broker.apps.web.auth import Role, SessionStore, UserStore
from broker.apps.web.backend import WebBackend
from broker.apps.web.compliance import ComplianceService
from broker.config import Settings
from broker.trust import generate_party_keys
from schemas import topics
from tests.helpers.audit_trails import CASES, Case
from tests.unit.web.test_web_app import PASSWORD, FakeCollector


async def page(tmp_path: Path, case: Case) -> str:
    registry = case.registry()

    async def read(settings: Settings, topic: str) -> list[bytes]:
        """What the two topics hold: the audit records, and the published checkpoints."""
        return list({topics.AUDIT.name: case.records,
                     topics.AUDIT_CHECKPOINT.name: case.checkpoints}[topic])

    service = ComplianceService(Settings(), registry, generate_party_keys("capacity-dashboard"),
                                None, read=read)
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
    users = UserStore(tmp_path / "users.json", hasher=fast)
    users.set("cora", Role.COMPLIANCE, PASSWORD)
    backend = WebBackend(Settings(), registry, FakeCollector(), service,  # type: ignore[arg-type]
                         "capacity-dashboard")
    transport = httpx.ASGITransport(app=create_app(backend, users, SessionStore()))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers={"Accept-Language": "en"},  # English texts below
                                 follow_redirects=True) as client:
        r = await client.post("/login", data={"username": "cora", "password": PASSWORD})
        assert r.status_code == 200, r.text
        m = re.search(r'name="csrf" value="([^"]+)"', (await client.get("/compliance")).text)
        assert m
        r = await client.post("/compliance/verify", data={"csrf": m.group(1)})
        assert r.status_code == 200
        return r.text


@pytest.mark.parametrize("name", sorted(CASES))
async def test_each_hostile_trail_on_the_compliance_page(tmp_path: Path, name: str) -> None:
    case = CASES[name]()
    text = await page(tmp_path, case)
    found = sorted((int(m[1]), m[2]) for m in
                   re.finditer(r"<li>position (\d+)\b[^:<]*: ([a-z-]+): ", text))
    assert found == case.expected, text[text.find('id="verify-result"'):][:2000]
    assert ("NOT intact" in text) is bool(case.expected)
