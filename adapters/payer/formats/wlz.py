"""Care office (Wlz): declarations as the Vektis EI message **AW319** (Declaratie, EI code 187)
and answers as **AW320** (Retourinformatie declaratie, EI code 188), fixed-width through VECOZO.

AW319/AW320 are not iWlz XML: the public iWlz 2.2 schemas (iStandaarden/XSD-iWlz) hold AW33
to AW318 and no AW319/AW320, and the iWlz netwerkmodel documentation says "De berichten AW319 en
AW320 zijn niet in scope van het iWlz-netwerkmodel". Vektis publishes them as EI standards
(vektis.nl "standaarden/AW319-1.4"). The record layouts below are those of AW319 1.3 and
AW320 1.3 (field by field, with their Vektis data element codes) as the public repository
olmeca/vektor carries them (``doctypes.nim``, commit b3901a2); a public AW319 1.4 implementation
(its comments cite vektis.nl AW319-1.4) has the same positions for 01, 02, 04, 98 and 99.
AW319 records are 310 characters; AW320 returns every record extended to 370 with the care
office's answer (amounts granted, retourcodes). Deviations: docs/adapters/payers.md.
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
    month_bounds,
    outcome_for,
    parse_bsn,
    parse_cents,
    parse_date,
    product,
    reference,
)
from schemas.flows.claim import Claim
from schemas.vocab import ClaimOutcome

CODE_DECLARATION = "187"  # COD002: AW319
CODE_ANSWER = "188"  # COD002: AW320
VERSION, SUBVERSION = "01", "03"  # AW319 1.3 / AW320 1.3, the layouts below
RECORD = 310
ANSWER_RECORD = 370
SUFFIX = ".asc"
SOFTWARE = "000000"  # COD805 is a code Vektis assigns to a software supplier; ketenbus has none
PRESTATIECODELIJST = "999"  # COD367: no list has the Levensloopaanpak services (agreements)
MAX_RECORDS = 20_000

_L = ei.layout
DECLARATION: ei.Layouts = {
    "01": _L(
        ("kenmerk", 1, 2, "N"),  # COD001
        ("berichtcode", 3, 3, "N"),  # COD002
        ("versie", 6, 2, "N"),  # NUM001
        ("subversie", 8, 2, "N"),  # NUM309
        ("soort", 10, 1, "AN"),  # COD856
        ("software", 11, 6, "N"),  # COD805
        ("software_versie", 17, 10, "AN"),  # NUM284
        ("uzovi", 27, 4, "N"),  # COD061: the care office
        ("servicebureau", 31, 8, "N"),  # COD377
        ("zorgverlener", 39, 8, "N"),  # COD009
        ("praktijk", 47, 8, "N"),  # COD181
        ("instelling", 55, 8, "N"),  # COD031: the claimant's AGB
        ("betaling_aan", 63, 2, "N"),  # COD833
        ("periode_begin", 65, 8, "N"),  # DAT043
        ("periode_eind", 73, 8, "N"),  # DAT044
        ("factuurnummer", 81, 12, "AN"),  # NUM029
        ("dagtekening", 93, 8, "N"),  # DAT031
        ("btw_id", 101, 14, "AN"),  # NUM351
        ("valuta", 115, 3, "AN"),  # COD363
        ("reserve", 118, 193, "AN"),
    ),
    "02": _L(
        ("kenmerk", 1, 2, "N"),
        ("detail", 3, 12, "N"),  # NUM040
        ("bsn", 15, 9, "N"),  # NUM313
        ("uzovi", 24, 4, "N"),
        ("verzekerdennummer", 28, 15, "AN"),  # NUM003
        ("patientnummer", 43, 11, "AN"),  # NUM366
        ("geboortedatum", 54, 8, "N"),  # DAT006
        ("geslacht", 62, 1, "N"),  # COD134
        ("naamcode1", 63, 1, "N"),  # COD700
        ("naam1", 64, 25, "AN"),  # NAM193
        ("voorvoegsel1", 89, 10, "AN"),  # NAM194
        ("naamcode2", 99, 1, "N"),  # COD701
        ("naam2", 100, 25, "AN"),  # NAM191
        ("voorvoegsel2", 125, 10, "AN"),  # NAM192
        ("voorletters", 135, 6, "AN"),  # NAM025
        ("naamcode3", 141, 1, "N"),  # COD829
        ("postcode", 142, 6, "AN"),  # COD083
        ("postcode_buitenland", 148, 9, "AN"),  # COD434
        ("huisnummer", 157, 5, "N"),  # NUM030
        ("huisnummer_toevoeging", 162, 6, "AN"),  # NUM079
        ("land", 168, 2, "AN"),  # COD090
        ("debiteurnummer", 170, 11, "AN"),  # COD316
        ("overleden", 181, 1, "N"),  # COD841
        ("indicatieorgaan", 182, 4, "N"),  # COD459
        ("clientnummer_indicatieorgaan", 186, 20, "AN"),  # NUM258
        ("reserve", 206, 105, "AN"),
    ),
    "04": _L(
        ("kenmerk", 1, 2, "N"),
        ("detail", 3, 12, "N"),
        ("bsn", 15, 9, "N"),
        ("uzovi", 24, 4, "N"),
        ("verzekerdennummer", 28, 15, "AN"),
        ("machtiging", 43, 15, "AN"),  # NUM013
        ("doorsturen", 58, 1, "N"),  # COD150
        ("indicatieorgaan", 59, 4, "N"),  # COD459
        ("clientnummer_indicatieorgaan", 63, 20, "AN"),  # NUM258
        ("aanvraagnummer", 83, 9, "N"),  # NUM259
        ("besluitnummer", 92, 9, "N"),  # NUM260
        ("functiecode", 101, 2, "N"),  # COD732
        ("zzp", 103, 3, "N"),  # COD163
        ("begindatum", 106, 8, "N"),  # DAT001
        ("einddatum", 114, 8, "N"),  # DAT003
        ("codelijst", 122, 3, "N"),  # COD367
        ("prestatiecode", 125, 5, "AN"),  # COD388
        ("aantal", 130, 4, "N"),  # ANT054
        ("tijdseenheid", 134, 2, "N"),  # COD218
        ("behandelaar", 136, 8, "N"),  # COD089
        ("specialisme_behandelaar", 144, 4, "N"),  # COD952
        ("verwijzer", 148, 8, "N"),  # COD836
        ("specialisme_verwijzer", 156, 4, "N"),  # COD953
        ("verrekenpercentage", 160, 5, "N"),  # ANT094
        ("tarief", 165, 8, "N"),  # BED160
        ("berekend", 173, 8, "N"),  # BED153
        ("berekend_dc", 181, 1, "AN"),  # COD668
        ("btw", 182, 4, "N"),  # NUM352
        ("declaratiebedrag", 186, 8, "N"),  # BED161
        ("declaratie_dc", 194, 1, "AN"),  # COD665
        ("referentie", 195, 20, "AN"),  # NUM362
        ("referentie_vorige", 215, 20, "AN"),  # NUM363
        ("reserve", 235, 76, "AN"),
    ),
    "98": _L(
        ("kenmerk", 1, 2, "N"),
        ("detail", 3, 12, "N"),
        ("regel", 15, 4, "N"),  # NUM109
        ("tekst", 19, 140, "AN"),  # OMS016
        ("reserve", 159, 152, "AN"),
    ),
    "99": _L(
        ("kenmerk", 1, 2, "N"),
        ("aantal_02", 3, 6, "N"),  # ANT085
        ("aantal_03", 9, 6, "N"),  # ANT086
        ("aantal_04", 15, 6, "N"),  # ANT087
        ("aantal_98", 21, 6, "N"),  # ANT089
        ("aantal_detail", 27, 7, "N"),  # ANT265
        ("totaal", 34, 11, "N"),  # BED025
        ("totaal_dc", 45, 1, "AN"),  # COD043
        ("reserve", 46, 265, "AN"),
    ),
}


def _codes(start: int) -> tuple[tuple[str, int, int, str], ...]:
    return tuple((f"retourcode{i + 1}", start + 4 * i, 4, "AN") for i in range(3))  # COD954-956


# AW320: each AW319 record extended to 370 characters with the answer (the 99 record differs)
ANSWER: ei.Layouts = {
    "01": DECLARATION["01"]
    + _L(
        ("referentie_verzekeraar", 311, 24, "AN"),  # NUM370
        ("dagtekening_retour", 335, 8, "N"),  # DAT277
        *_codes(343),
        ("reserve_retour", 355, 16, "AN"),
    ),
    "02": DECLARATION["02"] + _L(*_codes(311), ("reserve_retour", 323, 48, "AN")),
    "04": DECLARATION["04"]
    + _L(
        ("berekend_verzekeraar", 311, 8, "N"),  # BED165
        ("berekend_verzekeraar_dc", 319, 1, "AN"),  # COD672
        ("toegekend", 320, 8, "N"),  # BED166
        ("toegekend_dc", 328, 1, "AN"),  # COD673
        *_codes(329),
        ("reserve_retour", 341, 30, "AN"),
    ),
    "98": DECLARATION["98"] + _L(*_codes(311), ("reserve_retour", 323, 48, "AN")),
    "99": _L(
        ("kenmerk", 1, 2, "N"),
        ("aantal_02", 3, 6, "N"),
        ("aantal_03", 9, 6, "N"),
        ("aantal_04", 15, 6, "N"),
        ("aantal_98", 21, 6, "N"),
        ("aantal_detail", 27, 7, "N"),
        ("totaal", 34, 11, "N"),  # BED168 totaal ingediend
        ("totaal_dc", 45, 1, "AN"),
        ("totaal_toegekend", 46, 11, "N"),  # BED167
        ("totaal_toegekend_dc", 57, 1, "AN"),
        ("reserve", 58, 313, "AN"),
    ),
}


def _gender(value: str) -> str:
    return {"male": "1", "female": "2"}.get(value, "0")  # COD134: 0 unknown, 1 male, 2 female


def write_declaration(claim: Claim) -> bytes:
    """One claim as an AW319 to the care office (one client, one prestatierecord, the
    explanation in 98 commentaarrecords)."""
    if not claim.provider_agb:
        raise FormatError("an AW319 needs the claimant's AGB code (instellingscode)")
    if claim.quantity > 9999:
        raise FormatError("aantal is at most 9999 in an AW319 prestatierecord")
    if max(claim.amount_cents, claim.unit_price_cents) > 99_999_999:
        raise FormatError("an amount above EUR 999,999.99 does not fit an AW319 prestatierecord")
    if not (len(claim.payer.identifier) == 4 and claim.payer.identifier.isdigit()):
        raise FormatError("an AW319 names the care office by its UZOVI code (4 digits)")
    p = claim.person
    uzovi = claim.payer.identifier
    first, last = month_bounds(claim.period_start, claim.period_end)
    rec = ei.record
    lines = [
        rec(
            DECLARATION,
            RECORD,
            "01",
            {
                "berichtcode": CODE_DECLARATION,
                "versie": VERSION,
                "subversie": SUBVERSION,
                "soort": "P",  # COD856: production
                "software": SOFTWARE,
                "software_versie": "ketenbus",
                "uzovi": uzovi,
                "instelling": claim.provider_agb,
                "betaling_aan": "03",
                "periode_begin": f"{first:%Y%m%d}",
                "periode_eind": f"{last:%Y%m%d}",
                "factuurnummer": reference(claim.claim_id, 12),
                "dagtekening": f"{claim.created:%Y%m%d}",
                "valuta": "EUR",
            },
        ),
        rec(
            DECLARATION,
            RECORD,
            "02",
            {
                "detail": 1,
                "bsn": p.bsn,
                "uzovi": uzovi,
                "geboortedatum": f"{p.birth_date:%Y%m%d}",
                "geslacht": _gender(p.gender.value),
                "naamcode1": 1,  # COD700 1: the own name
                "naam1": p.family_name[:25],
                "voorletters": "".join(g[:1] for g in p.given_names)[:6],
                "postcode": (p.postal_code or "").replace(" ", "")[:6],
                "land": "NL",
            },
        ),
        rec(
            DECLARATION,
            RECORD,
            "04",
            {
                "detail": 2,
                "bsn": p.bsn,
                "uzovi": uzovi,
                "begindatum": f"{claim.period_start:%Y%m%d}",
                "einddatum": f"{claim.period_end:%Y%m%d}",
                "codelijst": PRESTATIECODELIJST,
                "prestatiecode": product("iwlz", claim)[1],
                "aantal": claim.quantity,
                "tarief": claim.unit_price_cents,
                "berekend": claim.amount_cents,
                "berekend_dc": "D",
                "btw": "0000",
                "declaratiebedrag": claim.amount_cents,
                "declaratie_dc": "D",
                "referentie": reference(claim.claim_id),
            },
        ),
    ]
    comments: list[str] = []
    for line in explanation_lines(claim):
        comments += textwrap.wrap(ascii_text(line), 140, break_on_hyphens=False) or [""]
    for n, text in enumerate(comments, start=1):
        lines.append(rec(DECLARATION, RECORD, "98", {"detail": 2 + n, "regel": n, "tekst": text}))
    lines.append(
        rec(
            DECLARATION,
            RECORD,
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


def fields(line: str) -> dict[str, str]:
    """The fields of an AW319 (310) or AW320 (370) record."""
    return ei.fields(ANSWER if len(line) == ANSWER_RECORD else DECLARATION, line)


def _retour(f: dict[str, str]) -> list[str]:
    return [f[k] for k in ("retourcode1", "retourcode2", "retourcode3") if f.get(k)]


def read_answer(raw: bytes) -> Answer:
    """An AW320: one item per 04 record, decided on the 01 record's dagtekening retourbericht.
    Retourcodes on the 01 record reject every prestatie, on a 02 record that client's; a
    prestatie granted (toegekend, no rejecting code) is the care office's commitment to pay,
    read as paid on the retour's date (AW320 has no payment fields). File errors raise."""
    text = decode_text(raw, "ascii")
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln]
    if len(lines) > MAX_RECORDS:
        raise file_error(f"more than {MAX_RECORDS} records", "too-large")
    if not lines or not lines[0].startswith("01"):
        raise file_error("the file does not start with a 01 voorlooprecord", "structure", "line 1")
    if len(lines[0]) != ANSWER_RECORD:
        raise file_error(
            f"line 1 has {len(lines[0])} characters, not {ANSWER_RECORD} (AW320)", "record-length"
        )
    head = ei.fields(ANSWER, lines[0])
    if head["berichtcode"] != CODE_ANSWER:
        raise file_error(
            f"berichtcode must be {CODE_ANSWER} (AW320), not {head['berichtcode']}",
            "wrong-message",
        )
    decided = parse_date(head["dagtekening_retour"], "line 1: dagtekening retourbericht", "ei")
    file_codes = _retour(head)
    if not lines[-1].startswith("99") or len(lines[-1]) != ANSWER_RECORD:
        raise file_error("the file does not end with a 99 sluitrecord of 370", "structure")
    body = [(n, ln) for n, ln in enumerate(lines, start=1)][1:-1]
    counted = sum(1 for _, ln in body if ln.startswith("04"))
    declared = ei.fields(ANSWER, lines[-1])["aantal_04"]
    if not declared.isdigit() or int(declared) != counted:
        raise file_error(
            f"the sluitrecord counts {declared or 'no'} prestatierecords, the file has {counted}",
            "count",
        )
    client_codes: dict[str, list[str]] = {}
    prestaties: list[tuple[int, str]] = []
    for n, ln in body:
        if ln.startswith("02") and len(ln) == ANSWER_RECORD:
            f = ei.fields(ANSWER, ln)
            client_codes[f["bsn"]] = _retour(f)
        elif not (ln[:2] in ("03", "98") and len(ln) == ANSWER_RECORD):
            prestaties.append((n, ln))

    def read(item: tuple[int, str], _: int) -> AnswerItem:
        n, line = item
        where = f"line {n}"
        if len(line) != ANSWER_RECORD:
            raise item_error(where, f"{len(line)} characters, not {ANSWER_RECORD}", "record-length")
        if not line.startswith("04"):
            raise item_error(where, f"unknown record kind {line[:2]!r}", "record-kind")
        f = ei.fields(ANSWER, line)
        for name in ("declaratiebedrag", "toegekend"):
            if f[name] and not f[name].isdigit():
                bad = "-" in f[name]
                raise item_error(
                    f"{where}: {name}",
                    "negative amount" if bad else "not an amount",
                    "negative-amount" if bad else "amount",
                )
        if f["toegekend_dc"] == "C" or f["declaratie_dc"] == "C":
            raise item_error(f"{where}: toegekend", "a credit is refused", "negative-amount")
        bsn = parse_bsn(f["bsn"], f"{where}: bsn")
        codes = file_codes + client_codes.get(bsn, []) + _retour(f)
        outcome, reason = outcome_for(codes, paid=True)
        rejected = outcome is ClaimOutcome.REJECTED
        approved = parse_cents(f["toegekend"] or f["declaratiebedrag"], f"{where}: toegekend")
        return AnswerItem(
            reference=f["referentie"],
            bsn=bsn,
            decided_on=decided,
            outcome=outcome,
            approved_cents=None if rejected else approved,
            paid_cents=None if rejected else approved,
            paid_on=None if rejected else decided,
            rejection_reason=reason,
            rejection_note=("retourcodes " + " ".join(codes)) if rejected else None,
            where=where,
        )

    return collect(prestaties, read)


