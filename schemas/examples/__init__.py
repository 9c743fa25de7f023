"""Example messages as data: one or more valid FHIR message Bundles per flow (``<name>.json``) and
invalid ones under ``invalid/`` with the error each must produce (``invalid/expected.yaml``).

They are written by ``python -m broker.apps.generate.examples`` (the test suite fails when the
committed files are stale); this package only says where they are.
"""

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent
INVALID_DIR = EXAMPLES_DIR / "invalid"
