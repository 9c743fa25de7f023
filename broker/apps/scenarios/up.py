"""``ketenbus up``: broker (embedded unless configured), router and adapters, until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from broker.apps.deployment import create_local, router_instance_ids
from broker.apps.monitoring.parties import with_monitoring_parties
from broker.apps.scenarios import demo
from broker.apps.scenarios.console import FlowConsole
from broker.apps.scenarios.stack import HttpPortInUse, LocalStack, StackOptions
from broker.apps.web.local import LocalViews
from broker.config import Settings
from broker.kafka import kafka_connection, port_is_free
from broker.policy import default_policy
from broker.trust.intake_token import token_file


@dataclass
class DemoOutcome:
    case_id: str
    expected_delivered: bool
    status: str  # accepted | refused | no answer
    reasons: str
    why: str

    @property
    def as_expected(self) -> bool:
        return (self.status == "accepted") == self.expected_delivered


def _post(url: str, doc: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    req = urllib.request.Request(  # noqa: S310 - loopback URL built by us
        url,
        data=json.dumps(doc).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as err:
        return dict(json.loads(err.read()))


async def _receipt(stack: LocalStack, zvh: str, name: str, timeout: float = 20.0) -> dict[str, Any]:
    path = stack.inbox(zvh) / "processed" / f"{name}.receipt.json"
    failed = stack.inbox(zvh) / "failed" / f"{name}.error.json"
    for _ in range(int(timeout / 0.1)):
        if path.exists():
            return dict(json.loads(path.read_text()))
        if failed.exists():
            return dict(json.loads(failed.read_text()))
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no receipt for {name}")


async def _submit(stack: LocalStack, zvh: str, doc: dict[str, Any], via_http: bool) -> str:
    """Submit a document through HTTP or the inbox folder; returns its message id."""
    if via_http and stack.http_url and stack.http_party == zvh:
        path = "/referrals" if doc["type"] == "referral" else "/consents"
        answer = await asyncio.to_thread(_post, stack.http_url + path, doc, stack.http_headers)
        return str(answer["message_id"])
    name = (
        f"{doc['type']}-{doc.get('case_id') or doc.get('consent_id')}-{doc.get('status', '')}.json"
    )
    demo.drop(stack.inbox(zvh), name, demo.dump(doc))
    receipt = await _receipt(stack, zvh, name)
    return str(receipt["accepted"][0]["message_id"])


async def run_demo(
    stack: LocalStack, out: FlowConsole, seed: int | None = None
) -> list[DemoOutcome]:
    p = demo.plan(seed)
    for zvh, doc in p.consents:
        mid = await _submit(stack, zvh, doc, via_http=True)
        await stack.zvh[zvh].wait_response(mid, 20)
    for zvh, doc in p.revocations:
        mid = await _submit(stack, zvh, doc, via_http=False)
        await stack.zvh[zvh].wait_response(mid, 20)
    for zvh, name, content in p.malformed:
        demo.drop(stack.inbox(zvh), name, content)
    sent: list[tuple[str, str, dict[str, Any]]] = []
    for i, (zvh, doc) in enumerate(p.referrals):
        sent.append((zvh, await _submit(stack, zvh, doc, via_http=(i == 0)), doc))
    outcomes = []
    for (zvh, mid, doc), exp in zip(sent, p.expect, strict=True):
        answer = await stack.zvh[zvh].wait_response(mid, 30)
        status = answer["status"] if answer else "no answer"
        reasons = ", ".join(r["code"] for r in answer["reasons"]) if answer else ""
        outcomes.append(DemoOutcome(doc["case_id"], exp.delivered, status, reasons, exp.why))
    return outcomes


def outcome_table(outcomes: list[DemoOutcome]) -> Table:
    t = Table(title="Demo referrals")
    for col in ("case", "scenario", "expected", "router answer", "reasons", ""):
        t.add_column(col)
    for o in outcomes:
        t.add_row(
            o.case_id,
            o.why,
            "delivered" if o.expected_delivered else "refused",
            o.status,
            o.reasons or "-",
            "[green]as expected[/]" if o.as_expected else "[bold red]UNEXPECTED[/]",
        )
    return t


async def up(
    settings: Settings,
    *,
    scenario: str | None,
    http_port: int | None,
    exit_when_done: bool = False,
    console: FlowConsole | None = None,
    web_port: int | None = None,
    metrics_port: int | None = None,
) -> int:
    out = console or FlowConsole()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state_dir = Path(settings.state_dir)
    where = "configured" if settings.bootstrap_servers else "embedded"
    async with kafka_connection(settings) as bootstrap:
        settings = settings.with_bootstrap(bootstrap)
        out.note(f"Kafka at [bold]{bootstrap}[/] ({where})")
        deployment = create_local(
            state_dir,
            with_monitoring_parties([*demo.PARTIES, demo.MUNICIPALITY]),
            router_instances=router_instance_ids(settings.routers),
        )
        for option, port in (("--web-port", web_port), ("--metrics-port", metrics_port)):
            if port and not port_is_free(port):  # before anything else starts
                out.note(f"[bold red]cannot start:[/] port {port} on 127.0.0.1 is in use: "
                         f"choose another with {option} (0: any free)")
                return 2
        stack = LocalStack(
            settings,
            deployment,
            default_policy(),
            StackOptions(
                data_dir=state_dir / "data",
                http_port=http_port,
                on_fact=out.fact,
                on_event=out.adapter,
            ),
        )
        try:
            await stack.start()
        except HttpPortInUse as e:
            out.note(f"[bold red]cannot start:[/] {e}")
            await stack.stop()
            return 2
        out.note(f"router and adapters running; data folders under [bold]{state_dir / 'data'}[/]")
        if stack.http_url:
            out.note(f"ZVH HTTP endpoint: [bold]{stack.http_url}/referrals[/] and /consents")
            if stack.http_party and stack.http_token:
                token = token_file(deployment.secrets_dir, stack.http_party)
                out.note(
                    f"  it takes {stack.http_party}'s bearer token, made for this machine: "
                    f"curl -H \"Authorization: Bearer $(cat {token})\" "
                    f"-H 'content-type: application/json' -d @referral.json "
                    f"{stack.http_url}/referrals"
                )
        views = LocalViews(settings, deployment, state_dir, out)
        code = 0
        try:
            await views.start(bootstrap, stack.http_url, web_port, metrics_port)
            if scenario == "demo":
                outcomes = await run_demo(stack, out)
                out.console.print(outcome_table(outcomes))
                code = 0 if all(o.as_expected for o in outcomes) else 1
                await views.sample(follow=not exit_when_done)
            if not exit_when_done:
                out.note("running — press Ctrl-C to stop")
                await stop.wait()
        finally:
            out.note("stopping…")
            await views.stop()
            await stack.stop()
    out.note("stopped cleanly")
    return code
