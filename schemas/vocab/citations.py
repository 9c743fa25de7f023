"""The closed, versioned list of legal provisions a message may cite (issue 16).

A citation on the wire (``legal-basis-citation``) must be the ``id`` of an entry, or exactly one
of its ``aliases`` (the statute names messages carried before the list existed). Anything else --
"Wvggz whatever", a misspelt article -- is not listed and the policy refuses it
(``citation-not-listed``). The policy accepts entries by id; a statute's id accepts its
articles too.

Article numbers and titles are locators for the organisation's FG to check against
wetten.overheid.nl; ``checked`` says which entries were checked, where and when (the others are
unverified, and ``docs/policy.md`` §1a says so); a change is a new ``CITATION_LIST_VERSION``.
``legal_title`` marks the statutes under which a court or the OM imposes a *legal title* on a
person (Wvggz zorgmachtiging, Wzd rechterlijke machtiging, Wfz forensische titel); the policy
can require such a citation to reference that title. ``exceptions`` are the art. 9/10 grounds the
provision carries, used for messages that do not state one (``docs/policy.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from schemas.vocab.grounds import SpecialException

# 2026.2: each entry records whether and where its id and title were checked (``checked``)
CITATION_LIST_VERSION = "2026.2"
CITATION_LIST_DATE = date(2026, 12, 6)

_CARE = (SpecialException.CARE,)
_CRIMINAL_CARE = (SpecialException.CARE, SpecialException.CRIMINAL_BODIES)


@dataclass(frozen=True, slots=True)
class Citation:
    """One listed provision: a statute as a whole, one of its articles, or a public task."""

    id: str
    statute: str  # the id of the statute (or task) it belongs to; a statute is its own
    title: str
    kind: Literal["statute", "article", "task"] = "article"
    legal_title: bool = False
    exceptions: tuple[SpecialException, ...] = ()
    aliases: tuple[str, ...] = ()
    # Where and when the id and title were checked against the text of the law ("" = not yet:
    # a locator from the design, for the FG to check; docs/policy.md lists which).
    checked: str = ""


def _s(
    id: str,
    title: str,
    aliases: tuple[str, ...],
    exceptions: tuple[SpecialException, ...] = (),
    legal_title: bool = False,
    checked: str = "",
) -> Citation:
    return Citation(id, id, title, "statute", legal_title, exceptions, aliases, checked)


def _a(
    statute: Citation, number: str, title: str, *aliases: str, checked: str = ""
) -> Citation:
    return Citation(
        f"{statute.id}-art-{number}",
        statute.id,
        title,
        "article",
        statute.legal_title,
        statute.exceptions,
        aliases,
        checked,
    )



WVGGZ = _s(
    "wvggz",
    "Wet verplichte geestelijke gezondheidszorg",
    ("Wvggz", "Wet verplichte ggz", "Wet verplichte geestelijke gezondheidszorg"),
    _CARE,
    legal_title=True,
    checked="wetten.overheid.nl BWBR0040635 (title), 2026-12-06",
)
WZD = _s("wzd", "Wet zorg en dwang", ("Wzd", "Wet zorg en dwang"), _CARE, legal_title=True)
WFZ = _s(
    "wfz", "Wet forensische zorg", ("Wfz", "Wet forensische zorg"), _CRIMINAL_CARE, legal_title=True
)
WGBO = _s("wgbo", "Wet op de geneeskundige behandelingsovereenkomst (BW boek 7 titel 7 afd. 5)",
          ("Wgbo",), _CARE)  # fmt: skip
WMO = _s(
    "wmo-2015",
    "Wet maatschappelijke ondersteuning 2015",
    ("Wmo 2015", "Wet maatschappelijke ondersteuning 2015"),
    _CARE,
    checked="wetten.overheid.nl BWBR0035362 (title), 2026-12-06",
)
ZVW = _s("zvw", "Zorgverzekeringswet", ("Zvw", "Zorgverzekeringswet"))
WLZ = _s("wlz", "Wet langdurige zorg", ("Wlz", "Wet langdurige zorg"))
WPG = _s("wpg", "Wet politiegegevens", ("Wpg", "Wet politiegegevens"),
         (SpecialException.CRIMINAL_BODIES,))  # fmt: skip
UAVG = _s("uavg", "Uitvoeringswet Algemene verordening gegevensbescherming", ("UAVG",),
          checked="wetten.overheid.nl BWBR0040940 (title), 2026-12-06")  # fmt: skip
GEMEENTEWET = _s("gemeentewet", "Gemeentewet", ("Gemeentewet",))

CITATIONS: tuple[Citation, ...] = (
    WVGGZ,
    _a(WVGGZ, "8:27", "Wvggz art. 8:27 (hoofdstuk 8)", "Wvggz art. 8:27"),
    _a(WVGGZ, "8:32", "Wvggz art. 8:32 (hoofdstuk 8)", "Wvggz art. 8:32"),
    WZD,
    WFZ,
    WGBO,
    _a(WGBO, "7:457", "BW art. 7:457: geheimhoudingsplicht van de hulpverlener", "BW art. 7:457"),
    WMO,
    _a(WMO, "2.3.2", "Wmo 2015 art. 2.3.2: onderzoek na een melding", "Wmo 2015 art. 2.3.2"),
    _a(WMO, "5.1.1", "Wmo 2015 art. 5.1.1: verwerking van persoonsgegevens door het college",
       "Wmo 2015 art. 5.1.1"),
    ZVW,
    _a(ZVW, "11", "Zvw art. 11: zorgplicht van de zorgverzekeraar", "Zvw art. 11"),
    WLZ,
    WPG,
    UAVG,
    _a(UAVG, "30", "UAVG art. 30: uitzonderingen voor gegevens over gezondheid", "UAVG art. 30"),
    _a(UAVG, "32", "UAVG art. 32: strafrechtelijke gegevens, algemene uitzonderingen",
       "UAVG art. 32"),
    _a(UAVG, "33", "UAVG art. 33: strafrechtelijke gegevens, overige uitzonderingen",
       "UAVG art. 33"),
    GEMEENTEWET,
    _a(GEMEENTEWET, "172", "Gemeentewet art. 172: handhaving openbare orde",
       "Gemeentewet art. 172",
       checked="art. 172(1) as quoted by burgemeesters.nl (NGB), 2026-12-06"),
    Citation(
        "task-lcp-levensloopaanpak",
        "task-lcp-levensloopaanpak",
        "Landelijk coördinatiepunt Levensloopaanpak (opdracht VWS/JenV)",
        "task",
        exceptions=_CARE,
        aliases=("Landelijk coördinatiepunt Levensloopaanpak",),
    ),
    Citation(
        "task-tijdelijke-regeling-levensloop",
        "task-tijdelijke-regeling-levensloop",
        "Tijdelijke regeling Levensloopaanpak 2022-2023 (bestuurlijke afspraak: EUR 20 per dag "
        "bij DJI of de zorgverzekeraar, DJI ook voor de gemeenten; ministeries VWS en JenV "
        "voor de aanmeldfase; implementatieplan 2022, 2.2 en 2.5)",
        "task",
        aliases=("Tijdelijke regeling Levensloopaanpak 2022-2023",),
    ),
    Citation(
        "task-noodregeling-vws",
        "task-noodregeling-vws",
        "Noodregeling VWS (financiering bij onduidelijk regime)",
        "task",
        aliases=("Noodregeling VWS",),
    ),
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


_BY_NAME: dict[str, Citation] = {}
for _c in CITATIONS:
    for _name in (_c.id, *_c.aliases):
        assert _BY_NAME.get(_norm(_name), _c) is _c, f"citation name {_name!r} listed twice"
        _BY_NAME[_norm(_name)] = _c
BY_ID: dict[str, Citation] = {c.id: c for c in CITATIONS}


def resolve_citation(text: str) -> Citation | None:
    """The listed provision ``text`` names exactly (an id or an alias; case and runs of
    whitespace do not matter), or None. No prefix matching: "Wvggz whatever" is not listed."""
    return _BY_NAME.get(_norm(text))


def covers(accepted_id: str, citation: Citation) -> bool:
    """Whether accepting ``accepted_id`` (an entry of the list) accepts ``citation``: the same
    entry, or the statute of the article."""
    return citation.id == accepted_id or citation.statute == accepted_id
