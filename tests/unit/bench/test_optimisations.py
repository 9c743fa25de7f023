"""The hot-path optimisations behave exactly like the code they replaced.

* ``broker.audit.canonical``: ``canonical`` checks with a path-free fast pass first; the bytes,
  and for refused values the ``CanonicalError`` message, are those of ``check`` + ``json.dumps``.
* ``broker.policy.minimise``: ``_copy`` (instead of ``copy.deepcopy``) gives an equal tree that
  shares no container with its input.
"""

from __future__ import annotations

import copy
import importlib
import json
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.policy import minimise

canonical_module = importlib.import_module("broker.audit.canonical")


class Colour(StrEnum):
    RED = "red"


keys = st.text(max_size=5) | st.sampled_from(["é", "\ud800", "a"])
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.sampled_from(["\ud800", "é", Colour.RED, 2**53 - 1, -(2**53), b"x"])
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=12,
)


def reference(value: Any) -> bytes:
    canonical_module.check(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def outcome(fn: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(value)
    except canonical_module.CanonicalError as exc:
        return "refused", str(exc)
    except (TypeError, ValueError) as exc:  # json.dumps on mixed key types, like before
        return "error", type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(values)
def test_canonical_gives_what_check_and_dumps_gave(value: Any) -> None:
    assert outcome(canonical_module.canonical, value) == outcome(reference, value)


@settings(max_examples=300, deadline=None)
@given(values)
def test_copy_is_an_equal_tree_sharing_no_container(value: Any) -> None:
    copied = minimise._copy(value)
    assert copied == copy.deepcopy(value) or copied != copied  # NaN is not equal to itself
    originals = {id(x) for x in _containers(value)}
    assert not originals & {id(x) for x in _containers(copied)}


def _containers(value: Any) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict | list):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            out += _containers(item)
    elif isinstance(value, tuple):
        for item in value:
            out += _containers(item)
    return out


@pytest.mark.parametrize("identity", [True, False])
def test_projection_shares_nothing_with_its_input(identity: bool) -> None:
    from broker.apps.generate.examples import __file__ as examples_init
    from schemas.vocab import DataCategory

    folder = __import__("pathlib").Path(examples_init).parent
    for path in sorted(folder.glob("*.json")):
        bundle = json.loads(path.read_text())
        allowed = frozenset(DataCategory) - (set() if identity else {DataCategory.IDENTITY})
        before = copy.deepcopy(bundle)
        out = minimise.project(bundle, allowed, subject_stub={"identifier": {"value": "p"}})
        assert bundle == before
        assert not {id(x) for x in _containers(bundle)} & {id(x) for x in _containers(out)}
