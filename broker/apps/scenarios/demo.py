"""The demo scenario behind ``make up``: two regions, sample referrals through the ZVH inbox and
HTTP endpoint — with consent, without consent, under conflict of duties, after a revocation —
and one malformed file. People are synthetic and made at run time."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from broker.apps.deployment import LocalParty
from broker.apps.synthetic import synthetic_birth_date, synthetic_bsn, synthetic_name
from schemas.vocab import DataCategory, PartyRole

PARTIES = [
    LocalParty(
        "zvh-midden-nederland",
        "Zorg- en Veiligheidshuis Midden-Nederland",
        PartyRole.ZVH,
        "midden-nederland",
    ),
    LocalParty(
        "fivoor",
        "Fivoor (coördinerend levensloopaanbieder)",
        PartyRole.COORDINATING_PROVIDER,
        "midden-nederland",
        {"agb": "73730101"},
    ),
    LocalParty(
        "zvh-ijsselland", "Zorg- en Veiligheidshuis IJsselland", PartyRole.ZVH, "oost-nederland"
    ),
    LocalParty(
        "transfore",
        "Transfore (coördinerend levensloopaanbieder)",
        PartyRole.COORDINATING_PROVIDER,
        "oost-nederland",
        {"agb": "73730202"},
    ),
]
MUNICIPALITY = LocalParty(
    "gemeente-utrecht", "Gemeente Utrecht", PartyRole.MUNICIPALITY, None, {"municipality": "0344"}
)
"""The municipality of the demo's residents (CBS 0344): ``ketenbus up`` runs its adapter, which
receives the ZVH's referral notices (docs/adapters/municipality.md)."""

REFERRAL_CATEGORIES = [
    DataCategory.IDENTITY,
    DataCategory.CONTACT,
    DataCategory.REFERRAL_SIGNAL,
    DataCategory.RISK_ASSESSMENT,
    DataCategory.LEGAL_TITLE,
    DataCategory.PROCESS,
]


@dataclass(frozen=True)
class Expectation:
    case_id: str
    delivered: bool
    why: str


def _person(rng: random.Random, today: date, municipality: str) -> dict[str, Any]:
    given, family = synthetic_name(rng)
    return {
        "bsn": synthetic_bsn(rng),
        "family_name": family,
        "given_names": [given],
        "birth_date": synthetic_birth_date(rng, today).isoformat(),
        "gender": rng.choice(["male", "female"]),
        "municipality": municipality,
    }


def referral(
    case_id: str, region: str, person: dict[str, Any], today: date, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "referral",
        "case_id": case_id,
        "region": region,
        "registered_on": today.isoformat(),
        "person": person,
        "signaller": {"name": "Politie eenheid " + region, "sector": "police"},
        "signal": "Herhaalde ernstige bedreigingen van buurtbewoners; zorg wordt gemeden.",
        "risk": {"level": "high", "summary": "Risicotaxatie HKT-R: hoog risico op geweld."},
        "legal_titles": [
            {"kind": "wvggz-zorgmachtiging", "start": (today - timedelta(days=200)).isoformat()}
        ],
        "care_avoider": True,
    }
    doc.update(extra)
    return doc


def consent(consent_id: str, bsn: str, today: date, status: str = "active") -> dict[str, Any]:
    return {
        "type": "consent",
        "consent_id": consent_id,
        "bsn": bsn,
        "status": status,
        "recipient_roles": ["coordinating-provider"],
        "purposes": ["COC"],
        "categories": [c.value for c in REFERRAL_CATEGORIES],
        "valid_from": (today - timedelta(days=1)).isoformat(),
        "valid_until": (today + timedelta(days=730)).isoformat(),
        "recorded_at": datetime.now(UTC).isoformat(),
    }


@dataclass
class DemoPlan:
    consents: list[tuple[str, dict[str, Any]]]  # (zvh party, document), sent first
    revocations: list[tuple[str, dict[str, Any]]]  # sent after the consents are acknowledged
    referrals: list[tuple[str, dict[str, Any]]]  # (zvh party, document)
    malformed: list[tuple[str, str, bytes]]  # (zvh party, file name, bytes)
    expect: list[Expectation]


def plan(seed: int | None = None, today: date | None = None) -> DemoPlan:
    rng = random.Random(seed)  # noqa: S311 - synthetic test data, not security
    today = today or date.today()
    mn, on = "zvh-midden-nederland", "zvh-ijsselland"
    a, b, c, d, e = (_person(rng, today, m) for m in ("0344", "0344", "0307", "0193", "0153"))
    return DemoPlan(
        consents=[
            (mn, consent("toestemming-a", a["bsn"], today)),
            (on, consent("toestemming-d", d["bsn"], today)),
            (on, consent("toestemming-e", e["bsn"], today)),
        ],
        revocations=[(on, consent("toestemming-e", e["bsn"], today, status="revoked"))],
        referrals=[
            (mn, referral("MN-2026-0001", "midden-nederland", a, today)),
            (mn, referral("MN-2026-0002", "midden-nederland", b, today)),
            (
                mn,
                referral(
                    "MN-2026-0003",
                    "midden-nederland",
                    c,
                    today,
                    basis={
                        "kind": "conflict-of-duties",
                        "justification": "Acuut gevaar voor derden; geen toestemming mogelijk.",
                        "decided_by": "procesregisseur ZVH Midden-Nederland",
                        # one occasion: the decision ends a week after the router's day
                        "valid_until": (today + timedelta(days=7)).isoformat(),
                    },
                ),
            ),
            (on, referral("ON-2026-0001", "oost-nederland", d, today)),
            (on, referral("ON-2026-0002", "oost-nederland", e, today)),
        ],
        malformed=[
            (
                mn,
                "aanmelding-kapot.json",
                b'{"type": "referral", "case_id": "MN-2026-0004", "person": {"bsn": "123456789"}}',
            )
        ],
        expect=[
            Expectation("MN-2026-0001", True, "consent for coordination of care"),
            Expectation("MN-2026-0002", False, "no consent"),
            Expectation("MN-2026-0003", True, "conflict of duties, justified"),
            Expectation("ON-2026-0001", True, "consent for coordination of care"),
            Expectation("ON-2026-0002", False, "consent revoked"),
        ],
    )


def drop(inbox: Path, name: str, content: bytes) -> Path:
    """Drop a file the way a counterpart should: write a temp file, then rename."""
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox / f".{name}.tmp"
    tmp.write_bytes(content)
    target = inbox / name
    tmp.rename(target)
    return target


def dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()
