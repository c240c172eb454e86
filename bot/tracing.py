"""Optional OpenTelemetry tracing, off unless CONNBOT_OTEL_ENDPOINT names an OTLP/HTTP collector.

One trace follows a ticket from the webhook that brought it to the adapter calls its run makes: the
web request is a span; the queue's tasks carry the W3C `traceparent` of the span that enqueued them
(a short string beside the id, never an object); processing the event, each advance of the run and
each adapter action are spans of the same trace. A task enqueued by the sweeper starts a trace of
its own. Without the `otel` extra installed (`pip install 'connbot[otel]'`), or unconfigured, every
function here does nothing.

The spans go to this module's own tracer provider (not OpenTelemetry's global one), set up once per
process after it forks: the embedded server's worker, each gunicorn worker, `connbot worker`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the `otel` extra is not installed: tracing stays off
    trace = None  # type: ignore[assignment]

_tracer: Any = None
_provider: Any = None


def configure(endpoint: str, service: str) -> None:
    """Send spans to the OTLP/HTTP collector at `endpoint` (e.g. http://collector:4318) as `service`;
    an empty `endpoint` turns tracing off (the spans so far are sent first)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = _tracer = None
    if not endpoint:
        return
    if trace is None:  # the settings refuse an endpoint without the packages
        raise RuntimeError("tracing configured without OpenTelemetry installed")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
    )
    _provider, _tracer = provider, provider.get_tracer("connbot")


def flush() -> None:
    """Send the spans ended so far (at exit, and in tests)."""
    if _provider is not None:
        _provider.force_flush()


def on() -> bool:
    """Whether spans are being recorded (a caller may then skip building one)."""
    return _tracer is not None


@contextmanager
def span(name: str, **attributes: str | int) -> Iterator[None]:
    """A span of the current trace around the block (an exception leaving it is recorded on it)."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, attributes=attributes):
        yield


def carrier() -> str | None:
    """The `traceparent` of the current span, for a task to continue the trace; None when off."""
    if _tracer is None:
        return None
    headers: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(headers)
    return headers.get("traceparent")


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Inside the block, spans continue the trace `traceparent` names (from `carrier()`)."""
    if _tracer is None or not traceparent:
        yield
        return
    token = otel_context.attach(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)
