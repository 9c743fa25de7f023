"""Secure-bed capacity report (capaciteitsmelding): per provider, location and security level,
the beds in service, occupied and available at one moment. No personal data at all: the model
has no free text, only counts, codes and ids (which may not hold a run of 8 or more digits, to
keep BSNs out), and the message may carry nothing but the MeasureReport.

FHIR: one MeasureReport (aggregate; the focus), type ``summary``, measure
``https://ketenbus.nl/fhir/Measure/secure-bed-capacity``, ``subject`` = the Location (by
identifier), ``reporter`` = the provider, ``date`` and ``period`` = the moment, and one ``group``
per security level with the populations in-service, occupied and available. One report covers
one location (the topic ``capacity`` is keyed by location id).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from schemas.errors import Issue, MessageError, build_model, rule_error
from schemas.flows.common import (
    LOCATION_SYSTEM,
    Code,
    FieldMap,
    IdValue,
    PartyId,
    Src,
    concept,
    logical_reference,
    one,
    party_org_reference,
)
from schemas.flows.referral import EXT_REGION, REGION_SYSTEM
from schemas.messaging import MessageMeta, ParsedMessage, build_message, fhir_datetime
from schemas.vocab import CapacityPopulation, DataCategory, SecurityLevel
from schemas.vocab.capacity import MEASURE_URL

CAPACITY_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/capacity-report"
MAX_BEDS = 100_000


def _no_digit_runs(value: str) -> str:
    if re.search(r"[0-9]{8}", value):
        raise ValueError("must not contain 8 or more digits in a row (no personal numbers)")
    return value


AggregateId = Annotated[IdValue, AfterValidator(_no_digit_runs)]
AggregateParty = Annotated[PartyId, AfterValidator(_no_digit_runs)]
AggregateCode = Annotated[Code, AfterValidator(_no_digit_runs)]
BedCount = Annotated[int, Field(ge=0, le=MAX_BEDS, strict=True)]


class LevelCapacity(BaseModel):
    """The beds of one security level at the location."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    security_level: SecurityLevel = Field(description="Security level 2, 3 or 4.")
    in_service: BedCount = Field(description="Beds in service (staffed and usable).")
    occupied: BedCount = Field(description="Beds in service that are occupied.")
    available: BedCount = Field(description="Beds free for a new admission now.")

    @model_validator(mode="after")
    def _counts(self) -> LevelCapacity:
        if self.security_level is SecurityLevel.AMBULANT:
            raise rule_error("security-level", "capacity is about secure beds", "security_level")
        if self.occupied + self.available > self.in_service:
            raise rule_error(
                "bed-counts", "occupied plus available exceeds the beds in service", "available"
            )
        return self


