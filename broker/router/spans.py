"""The router's OpenTelemetry spans: one ``route <topic>`` span per record, the child of the
sender's span (its ``traceparent`` header), with one ``decide`` child per recipient decision;
what the record produced carries the route span on, so the recipient adapter's span is its child.

The pipeline routes a batch at once, so each record's span covers the batch's routing time. Only
ids and codes become attributes (``broker.component.tracing``): the pipeline's facts name people
by pseudonym, and not even that is put on a span.
"""

from __future__ import annotations

from dataclasses import replace

from opentelemetry.trace import Span, SpanKind

from broker.component import tracing
from broker.router.facts import Fact, FactKind
from broker.router.pipeline import RouteResult
from broker.router.records import Incoming, Outgoing

SCOPE = "router"
_DECISIONS = frozenset({FactKind.PERMIT, FactKind.DENY})


def traced(
    component: str,
    recs: list[Incoming],
    results: list[RouteResult],
    start_ns: int,
    end_ns: int,
) -> list[list[Outgoing]]:
    """Make the spans of a routed batch; each result's records with their trace header.

    Without tracing (no exporter configured) the records are returned as they are."""
    if not tracing.enabled():
        return [r.records for r in results]
    out: list[list[Outgoing]] = []
    for rec, result in zip(recs, results, strict=True):
        route = tracing.start(
            SCOPE,
            f"route {rec.topic}",
            component=component,
            parent=tracing.extract(rec.headers),
            kind=SpanKind.CONSUMER,
            attributes={**tracing.header_attributes(rec.headers), tracing.TOPIC: rec.topic},
            start_time=start_ns,
        )
        if route is None:  # tracing switched off meanwhile
            out.append(result.records)
            continue
        for fact in result.facts:
            if fact.kind in _DECISIONS:
                _decision(component, route, fact, start_ns, end_ns)
        refused = [f for f in result.facts if f.kind in (FactKind.REFUSAL, FactKind.DUPLICATE)]
        if refused:
            tracing.set_attributes(
                route, {tracing.DECISION: refused[0].kind.value, tracing.REASON: refused[0].reason}
            )
        out.append([replace(o, headers=tracing.inject(o.headers, route)) for o in result.records])
        route.end(end_time=end_ns)
    return out


def _decision(
    component: str, route: Span, fact: Fact, start_ns: int, end_ns: int
) -> None:
    span = tracing.start(
        SCOPE,
        "decide",
        component=component,
        parent=tracing.context_of(route),
        attributes={
            tracing.MESSAGE_ID: fact.message_id,
            tracing.FLOW: fact.event.value if fact.event else None,
            tracing.SENDER: fact.sender,
            tracing.RECIPIENT: fact.recipient,
            tracing.DECISION: fact.kind.value,
            tracing.REASON: fact.reason,
        },
        start_time=start_ns,
    )
    if span is not None:
        span.end(end_time=end_ns)
