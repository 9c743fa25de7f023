"""Complete audit records over the embedded broker (issue 14 point 3): a refused inbox file and
a refused HTTP post appear in the trail on the ZVH adapter's own chain, named only by the
input's SHA-256; a conflict-of-duties referral's decision carries its detail sealed for the
compliance role (the web app's party), which opens it; every chain written here verifies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.apps.deployment import LocalParty
from broker.apps.scenarios import demo
from broker.apps.scenarios.stack import LocalStack
from broker.apps.synthetic import synthetic_bsn
from broker.apps.web.compliance import ComplianceService
from broker.audit import (
    AuditKind,
    AuditQuery,
    AuditRecord,
    ChainRecord,
    ChainWriter,
    decode_rows,
    open_sealed,
    verify,
)
from broker.audit.signers import signers_from_registry
from broker.kafka import make_producer
from schemas import topics
from schemas.vocab import PartyRole
from tests.helpers.kafka import consume_all
from tests.helpers.stack import running_stack

pytestmark = pytest.mark.integration

ZVH, WEB = "zvh-midden-nederland", "dashboard"
JUSTIFICATION = "Acuut gevaar voor derden; geen toestemming mogelijk."
PROFESSIONAL = "procesregisseur ZVH Midden-Nederland"


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    web = LocalParty(WEB, "Landelijk dashboard", PartyRole.CAPACITY_DASHBOARD)
    state = tmp_path_factory.mktemp("state")
    async with running_stack(kafka_bootstrap, state, [*demo.PARTIES, web]) as s:
        yield s


def chain_of(stack: LocalStack, party: str) -> str:
    """The audit chain the registry declares for ``party``."""
    decl = stack.deployment.registry.audit_chain_of(party)
    assert decl is not None
    return decl.chain


async def audit_of(stack: LocalStack, chain: str, n: int) -> list[bytes]:
    """The records of ``chain`` once it holds at least ``n`` of them."""
    for _ in range(100):
        records = await consume_all(stack.settings.bootstrap_servers or "", topics.AUDIT.name)
        mine = [r.value for r in records if r.key == chain.encode()]
        if len(mine) >= n:
            return mine
        await asyncio.sleep(0.1)
    raise AssertionError(f"chain {chain} has fewer than {n} records")


async def wait_for(path: Any) -> None:
    for _ in range(200):
        if path.exists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not appear")


def keys_of(stack: LocalStack) -> dict[str, Any]:
    """The chains the registry declares, with who may sign each (signer binding)."""
    return signers_from_registry(stack.deployment.registry)


async def test_a_refused_inbox_file_and_http_post_are_in_the_adapters_chain(
    stack: LocalStack,
) -> None:
    rng = random.Random()
    name = f"kapot-{rng.randrange(10**9)}.json"
    raw = b'{"type": "referral", "case_id": "MN-X", "person": {"bsn": "123456789"}}'
    demo.drop(stack.inbox(ZVH), name, raw)
    await wait_for(stack.inbox(ZVH) / "failed" / f"{name}.error.json")
    posted = b"{not json " + str(rng.random()).encode()
    assert stack.http_url
    async with httpx.AsyncClient(
        base_url=stack.http_url, timeout=10, headers=stack.http_headers
    ) as c:
        r = await c.post("/referrals", content=posted)
    assert r.status_code == 400
    values = await audit_of(stack, chain_of(stack, ZVH), 2)
    assert verify(values, keys_of(stack)).ok
    events = [ChainRecord.decode(v).event for v in values]
    by_digest = {
        e["entity"][0]["what"]["identifier"]["value"]: e
        for e in events
        if e["type"]["code"] == "refusal"
    }
    file_event = by_digest[hashlib.sha256(raw).hexdigest()]
    post_event = by_digest[hashlib.sha256(posted).hexdigest()]
    assert file_event["outcome"] == "8" and file_event["outcomeDesc"]
    assert post_event["outcomeDesc"] == "not-json"
    assert file_event["agent"][0]["who"]["identifier"]["value"] == ZVH
    assert file_event["source"]["observer"]["identifier"]["value"] == chain_of(stack, ZVH)
    text = b"\n".join(values)
    assert name.encode() not in text and b"123456789" not in text and b"MN-X" not in text
    assert b"not json" not in text


async def test_the_adapters_chain_resumes_where_it_stood(stack: LocalStack) -> None:
    """A second writer of the same chain (an adapter after a restart) continues it: no fork."""
    chain = chain_of(stack, ZVH)
    before = await audit_of(stack, chain, 1)
    writer = ChainWriter(stack.settings, stack.deployment.party_client(ZVH).keys, chain)
    producer = make_producer(stack.settings)
    await producer.start()
    try:

        async def send(topic: str, key: bytes, value: bytes) -> None:
            await producer.send_and_wait(topic, value=value, key=key)

        record = AuditRecord(
            kind=AuditKind.REFUSAL, recorded=datetime.now(UTC), source=ZVH, reason="test",
            actor=ZVH, actor_role=PartyRole.ZVH, input_digest="0" * 64,
        )
        await writer.write([record], send)
    finally:
        await producer.stop()
    after = await audit_of(stack, chain, len(before) + 1)
    assert ChainRecord.decode(after[-1]).seq == len(before)
    assert verify(after, keys_of(stack)).ok


async def test_conflict_of_duties_detail_is_sealed_and_opened_by_the_compliance_search(
    stack: LocalStack,
) -> None:
    rng = random.Random()
    p = {"bsn": synthetic_bsn(rng), "family_name": "Test", "birth_date": "1980-01-01",
         "municipality": "0344"}
    case = f"MN-COD-{rng.randrange(10**9)}"
    doc = demo.referral(case, "midden-nederland", p, date.today(), basis={
        "kind": "conflict-of-duties", "justification": JUSTIFICATION,
        "decided_by": PROFESSIONAL})
    name = f"{case}.json"
    demo.drop(stack.inbox(ZVH), name, demo.dump(doc))
    receipt = stack.inbox(ZVH) / "processed" / f"{name}.receipt.json"
    await wait_for(receipt)
    mid = json.loads(receipt.read_text())["accepted"][0]["message_id"]
    assert (await stack.zvh[ZVH].wait_response(mid, 20) or {}).get("status") == "accepted"
    assert stack.router is not None
    chain = stack.router.audit.chain_id
    for _ in range(100):
        values = await audit_of(stack, chain, 1)
        if any(mid.encode() in v and b"decision-permit" in v for v in values):
            break
        await asyncio.sleep(0.1)
    assert verify(values, keys_of(stack)).ok
    text = b"\n".join(values)
    assert JUSTIFICATION.encode() not in text and PROFESSIONAL.encode() not in text
    # the web app's compliance search, as the compliance officer runs it
    web = stack.deployment.party_client(WEB)
    service = ComplianceService(stack.settings, stack.deployment.registry, web.keys, None,
                                datakeys=stack.deployment.reader_key_store(stack.settings))
    await service.start()
    try:
        result = await service.search(AuditQuery(kinds=frozenset({"decision-permit"})),
                                      officer="fg-officer")
    finally:
        await service.stop()
    [row] = [r for r in result.rows if r.message_id == mid]
    assert (row.justification, row.professional, row.sealed_state) == (
        JUSTIFICATION, PROFESSIONAL, "opened")
    assert row.controls == "TFFT" and row.legal_basis == "conflict-of-duties"
    rows, _ = decode_rows([v for v in values if mid.encode() in v])
    assert all(r.justification is None for r in rows)  # not without the key
    provider = stack.deployment.party_client("fivoor").keys
    assert all(r.justification is None
               for r in open_sealed(rows, {provider.key_id: provider.encryption}))


async def test_the_http_intake_admits_its_own_party_only_and_audits_each_refusal(
    stack: LocalStack,
) -> None:
    """Issue 21 point 4, hostile: no header, a malformed one, a wrong token, the token of
    another valid ZVH posting as this one, a municipality's token on a flow it may not send,
    and the replayed token of a party revoked, then removed, in the registry file while the
    intake runs: each 401/403 with its reason, nothing sent, each on the ZVH's audit chain by
    the credential's digest (never the credential)."""
    from broker.trust import (
        PartyRegistry,
        dump_registry,
        generate_party_keys,
        load_registry,
        registry_entry,
    )
    from broker.trust.intake_token import new_token, token_digest

    assert stack.http_url and stack.http_party == ZVH
    other = stack.deployment.intake_token("zvh-ijsselland")
    doc = demo.consent(f"c-auth-{random.randrange(10**9)}", synthetic_bsn(random.Random()),
                       date.today())
    registry_file = stack.settings.state_dir / "registry.yaml"
    original = registry_file.read_bytes()
    zvh = stack.zvh[ZVH]
    refused_before = zvh.refused

    async def post(header: str | bytes | None) -> httpx.Response:
        headers: dict[str, str | bytes] = {} if header is None else {"Authorization": header}
        async with httpx.AsyncClient(base_url=stack.http_url or "", timeout=10) as c:
            return await c.post("/consents", json=doc, headers=headers)

    def refused(r: httpx.Response, status: int, reason: str) -> None:
        assert r.status_code == status, r.text
        body = r.json()
        assert body["status"] == "refused" and body["reason"] == reason, body
        assert body["operationOutcome"]["resourceType"] == "OperationOutcome"
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")

    wrong = new_token()
    refused(await post(None), 401, "no-credentials")
    bad: str | bytes
    for bad in ("Basic " + other, "Bearer", "Bearer " + other + "x", "Bearer  a b c",
                "Bearer " + "A" * 5000, ("Bearer " + other[:-1]).encode() + b"\xe9"):
        refused(await post(bad), 401, "malformed-credentials")
    refused(await post("Bearer " + wrong), 401, "unknown-credentials")
    refused(await post("Bearer " + other), 403, "not-this-party")
    # the registry changes under the running intake: a municipality gets a token, the other
    # ZVH is revoked (its keys end now), then removed
    municipal, now = new_token(), datetime.now(UTC)
    gemeente = registry_entry(generate_party_keys("gemeente-auth"), role=PartyRole.MUNICIPALITY,
                              name="Gemeente Auth")
    reg = load_registry(registry_file)
    revoked = reg.get("zvh-ijsselland")
    revoked = revoked.model_copy(update={"keys": [
        k.model_copy(update={"valid_until": max(now, k.valid_from + timedelta(microseconds=1))})
        for k in revoked.keys
    ]})
    try:
        reg = reg.with_party(gemeente.model_copy(
            update={"intake_tokens": [token_digest(municipal)]})).with_party(revoked)
        dump_registry(reg, registry_file)
        refused(await post("Bearer " + municipal), 403, "flow-not-allowed")
        await asyncio.sleep(0.01)
        refused(await post("Bearer " + other), 401, "credentials-revoked")
        gone = PartyRegistry([p for p in reg if p.id != "zvh-ijsselland"], [
            d for d in reg.audit_chains.values() if d.writer != "zvh-ijsselland"])
        dump_registry(gone, registry_file)
        refused(await post("Bearer " + other), 401, "unknown-credentials")
        ok = await post(f"Bearer {stack.http_token}")
        assert ok.status_code == 202, ok.text
    finally:
        registry_file.write_bytes(original)
    assert zvh.refused - refused_before == 12, "each refusal is counted"
    # every refusal is on the adapter's chain, by the digest of what was shown
    values = await audit_of(stack, chain_of(stack, ZVH), 1)
    events = [ChainRecord.decode(v).event for v in values]
    seen = [
        (e["entity"][0]["what"]["identifier"]["value"], e["outcomeDesc"])
        for e in events
        if e["type"]["code"] == "refusal"
    ]
    assert (hashlib.sha256(b"").hexdigest(), "no-credentials") in seen
    assert (token_digest(wrong), "unknown-credentials") in seen
    assert (token_digest(municipal), "flow-not-allowed") in seen
    for reason in ("not-this-party", "credentials-revoked", "unknown-credentials"):
        assert (token_digest(other), reason) in seen, reason
    malformed = {d for d, r in seen if r == "malformed-credentials"}
    # nothing of a malformed header is kept, unless it holds a well-formed token ("Basic <t>")
    assert malformed == {hashlib.sha256(b"").hexdigest(), token_digest(other)}, malformed
    text = b"\n".join(values)
    for secret in (other, wrong, municipal, stack.http_token or "-"):
        assert secret.encode() not in text, "a token is never in the audit trail"


