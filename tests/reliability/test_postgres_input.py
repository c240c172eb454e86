"""Input PostgreSQL refuses: a NUL character (U+0000) anywhere in text, or a value longer than its
column. It is answered at the edge with a 400 naming the field (the API, the desk's pages and
forms, the Jira webhook: a 4xx, so Jira does not retry it for ever), on SQLite and PostgreSQL
alike. An event already stored that still cannot be processed is quarantined once, with the
reason, shown in /api and /metrics, and never offered again; the next event runs as usual."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from bot.runs import intake
from bot.settings import Settings
from bot.state.models import Event, Prompt, Run
from bot.web.app import create_app
from tests.fakes.adapters import scripted_registry
from tests.reliability.conftest import assert_json_error, counts, issue_event, jira_headers


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Every test here on the embedded store and on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else ""
    # no periodic PBX check: the scripted adapters answer only the steps (tests/conftest.py QUIET)
    return Settings(data_dir=tmp_path / "data", sweep_seconds=0.1, health_check_seconds=0, database_url=url)


@pytest.fixture
def world(jira, make_services):  # type: ignore[no-untyped-def]
    script = {"app.get_status": ["failed"] * 5, "app.reconnect": ["reconnected"] * 5}
    svc = make_services(registry=scripted_registry(script))
    return create_app(services=svc).test_client(), svc


@pytest.mark.parametrize("field", ["summary", "description", "reporter", "user"], ids=lambda f: f"nul-in-{f}")
def test_a_nul_in_a_desk_ticket_is_a_400_naming_the_field(world, field: str) -> None:  # type: ignore[no-untyped-def]
    client, svc = world
    body = {"summary": "cannot connect", field: "a\x00b"}
    message = assert_json_error(client.post("/api/tickets", json=body), 400)["message"]
    assert field in message and "NUL" in message
    assert counts(svc).tickets == 0


def test_a_nul_in_a_url_or_query_is_a_400(world) -> None:  # type: ignore[no-untyped-def]
    client, _svc = world
    assert "path" in assert_json_error(client.get("/api/tickets/a%00b"), 400)["message"]
    assert "limit" in assert_json_error(client.get("/api/tickets?limit=1%00"), 400)["message"]
    assert client.get("/tickets/a%00b").status_code == 400
    assert client.get("/prompts/x%00y").status_code in (400, 405)


def test_desk_forms_with_a_nul_or_an_overlong_name_are_refused(jira, make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(registry=scripted_registry({}, systems=()))  # every step asks a person
    client = create_app(services=svc).test_client()
    page = client.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = client.post("/tickets", data={"csrf_token": csrf, "summary": "no\x00way"})
    assert resp.status_code == 400 and "summary" in resp.get_data(as_text=True)
    assert counts(svc).tickets == 0
    client.post("/api/tickets", json={"summary": "cannot connect", "user": "1001"})
    svc.queue.run_pending()
    with svc.store.tx() as s:
        prompt = s.scalars(select(Prompt).where(Prompt.state == "open")).one()
    choice = prompt.options[0][0]
    resp = client.post(f"/api/prompts/{prompt.id}/answer", json={"answer": choice, "by": "x" * 256})
    assert "255" in assert_json_error(resp, 400)["message"]
    resp = client.post(
        f"/prompts/{prompt.id}/answer", data={"csrf_token": csrf, "answer": choice, "name": "y" * 256}
    )
    assert resp.status_code == 400 and "255" in resp.get_data(as_text=True)
    assert client.get(f"/api/runs/{prompt.run_id}").get_json()["state"] == "waiting"


@pytest.mark.parametrize(
    "change",
    [
        {"summary": "bad\x00summary"},
        {"description": "bad\x00description"},
        {"key": "VOIP-\x001"},
        {"webhookEvent": "jira:" + "x" * 80},
        {"key": "VOIP-" + "9" * 80},
    ],
    ids=["nul-summary", "nul-description", "nul-key", "long-event", "long-key"],
)
def test_jira_deliveries_postgres_cannot_store_are_a_400_not_a_503(world, change) -> None:  # type: ignore[no-untyped-def]
    client, svc = world
    body = json.loads(issue_event("VOIP-1"))
    for name, value in change.items():
        if name == "webhookEvent":
            body[name] = value
        elif name == "key":
            body["issue"]["key"] = value
        else:
            body["issue"]["fields"][name] = value
    raw = json.dumps(body).encode()
    resp = client.post("/webhooks/jira", data=raw, headers=jira_headers(raw, "d-1"))
    message = assert_json_error(resp, 400)["message"]
    assert next(iter(change)) in message
    assert counts(svc).events == 0


def _store_raw_event(svc, delivery: str, payload: dict) -> int:  # type: ignore[no-untyped-def]
    """An event stored as an older connbot (or a direct writer) stored it, before any edge check."""
    with svc.store.tx() as s:
        return s.execute(
            insert(Event).returning(Event.id),
            {
                "source": "jira",
                "delivery_id": delivery,
                "kind": "jira:issue_created",
                "ticket_key": "VOIP-7",
                "payload": payload,
            },
        ).scalar_one()


def test_an_event_that_cannot_be_processed_is_quarantined_once(world, caplog) -> None:  # type: ignore[no-untyped-def]
    client, svc = world
    broken = json.loads(issue_event("VOIP-7"))
    if svc.store.engine.dialect.name == "postgresql":
        broken["issue"]["fields"]["summary"] = "nul\x00here"  # PostgreSQL refuses it in tickets.summary
    else:
        broken["issue"]["fields"]["summary"] = {"not": "text"}  # not a Jira payload
    bad = _store_raw_event(svc, "stored-before", broken)
    caplog.set_level(logging.INFO)
    svc.queue.run_pending()  # a worker takes the stored event from the store
    for _ in range(3):  # and never again
        assert svc.queue.run_pending() == 0
    with svc.store.tx() as s:
        event = s.get(Event, bad)
        assert event.processed_at is not None
        assert event.outcome.startswith(intake.QUARANTINED)
    said = [r for r in caplog.records if "quarantined" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR and not said[0].exc_info
    listed = client.get("/api/events?state=quarantined").get_json()["events"]
    assert [e["id"] for e in listed] == [bad] and listed[0]["outcome"] == event.outcome
    assert "connbot_events_quarantined 1.0" in client.get("/metrics").get_data(as_text=True)
    # The next delivery is processed as usual.
    good = issue_event("VOIP-8")
    assert client.post("/webhooks/jira", data=good, headers=jira_headers(good, "good")).status_code == 202
    svc.queue.run_pending()
    with svc.store.tx() as s:
        assert [r.ticket.key for r in s.scalars(select(Run))] == ["VOIP-8"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_jira_delivery_with_a_number_json_has_not_is_a_400_not_a_503(world, constant) -> None:  # type: ignore[no-untyped-def]
    """Python's JSON reader takes NaN and Infinity, PostgreSQL's JSON type refuses them: such a body is
    not JSON (RFC 8259), answered 400 naming the word, and nothing is stored."""
    client, svc = world
    body = json.loads(issue_event("VOIP-1"))
    body["issue"]["fields"]["customfield_10100"] = float(constant.lower().replace("infinity", "inf"))
    raw = json.dumps(body).encode()
    assert constant.encode() in raw
    resp = client.post("/webhooks/jira", data=raw, headers=jira_headers(raw, "d-1"))
    assert constant.lstrip("-") in assert_json_error(resp, 400)["message"]
    assert counts(svc).events == 0
