"""Run conformance cases against a counterpart's adapter as an integrator sees it: files
dropped in its inbox folder (written, then renamed), posts to its HTTP endpoint, and what the
adapter writes (the receipt or error report beside the file, the HTTP answer, the router's
response in its outbox). Nothing here reaches into the adapter's process: the kit checks the
contract of docs/adapters/*.md from the outside."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from broker.apps.conformance.cases import Case, Channel, Rendered, render
from broker.config import Settings


@dataclass(frozen=True)
class Target:
    """Where the adapter under test listens and writes. A channel without its place is not
    run; without ``outbox`` the router's part of a case is not checked (reported so)."""

    inbox: Path | None = None
    outbox: Path | None = None
    url: str | None = None
    token: str | None = None
    region: str = "midden-nederland"
    zvh: str = "zvh-midden-nederland"  # the ZVH whose cases a provider's documents name
    ca: Path | None = None  # the CA of an HTTPS endpoint (default: the system's)
    client_cert: tuple[Path, Path] | None = None  # (certificate, key) for mutual TLS
    settings: Settings = field(default_factory=Settings)
    timeout: float = 30.0


@dataclass
class CaseResult:
    case: str
    channel: Channel
    passed: bool
    problems: list[str]
    got: dict[str, Any]
    seconds: float
    about: str
    doc: str
    router_checked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "channel": self.channel,
            "result": "pass" if self.passed else "fail",
            "problems": self.problems,
            "got": self.got,
            "seconds": round(self.seconds, 3),
            "about": self.about,
            "doc": self.doc,
            "router_checked": self.router_checked,
        }


@dataclass
class Outcome:
    """What the adapter answered, in one shape for both channels."""

    status: str  # accepted | refused | partial | no-answer
    reasons: set[str] = field(default_factory=set)
    paths: list[str] = field(default_factory=list)
    message_id: str | None = None
    http: int | None = None


def _issues(doc: dict[str, Any]) -> tuple[set[str], list[str]]:
    reasons = {str(doc["reason"])} if doc.get("reason") else set()
    paths = [str(i.get("path", "")) for i in doc.get("issues", []) if isinstance(i, dict)]
    return reasons, paths


def _from_report(report: dict[str, Any]) -> Outcome:
    """A receipt (``accepted``/``refused`` lists) or a whole-file error report."""
    if "accepted" not in report:
        reasons, paths = _issues(report)
        return Outcome("refused", reasons, paths)
    accepted = [a for a in report.get("accepted", []) if isinstance(a, dict)]
    refused = [r for r in report.get("refused", []) if isinstance(r, dict)]
    out = Outcome("accepted" if accepted and not refused else "refused" if refused and not
                  accepted else "partial" if accepted else "no-answer")
    for item in refused:
        reasons, paths = _issues(item)
        out.reasons |= reasons
        out.paths += paths
    if accepted:
        out.message_id = str(accepted[0].get("message_id"))
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # not there yet, or still being written
    return data if isinstance(data, dict) else None


def _fhir_response(bundle: dict[str, Any]) -> dict[str, Any] | None:
    """A provider's outbox holds FHIR messages: the router's response read as the ZVH's flat
    one (``MessageHeader.response`` and its OperationOutcome)."""
    from schemas.errors import MessageError
    from schemas.flows.response import response_from_message
    from schemas.messaging import parse_message
    from schemas.vocab import EventCode

    try:
        msg = parse_message(json.dumps(bundle), full=False)
        if msg.meta.event is not EventCode.RESPONSE:
            return None
        resp = response_from_message(msg)
    except MessageError:
        return None
    return {
        "type": "response",
        "in_reply_to": resp.request_id,
        "status": "accepted" if resp.code.value == "ok" else "refused",
        "reasons": [{"code": i.reason or i.code} for i in resp.issues],
    }


