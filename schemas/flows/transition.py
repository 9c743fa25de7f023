"""Care transition (zorgtransitie): start of care, scaling up to a secure bed (security level 2,
3 or 4), scaling down (to a lower level or to ambulant FACT care), transfer between providers,
detention and interruption of care and their ends, or end of care, with its date, provider,
setting and location.

FHIR: Encounter (care-episode; the focus) with ``type`` = the transition kind, ``class`` AMB
(ambulant) or IMP (secure bed), ``period.start`` (``period.end`` for an end of care),
``serviceProvider``, ``hospitalization.origin`` = the previous provider, and ``meta.tag`` = the
security level; the EpisodeOfCare it belongs to (care-episode); a Location (care-episode) tagged
with the same security level; Patient (identity).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.errors import build_model, rule_error
from schemas.flows.common import (
    EPISODE_SYSTEM,
    LOCATION_SYSTEM,
    FieldMap,
    IdValue,
    PartyId,
    Person,
    ShortText,
    Src,
    Text,
    code_in,
    coding_of,
    concept,
    one,
    party_of,
    party_org_reference,
    patient_resource,
    person_from_patient,
    resolve,
)
from schemas.messaging import (
    EXT,
    MessageMeta,
    ParsedMessage,
    build_message,
    full_url,
    new_id,
    party_reference,
)
from schemas.vocab import DataCategory, SecurityLevel, ServiceCode, TransitionKind
from schemas.vocab.transition import ON_LEAVE

TRANSITION_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/care-transition"
EXT_PREVIOUS_LEVEL = EXT + "previous-security-level"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ENCOUNTER_CLASS = {
    "AMB": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
    "IMP": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
}
_RANK = {
    SecurityLevel.AMBULANT: 0,
    SecurityLevel.LEVEL_2: 2,
    SecurityLevel.LEVEL_3: 3,
    SecurityLevel.LEVEL_4: 4,
}


def encounter_class(level: SecurityLevel) -> dict[str, str]:
    return ENCOUNTER_CLASS["AMB" if level is SecurityLevel.AMBULANT else "IMP"]


class CareTransition(BaseModel):
    """A change in the care of an included person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transition_id: IdValue = Field(description="The provider's id of this transition.")
    episode_id: IdValue = Field(description="The EpisodeOfCare (from the inclusion).")
    kind: TransitionKind = Field(description="start, scale-up, scale-down, transfer or end.")
    effective_on: date = Field(description="Date the transition takes effect.")
    person: Person = Field(description="The included person.")
    provider: PartyId = Field(
        description="The provider responsible from this date (for an end: until it)."
    )
    previous_provider: PartyId | None = Field(
        default=None, description="The provider before a transfer (required for a transfer)."
    )
    security_level: SecurityLevel = Field(
        description="Setting from this date: ambulant, or secure bed level 2, 3 or 4."
    )
    previous_level: SecurityLevel | None = Field(
        default=None, description="Setting before the transition (required to scale up/down)."
    )
    location_id: IdValue | None = Field(
        default=None, description="Location (unit) id; required for a secure bed."
    )
    location_name: ShortText | None = Field(default=None, description="Name of the location.")
    reason: Text | None = Field(default=None, description="Why the transition happens.")

    @model_validator(mode="after")
    def _rules(self) -> CareTransition:
        level, before = self.security_level, self.previous_level
        if self.kind in (TransitionKind.SCALE_UP, TransitionKind.SCALE_DOWN) and before is None:
            raise rule_error(
                "previous-level", "scaling up or down names the previous level", "previous_level"
            )
        if self.kind is TransitionKind.SCALE_UP and before and _RANK[level] <= _RANK[before]:
            raise rule_error(
                "scale-up", "scaling up goes to a higher security level", "security_level"
            )
        if self.kind is TransitionKind.SCALE_DOWN and before and _RANK[level] >= _RANK[before]:
            raise rule_error(
                "scale-down",
                "scaling down goes to a lower security level or ambulant",
                "security_level",
            )
        if self.kind is TransitionKind.TRANSFER and (
            self.previous_provider is None or self.previous_provider == self.provider
        ):
            raise rule_error(
                "transfer",
                "a transfer names a previous provider other than the provider",
                "previous_provider",
            )
        if self.kind in ON_LEAVE and (level is not SecurityLevel.AMBULANT or self.location_id):
            raise rule_error(
                "on-leave",
                "during a detention or an interruption the Levensloop provider holds no bed: "
                "the setting is ambulant, without a location",
                "security_level",
            )
        if level is not SecurityLevel.AMBULANT and self.location_id is None:
            raise rule_error("location", "a secure bed needs a location", "location_id")
        if self.location_name is not None and self.location_id is None:
            raise rule_error("location", "a location name needs a location id", "location_id")
        return self


