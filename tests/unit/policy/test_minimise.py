"""Minimisation: an allow-list projection of a message onto the categories a recipient may get."""

from __future__ import annotations

import copy
import json
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import PATIENT_URL, bundle, tag

from broker.policy import contains_personal_data, message_categories, project
from broker.policy.minimise import CATEGORY_SYSTEM, resource_categories
from schemas.identifiers import BSN_SYSTEM
from schemas.vocab import DataCategory

C = DataCategory
ALL = frozenset(C) - {C.AGGREGATE}
STUB = {"identifier": {"system": "https://ketenbus.nl/fhir/NamingSystem/pseudonym/gemeente-0344",
                       "value": "gm-psn-81c2"}}


def by_type(b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["resourceType"]: e["resource"] for e in b["entry"][1:]}


def test_municipality_gets_identity_contact_and_care_episode_only() -> None:
    msg = bundle(ALL, untagged=True)
    allowed = frozenset({C.IDENTITY, C.CONTACT, C.CARE_EPISODE})
    out = project(msg, allowed)
    assert message_categories(out) == allowed
    types = by_type(out)
    assert set(types) == {"Patient", "EpisodeOfCare"}
    patient = types["Patient"]
    assert set(patient) == {"resourceType", "id", "meta", "identifier", "name", "birthDate",
                            "gender", "address", "telecom", "contact"}
    # the diagnosis points at the (dropped) clinical Condition: that reference is gone
    assert "diagnosis" not in types["EpisodeOfCare"]
    # the header keeps its focus only on what is left
    focus = [f["reference"] for f in out["entry"][0]["resource"]["focus"]]
    assert focus == [e["fullUrl"] for e in out["entry"][1:]]
    assert "signature" not in out
    Bundle.model_validate(out)


def test_payer_gets_only_identity_and_financial() -> None:
    out = project(bundle(ALL, untagged=True), frozenset({C.IDENTITY, C.FINANCIAL}))
    types = by_type(out)
    assert set(types) == {"Patient", "Claim"}
    assert "address" not in types["Patient"] and "telecom" not in types["Patient"]
    assert types["Patient"]["identifier"][0]["system"] == BSN_SYSTEM  # payers need the BSN
    assert types["Claim"]["patient"] == {"reference": PATIENT_URL}
    Bundle.model_validate(out)


def test_patient_elements_outside_the_categories_are_never_copied() -> None:
    msg = bundle({C.IDENTITY, C.CONTACT, C.PROCESS})
    msg["entry"][1]["resource"]["photo"] = [{"data": "aGVsbG8="}]
    msg["entry"][1]["resource"]["extension"] = [{"url": "https://x", "valueString": "religie"}]
    out = project(msg, frozenset({C.IDENTITY, C.PROCESS}))
    patient = by_type(out)["Patient"]
    assert set(patient) == {"resourceType", "id", "meta", "identifier", "name", "birthDate",
                            "gender"}


def test_dropped_patient_is_replaced_by_the_stub_or_removed() -> None:
    msg = bundle({C.IDENTITY, C.PROCESS, C.CARE_EPISODE})
    allowed = frozenset({C.PROCESS, C.CARE_EPISODE})
    out = project(msg, allowed, subject_stub=STUB)
    types = by_type(out)
    assert "Patient" not in types
    assert types["Task"]["for"] == STUB
    assert types["EpisodeOfCare"]["patient"] == STUB
    assert PATIENT_URL not in json.dumps(out)
    Bundle.model_validate(out)
    out = project(msg, allowed)
    assert "for" not in by_type(out)["Task"]
    assert PATIENT_URL not in json.dumps(out)


def test_references_to_the_person_by_bsn_or_type_are_replaced_too() -> None:
    msg = bundle({C.PROCESS})
    task = msg["entry"][1]["resource"]
    task["for"] = {"identifier": {"system": BSN_SYSTEM, "value": "111222333"}}
    task["owner"] = {"reference": "Patient/elsewhere"}
    task["requester"] = {"reference": "Organization/zvh"}
    out = project(msg, frozenset({C.PROCESS}), subject_stub=STUB)
    t = by_type(out)["Task"]
    assert t["for"] == STUB and t["owner"] == STUB
    assert t["requester"] == {"reference": "Organization/zvh"}
    assert "111222333" not in json.dumps(out)


def test_untagged_unknown_and_over_tagged_entries_are_dropped() -> None:
    msg = bundle({C.PROCESS}, untagged=True)
    odd = copy.deepcopy(msg["entry"][1])
    odd["fullUrl"] = "urn:uuid:odd"
    odd["resource"]["meta"] = {"security": [{"system": CATEGORY_SYSTEM, "code": "gossip"}]}
    two = copy.deepcopy(msg["entry"][1])
    two["fullUrl"] = "urn:uuid:two"
    two["resource"]["meta"] = {"security": [C.PROCESS.coding(), C.CLINICAL.coding()]}
    msg["entry"] += [odd, two, {"fullUrl": "urn:uuid:empty"}]
    out = project(msg, frozenset({C.PROCESS}))
    assert [e["resource"]["resourceType"] for e in out["entry"]] == ["MessageHeader", "Task"]


def test_narrative_and_contained_resources_are_not_copied() -> None:
    msg = bundle({C.PROCESS})
    task = msg["entry"][1]["resource"]
    task["text"] = {"status": "generated", "div": "<div>Jan Jansen, BSN 111222333</div>"}
    task["contained"] = [{"resourceType": "Patient", "id": "x"}]
    out = project(msg, frozenset({C.PROCESS}))
    t = by_type(out)["Task"]
    assert "text" not in t and "contained" not in t


