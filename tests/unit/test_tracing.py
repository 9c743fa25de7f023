"""OpenTelemetry spans (issue 17): off unless an endpoint is configured, exported over OTLP/HTTP
when one is, W3C trace context in Kafka headers that shrugs off forged or broken headers, and
span attributes that can carry ids but never personal data (AVG art. 5(1)(c))."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from broker.apps.synthetic import synthetic_bsn
from broker.component import tracing
from broker.config import ConfigError, Settings

OTEL_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
             "OTEL_SDK_DISABLED")


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    previous = tracing.install(None)
    yield
    tracing.install(previous)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.install(provider)
    return spans


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(state_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_off_without_an_endpoint_makes_nothing(tmp_path: Path) -> None:
    assert tracing.configure(settings(tmp_path)) is False
    assert not tracing.enabled()
    with tracing.span("router", "route in.referral", attributes={tracing.MESSAGE_ID: "m"}) as s:
        assert s is None
    assert tracing.start("router", "x") is None
    headers = [("kb-id", b"m"), ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    assert tracing.inject(headers, None) == [("kb-id", b"m")], "no foreign trace is passed on"


def test_the_endpoint_comes_from_the_setting_or_the_standard_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:4318/v1/traces"
    assert tracing.endpoint_of(settings(tmp_path, otlp_endpoint=url)) == url
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")
    assert tracing.endpoint_of(settings(tmp_path)) == url
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/t")
    assert tracing.endpoint_of(settings(tmp_path)) == "http://127.0.0.1:9/t"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.endpoint_of(settings(tmp_path, otlp_endpoint=url)) is None


@pytest.mark.parametrize("bad", ["ftp://127.0.0.1/x", "http://a b", "http://" + "a" * 600])
def test_a_malformed_endpoint_is_refused_at_start(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="KETENBUS_OTLP_ENDPOINT"):
        settings(tmp_path, otlp_endpoint=bad)


def test_attributes_keep_ids_and_drop_personal_data() -> None:
    bsn = synthetic_bsn(random.Random())
    kept = tracing.safe_attributes({
        tracing.MESSAGE_ID: "3f1c2a9e-0b6d-4e58-9a57-1c0f3c4f8d21",
        tracing.SENDER: "zvh-midden-nederland",
        tracing.FLOW: "referral",
        tracing.REASON: "no-consent",
        tracing.RECIPIENT: bsn,  # a BSN where an id belongs
        tracing.DECISION: bsn.lstrip("0")[:9],
        "patient.name": "Kees Testpersoon",  # an unknown key
        tracing.COMPONENT: "Kees Testpersoon",  # a name: spaces are not an id
        tracing.TOPIC: "x" * 200,  # too long for an id
    })
    assert kept == {
        tracing.MESSAGE_ID: "3f1c2a9e-0b6d-4e58-9a57-1c0f3c4f8d21",
        tracing.SENDER: "zvh-midden-nederland",
        tracing.FLOW: "referral",
        tracing.REASON: "no-consent",
    }
    hostile = tracing.safe_attributes({tracing.SENDER: "a\nb", tracing.FLOW: "r\x00", "": "x"})
    assert hostile == {}


def test_a_span_is_the_child_of_the_traceparent_it_received(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("adapter.zvh", "send", attributes={tracing.MESSAGE_ID: "m1"}) as s:
        headers = tracing.inject([("kb-id", b"m1")], s)
    assert [k for k, _ in headers].count("traceparent") == 1
    with tracing.span("router", "route", parent=tracing.extract(headers)) as r:
        forged = [*headers, ("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")]
        onward = tracing.inject(forged, r)
    [(_, carried)] = [(k, v) for k, v in onward if k == "traceparent"]
    assert r is not None, "a forged traceparent is replaced by this span's, never passed on"
    assert carried.decode().split("-")[2] == f"{r.get_span_context().span_id:016x}"
    send, route = exporter.get_finished_spans()
    assert send.context is not None and route.context is not None and route.parent is not None
    assert route.context.trace_id == send.context.trace_id
    assert route.parent.span_id == send.context.span_id


@pytest.mark.parametrize("forged", [
    b"garbage",
    b"00-" + b"0" * 32 + b"-" + b"1" * 16 + b"-01",  # an all-zero trace id is invalid
    b"ff-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01",  # version ff is forbidden
    b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01" + b"x" * 5000,  # over-long
    b"\xff\xfe\x00",
])
def test_a_broken_or_forged_traceparent_starts_a_new_trace(
    exporter: InMemorySpanExporter, forged: bytes
) -> None:
    with tracing.span("router", "route", parent=tracing.extract([("traceparent", forged)])):
        pass
    [route] = exporter.get_finished_spans()
    assert route.parent is None, "a broken header makes a root span, not an error"


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_spans_are_exported_over_otlp_http_to_the_configured_endpoint(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/traces"
        assert tracing.configure(settings(tmp_path, otlp_endpoint=url))
        with tracing.span("router", "route in.referral",
                          attributes={tracing.MESSAGE_ID: "m-otlp"}):
            pass
        tracing.shutdown()  # flushes the batch
    finally:
        server.shutdown()
    assert not tracing.enabled()
    [(path, body)] = _Receiver.bodies
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource] = request.resource_spans
    [scope] = resource.scope_spans
    assert scope.scope.name == "ketenbus.router"
    [span] = scope.spans
    assert span.name == "route in.referral"
    assert {a.key: a.value.string_value for a in span.attributes}[tracing.MESSAGE_ID] == "m-otlp"