MAPPING = (
    FieldMap(
        "transition_id", "Encounter.identifier (…/NamingSystem/care-transition)", "care-episode"
    ),
    FieldMap(
        "episode_id",
        "EpisodeOfCare.identifier (…/NamingSystem/episode); Encounter.episodeOfCare → it",
        "care-episode",
    ),
    FieldMap("kind", "Encounter.type[0]", "care-episode"),
    FieldMap(
        "effective_on",
        "Encounter.period.start (end of care: Encounter.period.end and EpisodeOfCare.period.end)",
        "care-episode",
    ),
    FieldMap("person", "Patient", "identity / contact"),
    FieldMap(
        "provider",
        "Encounter.serviceProvider; EpisodeOfCare.managingOrganization; "
        "Location.managingOrganization",
        "care-episode",
    ),
    FieldMap(
        "previous_provider",
        "Encounter.hospitalization.origin (Organization by party id)",
        "care-episode",
    ),
    FieldMap(
        "security_level",
        "Encounter.meta.tag and Location.meta.tag (SecurityLevel); Location.type; "
        "Encounter.class AMB/IMP",
        "care-episode",
    ),
    FieldMap(
        "previous_level", "Encounter.extension[previous-security-level].valueCoding", "care-episode"
    ),
    FieldMap(
        "location_id",
        "Location.identifier (…/NamingSystem/location); Encounter.location",
        "care-episode",
    ),
    FieldMap("location_name", "Location.name", "care-episode"),
    FieldMap("reason", "Encounter.reasonCode[0].text (free text)", "clinical"),
)


def encounter_status(kind: TransitionKind) -> str:
    """FHIR Encounter.status of a transition: ``finished`` for an end of care, ``onleave`` while
    the person is detained or care is interrupted, else ``in-progress``."""
    if kind is TransitionKind.END:
        return "finished"
    return "onleave" if kind in ON_LEAVE else "in-progress"


def transition_entries(t: CareTransition) -> list[tuple[dict[str, Any], DataCategory]]:
    patient = patient_resource(t.person)
    patient["id"] = new_id()
    p_ref = {"reference": full_url(patient["id"])}
    ended = t.kind is TransitionKind.END
    episode: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "id": new_id(),
        "identifier": [{"system": EPISODE_SYSTEM, "value": t.episode_id}],
        "status": "finished" if ended else "active",
        "type": [concept(ServiceCode.LEVENSLOOP_CARE)],
        "patient": p_ref,
        "managingOrganization": party_reference(t.provider),
    }
    if ended:
        episode["period"] = {"end": t.effective_on.isoformat()}
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": new_id(),
        "meta": {"tag": [t.security_level.coding()]},
        "identifier": [{"system": TRANSITION_SYSTEM, "value": t.transition_id}],
        "status": encounter_status(t.kind),
        "class": encounter_class(t.security_level),
        "type": [concept(t.kind)],
        "subject": p_ref,
        "episodeOfCare": [{"reference": full_url(episode["id"])}],
        "period": {("end" if ended else "start"): t.effective_on.isoformat()},
    }
    if t.previous_level is not None:
        encounter["extension"] = [
            {"url": EXT_PREVIOUS_LEVEL, "valueCoding": t.previous_level.coding()}
        ]
    if t.reason is not None:
        encounter["reasonCode"] = [{"text": t.reason}]
    if t.previous_provider is not None:
        encounter["hospitalization"] = {"origin": party_org_reference(t.previous_provider)}
    entries: list[tuple[dict[str, Any], DataCategory]] = [
        (encounter, DataCategory.CARE_EPISODE),
        (patient, DataCategory.IDENTITY),
        (episode, DataCategory.CARE_EPISODE),
    ]
    if t.location_id is not None:
        location: dict[str, Any] = {
            "resourceType": "Location",
            "id": new_id(),
            "meta": {"tag": [t.security_level.coding()]},
            "identifier": [{"system": LOCATION_SYSTEM, "value": t.location_id}],
            "status": "active",
            **({"name": t.location_name} if t.location_name is not None else {}),
            "mode": "instance",
            "type": [concept(t.security_level)],
            "managingOrganization": party_reference(t.provider),
        }
        encounter["location"] = [{"location": {"reference": full_url(location["id"])}}]
        entries.append((location, DataCategory.CARE_EPISODE))
    encounter["serviceProvider"] = party_reference(t.provider)
    return entries


