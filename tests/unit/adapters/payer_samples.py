"""Sample claims for the payer formats and the golden files made from them.

Regenerate the golden files after a deliberate format change (then review the diff against
docs/adapters/payers.md before committing)::

    python -m tests.unit.adapters.payer_samples
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from adapters.payer.formats import vektis, vws, wlz, wmo
from schemas.flows.claim import Claim, ClaimExplanation, ExplanationInput, Payer
from schemas.flows.common import Gender, Person
from schemas.vocab import ClaimService, FinancingRegime, PartyRole

GOLDEN = Path(__file__).with_name("golden")
PERSON = Person(
    bsn="999990019",
    family_name="Ëlsen-Voorbeeld",
    given_names=("Jan", "Piet"),
    birth_date=date(1985, 4, 3),
    gender=Gender.MALE,
    residence_municipality="0344",
    postal_code="3511 AB",
)
AGB = "73730101"


def _explained(rule: str, inputs: tuple[tuple[str, str], ...], text: str) -> ClaimExplanation:
    return ClaimExplanation(
        rule=rule,
        version="1",
        inputs=tuple(ExplanationInput(name=k, value=v) for k, v in inputs),
        text=text,
    )


REGISTRATION = Claim(
    claim_id="REG-MN-2020-0042",
    provider="fivoor",
    provider_agb=AGB,
    created=date(2020, 11, 20),
    person=PERSON,
    service=ClaimService.REGISTRATION,
    period_start=date(2020, 10, 1),
    period_end=date(2020, 11, 20),
    quantity=1,
    unit_price_cents=200_000,
    amount_cents=200_000,
    regime=FinancingRegime.WMO,
    payer=Payer(party_id="gemeente-utrecht", role=PartyRole.MUNICIPALITY, identifier="0344"),
    zvh="zvh-midden-nederland",
    referral_id="MN-2020-0042",
    allocation="20072",  # the municipality's WMO301 ToewijzingNummer
    explanation=_explained(
        "registration-pilot",
        (("municipality", "0344"),),
        "registration-pilot@1: registration at EUR 2,000.00; municipality 0344: "
        "municipality pays under wmo",
    ),
)
COORDINATION_INSURER = Claim(
    claim_id="CO-EP-MN-0042-20231115-20231130",
    provider="fivoor",
    provider_agb=AGB,
    created=date(2023, 12, 1),
    person=PERSON,
    service=ClaimService.COORDINATION_DAY,
    period_start=date(2023, 11, 15),
    period_end=date(2023, 11, 30),
    quantity=16,
    unit_price_cents=2_000,
    amount_cents=32_000,
    regime=FinancingRegime.ZVW,
    payer=Payer(party_id="zilveren-kruis", role=PartyRole.HEALTH_INSURER, identifier="3311"),
    zvh="zvh-midden-nederland",
    referral_id="MN-2023-0042",
    episode_id="EP-MN-0042",
    explanation=_explained(
        "coordination-temporary-2022-2023",
        (("criminal-law-title", "none"), ("health-insurer", "3311")),
        "coordination-temporary-2022-2023@1: coordination-day at EUR 20.00 (per day of "
        "client-bound coordination, from the inclusion date); criminal-law-title none; "
        "health-insurer 3311: health-insurer pays under zvw",
    ),
)
COORDINATION_DJI = COORDINATION_INSURER.model_copy(
    update={
        "claim_id": "CO-EP-MN-0042-20231210-20231231",
        "created": date(2024, 1, 1),
        "period_start": date(2023, 12, 10),
        "period_end": date(2023, 12, 31),
        "quantity": 22,
        "amount_cents": 44_000,
        "regime": FinancingRegime.JUSTICE,
        "payer": Payer(party_id="dji", role=PartyRole.DJI, identifier="00000001003214345000"),
        "explanation": _explained(
            "coordination-temporary-2022-2023",
            (("criminal-law-title", "in force"),),
            "coordination-temporary-2022-2023@1: coordination-day at EUR 20.00; "
            "criminal-law-title in force: dji pays under justice",
        ),
    }
)
TREATMENT_WLZ = Claim(
    claim_id="T-2024-0007",
    provider="fivoor",
    provider_agb=AGB,
    created=date(2024, 4, 2),
    person=PERSON,
    service=ClaimService.TREATMENT,
    period_start=date(2024, 3, 1),
    period_end=date(2024, 3, 31),
    quantity=4,
    unit_price_cents=12_550,
    amount_cents=50_200,
    regime=FinancingRegime.WLZ,
    payer=Payer(party_id="zorgkantoor-utrecht", role=PartyRole.CARE_OFFICE, identifier="5507"),
    zvh="zvh-midden-nederland",
    referral_id="MN-2023-0042",
    explanation=_explained(
        "treatment",
        (("criminal-law-title", "none"), ("wlz-care-office", "5507")),
        "treatment@1: treatment at the agreed price; care-office pays under wlz",
    ),
)
EMERGENCY_VWS = Claim(
    claim_id="T-2020-0099",
    provider="fivoor",
    provider_agb=AGB,
    created=date(2020, 12, 1),
    person=PERSON.model_copy(update={"residence_municipality": None}),
    service=ClaimService.TREATMENT,
    period_start=date(2020, 11, 1),
    period_end=date(2020, 11, 30),
    quantity=2,
    unit_price_cents=15_000,
    amount_cents=30_000,
    regime=FinancingRegime.VWS_EMERGENCY,
    payer=Payer(party_id="vws", role=PartyRole.VWS, identifier="00000001003214369000"),
    zvh="zvh-midden-nederland",
    referral_id="MN-2020-0099",
    explanation=_explained(
        "vws-emergency-rule",
        (("service-rule", "treatment@1"), ("criminal-law-title", "none")),
        "vws-emergency-rule@1: treatment: no payer of treatment@1 applies (regime unclear), "
        "so VWS is billed; VWS advances it when it stays unpaid for more than 28 days",
    ),
)

# golden file name -> (writer, claim)
GOLDEN_FILES = {
    "wmo323-registration.xml": (wmo.write_declaration, REGISTRATION),
    "vektis-coordination-insurer.asc": (vektis.write_declaration, COORDINATION_INSURER),
    "vektis-coordination-dji.asc": (vektis.write_declaration, COORDINATION_DJI),
    "aw319-treatment.asc": (wlz.write_declaration, TREATMENT_WLZ),
    "vws-emergency.csv": (vws.write_declaration, EMERGENCY_VWS),
}


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, (write, claim) in GOLDEN_FILES.items():
        path = GOLDEN / name
        path.write_bytes(write(claim))
        print(path)


if __name__ == "__main__":
    main()
