"""Robustness: a mutated message either still reads as a valid model or fails with a
``MessageError`` whose OperationOutcome names a path and a problem; never KeyError, TypeError,
ValidationError or a stack trace. Checked with and without full FHIR validation (the router may
read with ``full=False``)."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import given
from hypothesis import strategies as st
from schema_strategies import ISSUE_TYPES, MODELS, PROFILE, metas, mutated

from schemas.errors import MessageError
from schemas.flows.registry import FLOWS, FlowSpec
from schemas.messaging import dumps, parse_message


def _check_error(err: MessageError) -> None:
    assert err.issues
    for issue in err.issues:
        assert issue.code in ISSUE_TYPES
        assert issue.message
        assert "Traceback" not in issue.message and 'File "' not in issue.message
    outcome = err.outcome()
    OperationOutcome.model_validate(outcome)
    json.dumps(outcome)


@pytest.mark.parametrize("full", [False, True], ids=["fast", "full"])
@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
@PROFILE
@given(data=st.data())
def test_mutated_messages_fail_cleanly(flow: FlowSpec, full: bool, data: st.DataObject) -> None:
    model = data.draw(MODELS[flow.name], label="model")
    bundle = flow.to_message(model, data.draw(metas(flow.event), label="meta"))
    bad = data.draw(mutated(bundle), label="mutated")
    try:
        parsed = parse_message(dumps(bad), full=full)
        result = flow.from_message(parsed)
    except MessageError as err:
        _check_error(err)
    else:
        assert isinstance(result, flow.model)