def test_input_is_not_mutated_and_output_shares_nothing() -> None:
    msg = bundle(ALL, untagged=True)
    before = copy.deepcopy(msg)
    out = project(msg, frozenset({C.PROCESS, C.CARE_EPISODE}), subject_stub=STUB)
    assert msg == before
    # mutate every dict and list of the output: the input must not change
    def scribble(v: Any) -> None:
        if isinstance(v, dict):
            for x in list(v.values()):
                scribble(x)
            v["scribbled"] = True
        elif isinstance(v, list):
            for x in v:
                scribble(x)
            v.append("scribbled")
    scribble(out)
    assert msg == before
    assert STUB == {"identifier": {
        "system": "https://ketenbus.nl/fhir/NamingSystem/pseudonym/gemeente-0344",
        "value": "gm-psn-81c2"}}


def test_nothing_allowed_leaves_only_the_header() -> None:
    out = project(bundle(ALL), frozenset())
    assert [e["resource"]["resourceType"] for e in out["entry"]] == ["MessageHeader"]
    assert "focus" not in out["entry"][0]["resource"]


# --- property ---------------------------------------------------------------------------------

categories = st.frozensets(st.sampled_from(sorted(C, key=lambda c: c.value)))
extras = st.dictionaries(
    st.sampled_from(["maritalStatus", "photo", "extension", "deceasedBoolean", "communication",
                     "generalPractitioner", "text", "multipleBirthBoolean"]),
    st.just({"text": "x"}),
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    present = draw(categories.filter(lambda s: C.AGGREGATE not in s))
    msg = bundle(present, untagged=draw(st.booleans()))
    entries = msg["entry"]
    for e in entries[1:]:
        if e["resource"]["resourceType"] == "Patient":
            e["resource"].update(draw(extras))
        elif draw(st.integers(0, 4)) == 0:  # sometimes: a wrong, missing or double tag
            e["resource"]["meta"] = draw(st.sampled_from([
                {}, {"security": []}, {"security": [{"system": CATEGORY_SYSTEM, "code": "?"}]},
                {"security": [C.CLINICAL.coding(), C.PROCESS.coding()]},
                {"tag": [C.PROCESS.coding()]},
            ]))
    return msg


@settings(max_examples=300, deadline=None)
@given(messages(), categories, st.booleans())
def test_projection_never_exceeds_the_allowed_categories(
    msg: dict[str, Any], allowed: frozenset[DataCategory], with_stub: bool
) -> None:
    before = copy.deepcopy(msg)
    out = project(msg, allowed, subject_stub=STUB if with_stub else None)
    assert msg == before
    assert out["entry"][0]["resource"]["resourceType"] == "MessageHeader"
    for entry in out["entry"][1:]:
        tags = resource_categories(entry["resource"])
        assert tags, "an untagged resource was delivered"
        assert tags <= allowed
        if entry["resource"]["resourceType"] == "Patient":
            keys = set(entry["resource"]) - {"resourceType", "id", "meta"}
            permitted = {"identifier", "name", "birthDate", "gender"}
            if C.CONTACT in allowed:
                permitted |= {"address", "telecom", "contact"}
            assert keys <= permitted
    assert message_categories(out) <= allowed
    if C.IDENTITY not in allowed:
        text = json.dumps(out)
        assert PATIENT_URL not in text and "111222333" not in text and "Jansen" not in text
        people = [p for p in contains_personal_data(out) if not p.endswith(".identifier")]
        assert people == []  # only the stub's pseudonym identifier may remain


# --- personal data detection ------------------------------------------------------------------


def capacity() -> dict[str, Any]:
    msg = bundle({C.AGGREGATE})
    msg["entry"].append({"fullUrl": "urn:uuid:loc", "resource": {
        "resourceType": "Location", "id": "loc1", "meta": tag(C.AGGREGATE),
        "name": "Kliniek De Woenselse Poort, afdeling 3",
        "address": {"city": "Eindhoven"}, "telecom": [{"system": "phone", "value": "040"}],
    }})
    return msg


def test_a_clean_capacity_report_has_no_personal_data() -> None:
    assert contains_personal_data(capacity()) == []


def test_personal_data_paths() -> None:
    msg = capacity()
    report = msg["entry"][1]["resource"]
    report["subject"] = {"reference": "Patient/p1"}
    report["group"][0]["population"][0]["subjectResults"] = {
        "identifier": {"system": BSN_SYSTEM, "value": "111222333"}}
    report["evaluatedResource"] = [{"identifier": {
        "system": "https://ketenbus.nl/fhir/NamingSystem/pseudonym/router", "value": "p"}}]
    report["contained"] = [{"resourceType": "Practitioner", "id": "dr",
                            "name": [{"family": "Bakker"}], "birthDate": "1970-01-01"}]
    msg["entry"].append({"resource": {"resourceType": "RelatedPerson", "id": "rp"}})
    assert contains_personal_data(msg) == [
        "entry[1].resource.group[0].population[0].subjectResults.identifier",
        "entry[1].resource.subject",
        "entry[1].resource.evaluatedResource[0].identifier",
        "entry[1].resource.contained[0].name[0]",
        "entry[1].resource.contained[0].birthDate",
        "entry[3].resource",
    ]
