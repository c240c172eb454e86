"""Filing tickets through the JSON API and the desk's form."""

from __future__ import annotations

from sqlalchemy import select

from bot.state.models import Run, Ticket
from tests.fakes.desk import csrf

SCRIPT = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def test_a_valid_ticket_is_stored_with_a_run_and_listed(desk):
    svc, client = desk
    resp = client.post(
        "/api/tickets",
        json={
            "summary": "Alice can't connect",
            "description": "since 9am",
            "reporter": "alice@example.com",
            "user": "1001",
        },
    )
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["key"] == "DESK-1" and body["url"] == "/tickets/DESK-1"
    with svc.store.tx() as s:
        ticket = s.scalars(select(Ticket)).one()
        assert (ticket.summary, ticket.user_ref, ticket.reporter) == (
            "Alice can't connect",
            "1001",
            "alice@example.com",
        )
        assert s.get(Run, body["run"]).ticket_id == ticket.id
    listed = client.get("/api/tickets").get_json()["tickets"]
    assert [(t["key"], t["status"], t["run"], t["run_state"]) for t in listed] == [
        ("DESK-1", "open", body["run"], "running")
    ]


def test_missing_fields_are_named(desk):
    _, client = desk
    resp = client.post("/api/tickets", json={"description": "no summary"})
    assert resp.status_code == 400
    assert "summary: Field required" in resp.get_json()["message"]
    resp = client.post("/api/tickets", data="summary=x", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and "JSON object" in resp.get_json()["message"]


def test_oversized_text_is_refused_and_nothing_is_stored(desk):
    svc, client = desk
    resp = client.post("/api/tickets", json={"summary": "x" * 256})
    assert (
        resp.status_code == 400
        and "summary: String should have at most 255 characters" in resp.get_json()["message"]
    )
    resp = client.post("/api/tickets", json={"summary": "ok", "description": "d" * 32768})
    assert resp.status_code == 400 and "description" in resp.get_json()["message"]
    resp = client.post(
        "/api/tickets", json={"summary": "ok", "description": "d" * (svc.settings.max_body_bytes + 1)}
    )
    assert resp.status_code == 413
    with svc.store.tx() as s:
        assert s.scalars(select(Ticket)).first() is None


def test_unknown_fields_are_refused(desk):
    _, client = desk
    resp = client.post("/api/tickets", json={"summary": "ok", "priority": "high"})
    assert (
        resp.status_code == 400 and "priority: Extra inputs are not permitted" in resp.get_json()["message"]
    )


def test_html_in_a_ticket_is_stored_as_given_and_shown_escaped_everywhere(desk):
    svc, client = desk
    key = client.post(
        "/api/tickets",
        json={"summary": SCRIPT, "description": SCRIPT, "reporter": SCRIPT, "user": "<b>1</b>"},
    ).get_json()["key"]
    assert client.get(f"/api/tickets/{key}").get_json()["description"] == SCRIPT
    svc.queue.run_pending()  # the run reaches its prompt, which shows the summary too
    for path in ("/", f"/tickets/{key}", "/prompts", "/runs/1"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>1</b>" not in page, path
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page, path


def test_the_form_files_a_ticket_and_shows_its_run(desk):
    svc, client = desk
    resp = client.post(
        "/tickets",
        data={
            "csrf_token": csrf(client),
            "summary": "Bob can't connect",
            "description": "",
            "reporter": "bob@example.com",
            "user": "1002",
        },
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/runs/1"
    page = client.get("/runs/1").get_data(as_text=True)
    assert "Filed DESK-1" in page and "Bob can&#39;t connect" in page
    with svc.store.tx() as s:
        assert s.scalars(select(Ticket.user_ref)).one() == "1002"


def test_the_form_shows_what_is_wrong_and_keeps_the_input(desk):
    svc, client = desk
    resp = client.post(
        "/tickets",
        data={
            "csrf_token": csrf(client),
            "summary": " ",
            "description": "kept <i>text</i>",
            "reporter": "",
            "user": "",
        },
    )
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "summary: String should have at least 1 character" in page
    assert "kept &lt;i&gt;text&lt;/i&gt;" in page
    with svc.store.tx() as s:
        assert s.scalars(select(Ticket)).first() is None
