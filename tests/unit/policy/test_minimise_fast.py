"""The fast minimisation walk gives what the previous one gave, for every input.

``reference_minimise.py`` is the previous implementation. Each property runs both on the same
bundle (mutated examples, hand-made references to persons and dropped entries, odd values) and
requires equal output, or the same exception, and the same output shape: new containers only.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import reference_minimise as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.policy import minimise
from schemas.identifiers import BSN_SYSTEM
from schemas.messaging import dumps
from schemas.vocab import DataCategory
from tests.fuzz import mutate

C = DataCategory
EXAMPLES = list(mutate.example_messages().values())
STUB = {"identifier": {"system": "https://ketenbus.nl/fhir/NamingSystem/pseudonym/x", "value": "p"}}

# references that exercise every branch of the rewrite
_refs = st.sampled_from(
    [
        {"reference": "Patient/p1"},
        {"reference": "https://x.nl/fhir/Patient/p1/_history/2"},
        {"reference": "RelatedPerson/r"},
        {"reference": "urn:uuid:nowhere"},
        {"reference": "Observation/o1"},
        {"reference": 5},
        {"type": "Patient", "display": "x"},
        {"type": "Organization"},
        {"identifier": {"system": BSN_SYSTEM, "value": "111222333"}},
        {"identifier": {"system": "other", "value": "1"}},
        {"identifier": "not a dict"},
        {},
        [],
        {"reference": "urn:uuid:a704a202-605c-5505-aacd-6b9bf3f00afb"},
    ]
)


def _with_refs(tree: Any, extra: list[Any]) -> Any:
    """Sprinkle reference-shaped values into the content resources of a bundle."""
    entries = tree.get("entry") if isinstance(tree, dict) else None
    if isinstance(entries, list):
        for i, e in enumerate(entries[1:]):
            res = e.get("resource") if isinstance(e, dict) else None
            if isinstance(res, dict) and extra:
                res[f"x{i}"] = [copy.deepcopy(extra[i % len(extra)]), {"nested": extra}]
    return tree


bundles = st.one_of(
    st.sampled_from(EXAMPLES).map(copy.deepcopy),
    st.sampled_from(EXAMPLES).flatmap(mutate.mutated),
    st.builds(
        _with_refs, st.sampled_from(EXAMPLES).map(copy.deepcopy), st.lists(_refs, max_size=4)
    ),
    mutate.json_values,
)
allowed_sets = st.frozensets(st.sampled_from(list(C)))
stubs = st.none() | st.just(STUB)


def run(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", json.dumps(fn(*args, **kwargs), default=repr)
    except Exception as err:  # the same exception, whatever it is
        return "raised", (type(err).__name__, str(err))


def _containers(value: Any) -> list[Any]:
    out = []
    if isinstance(value, dict | list):
        out.append(value)
        for v in value.values() if isinstance(value, dict) else value:
            out.extend(_containers(v))
    return out


@settings(max_examples=500, deadline=None)
@given(bundles, allowed_sets, stubs)
def test_project_gives_what_it_gave(bundle: Any, allowed: frozenset[C], stub: Any) -> None:
    if not isinstance(bundle, dict):
        bundle = {"entry": bundle}
    before = copy.deepcopy(bundle)
    new = run(minimise.project, bundle, allowed, subject_stub=stub)
    assert new == run(ref.project, bundle, allowed, subject_stub=stub)
    assert bundle == before or bundle != bundle  # the input is left alone (NaN aside)
    if new[0] == "ok":  # shares no container with the input (unless the old code did: it
        # copies a fullUrl as it is, which a mutated bundle may make a list)
        out = minimise.project(bundle, allowed, subject_stub=stub)
        old_out = ref.project(bundle, allowed, subject_stub=stub)
        inputs = {id(x) for x in _containers(bundle)}
        if not inputs & {id(x) for x in _containers(old_out)}:
            assert not inputs & {id(x) for x in _containers(out)}


@settings(max_examples=300, deadline=None)
@given(bundles)
def test_contains_personal_data_and_categories_like_before(bundle: Any) -> None:
    assert run(minimise.contains_personal_data, bundle) == run(ref.contains_personal_data, bundle)
    if isinstance(bundle, dict):
        assert run(minimise.message_categories, bundle) == run(ref.message_categories, bundle)
        entries = bundle.get("entry")
        for e in entries if isinstance(entries, list) else []:  # a mutated entry may be a 1
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                r = e["resource"]
                assert run(minimise.resource_categories, r) == run(ref.resource_categories, r)


class Sub(dict[str, Any]):
    pass


@pytest.mark.parametrize(
    "odd",
    [
        (1, {"reference": "Patient/p"}),  # a tuple: returned as it is, as before
        Sub(reference="Patient/p"),
        Sub(a=[Sub(reference="urn:uuid:gone")]),
        [float("nan"), 2**80, b"x"],
    ],
)
def test_project_of_values_that_are_no_plain_json(odd: Any) -> None:
    bundle = copy.deepcopy(EXAMPLES[0])
    bundle["entry"][1]["resource"]["odd"] = odd
    for allowed in (frozenset(C), frozenset(C) - {C.IDENTITY}):
        new = run(minimise.project, bundle, allowed, subject_stub=STUB)
        assert new == run(ref.project, bundle, allowed, subject_stub=STUB)


def test_project_with_a_plain_set_of_categories() -> None:
    bundle = mutate.example_messages()["referral"]
    allowed = {C.IDENTITY, C.CONTACT, C.REFERRAL_SIGNAL}
    assert run(minimise.project, bundle, allowed) == run(ref.project, bundle, allowed)


def test_unknown_category_message_is_as_before() -> None:
    r = {"meta": {"security": [{"system": minimise.CATEGORY_SYSTEM, "code": "nope"}]}}
    assert run(minimise.resource_categories, r) == run(ref.resource_categories, r)
    assert run(minimise.resource_categories, r)[0] == "raised"


@pytest.mark.parametrize(
    "tree",
    [
        {0: {"birthDate": "x"}, "a": [{"family": "J"}, 1, "s"]},
        {0: {"resourceType": "Patient"}},
        [{"birthDate": 1}, [{"reference": "Person/1"}]],
        {"a": {"system": BSN_SYSTEM, "value": "1"}, "b": {"birthDate": {"x": 1}}},
        {"reference": "https://x/RelatedPerson/1/_history/3"},
        mutate.example_messages()["capacity-report"],
        mutate.example_messages()["referral"],
    ],
)
def test_contains_personal_data_paths_like_before(tree: Any) -> None:
    assert run(minimise.contains_personal_data, tree) == run(ref.contains_personal_data, tree)


@pytest.mark.parametrize("odd", [(1, {"reference": "Patient/p"}), Sub(a=[1]), {"x": (2,)}])
def test_patient_elements_that_are_no_plain_json_are_copied_as_before(odd: Any) -> None:
    bundle = copy.deepcopy(mutate.example_messages()["referral"])
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["name"] = odd
    for fn in (minimise.project, ref.project):
        out = fn(bundle, frozenset(C), subject_stub=STUB)
        name = next(
            e["resource"]["name"]
            for e in out["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
        assert name == odd or json.dumps(name) == json.dumps(odd)
        assert name is not odd
        inner = name[1] if isinstance(name, tuple) else None
        assert inner is None or inner is not odd[1]


@settings(max_examples=500, deadline=None)
@given(bundles, allowed_sets, stubs)
def test_project_bytes_writes_what_project_gives(
    bundle: Any, allowed: frozenset[C], stub: Any
) -> None:
    """The router's projection (copy on write, written at once) is byte for byte the written
    projection, and of the reference; it leaves the input alone though it shares with it."""
    if not isinstance(bundle, dict):
        bundle = {"entry": bundle}
    before = copy.deepcopy(bundle)
    new = run_bytes(minimise.project_bytes, bundle, allowed, subject_stub=stub)
    assert new == run_bytes(lambda *a, **k: dumps(minimise.project(*a, **k)), bundle, allowed,
                            subject_stub=stub)  # fmt: skip
    assert new == run_bytes(lambda *a, **k: dumps(ref.project(*a, **k)), bundle, allowed,
                            subject_stub=stub)  # fmt: skip
    assert bundle == before or bundle != bundle  # the input is left alone (NaN aside)


def run_bytes(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as err:  # the same exception, whatever it is
        return "raised", (type(err).__name__, str(err))


def test_project_bytes_drops_what_project_drops_in_a_shared_tree() -> None:
    """Hostile sharing: one reference object used twice, once where it must go (a dropped
    entry's reference) and once in a list beside kept values; and a person reference inside a
    list of otherwise unchanged items. Copy on write must not leak the dropped one through the
    shared object nor lose the items before and after it."""
    bundle = copy.deepcopy(EXAMPLES[0])
    entries = bundle["entry"]
    gone = {"reference": "urn:uuid:nowhere"}
    res = entries[1]["resource"]
    res["x"] = [1, {"keep": "a"}, gone, "b", {"nested": [gone, {"keep": 2}]}]
    res["y"] = {"only": gone}
    res["z"] = [{"reference": "Patient/p1"}, {"keep": 3}]
    for allowed in (frozenset(C), frozenset(C) - {C.IDENTITY}):
        written = minimise.project_bytes(bundle, allowed, subject_stub=STUB)
        assert written == dumps(ref.project(bundle, allowed, subject_stub=STUB))
        assert b"urn:uuid:nowhere" not in written
