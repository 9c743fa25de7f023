"""OpenTelemetry spans across adapter -> router -> recipient adapter, off unless configured.

A span's context travels in the Kafka record's ``traceparent`` (and ``tracestate``) header, W3C
Trace Context (https://www.w3.org/TR/trace-context/), so the receiving component's span is the
child of the sending one's and one message's path is one trace. The header is not signed: it
names a trace, not content, and a forged one only files a span under another trace; the W3C
propagator ignores a header that is not well formed.

Export is over OTLP/HTTP, and only when an endpoint is configured (``KETENBUS_OTLP_ENDPOINT`` or
the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``);
otherwise no provider, no exporter and no span is made (:func:`enabled` is one check).

Spans carry ids only: the message id, the flow (event code), the topic, the sender's and the
recipient's party ids, the decision and its reason code (:data:`ATTRIBUTES`). Never personal
data (AVG art. 5(1)(c), data minimisation; NEN 7513 keeps who-did-what in the audit trail, not in
telemetry): :func:`safe_attributes` drops any other key, any value that is not a short
identifier, and any value that is a BSN by the elfproef.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from broker.config import Settings
from schemas.identifiers import bsn_check

log = logging.getLogger(__name__)

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
_CARRIER_HEADERS: Final = frozenset({TRACEPARENT, TRACESTATE})

MESSAGE_ID: Final = "ketenbus.message_id"
FLOW: Final = "ketenbus.flow"
SENDER: Final = "ketenbus.sender"
RECIPIENT: Final = "ketenbus.recipient"
DECISION: Final = "ketenbus.decision"
REASON: Final = "ketenbus.reason"
COMPONENT: Final = "ketenbus.component"
TOPIC: Final = "messaging.destination.name"
SYSTEM: Final = "messaging.system"

ATTRIBUTES: Final = frozenset(
    {MESSAGE_ID, FLOW, SENDER, RECIPIENT, DECISION, REASON, COMPONENT, TOPIC, SYSTEM}
)
"""The only attribute keys a ketenbus span carries."""

_SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_DIGITS = re.compile(r"[0-9]{8,9}")

# the envelope headers (broker/trust/envelope.py) a span takes its attributes from
_FROM_HEADERS: Final = (("kb-id", MESSAGE_ID), ("kb-event", FLOW), ("kb-sender", SENDER),
                        ("kb-recipient", RECIPIENT))

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def enabled() -> bool:
    """Whether spans are made in this process (a provider is installed)."""
    return _provider is not None


def endpoint_of(settings: Settings) -> str | None:
    """The OTLP/HTTP traces URL: the ketenbus setting, else the standard OpenTelemetry
    variables (``.../v1/traces`` appended to the general endpoint, as the specification says);
    None when none is set or ``OTEL_SDK_DISABLED`` is true."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if settings.otlp_endpoint:
        return settings.otlp_endpoint
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    general = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{general.rstrip('/')}/v1/traces" if general else None


def configure(settings: Settings) -> bool:
    """Export spans over OTLP/HTTP when an endpoint is configured; once per process (the first
    component to start installs the provider). Returns whether spans are made."""
    if _provider is not None:
        return True
    endpoint = endpoint_of(settings)
    if endpoint is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "ketenbus"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    install(provider)
    log.info("OpenTelemetry spans exported over OTLP/HTTP")  # not the URL: it may hold a token
    return True


def install(provider: TracerProvider | None) -> TracerProvider | None:
    """Make spans with ``provider`` (None: stop making them); returns the one it replaces.
    Not the global provider: a test installs an in-memory exporter and removes it again."""
    global _provider
    previous, _provider = _provider, provider
    return previous


def shutdown() -> None:
    """Flush and stop the exporter (at process end)."""
    provider = install(None)
    if provider is not None:
        provider.shutdown()


def safe_attributes(attributes: Mapping[str, str | None]) -> dict[str, str]:
    """Only the known keys, only short identifier-like values, and never a BSN."""
    out: dict[str, str] = {}
    for key, value in attributes.items():
        if key not in ATTRIBUTES or not value or not _SAFE_VALUE.fullmatch(value):
            continue
        if _DIGITS.fullmatch(value) and bsn_check(value.zfill(9)):
            continue
        out[key] = value
    return out


def header_attributes(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    """The span attributes an envelope's routing headers give (ids, never content)."""
    found = {name: value for name, value in headers if isinstance(name, str)}
    out: dict[str, str | None] = {}
    for header, key in _FROM_HEADERS:
        value = found.get(header)
        if isinstance(value, bytes):
            out[key] = value.decode("utf-8", "replace")
    return safe_attributes(out)


def extract(headers: Iterable[tuple[str, bytes | None]]) -> Context:
    """The trace context a record carries (an empty context when it carries none or garbage)."""
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name in _CARRIER_HEADERS and isinstance(value, bytes) and len(value) <= 512:
            carrier[name] = value.decode("ascii", "replace")
    return _propagator.extract(carrier)


def inject(headers: Iterable[tuple[str, bytes]], span: Span | None) -> list[tuple[str, bytes]]:
    """``headers`` with ``span``'s context as ``traceparent``, replacing any trace header it had
    (a record re-sent or parked keeps no foreign trace); unchanged without a span."""
    kept = [(k, v) for k, v in headers if k not in _CARRIER_HEADERS]
    if span is None or not span.get_span_context().is_valid:
        return kept
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return [*kept, *((k, v.encode("ascii")) for k, v in carrier.items())]


@contextmanager
def span(
    scope: str,
    name: str,
    *,
    component: str | None = None,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | None] | None = None,
    start_time: int | None = None,
) -> Iterator[Span | None]:
    """A span made by ``ketenbus.<scope>`` (``router``, ``adapter.zvh``, ...) for ``component``
    (a party id); None when tracing is off: nothing is made. Without ``parent`` it is the child
    of the current span, if any. Attributes pass :func:`safe_attributes`."""
    provider = _provider
    if provider is None:
        yield None
        return
    tracer = provider.get_tracer(f"ketenbus.{scope}")
    attrs = safe_attributes({COMPONENT: component, SYSTEM: "kafka", **(attributes or {})})
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attrs, start_time=start_time
    ) as current:
        yield current


def start(
    scope: str,
    name: str,
    *,
    component: str | None = None,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | None] | None = None,
    start_time: int | None = None,
) -> Span | None:
    """Like :func:`span`, but not made current and not ended: for spans timed by the caller
    (``span.end(end_time=...)``), such as the router's per record of a batch."""
    provider = _provider
    if provider is None:
        return None
    tracer = provider.get_tracer(f"ketenbus.{scope}")
    attrs = safe_attributes({COMPONENT: component, SYSTEM: "kafka", **(attributes or {})})
    return tracer.start_span(
        name, context=parent, kind=kind, attributes=attrs, start_time=start_time
    )


def context_of(span: Span) -> Context:
    """A context whose current span is ``span``: the parent of its children."""
    return trace.set_span_in_context(span)


def set_attributes(current: Span | None, attributes: Mapping[str, str | None]) -> None:
    """Add attributes to a span (if any), through the same filter."""
    if current is not None:
        current.set_attributes(safe_attributes(attributes))
