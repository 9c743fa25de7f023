"""Generators of what is committed but derived from the code: the example messages under
``schemas/examples/``, the flow and vocabulary pages under ``docs/`` and ``docs/asyncapi.yaml``.
Each is ``python -m broker.apps.generate.<name>``; the tests fail when a committed file is stale."""