async def test_the_http_intake_takes_a_client_certificate_of_its_own_party(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Mutual TLS on the intake (adapters/zvh/tls.py), served beside the stack's plain one for
    the same adapter: the ZVH's own certificate lets it in, another valid party's certificate
    from the same CA is refused (403) and audited by the name it carries, a certificate of
    another CA fails the handshake, and the token still works over HTTPS. CA and certificates
    are made at run time."""
    import ssl

    import uvicorn

    from adapters.zvh.http import create_app
    from adapters.zvh.tls import server_config
    from tests.helpers.tls import issue_client_cert, make_tls_files

    tls = make_tls_files(tmp_path / "tls")
    foreign = make_tls_files(tmp_path / "foreign", ca_name="not the intake's CA")
    settings = stack.settings.model_copy(update={
        "zvh_http_tls_certfile": tls.server_cert, "zvh_http_tls_keyfile": tls.server_key,
        "zvh_http_tls_client_ca": tls.ca_cert})
    app = create_app(stack.zvh[ZVH], stack.intake_auth(ZVH))
    server = uvicorn.Server(server_config(app, settings, "127.0.0.1", 0, log_level="warning",
                                          lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    url = f"https://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    def context(cert: tuple[Path, Path] | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=tls.ca_cert)
        if cert is not None:
            ctx.load_cert_chain(*cert)
        return ctx

    async def post(cert: tuple[Path, Path] | None, headers: dict[str, str]) -> httpx.Response:
        doc = demo.consent(f"c-mtls-{random.randrange(10**9)}",
                           synthetic_bsn(random.Random()), date.today())
        async with httpx.AsyncClient(base_url=url, verify=context(cert), timeout=10) as c:
            return await c.post("/consents", json=doc, headers=headers)

    try:
        own = issue_client_cert(tls, tmp_path / "certs", ZVH)
        other = issue_client_cert(tls, tmp_path / "certs", "zvh-ijsselland")
        stranger = issue_client_cert(foreign, tmp_path / "foreign-certs", ZVH)
        assert (await post(own, {})).status_code == 202
        r = await post(other, {})
        assert r.status_code == 403 and r.json()["reason"] == "not-this-party", r.text
        # another party's certificate with this party's token: the certificate decides
        r = await post(other, stack.http_headers)
        assert r.status_code == 403 and r.json()["reason"] == "not-this-party", r.text
        with pytest.raises(httpx.HTTPError):
            await post(stranger, {})
        assert (await post(None, stack.http_headers)).status_code == 202
        r = await post(None, {})
        assert r.status_code == 401 and r.json()["reason"] == "no-credentials"
        # the conformance kit's HTTP cases over mutual TLS, the certificate its credential
        from broker.apps.conformance.cases import shipped_suites
        from broker.apps.conformance.runner import Runner, Target

        cases = [c for c in shipped_suites()["zvh"].cases if c.channels == ["http"]]
        kit = Runner(Target(url=url, ca=tls.ca_cert, client_cert=own, settings=settings))
        results = await kit.run(cases)
        assert results and all(r.passed for r in results), [r.as_dict() for r in results]
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
    values = await audit_of(stack, chain_of(stack, ZVH), 1)
    seen = {
        (e["entity"][0]["what"]["identifier"]["value"], e["outcomeDesc"])
        for e in (ChainRecord.decode(v).event for v in values)
        if e["type"]["code"] == "refusal"
    }
    assert (hashlib.sha256(b"certificate:zvh-ijsselland").hexdigest(), "not-this-party") in seen
