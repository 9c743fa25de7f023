"""Every fuzz target, a fixed number of cases each (profile ``fuzz-ci``): no input crashes a
component; each is accepted or refused with a reason (see ``targets.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import PROFILE
from tests.fuzz.targets import TARGETS, FuzzTarget


@pytest.mark.parametrize("name", list(TARGETS))
@PROFILE
@given(data=st.data())
def test_no_input_crashes(name: str, data: st.DataObject) -> None:
    fuzz_target: FuzzTarget = TARGETS[name]  # by name: a failure report quotes only the name
    value: Any = data.draw(fuzz_target.strategy, label=fuzz_target.name)
    fuzz_target.check(value)
