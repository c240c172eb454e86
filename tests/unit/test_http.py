"""The HTTP skeleton: health, readiness, metrics, the JSON API and its errors."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from bot.services import Services
from bot.settings import Settings
from bot.web.app import create_app
from tests.fakes.adapters import scripted_registry


@pytest.fixture
def client(make_services):
    svc = make_services(registry=scripted_registry({}, systems=()))
    app = create_app(services=svc)
    return app.test_client()


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["database"] == "ok" and ready.json["queue"] == "ok"


def test_readiness_names_the_database_when_it_is_unreachable(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    svc = Services.build(settings, registry=scripted_registry({}, systems=()))
    try:
        resp = create_app(services=svc).test_client().get("/readyz")
        assert resp.status_code == 503
        assert "database" in resp.json["problems"] and "queue" not in resp.json["problems"]
    finally:
        svc.close()


def test_filing_a_ticket_starts_a_run_that_asks_a_person(client):
    resp = client.post("/api/tickets", json={"summary": "Alice can't connect", "user": "1001"})
    assert resp.status_code == 201
    key, run_id = resp.json["key"], resp.json["run"]
    client.application.extensions["connbot"].queue.run_pending()
    prompts = client.get("/api/prompts").json["prompts"]
    assert [p["ticket"] for p in prompts] == [key] and prompts[0]["step"] == "check_status"
    answered = client.post(f"/api/prompts/{prompts[0]['id']}/answer", json={"answer": "failed", "by": "bob"})
    assert answered.status_code == 200 and answered.json["answered_by"] == "bob"
    assert answered.json["answered_via"] == "api"
    again = client.post(f"/api/prompts/{prompts[0]['id']}/answer", json={"answer": "registered", "by": "eve"})
    assert again.status_code == 409 and "already answered by bob" in again.json["message"]
    client.application.extensions["connbot"].queue.run_pending()
    run = client.get(f"/api/runs/{run_id}").json
    assert [s["step"] for s in run["steps"]] == ["check_status"] and run["step"] == "force_reconnect"
    ticket = client.get(f"/api/tickets/{key}").json
    assert ticket["comments"][0]["body"].startswith("connbot is triaging")
    assert any("Answered by bob through the API" in c["body"] for c in ticket["comments"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "summary: Field required"),
        ({"summary": ""}, "summary: String should have at least 1 character"),
        ({"summary": "x", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"summary": "x" * 300}, "summary: String should have at most 255 characters"),
        ([1, 2], "expected a JSON object body"),
    ],
)
def test_bad_tickets_get_a_json_error_naming_the_problem(client, body, message):
    resp = client.post("/api/tickets", json=body)
    assert resp.status_code == 400 and message in resp.json["message"]


def test_errors_are_json(client):
    assert client.get("/api/runs/999").json == {"error": "Not Found", "message": "no run 999"}
    assert client.get("/api/nowhere").status_code == 404 and client.get("/api/nowhere").is_json
    page = client.get("/nowhere")  # outside the API, a person's browser gets a page
    assert page.status_code == 404 and page.content_type.startswith("text/html")
    assert client.delete("/api/tickets").status_code == 405 and client.delete("/api/tickets").is_json
    big = client.post("/api/tickets", data=b"x" * (2 * 1024 * 1024), content_type="application/json")
    assert big.status_code == 413 and big.json == {
        "error": "Request Entity Too Large",
        "message": "the body is larger than CONNBOT_MAX_BODY_BYTES (1048576 bytes)",
    }
    assert client.post("/api/prompts/nope/answer", json={"answer": "x", "by": "b"}).status_code == 404
    assert client.get("/api/runs?limit=0").status_code == 400


def test_metrics_report_runs_steps_and_queue(client):
    client.post("/api/tickets", json={"summary": "Alice can't connect"})
    client.application.extensions["connbot"].queue.run_pending()
    resp = client.get("/metrics")
    text = resp.get_data(as_text=True)
    assert 'connbot_runs{end="",state="waiting"} 1.0' in text
    assert "connbot_prompts_open 1.0" in text and "connbot_queue_depth 0.0" in text
    assert 'connbot_dependency_up{dependency="database"} 1.0' in text
    assert 'connbot_dependency_up{dependency="queue"} 1.0' in text
    assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST  # its charset once


# Nothing listens on port 1: a dependency there is down.
DEAD = {
    "database": {"database_url": "postgresql://nobody@127.0.0.1:1/none"},
    "queue": {"queue_url": "redis://127.0.0.1:1/0"},
}


@pytest.mark.parametrize("down", ["queue", "database"])
def test_metrics_with_a_dependency_down_serve_the_rest_and_say_so_once(settings, caplog, down):
    """A scrape is not lost to one source being down: the other's metrics are served, the one down
    is `connbot_dependency_up` 0 and its metrics are left out, and the log says so in one line, not
    a traceback a scrape."""
    svc = Services.build(settings.model_copy(update=DEAD[down]), registry=scripted_registry({}, systems=()))
    if down == "queue":
        svc.store.upgrade()
    try:
        client = create_app(services=svc).test_client()
        with caplog.at_level(logging.INFO, logger="bot"):
            scrapes = [client.get("/metrics") for _ in range(3)]
    finally:
        svc.close()
    assert [r.status_code for r in scrapes] == [200, 200, 200]
    text = scrapes[-1].get_data(as_text=True)
    up = "queue" if down == "database" else "database"
    assert f'connbot_dependency_up{{dependency="{down}"}} 0.0' in text
    assert f'connbot_dependency_up{{dependency="{up}"}} 1.0' in text
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    if down == "queue":
        assert "connbot_queue_depth" not in samples and "connbot_prompts_open" in samples
    else:
        assert "connbot_queue_depth" in samples and "connbot_prompts_open" not in samples
    said = [r for r in caplog.records if r.name.startswith("bot.web")]
    assert len(said) == 1 and f"the {down} (metrics) unreachable" in said[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_a_repeated_ticket_list_parameter_is_refused_naming_it(client):
    resp = client.get("/api/tickets?status=open&status=closed")
    assert resp.status_code == 400
    assert resp.json["message"].startswith("status: given more than once")
    assert client.get("/api/tickets?status=open&level=1").status_code == 200


def test_an_async_view_is_still_refused_as_flask_refuses_it(client):
    """The app remembers which views are plain functions; a coroutine view still goes through Flask's
    own handling, which without its `async` extra (not installed) answers with a clear error, not a
    coroutine that never runs."""
    app = client.application

    async def later() -> str:
        return "never"

    app.add_url_rule("/api/later", view_func=later)
    assert client.get("/healthz").status_code == 200  # a plain view remembered, still plain
    resp = client.get("/api/later")
    assert resp.status_code == 500 and resp.json["error"] == "Internal Server Error"
    with pytest.raises(RuntimeError, match="async"):
        app.ensure_sync(later)
    assert app.ensure_sync(len) is len  # a builtin, which has no weak reference: asked each time
