"""A payer-capable deployment: a ZVH, a coordinating provider and one party per payer role,
for the financing unit tests and the claims integration test. Identifiers are synthetic."""

from __future__ import annotations

from broker.apps.deployment import LocalParty
from broker.trust import PartyRegistry, generate_party_keys, registry_entry
from schemas.vocab import PartyRole

ZVH = "zvh-midden-nederland"
PROVIDER = "fivoor"
MUNICIPALITY = "gemeente-utrecht"
OTHER_MUNICIPALITY = "gemeente-amersfoort"
INSURER = "zilveren-kruis"
CARE_OFFICE = "zorgkantoor-utrecht"
DJI = "dji"
VWS = "vws"
NATIONAL = "landelijk-coordinatiepunt"
DJI_OIN = "00000001003214345000"
VWS_OIN = "00000001003214369000"
PROVIDER_AGB = "73730101"

PARTIES = [
    LocalParty(
        ZVH,
        "Zorg- en Veiligheidshuis Midden-Nederland",
        PartyRole.ZVH,
        "midden-nederland",
        {"municipality": "0344"},
    ),
    LocalParty(
        PROVIDER,
        "Fivoor (coördinerend levensloopaanbieder)",
        PartyRole.COORDINATING_PROVIDER,
        "midden-nederland",
        {"agb": PROVIDER_AGB},
    ),
    LocalParty(
        MUNICIPALITY, "Gemeente Utrecht", PartyRole.MUNICIPALITY, None, {"municipality": "0344"}
    ),
    LocalParty(
        OTHER_MUNICIPALITY,
        "Gemeente Amersfoort",
        PartyRole.MUNICIPALITY,
        None,
        {"municipality": "0307"},
    ),
    LocalParty(INSURER, "Zilveren Kruis", PartyRole.HEALTH_INSURER, None, {"uzovi": "3311"}),
    LocalParty(CARE_OFFICE, "Zorgkantoor Utrecht", PartyRole.CARE_OFFICE, None, {"uzovi": "5507"}),
    LocalParty(DJI, "Dienst Justitiële Inrichtingen", PartyRole.DJI, None, {"oin": DJI_OIN}),
    LocalParty(VWS, "Ministerie van VWS", PartyRole.VWS, None, {"oin": VWS_OIN}),
    LocalParty(NATIONAL, "Landelijk coördinatiepunt", PartyRole.NATIONAL_COORDINATION, None, None),
]


def registry(parties: list[LocalParty] | None = None) -> PartyRegistry:
    """An in-memory registry of ``parties`` (default: all of the above) with fresh keys."""
    return PartyRegistry(
        registry_entry(
            generate_party_keys(p.id),
            role=p.role,
            name=p.name,
            region=p.region,
            identifiers=p.identifiers,
        )
        for p in [LocalParty("router", "router", PartyRole.ROUTER), *(parties or PARTIES)]
    )
