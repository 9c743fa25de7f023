"""Fixtures for the trust tests (helpers live in ``trust_helpers``)."""

from __future__ import annotations

import pytest
from trust_helpers import Chain, make_chain


@pytest.fixture
def chain() -> Chain:
    """ZVH, router and provider with fresh keys, registered from ``T0``."""
    return make_chain()
