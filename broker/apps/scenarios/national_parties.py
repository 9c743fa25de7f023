"""The synthetic parties of the national scenario: 11 Levensloop regions, 25 Zorg- en
Veiligheidshuizen, one coordinating provider per region, a municipality per region, the four
pilot insurers, three care offices, DJI, VWS, the national coordination point and the capacity
dashboard.

The real list of the 11 regions was not available to us: the four pilot regions carry their
names from the sources, the other seven are plausible. Municipality codes are CBS codes; UZOVI
codes of CZ and Menzis come from the notes, Zilveren Kruis' from the repo's fixtures, VGZ's
and the care offices' are synthetic. AGB codes and OINs are synthetic. Keys are made at run
time by ``create_local``.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.apps.deployment import LocalParty
from schemas.vocab import PartyRole

DJI = "dji"
VWS = "vws"
NATIONAL = "landelijk-coordinatiepunt"
DASHBOARD = "dashboard-beveiligde-zorg"


@dataclass(frozen=True)
class Zvh:
    id: str
    name: str


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    zvhs: tuple[Zvh, ...]
    provider: str  # the coordinating provider's party id
    provider_name: str
    agb: str
    municipality: str  # CBS code of the region's central municipality (a party)
    municipality_name: str
    insurer: str  # party id of the insurer most people of the region have
    care_office: str
    pilot: bool = False


INSURERS = {  # party id -> (name, UZOVI)
    "menzis": ("Menzis", "3332"),
    "zilveren-kruis": ("Zilveren Kruis", "3311"),
    "cz": ("CZ", "7119"),
    "vgz": ("VGZ", "7095"),
}
CARE_OFFICES = {  # party id -> (name, UZOVI)
    "zorgkantoor-noord": ("Zorgkantoor Noord", "5501"),
    "zorgkantoor-midden": ("Zorgkantoor Midden", "5507"),
    "zorgkantoor-zuid": ("Zorgkantoor Zuid", "5514"),
}


def _z(*pairs: tuple[str, str]) -> tuple[Zvh, ...]:
    return tuple(Zvh(f"zvh-{i}", f"Zorg- en Veiligheidshuis {n}") for i, n in pairs)


REGIONS: tuple[Region, ...] = (
    Region(
        "oost-nederland",
        "Oost-Nederland",
        _z(
            ("ijsselland", "IJsselland"),
            ("twente", "Twente"),
            ("noord-oost-gelderland", "Noord- en Oost-Gelderland"),
        ),
        "transfore",
        "Transfore",
        "73730202",
        "0193",
        "Zwolle",
        "menzis",
        "zorgkantoor-midden",
        pilot=True,
    ),
    Region(
        "midden-nederland",
        "Midden-Nederland",
        _z(("midden-nederland", "Midden-Nederland"), ("eemland", "Eemland")),
        "fivoor",
        "Fivoor",
        "73730101",
        "0344",
        "Utrecht",
        "zilveren-kruis",
        "zorgkantoor-midden",
        pilot=True,
    ),
    Region(
        "limburg",
        "Limburg",
        _z(("limburg-noord", "Limburg-Noord"), ("limburg-zuid", "Limburg-Zuid")),
        "de-rooyse-wissel",
        "De Rooyse Wissel",
        "73730303",
        "0935",
        "Maastricht",
        "cz",
        "zorgkantoor-zuid",
        pilot=True,
    ),
    Region(
        "oost-brabant",
        "Oost-Brabant",
        _z(("brabant-noordoost", "Brabant Noordoost"), ("brabant-zuidoost", "Brabant Zuidoost")),
        "de-woenselse-poort",
        "De Woenselse Poort",
        "73730404",
        "0772",
        "Eindhoven",
        "vgz",
        "zorgkantoor-zuid",
        pilot=True,
    ),
    Region(
        "noord-nederland",
        "Noord-Nederland",
        _z(("groningen", "Groningen"), ("fryslan", "Fryslân")),
        "forensische-zorg-noord",
        "Forensische Zorg Noord",
        "73730505",
        "0014",
        "Groningen",
        "menzis",
        "zorgkantoor-noord",
    ),
    Region(
        "noord-holland",
        "Noord-Holland",
        _z(
            ("amsterdam-amstelland", "Amsterdam-Amstelland"),
            ("noord-holland-noord", "Noord-Holland Noord"),
            ("kennemerland", "Kennemerland"),
        ),
        "forensisch-netwerk-noord-holland",
        "Forensisch Netwerk Noord-Holland",
        "73730606",
        "0363",
        "Amsterdam",
        "zilveren-kruis",
        "zorgkantoor-noord",
    ),
    Region(
        "zuid-holland-noord",
        "Zuid-Holland Noord",
        _z(("haaglanden", "Haaglanden"), ("hollands-midden", "Hollands Midden")),
        "levensloop-haaglanden",
        "Levensloop Haaglanden",
        "73730707",
        "0518",
        "Den Haag",
        "zilveren-kruis",
        "zorgkantoor-midden",
    ),
    Region(
        "zuid-holland-zuid",
        "Zuid-Holland Zuid",
        _z(
            ("rotterdam-rijnmond", "Rotterdam-Rijnmond"), ("zuid-holland-zuid", "Zuid-Holland Zuid")
        ),
        "forensisch-centrum-rijnmond",
        "Forensisch Centrum Rijnmond",
        "73730808",
        "0599",
        "Rotterdam",
        "cz",
        "zorgkantoor-midden",
    ),
    Region(
        "west-brabant-zeeland",
        "West-Brabant en Zeeland",
        _z(
            ("west-brabant", "West-Brabant"),
            ("zeeland", "Zeeland"),
            ("hart-van-brabant", "Hart van Brabant"),
        ),
        "forensische-zorg-zuidwest",
        "Forensische Zorg Zuidwest",
        "73730909",
        "0758",
        "Breda",
        "cz",
        "zorgkantoor-zuid",
    ),
    Region(
        "gelderland-zuid",
        "Gelderland-Zuid",
        _z(("gelderland-zuid", "Gelderland-Zuid"), ("gelderland-midden", "Gelderland-Midden")),
        "levensloop-gelderland",
        "Levensloop Gelderland",
        "73731010",
        "0268",
        "Nijmegen",
        "vgz",
        "zorgkantoor-midden",
    ),
    Region(
        "flevoland-gooi",
        "Flevoland en Gooi",
        _z(("flevoland", "Flevoland"), ("gooi-en-vechtstreek", "Gooi en Vechtstreek")),
        "levensloop-flevoland",
        "Levensloop Flevoland",
        "73731111",
        "0034",
        "Almere",
        "vgz",
        "zorgkantoor-midden",
    ),
)


def municipality_id(region: Region) -> str:
    return "gemeente-" + region.municipality_name.lower().replace(" ", "-")


def parties() -> list[LocalParty]:
    out: list[LocalParty] = []
    for r in REGIONS:
        for z in r.zvhs:
            # a ZVH processes for its covenant partners, controllers of what they bring (it
            # has no legal basis of its own): here the region's central municipality
            out.append(
                LocalParty(
                    z.id,
                    z.name,
                    PartyRole.ZVH,
                    r.code,
                    {"municipality": r.municipality},
                    processes_for=(municipality_id(r),),
                )
            )
        out.append(
            LocalParty(
                r.provider,
                f"{r.provider_name} (coördinerend levensloopaanbieder)",
                PartyRole.COORDINATING_PROVIDER,
                r.code,
                {"agb": r.agb},
            )
        )
        out.append(
            LocalParty(
                municipality_id(r),
                f"Gemeente {r.municipality_name}",
                PartyRole.MUNICIPALITY,
                None,
                {"municipality": r.municipality},
            )
        )
    for pid, (name, uzovi) in INSURERS.items():
        out.append(LocalParty(pid, name, PartyRole.HEALTH_INSURER, None, {"uzovi": uzovi}))
    for pid, (name, uzovi) in CARE_OFFICES.items():
        out.append(LocalParty(pid, name, PartyRole.CARE_OFFICE, None, {"uzovi": uzovi}))
    out += [
        LocalParty(
            DJI,
            "Dienst Justitiële Inrichtingen",
            PartyRole.DJI,
            None,
            {"oin": "00000001003214345000"},
        ),
        LocalParty(VWS, "Ministerie van VWS", PartyRole.VWS, None, {"oin": "00000001003214369000"}),
        LocalParty(
            NATIONAL, "Landelijk coördinatiepunt Levensloopaanpak", PartyRole.NATIONAL_COORDINATION
        ),
        LocalParty(DASHBOARD, "Landelijk dashboard beveiligde zorg", PartyRole.CAPACITY_DASHBOARD),
    ]
    return out


def region_of_zvh(zvh_id: str) -> Region:
    for r in REGIONS:
        if any(z.id == zvh_id for z in r.zvhs):
            return r
    raise KeyError(zvh_id)
