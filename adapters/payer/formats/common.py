"""What every payer format shares: the answer item a format reads, safe XML parsing, file
references for claim ids, product codes, and the table from answer codes to outcomes.

The national standards have no product codes for the Levensloopaanpak services and no codes
for our rejection reasons; both live here, in one place, so they can be corrected when payers
agree on them (see docs/adapters/payers.md).
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from schemas.errors import Issue, MessageError
from schemas.flows.claim import Claim
from schemas.identifiers import IdentifierError, validate_bsn
from schemas.vocab import ClaimOutcome, ClaimRejectionReason

MAX_ANSWER_BYTES = 5_000_000


def product(fmt: str, claim: Claim) -> tuple[str | None, str, str | None]:
    """(ProductCategorie, ProductCode, Eenheid) of ``claim`` for ``fmt`` (iwmo, iwlz, vektis):
    per-payer *agreements* in the financing rules file (``products``), never national codes --
    no national code exists for these services (docs/adapters/payers.md)."""
    from adapters.financing.rules import RulesError, default_rules

    try:
        p = default_rules().product(fmt, claim.service, claim.payer.identifier)  # type: ignore[arg-type]
    except RulesError as err:
        raise FormatError(str(err)) from None
    return p.category, p.code, p.unit


# Answer codes shared by the formats that have no public code list for our reasons.
# "0000" (and blank) = no remark: accepted as claimed.
REJECTION_CODES: dict[str, ClaimRejectionReason] = {
    "R001": ClaimRejectionReason.NO_PAYMENT_TITLE,
    "R002": ClaimRejectionReason.WRONG_PAYER,
    "R003": ClaimRejectionReason.NOT_COVERED,
    "R004": ClaimRejectionReason.NOT_INCLUDED,
    "R005": ClaimRejectionReason.DUPLICATE,
    "R006": ClaimRejectionReason.INVALID,
    "R099": ClaimRejectionReason.OTHER,
}
ACCEPT_CODES = frozenset({"", "0000", "0200", "8001"})


def rejection_code(reason: ClaimRejectionReason) -> str:
    return next(code for code, r in REJECTION_CODES.items() if r is reason)


class FormatError(ValueError):
    """A claim this format cannot express (e.g. no AGB code, an amount too wide)."""


@dataclass(frozen=True)
class AnswerItem:
    """One answer to one claim, as read from a payer's file (before the claim is looked up)."""

    reference: str  # the claim's file reference (see :func:`reference`)
    bsn: str
    decided_on: date
    outcome: ClaimOutcome
    approved_cents: int | None
    paid_cents: int | None = None
    paid_on: date | None = None
    rejection_reason: ClaimRejectionReason | None = None
    rejection_note: str | None = None
    where: str = ""  # line or element, for error reports
    # True: the item answers a whole declaration (iWmo WMO325): every claim of the declaration
    # ``reference`` that no rejected line of the same file names is approved as claimed
    declaration: bool = False


Answer = list[AnswerItem | MessageError]


def reference(claim_id: str, width: int = 20) -> str:
    """The claim's reference in a payer file: the claim id when it fits ``width`` characters of
    ``[A-Za-z0-9-]``, else ``K`` + a base32 digest (the payer adapter keeps the mapping)."""
    if len(claim_id) <= width and re.fullmatch(r"[A-Za-z0-9\-]+", claim_id):
        return claim_id
    digest = base64.b32encode(hashlib.sha256(claim_id.encode()).digest()).decode()
    return "K" + digest[: width - 1]


def alnum_reference(claim_id: str, width: int = 12) -> str:
    """A reference of letters and digits only (iWmo DeclaratieNummer), ``width`` at most."""
    text = re.sub(r"[^A-Za-z0-9]", "", claim_id)
    if len(text) <= width and text == claim_id:
        return text
    digest = base64.b32encode(hashlib.sha256(claim_id.encode()).digest()).decode()
    return "K" + digest[: width - 1]


def ascii_text(text: str) -> str:
    """Text for an ASCII file: accents dropped (é → e), anything else outside ASCII → ``?``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return (
        "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        .encode("ascii", "replace")
        .decode("ascii")
    )


def explanation_lines(claim: Claim) -> list[str]:
    """The claim's financing explanation as plain lines (rule, inputs, judgement)."""
    e = claim.explanation
    if e is None:
        return []
    lines = [f"ketenbus rule {e.rule}@{e.version}"]
    lines += [f"{i.name}={i.value}" for i in e.inputs]
    if e.text:
        lines.append(e.text)
    return lines


# --- reading answers ----------------------------------------------------------------------------


