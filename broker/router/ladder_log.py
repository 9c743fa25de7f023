"""Rebuild the escalation ladder and the watchdogs from the router's ladder log (the
``escalation`` topic) at start -- no database. The pipeline appends what changed in the fold
(cases routed, decisions, care starts and ends, escalations and answers; case numbers and party
ids, no person), sealed for the router itself; this reads it back from the beginning with
``broker.kafka.replay.read_topic`` (``assign()``, "caught up" by the fetch high watermark)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from broker.config import Settings
from broker.kafka.replay import read_topic
from broker.router.pipeline import RouterState
from broker.trust import TrustError, open_sealed
from schemas import topics

log = logging.getLogger(__name__)


def apply_record(state: RouterState, key: bytes | None, value: bytes,
                 headers: list[tuple[str, bytes]]) -> int:
    """Fold one ladder-log record into ``state.ladder``; the number of events applied (0 for a
    record that does not open or read: only the router writes this topic, so that is an
    operations problem, logged by its reason and never by its content)."""
    try:
        opened = open_sealed(key, value, headers, registry=state.registry,
                             keyring=state.keyring, now=datetime.now(UTC))
        if opened.meta.sender != state.keys.party_id:  # only the router writes its log
            raise ValueError("not written by the router")
        events = orjson.loads(opened.payload)
        if not isinstance(events, list):
            raise ValueError("not a list of events")
        for event in events:
            state.ladder.replay(event)
    except (TrustError, ValueError, KeyError, TypeError) as err:
        log.error("ladder log record skipped: %s", getattr(err, "reason", type(err).__name__))
        return 0
    return len(events)


async def rebuild(settings: Settings, state: RouterState, timeout: float = 30.0) -> int:
    """Read the whole ladder log into ``state.ladder``; returns the number of events."""
    applied = 0

    def one(r: Any) -> None:
        nonlocal applied
        applied += apply_record(state, r.key, r.value or b"", list(r.headers or ()))

    await read_topic(settings, topics.ESCALATION.name, one, timeout)
    return applied
