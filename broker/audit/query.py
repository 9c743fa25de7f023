"""Answer a compliance officer's questions from decoded audit records.

"Who received what about this person, when, for which purpose, on which legal basis?" —
:class:`AuditQuery` filters :class:`AuditRow` s (one per AuditEvent, flattened): everything about
one or more persons (pseudonyms), everything one party received, everything refused, by purpose,
legal basis, period, outcome, reason, kind and flow.

:func:`answer` verifies the trail before it answers from it (:func:`verify_trail`, the one place
that calls :func:`broker.audit.chain.verify` for a query): a supervisor is shown a fact only with
the statement whether the record it comes from verified. Every row carries ``verified``; a trail
with any finding is *tampered*, and the answer says so with the findings' positions. A record
changed from a denial into a permit would otherwise simply drop out of a query for denials.

Results render as plain text in words (:func:`to_text`, wrapped to the terminal's width), CSV or
JSON; both exports read back into the same rows (:func:`rows_from_csv`, :func:`rows_from_json`).
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.audit.canonical import CanonicalError
from broker.audit.chain import ChainRecord, FindingKind, MalformedRecord, VerifyReport, verify
from broker.audit.checkpoint import Checkpoint
from broker.audit.event import (
    MESSAGE_ID_SYSTEM,
    PSEUDONYM_SYSTEM_PREFIX,
    AuditKind,
    AuditOutcome,
)
from broker.audit.sealed import SealedDetailErased, SealedDetailError, open_detail
from broker.audit.signers import Signers
from broker.trust.datakeys import DataKeyStore
from schemas.vocab import LegalBasis, PartyRole, PurposeOfUse

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
    sealed_state: str = ""  # "", "sealed" (not opened), "opened", "unreadable" or "erased"
    # False until :func:`answer` has verified the record this row comes from: a row that was
    # never checked must not look checked.
    verified: bool = False

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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditRow:
        """The row of :meth:`as_dict` (the plain-word columns of an export are ignored)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            value = d[f.name]
            if f.name == "recorded":
                value = _parse_instant(value)
            elif f.name in ("categories", "withheld"):
                value = tuple(value)
            values[f.name] = value
        return cls(**values)

    @property
    def decision_text(self) -> str:
        """What happened, in words: "denied: no consent", "delivered", ..."""
        what = _KIND_WORDS.get(self.kind) or _display(AuditKind, self.kind) or "unknown event"
        reason = self.reason.replace("-", " ").strip()
        if reason and reason not in (what, "permitted") and not reason.startswith(what):
            return f"{what}: {reason}"
        return what

    @property
    def purpose_text(self) -> str:
        """The purpose of use spelled out, with its code: "coordination of care (COC)"."""
        return _spelled(PurposeOfUse, self.purpose)

    @property
    def basis_text(self) -> str:
        """The legal basis spelled out, with its code and the citation the router recorded."""
        text = _spelled(LegalBasis, self.legal_basis)
        return f"{text}, {self.citation}" if self.citation and text else text


_KIND_WORDS = {
    AuditKind.DECISION_PERMIT.value: "permitted",
    AuditKind.DECISION_DENY.value: "denied",
    AuditKind.DELIVERY.value: "delivered",
    AuditKind.REFUSAL.value: "refused",
    AuditKind.CONSENT_CHANGE.value: "consent changed",
    AuditKind.COMPLIANCE_SEARCH.value: "compliance search",
    AuditKind.REPROCESS.value: "re-processed",
    AuditKind.SIGN_IN.value: "signed in",
    AuditKind.CORRECTION.value: "correction forwarded",
    AuditKind.WITHDRAWAL.value: "withdrawal forwarded",
}


def _display(vocab: type[AuditKind] | type[PurposeOfUse] | type[LegalBasis] | type[PartyRole],
             code: str | None) -> str | None:
    """The vocabulary's display text of ``code``; ``None`` for a code it does not know."""
    if not code:
        return None
    try:
        return vocab(code).display
    except ValueError:
        return None


def _spelled(vocab: type[PurposeOfUse] | type[LegalBasis] | type[PartyRole],
             code: str | None) -> str:
    """"display (code)", or the bare code when the vocabulary does not know it (a record from
    a newer writer, or a forgery: shown as it stands, never dropped)."""
    if not code:
        return ""
    shown = _display(vocab, code)
    return f"{shown} ({code})" if shown and shown != code else code


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