def file_error(message: str, reason: str, where: str = "") -> MessageError:
    return MessageError([Issue(where, "structure", message, reason)])


def item_error(where: str, message: str, reason: str) -> MessageError:
    return MessageError([Issue(where, "value", message, reason)])


def check_size(raw: bytes) -> None:
    if len(raw) > MAX_ANSWER_BYTES:
        raise file_error("answer file exceeds 5 MB", "too-large")


def parse_xml(raw: bytes) -> Element:
    """Parse an untrusted answer: no DTDs, no entities, no external references (defusedxml);
    an entity bomb or a malformed document is one file error."""
    check_size(raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise file_error("file is not UTF-8 text", "encoding") from None
    try:
        root: Element = SafeET.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as err:
        raise file_error(
            f"refused: the XML uses a DTD or entities ({type(err).__name__})", "xml-forbidden"
        ) from None
    except ParseError as err:
        raise file_error(f"not well-formed XML ({err})", "not-xml") from None
    except LookupError:  # the XML declaration names an encoding Python does not know
        raise file_error("the XML declaration names an unknown encoding", "encoding") from None
    return root


def decode_text(raw: bytes, encoding: str = "utf-8") -> str:
    check_size(raw)
    try:
        return raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as err:
        raise file_error(
            f"file is not {encoding.upper()} text (byte {err.start})", "encoding"
        ) from None


def parse_date(value: str, where: str, fmt: str = "iso") -> date:
    """A date as ``YYYY-MM-DD`` (iso) or ``YYYYMMDD`` (ei); ``MessageError`` otherwise."""
    text = value.strip()
    try:
        if fmt == "ei":
            if not re.fullmatch(r"[0-9]{8}", text):
                raise ValueError
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        expected = "YYYYMMDD" if fmt == "ei" else "YYYY-MM-DD"
        raise item_error(where, f"is not a date ({expected})", "date") from None


def parse_cents(value: str, where: str) -> int:
    """A non-negative amount in eurocents (digits only)."""
    text = value.strip()
    if text.startswith("-"):
        raise item_error(where, "is a negative amount", "negative-amount")
    if not re.fullmatch(r"[0-9]{1,15}", text):
        raise item_error(where, "is not an amount in eurocents", "amount")
    return int(text)


def parse_bsn(value: str, where: str) -> str:
    try:
        return validate_bsn(value.strip(), "bsn")
    except IdentifierError as err:
        raise item_error(where, str(err), err.reason) from None


def outcome_for(
    codes: list[str],
    paid: bool,
    table: dict[str, ClaimRejectionReason] | None = None,
) -> tuple[ClaimOutcome, ClaimRejectionReason | None]:
    """The outcome from answer codes: all accept-codes → accepted (paid when a payment is
    given); the first rejection code gives the reason (unknown codes: other)."""
    rejections = [c for c in codes if c not in ACCEPT_CODES]
    if not rejections:
        return (ClaimOutcome.PAID if paid else ClaimOutcome.ACCEPTED), None
    lookup = REJECTION_CODES if table is None else table
    return ClaimOutcome.REJECTED, lookup.get(rejections[0], ClaimRejectionReason.OTHER)


def month_bounds(start: date, end: date) -> tuple[date, date]:
    """First day of ``start``'s month and last day of ``end``'s month (a declaration period)."""
    from datetime import timedelta

    first_next = (end.replace(day=1) + timedelta(days=32)).replace(day=1)
    return start.replace(day=1), first_next - timedelta(days=1)


def collect(items: list[Any], read: Callable[[Any, int], AnswerItem]) -> Answer:
    """Read every item on its own: one bad item is an error in the list, never the file's."""
    out: Answer = []
    for i, item in enumerate(items):
        try:
            out.append(read(item, i))
        except MessageError as err:
            out.append(err)
    return out


def child_text(el: Element, path: str, ns: dict[str, str], where: str) -> str:
    """The text of the required element at ``path`` (ElementPath with prefixes of ``ns``)."""
    found = el.find(path, ns)
    if found is None or not (found.text or "").strip():
        raise item_error(where, f"{path} is required", "required")
    return (found.text or "").strip()


def opt_child_text(el: Element, path: str, ns: dict[str, str]) -> str | None:
    found = el.find(path, ns)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def xml_bytes(root: Element) -> bytes:
    """Indented UTF-8 XML with a declaration: stable bytes for golden files."""
    from xml.etree.ElementTree import indent, tostring

    indent(root, space="  ")
    body = tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def comment_text(lines: list[str]) -> str:
    """Lines for an XML comment (no ``--`` inside, which XML forbids)."""
    body = "; ".join(line.replace("--", "- -") for line in lines)
    return f" {body} " if body else ""
