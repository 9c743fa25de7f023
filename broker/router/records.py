"""Kafka records as plain data, so the pipeline can be tested and benchmarked without Kafka."""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Incoming:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    partition: int = 0
    offset: int = -1


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)


def header(headers: Headers, name: str) -> str | None:
    """The last value of a header as text, or None."""
    found = None
    for k, v in headers:
        if k == name:
            found = v.decode("utf-8", "replace") if v is not None else ""
    return found