def write_answer(
    claim: Claim,
    decided_on: str,
    codes: tuple[str, ...] = ("0000",),
    approved_cents: int | None = None,
    paid: tuple[str, int] | None = None,
) -> bytes:
    """The care office's AW320 to the AW319 of ``claim`` (tests, demos, care-office tooling):
    every record extended to 370 with the answer; ``codes`` on the prestatierecord. ``paid``
    is accepted for the callers of the older signature and ignored (AW320 has no payment)."""
    del paid
    day = date.fromisoformat(decided_on)
    out = []
    granted_total = 0
    for line in write_declaration(claim).decode("ascii").split("\r\n"):
        if not line:
            continue
        kind = line[:2]
        values: dict[str, str | int] = {
            k: v for k, v in ei.fields(DECLARATION, line).items() if k not in ("kenmerk", "reserve")
        }
        if kind == "01":
            values.update(
                berichtcode=CODE_ANSWER,
                referentie_verzekeraar=reference(claim.claim_id, 24),
                dagtekening_retour=f"{day:%Y%m%d}",
            )
        if kind == "04":
            rejected = any(c not in ("", "0000", "0200", "8001") for c in codes)
            granted = (
                0
                if rejected
                else (claim.amount_cents if approved_cents is None else approved_cents)
            )
            granted_total += granted
            values.update(
                berekend_verzekeraar=claim.amount_cents,
                berekend_verzekeraar_dc="D",
                toegekend=granted,
                toegekend_dc="D",
            )
            for i, c in enumerate(codes[:3], start=1):
                values[f"retourcode{i}"] = c
        if kind == "99":
            values.update(totaal_toegekend=granted_total, totaal_toegekend_dc="D")
        out.append(ei.record(ANSWER, ANSWER_RECORD, kind, values))
    return ("\r\n".join(out) + "\r\n").encode("ascii")
