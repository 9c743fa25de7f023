"""Hypothesis profiles for the fuzzers (``KETENBUS_FUZZ_PROFILE``): ``fuzz-ci`` (default: a
fixed number of cases per target, no deadline, CI stays under two minutes), ``fuzz-dev`` (a
quick loop) and ``fuzz-long`` (many cases; ``python -m tests.fuzz`` bounds by time instead)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}
settings.register_profile("fuzz-ci", max_examples=300, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("fuzz-dev", max_examples=20, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("fuzz-long", max_examples=5000, **_COMMON)  # type: ignore[arg-type]
PROFILE = settings.get_profile(os.environ.get("KETENBUS_FUZZ_PROFILE", "fuzz-ci"))
