"""Applications on top of the broker: the CLI, the web app, the monitor, the benchmarks, the
synthetic scenarios behind ``ketenbus up`` and the generators of docs and examples. Only this
layer composes the router, the adapters and the core; nothing below imports it."""
