"""Answer a compliance officer's questions from decoded audit records.

"Who received what about this person, when, for which purpose, on which legal basis?" —
:class:`AuditQuery` filters :class:`AuditRow` s (one per AuditEvent, flattened): everything about
one or more persons (pseudonyms), everything one party received, everything refused, by purpose,
legal basis, period, outcome, reason, kind and flow. Results render as a Rich table, CSV or
JSON. Queries read records; they do not verify them (run ``ketenbus audit verify`` first).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from rich.table import Table

from broker.audit.chain import ChainRecord, MalformedRecord
from broker.audit.event import (
    MESSAGE_ID_SYSTEM,
    PSEUDONYM_SYSTEM_PREFIX,
    AuditKind,
    AuditOutcome,
)
from broker.audit.sealed import SealedDetailError, open_detail

OUTCOME_NAMES = {
    "success": AuditOutcome.SUCCESS.value,
    "minor-failure": AuditOutcome.MINOR_FAILURE.value,
    "serious-failure": AuditOutcome.SERIOUS_FAILURE.value,
    "major-failure": AuditOutcome.MAJOR_FAILURE.value,
}
REFUSED_KINDS = frozenset({AuditKind.DECISION_DENY.value, AuditKind.REFUSAL.value})


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One AuditEvent, flattened for filtering and output (codes as plain strings)."""

    position: int
    chain: str
    seq: int
    event_id: str
    recorded: datetime | None
    kind: str
    action: str
    outcome: str
    reason: str
    flow: str | None = None
    sender: str | None = None
    sender_role: str | None = None
    recipient: str | None = None
    recipient_role: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    citation: str | None = None
    consent_id: str | None = None
    pseudonym: str | None = None
    pseudonym_system: str | None = None
    message_id: str | None = None
    categories: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    detail: str = ""
    justification: str | None = None  # from the sealed detail, for the compliance role
    professional: str | None = None  # the deciding professional (sealed) or searching officer
    controls: str | None = None
    sealed: str | None = None  # base64 of the sealed detail, as it stands in the event
    sealed_state: str = ""  # "", "sealed" (not opened), "opened" or "unreadable"

    @property
    def refused(self) -> bool:
        return self.kind in REFUSED_KINDS or self.outcome != AuditOutcome.SUCCESS.value

    @classmethod
    def from_event(cls, event: dict[str, Any], *, position: int, chain: str, seq: int) -> AuditRow:
        agents = event.get("agent") or []
        sender = next((a for a in agents if a.get("requestor") is True), None)
        recipient = next((a for a in agents if _code(a.get("type")) == "110152"), None)
        person = next(
            (
                e
                for e in event.get("entity") or []
                if str(_ident(e.get("what")).get("system", "")).startswith(PSEUDONYM_SYSTEM_PREFIX)
            ),
            None,
        )
        message = next(
            (
                e
                for e in event.get("entity") or []
                if _ident(e.get("what")).get("system") == MESSAGE_ID_SYSTEM
                or _code(e.get("role")) in ("4", "24")
            ),
            None,
        )
        items = [d for d in (message or {}).get("detail", []) if isinstance(d, dict)]
        details = {d.get("type"): d.get("valueString") for d in items}
        sealed = next(
            (d.get("valueBase64Binary") for d in items if d.get("type") == "sealed"), None
        )
        consent = next(
            (
                e["what"]["reference"].removeprefix("Consent/")
                for e in event.get("entity") or []
                if str((e.get("what") or {}).get("reference", "")).startswith("Consent/")
            ),
            None,
        )
        subtype = (event.get("subtype") or [{}])[0]
        purpose = (event.get("purposeOfEvent") or [{}])[0]
        return cls(
            position=position,
            chain=chain,
            seq=seq,
            event_id=str(event.get("id", "")),
            recorded=_parse_instant(event.get("recorded")),
            kind=str((event.get("type") or {}).get("code", "")),
            action=str(event.get("action", "")),
            outcome=str(event.get("outcome", "")),
            reason=str(event.get("outcomeDesc", "")),
            flow=subtype.get("code"),
            sender=_ident((sender or {}).get("who")).get("value"),
            sender_role=_code(((sender or {}).get("role") or [None])[0]),
            recipient=_ident((recipient or {}).get("who")).get("value"),
            recipient_role=_code(((recipient or {}).get("role") or [None])[0]),
            purpose=_code(purpose),
            legal_basis=details.get("legal-basis"),
            citation=details.get("citation"),
            consent_id=consent,
            pseudonym=_ident((person or {}).get("what")).get("value"),
            pseudonym_system=_ident((person or {}).get("what")).get("system"),
            message_id=_ident((message or {}).get("what")).get("value")
            if _ident((message or {}).get("what")).get("system") == MESSAGE_ID_SYSTEM
            else None,
            categories=tuple(c.get("code", "") for c in (message or {}).get("securityLabel", [])),
            withheld=tuple(filter(None, (details.get("withheld-categories") or "").split(","))),
            detail=str((message or {}).get("description", "")),
            justification=details.get("justification"),
            professional=details.get("professional"),
            controls=details.get("controles"),
            sealed=sealed if isinstance(sealed, str) else None,
            sealed_state="sealed" if isinstance(sealed, str) else "",
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recorded"] = self.recorded.isoformat() if self.recorded else None
        d["categories"] = list(self.categories)
        d["withheld"] = list(self.withheld)
        return d


def _ident(what: Any) -> dict[str, Any]:
    if isinstance(what, dict) and isinstance(what.get("identifier"), dict):
        return what["identifier"]  # type: ignore[no-any-return]
    return {}


def _code(concept: Any) -> str | None:
    """The code of a Coding or of the first Coding of a CodeableConcept."""
    if not isinstance(concept, dict):
        return None
    if "code" in concept:
        return str(concept["code"])
    codings = concept.get("coding") or []
    return str(codings[0].get("code")) if codings and "code" in codings[0] else None


def _parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def open_sealed(rows: Iterable[AuditRow], keys: Mapping[str, X25519PrivateKey]) -> list[AuditRow]:
    """The rows with their sealed detail (citation, justification, professional) opened with
    the compliance role's keys (key id -> X25519 private key). A detail that does not open is
    marked ``unreadable`` and shows nothing: never a guess."""
    out = []
    for row in rows:
        if row.sealed is None:
            out.append(row)
            continue
        try:
            d = open_detail(row.sealed, chain=row.chain, event_id=row.event_id, keys=keys)
        except SealedDetailError:
            out.append(replace(row, sealed_state="unreadable"))
            continue
        out.append(
            replace(
                row,
                citation=d.get("citation"),
                justification=d.get("justification"),
                professional=d.get("professional"),
                sealed_state="opened",
            )
        )
    return out


def decode_rows(records: Iterable[bytes]) -> tuple[list[AuditRow], list[int]]:
    """Rows of every well-formed record, and the positions of those that are not records."""
    rows, bad = [], []
    for pos, raw in enumerate(records):
        try:
            rec = ChainRecord.decode(raw)
        except MalformedRecord:
            bad.append(pos)
            continue
        rows.append(AuditRow.from_event(rec.event, position=pos, chain=rec.chain, seq=rec.seq))
    return rows, bad


@dataclass(frozen=True)
class AuditQuery:
    """Filters; every given filter must match (an empty set means "any").

    ``persons``: pseudonyms (any of them). ``party``: the receiving party. ``sender``: the acting
    party. ``refused``: only denials, refusals and failed events. ``outcomes``: FHIR outcome codes
    (0, 4, 8, 12) or their names (success, minor-failure, serious-failure, major-failure).
    ``since`` is inclusive, ``until`` exclusive.
    """

    persons: frozenset[str] = frozenset()
    party: str | None = None
    sender: str | None = None
    refused: bool = False
    purposes: frozenset[str] = frozenset()
    legal_bases: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    outcomes: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    flows: frozenset[str] = frozenset()
    _outcome_codes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = frozenset(OUTCOME_NAMES.get(o, o) for o in self.outcomes)
        object.__setattr__(self, "_outcome_codes", codes)

    def matches(self, row: AuditRow) -> bool:
        checks = (
            not self.persons or row.pseudonym in self.persons,
            self.party is None or row.recipient == self.party,
            self.sender is None or row.sender == self.sender,
            not self.refused or row.refused,
            not self.purposes or row.purpose in self.purposes,
            not self.legal_bases or row.legal_basis in self.legal_bases,
            self.since is None or (row.recorded is not None and row.recorded >= self.since),
            self.until is None or (row.recorded is not None and row.recorded < self.until),
            not self._outcome_codes or row.outcome in self._outcome_codes,
            not self.reasons or row.reason in self.reasons,
            not self.kinds or row.kind in self.kinds,
            not self.flows or row.flow in self.flows,
        )
        return all(checks)

    def run(self, rows: Iterable[AuditRow]) -> list[AuditRow]:
        return [r for r in rows if self.matches(r)]

    def as_dict(self) -> dict[str, Any]:
        """The query itself, for the compliance-search audit record."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            if value not in (None, False, []):
                out[f.name] = value
        return out


# --- output -----------------------------------------------------------------------------------

CSV_FIELDS = [f.name for f in fields(AuditRow) if f.name != "sealed"]


def to_json(rows: Iterable[AuditRow]) -> str:
    return json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False)


def to_csv(rows: Iterable[AuditRow]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        d = r.as_dict()
        del d["sealed"]
        d["categories"] = " ".join(r.categories)
        d["withheld"] = " ".join(r.withheld)
        writer.writerow(d)
    return buf.getvalue()


def to_table(rows: Iterable[AuditRow], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for name in (
        "pos",
        "recorded (UTC)",
        "kind",
        "outcome",
        "flow",
        "from",
        "to",
        "purpose",
        "basis",
        "consent",
        "person",
        "categories",
    ):
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(
            str(r.position),
            r.recorded.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if r.recorded else "",
            r.kind,
            f"{r.outcome} {r.reason}",
            r.flow or "",
            f"{r.sender or ''} ({r.sender_role or ''})" if r.sender else "",
            f"{r.recipient} ({r.recipient_role or ''})" if r.recipient else "",
            r.purpose or "",
            (r.legal_basis or "") + (f" ({r.citation})" if r.citation else ""),
            r.consent_id or "",
            r.pseudonym or "",
            " ".join(r.categories),
        )
    return table
