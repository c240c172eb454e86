"""OpenTelemetry tracing, on when CONNBOT_OTEL_ENDPOINT names a collector: one trace from the Jira
webhook to the adapter calls of the run it starts, sent over OTLP/HTTP (the collector is faked at
the wire: its protobuf requests decoded)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bot import tracing
from bot.settings import Settings, load_settings
from integrations.base import PermanentError
from integrations.settings import SettingsError
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import FakeJira, configure, deliver, fixture

COLLECTOR = "http://collector.test:4318"


@pytest.fixture
def spans(monkeypatch) -> Iterator[list[dict[str, Any]]]:
    """Jira faked at the wire, and a collector that keeps every span it is sent."""
    configure(monkeypatch)
    received: list[dict[str, Any]] = []

    def collect(request: Any) -> tuple[int, dict[str, str], bytes]:
        export = ExportTraceServiceRequest.FromString(request.body)
        for resource in export.resource_spans:
            service = next(
                a.value.string_value for a in resource.resource.attributes if a.key == "service.name"
            )
            for scope in resource.scope_spans:
                for s in scope.spans:
                    attrs = {a.key: a.value.string_value or a.value.int_value for a in s.attributes}
                    received.append(
                        {
                            "name": s.name,
                            "trace": s.trace_id.hex(),
                            "id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(),
                            "service": service,
                            "attrs": attrs,
                            "error": s.status.code == s.status.STATUS_CODE_ERROR,
                        }
                    )
        return 200, {"Content-Type": "application/x-protobuf"}, b""

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeJira(rsps)
        rsps.add_callback(responses.POST, f"{COLLECTOR}/v1/traces", callback=collect)
        tracing.configure(load_settings({"CONNBOT_OTEL_ENDPOINT": COLLECTOR}).otel_endpoint, "connbot-test")
        try:
            yield received
        finally:
            tracing.configure("", "")  # off again, the spans so far sent


def test_one_trace_goes_from_the_jira_webhook_to_the_adapter_calls(spans, make_services):
    svc = make_services(
        registry=scripted_registry(
            {"app.get_status": [PermanentError("the backend refused")], "app.reconnect": ["reconnected"]}
        )
    )
    resp = deliver(svc, fixture("cloud_issue_created.json"), "delivery-1")
    assert resp.status_code == 202
    tracing.flush()
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    (webhook,) = by_name["POST /webhooks/jira"]
    (event,) = by_name["connbot.process_event"]
    adapters = by_name["connbot.adapter"]
    assert [a["attrs"]["action"] for a in adapters] == ["app.get_status", "app.reconnect"]
    assert {s["trace"] for s in spans} == {webhook["trace"]}  # one trace, nothing else traced
    assert webhook["parent"] == "" and event["parent"] == webhook["id"]
    advances = {s["id"]: s for s in by_name["connbot.advance_run"]}
    assert all(a["parent"] in advances for a in adapters)
    first = advances[adapters[0]["parent"]]
    assert first["parent"] == event["id"] and first["attrs"]["run"] == adapters[0]["attrs"]["run"]
    assert adapters[0]["attrs"]["step"] == "check_status"
    assert [a["error"] for a in adapters] == [True, False]  # the failed call is marked on its span
    assert {s["service"] for s in spans} == {"connbot-test"}


def test_tracing_is_off_unless_configured_and_refuses_a_bad_endpoint(monkeypatch):
    assert tracing.carrier() is None
    with tracing.span("connbot.nothing"):
        assert tracing.carrier() is None
    with pytest.raises(SettingsError, match="CONNBOT_OTEL_ENDPOINT"):
        load_settings({"CONNBOT_OTEL_ENDPOINT": "collector:4318"})
    assert Settings().otel_endpoint == ""
    # without the otel extra installed, the setting says what to install
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http", None)
    with pytest.raises(SettingsError, match=r"pip install 'connbot\[otel\]'"):
        load_settings({"CONNBOT_OTEL_ENDPOINT": COLLECTOR})
