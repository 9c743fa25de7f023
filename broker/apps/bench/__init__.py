"""Benchmarks behind ``ketenbus bench``: figures measured side by side in one run.

Everything here targets only this machine: an embedded broker on 127.0.0.1 started by the
command itself, bounded message counts and durations, synthetic people made at run time.
``docs/performance.md`` records the figures, the machine and the command.
"""