def open_sealed(
    rows: Iterable[AuditRow],
    keys: Mapping[str, X25519PrivateKey],
    datakeys: DataKeyStore | None = None,
) -> list[AuditRow]:
    """The rows with their sealed detail (citation, justification, professional) opened with
    the compliance role's keys (key id -> X25519 private key) or the person's data key from
    ``datakeys``. A detail that does not open is marked ``unreadable``, one whose person was
    erased ``erased`` ("sealed detail: erased"), and shows nothing: never a guess."""
    out = []
    for row in rows:
        if row.sealed is None:
            out.append(row)
            continue
        try:
            d = open_detail(
                row.sealed, chain=row.chain, event_id=row.event_id, keys=keys, datakeys=datakeys
            )
        except SealedDetailErased:
            out.append(replace(row, sealed_state="erased"))
            continue
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
    message_ids: frozenset[str] = frozenset()  # one message's path (``ketenbus trace``)
    # the organisations whose records a scoped user may see (as sender or recipient); empty:
    # every organisation. Set by the console from the user, never from the form.
    organisations: frozenset[str] = frozenset()
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
            not self.message_ids or row.message_id in self.message_ids,
            not self.organisations
            or row.sender in self.organisations
            or row.recipient in self.organisations,
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


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailTrust:
    """What a trail is verified against: each chain's declared signers (signer binding) and the
    signed checkpoints kept out of the operators' reach (``docs/audit-format.md`` 4.2, 9)."""

    signers: Signers
    checkpoints: Sequence[bytes | Checkpoint] = ()


def verify_trail(records: Sequence[bytes], trust: TrailTrust) -> VerifyReport:
    """Verify ``records`` for a query or the compliance page: the one place they call
    :func:`broker.audit.chain.verify`."""
    return verify(records, trust.signers, checkpoints=trust.checkpoints)


# Findings that say something is missing *around* a record, not that the record at their
# position is wrong: that record itself verified. Any other kind, including kinds added later,
# marks its record unverified.
_NOT_ABOUT_THE_RECORD = frozenset({FindingKind.REMOVED.value, "truncated", "missing-chain"})


_LINK_KINDS = frozenset({FindingKind.CHANGED, FindingKind.FORKED})  # a link break is forked


def unverified_positions(records: Sequence[bytes], report: VerifyReport) -> frozenset[int]:
    """Positions of the records a supervisor must not take as fact.

    A finding's own record, except for a gap (``removed``). A link break (a record whose
    content matches its hash but whose ``prev`` is not its predecessor's hash: two signed
    histories) marks both sides, since nothing tells which of the two is the forgery."""
    out: set[int] = set()
    by_seq: dict[tuple[str, int], list[int]] = defaultdict(list)
    links: list[tuple[str, int]] = []
    for f in report.findings:
        if str(f.kind) in _NOT_ABOUT_THE_RECORD or not 0 <= f.position < len(records):
            continue
        out.add(f.position)
        if f.kind in _LINK_KINDS and f.chain is not None and f.seq:
            rec = _decoded(records[f.position])
            if rec is not None and _hash_matches(rec):
                links.append((f.chain, f.seq - 1))
    if links:
        for pos, raw in enumerate(records):
            rec = _decoded(raw)
            if rec is not None:
                by_seq[(rec.chain, rec.seq)].append(pos)
        for key in links:
            out.update(by_seq.get(key, ()))
    return frozenset(out)


def _decoded(raw: bytes) -> ChainRecord | None:
    try:
        return ChainRecord.decode(raw)
    except MalformedRecord:
        return None


def _hash_matches(rec: ChainRecord) -> bool:
    try:
        return rec.computed_hash() == rec.hash
    except CanonicalError:
        return False


@dataclass(frozen=True)
class Answer:
    """A query's answer over a verified trail: the matching rows (each marked ``verified``),
    how many records were read, and the verification report behind the marks."""

    rows: list[AuditRow]
    total: int
    malformed: int
    report: VerifyReport
    unverified: frozenset[int] = frozenset()

    @property
    def tampered(self) -> bool:
        return not self.report.ok

    @property
    def finding_positions(self) -> list[int]:
        return sorted({f.position for f in self.report.findings})

    def banner(self) -> str | None:
        """One line for the top of any answer from a trail that did not verify; ``None`` when
        it did."""
        if not self.tampered:
            return None
        positions = ", ".join(map(str, self.finding_positions[:20]))
        more = ", ..." if len(self.finding_positions) > 20 else ""
        marked = sum(1 for r in self.rows if not r.verified)
        return (
            f"TAMPERED: the audit trail does not verify: {len(self.report.findings)} finding(s) "
            f"at position(s) {positions}{more}. {marked} of the {len(self.rows)} row(s) below "
            "come from records that did not verify, and records may be missing or changed. "
            "Run `ketenbus audit verify` for the findings."
        )