class Runner:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._responses: dict[str, dict[str, Any]] = {}  # in_reply_to -> response
        self._seen: set[str] = set()

    async def run(self, cases: list[Case], *, parallel: int = 8) -> list[CaseResult]:
        """Every case through each of its channels the target has; in case order."""
        gate = asyncio.Semaphore(parallel)
        jobs = [(c, ch) for c in cases for ch in c.channels if self._has(ch)]

        async def one(case: Case, channel: Channel) -> CaseResult:
            async with gate:
                return await self.run_case(case, channel)

        return list(await asyncio.gather(*(one(c, ch) for c, ch in jobs)))

    def _has(self, channel: Channel) -> bool:
        return (self.target.inbox if channel == "inbox" else self.target.url) is not None

    async def run_case(self, case: Case, channel: Channel) -> CaseResult:
        started = time.monotonic()
        rendered = render(case, self.target.settings, self.target.region, self.target.zvh)
        if channel == "inbox":
            outcome = await self._via_inbox(rendered)
        else:
            outcome = await self._via_http(case, rendered)
        problems = self.judge(case, channel, outcome)
        got: dict[str, Any] = {"adapter": outcome.status, "reasons": sorted(outcome.reasons)}
        if channel == "http":
            got["http"] = outcome.http
        checked = False
        exp = case.expect
        if exp.router is not None and outcome.message_id and self.target.outbox is not None:
            checked = True
            response = await self._response(outcome.message_id)
            if response is None:
                problems.append(f"no router response in the outbox within {self.target.timeout}s")
                got["router"] = "no-answer"
            else:
                codes = sorted(str(r.get("code")) for r in response.get("reasons", []))
                got.update(router=response.get("status"), router_reasons=codes)
                if response.get("status") != exp.router:
                    problems.append(f"router {response.get('status')} ({', '.join(codes) or '-'}),"
                                    f" expected {exp.router}")
                elif exp.router_reason and exp.router_reason not in codes:
                    problems.append(f"router reasons {codes}, expected {exp.router_reason}")
        got["run"] = rendered.fields["run"]
        return CaseResult(case.id, channel, not problems, problems, got,
                          time.monotonic() - started, case.about, case.doc, checked)

    @staticmethod
    def judge(case: Case, channel: Channel, got: Outcome) -> list[str]:
        exp = case.expect
        problems: list[str] = []
        if got.status != exp.adapter:
            why = f" ({', '.join(sorted(got.reasons))})" if got.reasons else ""
            problems.append(f"adapter {got.status}{why}, expected {exp.adapter}")
        if exp.reason and exp.reason not in got.reasons:
            problems.append(f"reason {sorted(got.reasons) or '-'}, expected {exp.reason}")
        if exp.path and not any(p == exp.path or p.endswith(exp.path) or
                                p.startswith(exp.path + ".") for p in got.paths):
            problems.append(f"no issue names {exp.path} (issues: {got.paths or '-'})")
        if channel == "http" and got.http != exp.http_status:
            problems.append(f"HTTP {got.http}, expected {exp.http_status}")
        return problems

    async def _via_inbox(self, rendered: Rendered) -> Outcome:
        inbox = self.target.inbox
        assert inbox is not None
        inbox.mkdir(parents=True, exist_ok=True)
        tmp = inbox / f".{rendered.name}.tmp"
        tmp.write_bytes(rendered.body)
        os.replace(tmp, inbox / rendered.name)  # complete when it appears (docs/adapters/zvh.md)
        receipt = inbox / "processed" / f"{rendered.name}.receipt.json"
        error = inbox / "failed" / f"{rendered.name}.error.json"
        deadline = time.monotonic() + self.target.timeout
        while time.monotonic() < deadline:
            for report in (receipt, error):
                doc = _read_json(report)
                if doc is not None:
                    return _from_report(doc)
            await asyncio.sleep(0.1)
        return Outcome("no-answer")

    async def _via_http(self, case: Case, rendered: Rendered) -> Outcome:
        url, token = self.target.url, self.target.token
        assert url is not None and case.http_endpoint is not None
        headers = {"content-type": "application/json"}
        if case.auth == "token" and token:
            headers["authorization"] = f"Bearer {token}"
        elif case.auth == "unknown":
            from broker.trust.intake_token import new_token

            headers["authorization"] = f"Bearer {new_token()}"
        elif case.auth == "malformed":
            headers["authorization"] = f"Basic {token or 'x'}"
        verify: ssl.SSLContext | bool = True
        if self.target.ca is not None or self.target.client_cert is not None:
            verify = ssl.create_default_context(cafile=self.target.ca)
            if self.target.client_cert is not None and case.auth == "token":
                verify.load_cert_chain(*self.target.client_cert)
        async with httpx.AsyncClient(
            base_url=url, timeout=self.target.timeout, verify=verify
        ) as http:
            try:
                r = await http.post(case.http_endpoint, content=rendered.body, headers=headers)
            except httpx.HTTPError as err:
                return Outcome("no-answer", {type(err).__name__})
        try:
            body = r.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if r.status_code == 202:
            return Outcome("accepted", message_id=str(body.get("message_id")), http=202)
        reasons, paths = _issues(body)
        return Outcome("refused", reasons, paths, http=r.status_code)

    async def _response(self, message_id: str) -> dict[str, Any] | None:
        """The router's response to ``message_id`` in the outbox (``type: response``)."""
        outbox = self.target.outbox
        assert outbox is not None
        deadline = time.monotonic() + self.target.timeout
        while time.monotonic() < deadline:
            if message_id in self._responses:
                return self._responses[message_id]
            for path in outbox.glob("*.json"):
                if path.name in self._seen or path.name.endswith(".status.json"):
                    continue
                doc = _read_json(path)
                if doc is None:
                    continue
                self._seen.add(path.name)
                if doc.get("resourceType") == "Bundle":
                    doc = _fhir_response(doc) or {}
                reply = doc.get("in_reply_to")
                if doc.get("type") == "response" and isinstance(reply, str):
                    self._responses[reply] = doc
            await asyncio.sleep(0.1)
        return self._responses.get(message_id)
