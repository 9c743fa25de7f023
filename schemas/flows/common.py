"""Pieces shared by flow mappings: the person (Patient) and small FHIR helpers."""

from __future__ import annotations

from datetime import date
from enum import StrEnum, nonmember
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.errors import Issue, MessageError
from schemas.identifiers import (
    BSN_SYSTEM,
    MUNICIPALITY_SYSTEM,
    validate_bsn,
    validate_municipality,
)
from schemas.messaging import EXT
from schemas.vocab.base import Coded

Bsn = Annotated[str, AfterValidator(validate_bsn)]
MunicipalityCode = Annotated[str, AfterValidator(validate_municipality)]
EXT_RESIDENCE = EXT + "residence-municipality"
EXT_HOMELESS = EXT + "homeless"


class Gender(StrEnum):
    """FHIR administrative-gender (required binding; fhir.resources does not check it)."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class Person(BaseModel):
    """The person a message is about. Identity and contact details live only in memory and in
    payloads encrypted for a party with a legal need."""

    model_config = ConfigDict(frozen=True)

    bsn: Bsn
    family_name: str = Field(min_length=1, max_length=200)
    given_names: tuple[str, ...] = ()
    birth_date: date
    gender: Gender = Gender.UNKNOWN
    residence_municipality: MunicipalityCode | None = Field(
        default=None, description="Municipality of residence (woonplaatsbeginsel)."
    )
    homeless: bool = False
    address_line: str | None = None
    postal_code: str | None = None
    city: str | None = None


def patient_resource(p: Person) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": BSN_SYSTEM, "value": p.bsn}],
        "name": [
            {"family": p.family_name, **({"given": list(p.given_names)} if p.given_names else {})}
        ],
        "gender": p.gender.value,
        "birthDate": p.birth_date.isoformat(),
    }
    addr: dict[str, Any] = {}
    ext: list[dict[str, Any]] = []
    if p.residence_municipality:
        ext.append(
            {
                "url": EXT_RESIDENCE,
                "valueCoding": {"system": MUNICIPALITY_SYSTEM, "code": p.residence_municipality},
            }
        )
    if p.homeless:
        ext.append({"url": EXT_HOMELESS, "valueBoolean": True})
    if ext:
        addr["extension"] = ext
    if p.address_line:
        addr["line"] = [p.address_line]
    if p.postal_code:
        addr["postalCode"] = p.postal_code
    if p.city:
        addr["city"] = p.city
    if addr:
        addr["use"] = "temp" if p.homeless else "home"
        patient["address"] = [addr]
    return patient


def person_from_patient(patient: dict[str, Any]) -> Person:
    bsn = next(
        (i.get("value") for i in patient.get("identifier", []) if i.get("system") == BSN_SYSTEM),
        None,
    )
    if bsn is None:
        raise MessageError(
            [Issue("Patient.identifier", "required", "the Patient has no BSN identifier", "bsn")]
        )
    name = (patient.get("name") or [{}])[0]
    addr = (patient.get("address") or [{}])[0]
    exts = {x.get("url"): x for x in addr.get("extension", [])}
    residence = (exts.get(EXT_RESIDENCE) or {}).get("valueCoding", {}).get("code")
    return Person(
        bsn=bsn,
        family_name=name.get("family", ""),
        given_names=tuple(name.get("given", [])),
        birth_date=patient.get("birthDate"),
        gender=Gender(patient.get("gender", "unknown")),
        residence_municipality=residence,
        homeless=bool((exts.get(EXT_HOMELESS) or {}).get("valueBoolean", False)),
        address_line=(addr.get("line") or [None])[0],
        postal_code=addr.get("postalCode"),
        city=addr.get("city"),
    )


def concept(code: Coded) -> dict[str, Any]:
    return {"coding": [code.coding()]}


def code_from_concept(concept_: dict[str, Any] | None, enum: type[Coded], path: str) -> Any:
    for c in (concept_ or {}).get("coding", []):
        try:
            return enum.from_coding(c)
        except ValueError:
            continue
    raise MessageError([Issue(path, "required", f"no {enum.__name__} code", "missing-code")])


def ext_value(resource: dict[str, Any], url: str, key: str) -> Any:
    for x in resource.get("extension", []):
        if x.get("url") == url:
            return x.get(key)
    return None


def find_one(resources: list[dict[str, Any]], rtype: str) -> dict[str, Any]:
    for r in resources:
        if r.get("resourceType") == rtype:
            return r
    raise MessageError([Issue(f"Bundle.entry.resource[{rtype}]", "required", f"no {rtype}", rtype)])


__all__ = ["Bsn", "Coded", "Gender", "MunicipalityCode", "Person", "nonmember"]