def answer(records: Sequence[bytes], query: AuditQuery, trust: TrailTrust) -> Answer:
    """Verify the trail, then run ``query`` over it; every row says whether its record
    verified."""
    report = verify_trail(records, trust)
    bad = unverified_positions(records, report)
    rows, malformed = decode_rows(records)
    found = [
        AuditRow(**{**_fields_of(r), "verified": r.position not in bad})
        for r in query.run(rows)
    ]
    return Answer(found, len(records), len(malformed), report, bad)


def _fields_of(row: AuditRow) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


# --- output -----------------------------------------------------------------------------------

CSV_FIELDS = [f.name for f in fields(AuditRow) if f.name != "sealed"]
# Plain-word columns of an export, after the data (ignored when an export is read back).
TEXT_FIELDS = ["decision_text", "purpose_text", "basis_text"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _export_dict(r: AuditRow) -> dict[str, Any]:
    d = {**r.as_dict(), **{name: getattr(r, name) for name in TEXT_FIELDS}}
    del d["sealed"]
    return d


def to_json(rows: Iterable[AuditRow]) -> str:
    return json.dumps([_export_dict(r) for r in rows], indent=2, ensure_ascii=False)


def rows_from_json(text: str) -> list[AuditRow]:
    """The rows of a :func:`to_json` export."""
    return [AuditRow.from_dict(d) for d in json.loads(text)]


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection): a leading
    ``'`` before ``= + - @`` tab, CR, and before ``'`` itself, so reading back is exact."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Iterable[AuditRow]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS + TEXT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        d = _export_dict(r)
        d["categories"] = " ".join(r.categories)
        d["withheld"] = " ".join(r.withheld)
        d["verified"] = "yes" if r.verified else "NO"
        writer.writerow({k: _cell(v) for k, v in d.items()})
    return buf.getvalue()


def rows_from_csv(text: str) -> list[AuditRow]:
    """The rows of a :func:`to_csv` export (an empty optional cell is ``None``)."""
    out = []
    optional = {f.name for f in fields(AuditRow) if "None" in str(f.type)}
    for raw in csv.DictReader(io.StringIO(text)):
        d: dict[str, Any] = {k: v[1:] if v.startswith("'") else v for k, v in raw.items()}
        for name in optional:
            if d.get(name) == "":
                d[name] = None
        d["position"], d["seq"] = int(d["position"]), int(d["seq"])
        d["categories"] = d["categories"].split()
        d["withheld"] = d["withheld"].split()
        d["verified"] = d["verified"] == "yes"
        out.append(AuditRow.from_dict(d))
    return out


def _party(party: str | None, role: str | None) -> str:
    if not party:
        return ""
    shown = _display(PartyRole, role) or role
    return f"{party} ({shown})" if shown else party


def to_text(rows: Sequence[AuditRow], *, width: int = 80, banner: str | None = None,
            title: str | None = None) -> str:
    """The rows in words, one block per record, every line at most ``width`` characters.

    Plain text on purpose: the values come from the trail, and a markup renderer would read a
    forged ``[...]`` in a party id as markup."""
    width = max(width, 40)
    lines: list[str] = []

    def put(text: str, indent: str = "", first: str | None = None) -> None:
        start = indent if first is None else first
        lines.extend(
            textwrap.wrap(text, width, initial_indent=start, subsequent_indent=indent,
                          break_on_hyphens=False)
            or [start.rstrip()]
        )

    if banner:
        put(banner, "   ", "!! ")
        lines.append("")
    if title:
        put(title, "  ", "")
        lines.append("")
    for r in rows:
        when = r.recorded.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if r.recorded else ""
        mark = "" if r.verified else "  NOT VERIFIED"
        ind = "    "
        put(f"#{r.position} {when}  {r.decision_text.upper()}{mark}", ind, "")
        if r.sender:
            put(f"from: {_party(r.sender, r.sender_role)}", ind)
        if r.recipient:
            put(f"to: {_party(r.recipient, r.recipient_role)}", ind)
        if r.purpose:
            put(f"purpose: {r.purpose_text}", ind)
        if r.legal_basis:
            consent = f"; consent {r.consent_id}" if r.consent_id else ""
            put(f"legal basis: {r.basis_text}{consent}", ind)
        about = [
            f"flow {r.flow}" if r.flow else "",
            f"message {r.message_id}" if r.message_id else "",
            f"person {r.pseudonym}" if r.pseudonym else "",
        ]
        if any(about):
            put(", ".join(a for a in about if a), ind)
        if r.categories:
            put(f"disclosed: {', '.join(r.categories)}", ind)
        if r.withheld:
            put(f"withheld: {', '.join(r.withheld)}", ind)
        put(f"record: chain {r.chain} seq {r.seq}, event {r.event_id}", ind)
        lines.append("")
    if banner and rows:
        put(banner, "   ", "!! ")
    return "\n".join(lines).rstrip("\n") + "\n"
