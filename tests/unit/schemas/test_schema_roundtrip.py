"""Every flow round-trips: model -> FHIR message JSON (dumps) -> parse_message(full=True) ->
model, unchanged, for hypothesis-generated models of every flow."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schema_strategies import MODELS, PROFILE, metas

from schemas.flows.registry import FLOWS, FlowSpec, read_flow
from schemas.messaging import category_of, dumps, parse_message


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
@PROFILE
@given(data=st.data())
def test_round_trip(flow: FlowSpec, data: st.DataObject) -> None:
    model = data.draw(MODELS[flow.name], label="model")
    meta = data.draw(metas(flow.event), label="meta")
    bundle = flow.to_message(model, meta)
    parsed = parse_message(dumps(bundle), full=True)
    assert flow.from_message(parsed) == model
    assert read_flow(parsed) == model
    if flow.name == "withdrawal":  # the header names the original the Provenance targets
        assert parsed.meta == dataclasses.replace(meta, refers_to=model.original_id)
    elif flow.name != "response":
        assert parsed.meta == meta
    # the messaging rules hold for every flow
    header = bundle["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == flow.event.value
    types = [e["resource"]["resourceType"] for e in bundle["entry"][1:]]
    assert set(types) <= set(flow.resources)
    if types:
        focus = header["focus"][0]["reference"]
        target = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == focus)
        assert target["resourceType"] == flow.focus
    assert all(category_of(e["resource"]) is not None for e in bundle["entry"][1:])
    for e in bundle["entry"]:  # fullUrls are urn:uuid:<uuid> of the resource id
        assert e["fullUrl"] == f"urn:uuid:{uuid.UUID(e['resource']['id'])}"


def test_every_event_has_one_flow() -> None:
    from schemas.vocab import EventCode

    assert sorted(f.event for f in FLOWS) == sorted(EventCode)
    assert len({f.name for f in FLOWS}) == len(FLOWS)