def transition_message(t: CareTransition, meta: MessageMeta) -> dict[str, Any]:
    """The care transition as a FHIR message Bundle; the focus is the Encounter."""
    return build_message(meta, transition_entries(t), focus=[0])


def _tagged_level(src: Src) -> SecurityLevel:
    meta = src.obj("meta")
    tags = [t for t in meta.items("tag") if t.data.get("system") == SecurityLevel.default_system()]
    if len(tags) != 1:
        raise meta.error("tag", "required", "needs exactly one SecurityLevel tag", "security-level")
    return coding_of(tags[0], SecurityLevel)


def transition_from_message(msg: ParsedMessage) -> CareTransition:
    """Read the care transition back; needs the Encounter, its EpisodeOfCare, the Patient and,
    when the Encounter names one, the Location."""
    enc = one(msg, "Encounter")
    patient = one(msg, "Patient")
    episode = resolve(enc.single("episodeOfCare"), msg, "EpisodeOfCare")
    kind = code_in(enc.single("type"), TransitionKind)
    level = _tagged_level(enc)
    prev_ext = enc.extension(EXT_PREVIOUS_LEVEL)
    hosp = enc.opt_obj("hospitalization")
    origin = hosp.opt_obj("origin") if hosp else None
    loc_ref = enc.opt_single("location")
    location = loc_ref.resolve("location", msg, "Location") if loc_ref else None
    if location is not None and (
        _tagged_level(location) is not level
        or code_in(location.single("type"), SecurityLevel) is not level
    ):
        raise location.error(
            "meta.tag", "invariant", "security level differs from the Encounter's", "level"
        )
    ended = kind is TransitionKind.END
    if enc.string("status") != encounter_status(kind):
        raise enc.error(
            "status",
            "invariant",
            f"must be {encounter_status(kind)} for {kind.value} (finished exactly for an end "
            "of care, onleave for a detention or an interruption)",
            "status",
        )
    reason = enc.opt_single("reasonCode")
    provider = enc.party("serviceProvider")
    if episode.party("managingOrganization") != provider:
        raise episode.error(
            "managingOrganization",
            "invariant",
            "differs from Encounter.serviceProvider",
            "provider",
        )
    episode_id, episode_path = episode.identifier(EPISODE_SYSTEM)
    return build_model(
        CareTransition,
        {
            "transition_id": enc.identifier(TRANSITION_SYSTEM)[0],
            "episode_id": episode_id,
            "kind": kind,
            "effective_on": enc.obj("period").date("end" if ended else "start"),
            "person": person_from_patient(patient.data),
            "provider": provider,
            "previous_provider": party_of(origin) if origin else None,
            "security_level": level,
            "previous_level": coding_of(prev_ext.obj("valueCoding"), SecurityLevel)
            if prev_ext
            else None,
            "location_id": location.identifier(LOCATION_SYSTEM)[0] if location else None,
            "location_name": location.opt_string("name") if location else None,
            "reason": reason.string("text") if reason else None,
        },
        {
            "transition_id": enc.at("identifier"),
            "episode_id": episode_path,
            "kind": enc.at("type"),
            "provider": enc.at("serviceProvider"),
            "previous_provider": enc.at("hospitalization.origin"),
            "security_level": enc.at("meta.tag"),
            "previous_level": enc.at("extension"),
            "location_id": "Location.identifier" if location else enc.at("location"),
            "location_name": "Location.name",
            "reason": enc.at("reasonCode[0].text"),
        },
        "Encounter",
    )
