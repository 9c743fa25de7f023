"""Health insurer (Zvw) and DJI (forensic care): declarations in the classic Vektis EI
fixed-width form -- 01 voorlooprecord, 02 verzekerdenrecord, 04 prestatierecord, 98
commentaarrecords (the financing explanation), 99 sluitrecord -- 310 characters per record,
CR LF, ASCII; answers in the same records with the answer fields filled in (302-style retour).

Why fixed-width and not the GDS801 XML: the 01 record's positions and the 02/04/99 contents are
public (docs/adapters/payers.md cites them); GDS801's element structure is not available to us.
The 01 record follows the published positions exactly; the 02/04/98/99 positions are ours, in
the EI conventions (N: right-aligned, zero-filled; AN: left-aligned, space-filled; dates
YYYYMMDD; amounts in eurocents with a D/C indicator). Every layout is the table below: one
place to correct.
"""

from __future__ import annotations

import textwrap
from datetime import date

from adapters.payer.formats import ei
from adapters.payer.formats.common import (
    Answer,
    AnswerItem,
    FormatError,
    ascii_text,
    collect,
    decode_text,
    explanation_lines,
    file_error,
    item_error,
    outcome_for,
    parse_bsn,
    parse_cents,
    parse_date,
    product,
    reference,
)
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome, PartyRole

RECORD = 310
SUFFIX = ".asc"
MESSAGE_CODE = "999"  # COD002 has no code for these services: agreed per payer (placeholder)
PRESTATIECODELIJST = "999"  # likewise
SOFTWARE = "KTNBUS"
DJI_UZOVI = "9992"  # DJI's UZOVI code on VECOZO (forensic care declarations)


LAYOUTS: ei.Layouts = {
    # 01 Voorlooprecord: positions as published for the EI 300-series
    "01": ei.layout(
        ("kenmerk", 1, 2, "N"),
        ("berichtcode", 3, 3, "N"),
        ("versie", 6, 2, "N"),
        ("subversie", 8, 2, "N"),
        ("soort", 10, 1, "AN"),
        ("software", 11, 6, "AN"),
        ("software_versie", 17, 10, "AN"),
        ("uzovi", 27, 4, "N"),
        ("servicebureau", 31, 8, "N"),
        ("zorgverlener", 39, 8, "N"),
        ("praktijk", 47, 8, "N"),
        ("instelling", 55, 8, "N"),
        ("betaling_aan", 63, 2, "N"),
        ("periode_begin", 65, 8, "N"),
        ("periode_eind", 73, 8, "N"),
        ("factuurnummer", 81, 12, "AN"),
        ("dagtekening", 93, 8, "N"),
        ("btw_id", 101, 14, "AN"),
        ("valuta", 115, 3, "AN"),
        ("reserve", 118, 193, "AN"),
    ),
    # 02 Verzekerdenrecord
    "02": ei.layout(
        ("kenmerk", 1, 2, "N"),
        ("detail", 3, 12, "N"),
        ("bsn", 15, 9, "N"),
        ("uzovi", 24, 4, "N"),
        ("verzekerdennummer", 28, 15, "AN"),
        ("patientnummer", 43, 11, "AN"),
        ("geboortedatum", 54, 8, "N"),
        ("geslacht", 62, 1, "N"),
        ("naam", 63, 25, "AN"),
        ("voorletters", 88, 6, "AN"),
        ("postcode", 94, 6, "AN"),
        ("huisnummer", 100, 5, "N"),
        ("land", 105, 2, "AN"),
        ("debiteurnummer", 107, 11, "AN"),
        ("reserve", 118, 193, "AN"),
    ),
    # 04 Prestatierecord; positions 172-208 carry the answer in a retour file
    "04": ei.layout(
        ("kenmerk", 1, 2, "N"),
        ("detail", 3, 12, "N"),
        ("bsn", 15, 9, "N"),
        ("uzovi", 24, 4, "N"),
        ("verzekerdennummer", 28, 15, "AN"),
        ("machtiging", 43, 15, "AN"),
        ("datum_prestatie", 58, 8, "N"),
        ("einddatum_prestatie", 66, 8, "N"),
        ("codelijst", 74, 3, "N"),
        ("prestatiecode", 77, 6, "AN"),
        ("aantal", 83, 4, "N"),
        ("behandelaar", 87, 8, "N"),
        ("verwijsdatum", 95, 8, "N"),
        ("tarief", 103, 8, "N"),
        ("berekend", 111, 8, "N"),
        ("debet_credit", 119, 1, "AN"),
        ("btw", 120, 4, "N"),
        ("declaratiebedrag", 124, 8, "N"),
        ("referentie", 132, 20, "AN"),
        ("referentie_vorige", 152, 20, "AN"),
        ("toegekend", 172, 8, "N"),
        ("toegekend_dc", 180, 1, "AN"),
        ("retourcode1", 181, 4, "AN"),
        ("retourcode2", 185, 4, "AN"),
        ("retourcode3", 189, 4, "AN"),
        ("betaaldatum", 193, 8, "N"),
        ("betaald", 201, 8, "N"),
        ("reserve", 209, 102, "AN"),
    ),
    # 98 Commentaarrecord: the claim's financing explanation, 140 characters a line
    "98": ei.layout(
        ("kenmerk", 1, 2, "N"),
        ("detail", 3, 12, "N"),
        ("regel", 15, 4, "N"),
        ("tekst", 19, 140, "AN"),
        ("reserve", 159, 152, "AN"),
    ),
    # 99 Sluitrecord
    "99": ei.layout(
        ("kenmerk", 1, 2, "N"),
        ("aantal_02", 3, 6, "N"),
        ("aantal_03", 9, 6, "N"),
        ("aantal_04", 15, 6, "N"),
        ("aantal_98", 21, 6, "N"),
        ("aantal_detail", 27, 7, "N"),
        ("totaal", 34, 11, "N"),
        ("totaal_dc", 45, 1, "AN"),
        ("reserve", 46, 265, "AN"),
    ),
}
ANSWER_FIELDS = (
    "toegekend",
    "toegekend_dc",
    "retourcode1",
    "retourcode2",
    "retourcode3",
    "betaaldatum",
    "betaald",
)


