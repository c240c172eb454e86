"""Bad input: fuzzed bodies on both webhook endpoints and the desk API, and fuzzed playbooks. Never a
5xx or a traceback; always a JSON error naming the problem. Bodies up to the size limit, invalid
UTF-8 and JSON nested 10,000 levels deep included. Deliveries are signed for real, so the fuzz
reaches the parsers behind the signature checks. Every test with an app runs on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.settings import Settings
from playbook import loader
from playbook.errors import PlaybookError
from tests.fakes.adapters import scripted_registry
from tests.fakes.slack_api import signed
from tests.reliability.conftest import assert_json_error, counts, issue_event, jira_headers

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DEEP = 10_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(
    st.sampled_from(
        [
            "timestamp",
            "webhookEvent",
            "issue",
            "summary",
            "description",
            "user",
            "reporter",
            "payload",
            "key",
            "fields",
            "type",
            "actions",
        ]
    )
    | st.text(max_size=8),
    json_values,
    max_size=6,
)
bodies = (
    st.binary(max_size=300)  # anything, invalid UTF-8 included
    | objects.map(lambda o: json.dumps(o).encode())  # JSON objects of odd shapes
    | json_values.map(lambda v: json.dumps(v).encode())  # JSON that is not an object
    | st.sampled_from(
        [
            b"[" * DEEP + b"]" * DEEP,
            b'{"a":' * DEEP + b"1" + b"}" * DEEP,
            b"\xff\xfe{}",
            b'{"issue": "\xed\xa0\x80"}',
            b"",
            b"null",
            b'{"timestamp": 1e999}',
        ]
    )
)


@pytest.fixture(name="settings", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The fuzz runs on the embedded store and on PostgreSQL, which refuses more (NUL characters)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else ""
    return Settings(data_dir=tmp_path / "data", sweep_seconds=0.1, database_url=url)


@pytest.fixture
def app(jira, make_slack):  # type: ignore[no-untyped-def]
    """connbot with Jira and Slack configured; its test client and services."""
    world = make_slack(scripted_registry({}, systems=()))
    return world.web, world.svc


def assert_refused_cleanly(resp: Any) -> None:
    if resp.status_code < 300:
        return
    assert_json_error(resp)


@FUZZ
@given(body=bodies)
@example(body=issue_event("VOIP-1", summary="nul\x00"))  # PostgreSQL cannot store it: was a 503
def test_jira_webhook_fuzz(app, body: bytes) -> None:  # type: ignore[no-untyped-def]
    client, _svc = app
    resp = client.post("/webhooks/jira", data=body, headers=jira_headers(body))
    assert_refused_cleanly(resp)
    if resp.status_code >= 400:
        assert resp.status_code in (400, 413)


@FUZZ
@given(body=bodies)
@example(body=b'{"user": false}')  # bolt read ids out of it before verifying, and crashed
def test_slack_events_fuzz(app, body: bytes) -> None:  # type: ignore[no-untyped-def]
    client, svc = app
    before = counts(svc)
    for encoded in (body, b"payload=" + body):
        resp = client.post("/slack/events", data=encoded, headers=signed(encoded))
        assert resp.status_code < 500, resp.get_data(as_text=True)[:300]
        if resp.status_code >= 400:
            assert_json_error(resp)
    assert counts(svc).answered == before.answered


@FUZZ
@given(body=bodies)
def test_desk_api_fuzz(app, body: bytes) -> None:  # type: ignore[no-untyped-def]
    client, _svc = app
    resp = client.post("/api/tickets", data=body, headers={"Content-Type": "application/json"})
    assert_refused_cleanly(resp)


@FUZZ
@given(
    ticket=st.dictionaries(
        st.sampled_from(["summary", "description", "reporter", "user", "extra"]), json_values, max_size=5
    )
)
@example(ticket={"summary": "a\x00b"})  # PostgreSQL cannot store it: was a 500
def test_desk_api_fields_fuzz(app, ticket: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    client, _svc = app
    resp = client.post("/api/tickets", json=ticket)
    if resp.status_code == 201:
        return
    data = assert_json_error(resp, 400)
    assert any(
        name in data["message"] for name in ("summary", "description", "reporter", "user", "extra", "body")
    )


def test_deep_nesting_is_a_clear_error_everywhere(app) -> None:  # type: ignore[no-untyped-def]
    client, _svc = app
    deep = b"[" * DEEP + b"]" * DEEP
    resp = client.post("/webhooks/jira", data=deep, headers=jira_headers(deep))
    assert "nest" in assert_json_error(resp, 400)["message"]
    resp = client.post("/api/tickets", data=deep, headers={"Content-Type": "application/json"})
    assert "nest" in assert_json_error(resp, 400)["message"]
    form = b"payload=" + b"%5B" * DEEP + b"%5D" * DEEP
    resp = client.post("/slack/events", data=form, headers=signed(form.decode()))
    assert "nest" in assert_json_error(resp, 400)["message"]


def test_invalid_utf8_is_named(app) -> None:  # type: ignore[no-untyped-def]
    client, svc = app
    body = b'{"webhookEvent": "jira:issue_created", "x": "\xff"}'
    assert (
        "UTF-8"
        in assert_json_error(client.post("/webhooks/jira", data=body, headers=jira_headers(body)), 400)[
            "message"
        ]
    )
    # Slack signs the raw bytes: a signed body that is not UTF-8 verifies, and is refused for what it is
    for kind, bad in (("json", b'{"type": "\xff"}'), ("x-www-form-urlencoded", b"payload=%7B%7D\xff")):
        headers = {**signed(bad), "Content-Type": f"application/{kind}"}
        refused = assert_json_error(client.post("/slack/events", data=bad, headers=headers), 400)
        assert refused["message"] == f"body is not valid UTF-8 (byte {bad.index(0xFF)})"
        forged = {**signed(bad, secret="0" * 32), "Content-Type": f"application/{kind}"}
        assert_json_error(client.post("/slack/events", data=bad, headers=forged), 401)
    assert counts(svc).events == 0


def test_bodies_up_to_the_size_limit_are_read_and_past_it_refused(app) -> None:  # type: ignore[no-untyped-def]
    client, svc = app
    limit = svc.settings.max_body_bytes
    base = json.loads(issue_event("VOIP-9"))
    base["issue"]["fields"]["description"] = ""
    pad = limit - len(json.dumps(base).encode())
    base["issue"]["fields"]["description"] = "x" * pad
    at_limit = json.dumps(base).encode()
    assert len(at_limit) == limit
    resp = client.post("/webhooks/jira", data=at_limit, headers=jira_headers(at_limit, "big-1"))
    assert resp.status_code == 202, resp.get_data(as_text=True)[:300]
    over = at_limit + b" "
    assert_json_error(client.post("/webhooks/jira", data=over, headers=jira_headers(over, "big-2")), 413)
    over_form = b"payload=" + b"x" * limit
    assert_json_error(client.post("/slack/events", data=over_form, headers=signed(over_form.decode())), 413)
    assert_json_error(
        client.post("/api/tickets", data=b" " * (limit + 1), headers={"Content-Type": "application/json"}),
        413,
    )
    assert counts(svc).events == 1


playbook_text = st.one_of(
    st.text(alphabet=string.printable, max_size=300),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    objects.map(json.dumps),  # JSON is YAML: structured nonsense
    st.sampled_from(
        [
            "[" * DEEP + "]" * DEEP,
            "a: &a [*a]",
            "steps: {x: {action: app.get_status}}",
            "- " * 2000 + "x",
            "name: x\nstart: a\nsteps:\n  a: {close: done}\n" * 2,
        ]
    ),
)


@settings(max_examples=80, deadline=None)
@given(text=playbook_text)
def test_playbook_loader_fuzz(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("pb") / "playbook.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    registry = scripted_registry({})
    try:
        loader.load(path, registry.catalogue)
    except PlaybookError as exc:
        assert exc.problems and all(p.strip() for p in exc.problems)
