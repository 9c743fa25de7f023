"""The conformance cases as data (``schemas/conformance/*.yaml``, docs/conformance.md): one
model per suite and case, read strictly, and the rendering of a case into the bytes a
counterpart would send, with its ``${...}`` fields filled in at run time (synthetic BSNs made
then: no person is in a case file)."""

from __future__ import annotations

import json
import random
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

import schemas
from broker.apps.synthetic import synthetic_bsn
from broker.config import Settings

CASES_DIR = Path(schemas.__file__).parent / "conformance"
Channel = Literal["inbox", "http"]
ENDPOINTS = {
    "referral": "/referrals",
    "consent": "/consents",
    "escalation": "/escalations",
    "escalation-answer": "/escalation-answers",
    "withdrawal": "/withdrawals",
}
LIMITS = ("max_json_depth", "max_batch_items", "max_input_bytes")
_FIELD = re.compile(r"\$\{([a-z_]+)\}")


class Expect(BaseModel):
    """What must come of a case. ``path``: an issue names this field (a CSV row's path ends
    with it, ``line 2: registered_on``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adapter: Literal["accepted", "refused"]
    reason: str | None = None
    path: str | None = None
    http: int | None = None
    router: Literal["accepted", "refused"] | None = None
    router_reason: str | None = None

    @property
    def http_status(self) -> int:
        if self.http is not None:
            return self.http
        return 202 if self.adapter == "accepted" else 422


class Generate(BaseModel):
    """An input made from a limit's setting: one step over it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["nested", "array", "padding"]
    over: Literal["max_json_depth", "max_batch_items", "max_input_bytes"]


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    about: Annotated[str, Field(min_length=1)]
    doc: Annotated[str, Field(pattern=r"^docs/[a-z0-9/._-]+\.md(#[a-z0-9-]+)?$")]
    channels: Annotated[list[Channel], Field(min_length=1)]
    expect: Expect
    flow: str | None = None
    file: Annotated[str, Field(pattern=r"^[a-z]{1,8}$")] = "json"
    endpoint: str | None = None
    auth: Literal["token", "none", "unknown", "malformed"] = "token"
    json_: Any = Field(default=None, alias="json")
    text: str | None = None
    encoding: Literal["utf-8", "utf-16"] = "utf-8"
    generate: Generate | None = None

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        given = [x for x in (self.json_, self.text, self.generate) if x is not None]
        if len(given) != 1:
            raise ValueError("a case has exactly one of json, text or generate")
        if "http" in self.channels and self.http_endpoint is None:
            raise ValueError("an HTTP case needs an endpoint (or a json document with a type)")
        if self.expect.router is not None and self.expect.adapter != "accepted":
            raise ValueError("only an accepted input reaches the router")
        return self

    @property
    def http_endpoint(self) -> str | None:
        if self.endpoint is not None:
            return self.endpoint
        kind = self.json_.get("type") if isinstance(self.json_, dict) else None
        return ENDPOINTS.get(kind) if isinstance(kind, str) else None


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    title: str
    roles: Annotated[list[str], Field(min_length=1)]  # the party roles whose adapter it tests
    documents: list[str] = Field(default_factory=list)
    cases: Annotated[list[Case], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Suite:
        ids = [c.id for c in self.cases]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"case ids appear twice: {', '.join(twice)}")
        return self

    def select(self, flow: str | None) -> list[Case]:
        """The cases of ``flow`` (None: all)."""
        return [c for c in self.cases if flow is None or c.flow == flow]


class CaseFileError(ValueError):
    """A case file that is not a valid suite, with the file named."""


def load_suite(path: Path) -> Suite:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Suite.model_validate(data)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as err:
        raise CaseFileError(f"{path}: {err}") from None


def shipped_suites() -> dict[str, Suite]:
    """The suites that come with ketenbus, by name."""
    suites = (load_suite(p) for p in sorted(CASES_DIR.glob("*.yaml")))
    return {s.suite: s for s in suites}


@dataclass(frozen=True)
class Rendered:
    """One case made ready for one channel."""

    name: str  # the inbox file name
    body: bytes
    fields: dict[str, str]  # what ${...} became (the report shows run and case id only)


def fields_for(
    case: Case, region: str, zvh: str = "", rng: random.Random | None = None
) -> dict[str, str]:
    """Fresh values for one run of a case: a new BSN and tag each time, so two runs are two
    documents (never a repeat of an earlier one)."""
    today = date.today()
    return {
        # letters only: hex can be eight digits in a row (1 run in 43), which every adapter
        # rightly refuses in an id as a possible personal number
        "run": "".join(secrets.choice(string.ascii_lowercase) for _ in range(8)),
        "bsn": synthetic_bsn(rng or random.Random()),  # noqa: S311 - synthetic test data
        "region": region,
        "zvh": zvh,
        "today": today.isoformat(),
        "yesterday": (today - timedelta(days=1)).isoformat(),
        "next_week": (today + timedelta(days=7)).isoformat(),
        "next_year": (today + timedelta(days=366)).isoformat(),
        "uuid": str(uuid.uuid4()),
    }


def _fill(value: Any, fields: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _FIELD.sub(lambda m: fields[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    return value


def _generated(gen: Generate, settings: Settings) -> bytes:
    limit = int(getattr(settings, gen.over))
    if gen.kind == "nested":
        return b"[" * (limit + 1) + b"]" * (limit + 1)
    if gen.kind == "array":
        return b"[" + b",".join([b"{}"] * (limit + 1)) + b"]"
    return b'{"type": "referral", "signal": "' + b"x" * (limit + 1) + b'"}'


def render(case: Case, settings: Settings, region: str, zvh: str = "") -> Rendered:
    """``case`` as the bytes to send, for a party of ``region`` (``zvh``: the ZVH whose cases
    a provider's documents name)."""
    fields = fields_for(case, region, zvh)
    unknown = {m for m in _FIELD.findall(json.dumps(case.json_) + (case.text or ""))} - set(fields)
    if unknown:
        raise CaseFileError(f"case {case.id}: unknown field(s) {', '.join(sorted(unknown))}")
    if case.generate is not None:
        body = _generated(case.generate, settings)
    elif case.text is not None:
        body = _fill(case.text, fields).encode(case.encoding)
    else:
        body = json.dumps(_fill(case.json_, fields), ensure_ascii=False).encode(case.encoding)
    return Rendered(f"conformance-{fields['run']}-{case.id}.{case.file}", body, fields)