def record(kind: str, values: dict[str, str | int]) -> str:
    """One record of ``kind``; unknown names, or values too wide for their field, fail."""
    return ei.record(LAYOUTS, RECORD, kind, values)


def fields(line: str) -> dict[str, str]:
    """The fields of a record (by its kenmerk), stripped."""
    return ei.fields(LAYOUTS, line)


def _gender(value: str) -> str:
    return {"male": "1", "female": "2"}.get(value, "0")


def write_declaration(claim: Claim) -> bytes:
    """One claim as a fixed-width declaration to a health insurer (UZOVI) or DJI."""
    if not claim.provider_agb:
        raise FormatError("a Vektis declaration needs the claimant's AGB code (instellingscode)")
    if claim.quantity > 9999:
        raise FormatError("aantal is at most 9999 in a prestatierecord")
    if max(claim.amount_cents, claim.unit_price_cents) > 99_999_999:
        raise FormatError("an amount above EUR 999,999.99 does not fit a prestatierecord")
    # DJI declares under UZOVI 9992 on VECOZO (the health insurer under its own UZOVI)
    uzovi = claim.payer.identifier if claim.payer.role is PartyRole.HEALTH_INSURER else DJI_UZOVI
    p = claim.person
    ref = reference(claim.claim_id)
    lines = [
        record(
            "01",
            {
                "berichtcode": MESSAGE_CODE,
                "versie": "01",
                "subversie": "00",
                "soort": "P",
                "software": SOFTWARE,
                "software_versie": "0.1.0",
                "uzovi": uzovi,
                "instelling": claim.provider_agb,
                "betaling_aan": "03",
                "periode_begin": f"{claim.period_start:%Y%m%d}",
                "periode_eind": f"{claim.period_end:%Y%m%d}",
                "factuurnummer": reference(claim.claim_id, 12),
                "dagtekening": f"{claim.created:%Y%m%d}",
                "valuta": "EUR",
            },
        ),
        record(
            "02",
            {
                "detail": 1,
                "bsn": p.bsn,
                "uzovi": uzovi,
                "geboortedatum": f"{p.birth_date:%Y%m%d}",
                "geslacht": _gender(p.gender.value),
                "naam": p.family_name[:25],
                "voorletters": "".join(g[:1] for g in p.given_names)[:6],
                "postcode": (p.postal_code or "").replace(" ", "")[:6],
                "land": "NL",
            },
        ),
        record(
            "04",
            {
                "detail": 2,
                "bsn": p.bsn,
                "uzovi": uzovi,
                "datum_prestatie": f"{claim.period_start:%Y%m%d}",
                "einddatum_prestatie": f"{claim.period_end:%Y%m%d}",
                "codelijst": PRESTATIECODELIJST,
                "prestatiecode": product("vektis", claim)[1],
                "aantal": claim.quantity,
                "tarief": claim.unit_price_cents,
                "berekend": claim.amount_cents,
                "debet_credit": "D",
                "btw": "0000",
                "declaratiebedrag": claim.amount_cents,
                "referentie": ref,
            },
        ),
    ]
    comments = []
    for line in explanation_lines(claim):
        text = ascii_text(line)
        comments += textwrap.wrap(text, 140, break_on_hyphens=False) or [""]
    for n, text in enumerate(comments, start=1):
        lines.append(record("98", {"detail": 2 + n, "regel": n, "tekst": text}))
    lines.append(
        record(
            "99",
            {
                "aantal_02": 1,
                "aantal_04": 1,
                "aantal_98": len(comments),
                "aantal_detail": 2 + len(comments),
                "totaal": claim.amount_cents,
                "totaal_dc": "D",
            },
        )
    )
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def read_answer(raw: bytes) -> Answer:
    """A retour file: one item per 04 record with its answer fields; the 01 record's
    dagtekening is the decision date. Lines of the wrong length or kind are item errors."""
    text = decode_text(raw, "ascii")
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln]
    if not lines or not lines[0].startswith("01"):
        raise file_error("the file does not start with a 01 voorlooprecord", "structure", "line 1")
    if len(lines[0]) != RECORD:
        raise file_error(f"line 1 has {len(lines[0])} characters, not {RECORD}", "record-length")
    decided = parse_date(fields(lines[0])["dagtekening"], "line 1: dagtekening", "ei")
    if not lines[-1].startswith("99"):
        raise file_error("the file does not end with a 99 sluitrecord", "structure")
    items = [(n, ln) for n, ln in enumerate(lines, start=1) if not ln.startswith(("01", "99"))]
    prestaties = [
        (n, ln) for n, ln in items if not (ln[:2] in ("02", "03", "98") and len(ln) == RECORD)
    ]
    declared = fields(lines[-1]).get("aantal_04", "")
    if declared.isdigit() and int(declared) != sum(1 for _, ln in items if ln.startswith("04")):
        raise file_error(
            f"the sluitrecord counts {int(declared)} prestatierecords, the file has "
            f"{sum(1 for _, ln in items if ln.startswith('04'))}",
            "count",
        )

    def read(item: tuple[int, str], _: int) -> AnswerItem:
        n, line = item
        where = f"line {n}"
        if len(line) != RECORD:
            raise item_error(where, f"{len(line)} characters, not {RECORD}", "record-length")
        if not line.startswith("04"):
            raise item_error(where, f"unknown record kind {line[:2]!r}", "record-kind")
        f = fields(line)
        for name in ("declaratiebedrag", "toegekend", "betaald"):
            if f[name] and not f[name].isdigit():
                problem = "negative amount" if "-" in f[name] else "not an amount"
                code = "negative-amount" if "-" in f[name] else "amount"
                raise item_error(f"{where}: {name}", problem, code)
        if f["toegekend_dc"] == "C":
            raise item_error(
                f"{where}: toegekend", "a credit (negative) approval is refused", "negative-amount"
            )
        codes = [f[k] for k in ("retourcode1", "retourcode2", "retourcode3") if f[k]]
        paid = bool(f["betaaldatum"].strip("0"))
        outcome, reason = outcome_for(codes, paid=paid)
        rejected = outcome is ClaimOutcome.REJECTED
        approved = parse_cents(f["toegekend"] or f["declaratiebedrag"], f"{where}: toegekend")
        paid_on: date | None = None
        if paid and not rejected:
            paid_on = parse_date(f["betaaldatum"], f"{where}: betaaldatum", "ei")
        return AnswerItem(
            reference=f["referentie"],
            bsn=parse_bsn(f["bsn"], f"{where}: bsn"),
            decided_on=decided,
            outcome=outcome,
            approved_cents=None if rejected else approved,
            paid_cents=parse_cents(f["betaald"], f"{where}: betaald") if paid_on else None,
            paid_on=paid_on,
            rejection_reason=reason,
            rejection_note=("retourcodes " + " ".join(codes)) if rejected else None,
            where=where,
        )

    return collect(prestaties, read)


def write_answer(
    declaration: bytes,
    decided_on: date,
    codes: tuple[str, ...] = ("0000",),
    approved_cents: int | None = None,
    paid_on: date | None = None,
) -> bytes:
    """The payer's retour for a declaration this module wrote (tests, demos, payer tooling)."""
    out = []
    for line in declaration.decode("ascii").split("\r\n"):
        if not line:
            continue
        f = fields(line)
        values: dict[str, str | int] = {k: v for k, v in f.items() if k != "kenmerk"}
        if line.startswith("01"):
            values["dagtekening"] = f"{decided_on:%Y%m%d}"
        if line.startswith("04"):
            amount = approved_cents if approved_cents is not None else int(f["declaratiebedrag"])
            values.update(toegekend=amount, toegekend_dc="D")
            for i, c in enumerate(codes[:3], start=1):
                values[f"retourcode{i}"] = c
            if paid_on is not None:
                values.update(betaaldatum=f"{paid_on:%Y%m%d}", betaald=amount)
        out.append(record(line[:2], values))
    return ("\r\n".join(out) + "\r\n").encode("ascii")