class CapacityReport(BaseModel):
    """Secure-bed capacity of one location at one moment; cannot hold personal data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report_id: AggregateId = Field(description="The provider's id of this report.")
    provider: AggregateParty = Field(description="The reporting provider.")
    location_id: AggregateId = Field(description="The location (unit) the beds are at.")
    region: AggregateCode | None = Field(default=None, description="Levensloop region code.")
    measured_at: AwareDatetime = Field(description="The moment the counts hold.")
    levels: tuple[LevelCapacity, ...] = Field(
        min_length=1, max_length=3, description="Counts per security level, each level once."
    )

    @model_validator(mode="after")
    def _levels(self) -> CapacityReport:
        seen = [lv.security_level for lv in self.levels]
        if len(seen) != len(set(seen)):
            raise rule_error("levels", "each security level appears once", "levels")
        return self


MAPPING = (
    FieldMap("report_id", "MeasureReport.identifier (…/NamingSystem/capacity-report)", "aggregate"),
    FieldMap("provider", "MeasureReport.reporter (Organization by party id)", "aggregate"),
    FieldMap(
        "location_id", "MeasureReport.subject (Location by …/NamingSystem/location)", "aggregate"
    ),
    FieldMap("region", "MeasureReport.extension[levensloop-region].valueCoding", "aggregate"),
    FieldMap("measured_at", "MeasureReport.date (= period.start = period.end)", "aggregate"),
    FieldMap("levels[].security_level", "MeasureReport.group.code", "aggregate"),
    FieldMap(
        "levels[].in_service, occupied, available",
        "MeasureReport.group.population (code = CapacityPopulation, count)",
        "aggregate",
    ),
)

_COUNTS = (
    (CapacityPopulation.IN_SERVICE, "in_service"),
    (CapacityPopulation.OCCUPIED, "occupied"),
    (CapacityPopulation.AVAILABLE, "available"),
)


def capacity_entries(r: CapacityReport) -> list[tuple[dict[str, Any], DataCategory]]:
    moment = fhir_datetime(r.measured_at)
    report: dict[str, Any] = {"resourceType": "MeasureReport"}
    if r.region is not None:
        report["extension"] = [
            {"url": EXT_REGION, "valueCoding": {"system": REGION_SYSTEM, "code": r.region}}
        ]
    report |= {
        "identifier": [{"system": CAPACITY_SYSTEM, "value": r.report_id}],
        "status": "complete",
        "type": "summary",
        "measure": MEASURE_URL,
        "subject": logical_reference("Location", LOCATION_SYSTEM, r.location_id),
        "date": moment,
        "reporter": party_org_reference(r.provider),
        "period": {"start": moment, "end": moment},
        "group": [
            {
                "code": concept(lv.security_level),
                "population": [
                    {"code": concept(pop), "count": getattr(lv, attr)} for pop, attr in _COUNTS
                ],
            }
            for lv in r.levels
        ],
    }
    return [(report, DataCategory.AGGREGATE)]


def capacity_message(r: CapacityReport, meta: MessageMeta) -> dict[str, Any]:
    """The capacity report as a FHIR message Bundle; the focus is the MeasureReport."""
    return build_message(meta, capacity_entries(r), focus=[0])


def _level(g: Src) -> LevelCapacity:
    counts: dict[str, int] = {}
    paths: dict[str, str] = {}
    for p in g.items("population"):
        pop = p.code("code", CapacityPopulation)
        attr = dict(_COUNTS)[pop]
        if attr in counts:
            raise p.error("code", "invalid", f"population {pop.value} appears twice", "duplicate")
        counts[attr] = p.integer("count")
        paths[attr] = p.at("count")
    for pop, attr in _COUNTS:
        if attr not in counts:
            raise g.error("population", "required", f"population {pop.value} is missing", "count")
    return build_model(
        LevelCapacity,
        {"security_level": g.code("code", SecurityLevel), **counts},
        {"security_level": g.at("code"), **paths},
        g.path,
    )


def capacity_from_message(msg: ParsedMessage) -> CapacityReport:
    """Read the capacity report back. Refuses any resource other than the MeasureReport and any
    resource not labelled ``aggregate``: personal data never rides along."""
    for i, res in enumerate(msg.resources(), start=1):
        if res.get("resourceType") != "MeasureReport":
            raise MessageError(
                [
                    Issue(
                        f"Bundle.entry[{i}].resource",
                        "security",
                        "a capacity report carries nothing but its MeasureReport",
                        "personal-data",
                    )
                ]
            )
    report = one(msg, "MeasureReport")
    category = report.obj("meta")
    cats = [
        c.data.get("code")
        for c in category.items("security")
        if c.data.get("system") == DataCategory.default_system()
    ]
    if cats != [DataCategory.AGGREGATE.value]:
        raise category.error("security", "security", "must be labelled aggregate", "category")
    if report.string("type") != "summary":
        raise report.error("type", "value", "must be summary", "report-type")
    if report.string("measure") != MEASURE_URL:
        raise report.error("measure", "value", f"must be {MEASURE_URL}", "measure")
    region = report.extension(EXT_REGION)
    subject = report.obj("subject")
    return build_model(
        CapacityReport,
        {
            "report_id": report.identifier(CAPACITY_SYSTEM)[0],
            "provider": report.party("reporter"),
            "location_id": report.logical("subject", LOCATION_SYSTEM),
            "region": region.coding_code("valueCoding", REGION_SYSTEM) if region else None,
            "measured_at": report.instant("date"),
            "levels": tuple(_level(g) for g in report.items("group")),
        },
        {
            "report_id": report.at("identifier"),
            "provider": report.at("reporter"),
            "location_id": subject.at("identifier.value"),
            "region": report.at("extension"),
            "measured_at": report.at("date"),
            "levels": report.at("group"),
        },
        "MeasureReport",
    )
