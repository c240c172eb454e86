"""The ticket page as an agent's desk: its open question answerable there, and comment, close and
reassign through the ticket system the ticket lives in (the desk's store, or Jira at the wire);
and error pages in HTML for people, JSON for programs."""

from __future__ import annotations

import re

import pytest
import responses
from sqlalchemy import text

from bot.runs import intake
from bot.state.models import Comment, Prompt, Ticket
from bot.web.app import create_app
from tests.fakes.desk import csrf, one_prompt_registry
from tests.fakes.jira import FakeJira, configure


def _marker(client, key: str) -> str:
    match = re.search(r'name="marker" value="([^"]+)"', client.get(f"/tickets/{key}").get_data(as_text=True))
    assert match, "no agent form on the ticket page"
    return match.group(1)


def _act(client, key: str, act: str, **form) -> str:
    data = {"csrf_token": csrf(client, f"/tickets/{key}"), "marker": _marker(client, key), **form}
    resp = client.post(f"/tickets/{key}/{act}", data=data, follow_redirects=True)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_the_ticket_page_shows_its_open_question_and_answers_it_there(desk):
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "alice@example.com", "1001")
    svc.queue.run_pending()
    page = client.get("/tickets/DESK-1").get_data(as_text=True)
    assert 'id="open-question"' in page and "Fix the configuration by hand" in page
    assert "Level 1</dd>" in page and "1 · Level 1" not in page  # the level once
    with svc.store.tx() as s:
        prompt_id = s.query(Prompt).one().id
    resp = client.post(
        f"/prompts/{prompt_id}/answer",
        data={
            "csrf_token": csrf(client, "/tickets/DESK-1"),
            "answer": "connected",
            "name": "Carol",
            "next": "/tickets/DESK-1",
        },
    )
    assert resp.headers["Location"] == "/tickets/DESK-1"
    assert 'id="open-question"' not in client.get("/tickets/DESK-1").get_data(as_text=True)


def test_an_agent_comments_reassigns_and_closes_a_desk_ticket(desk):
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "alice@example.com", "1001")
    page = _act(client, "DESK-1", "comment", name="Carol", text="Called Alice <b>back</b>")
    assert "DESK-1: commented." in page and "Called Alice &lt;b&gt;back&lt;/b&gt;" in page
    page = _act(client, "DESK-1", "reassign", name="Carol", level="2", text="Needs the network team")
    assert "handed to level 2" in page and 'id="level">Level 2</dd>' in page
    page = _act(client, "DESK-1", "close", name="Carol", text="")
    assert 'id="status"><span class="state state-closed">closed' in page
    with svc.store.tx() as s:
        ticket = s.query(Ticket).one()
        assert (ticket.status, ticket.level, ticket.queue) == ("closed", 2, "Level 2")
        bodies = [c.body for c in s.query(Comment).order_by(Comment.id)]
    assert bodies[0] == "Comment from Carol\n\nCalled Alice <b>back</b>"
    assert bodies[1].startswith("Handed to level 2 by Carol") and bodies[2] == "Closed by Carol"
    assert client.get("/api/tickets?status=closed&level=2").get_json()["total"] == 1


def test_a_double_submit_writes_once_and_bad_forms_say_why(desk):
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    data = {"csrf_token": csrf(client, "/tickets/DESK-1"), "marker": _marker(client, "DESK-1")}
    for _ in range(2):
        client.post("/tickets/DESK-1/comment", data={**data, "name": "Carol", "text": "once"})
    with svc.store.tx() as s:
        assert s.query(Comment).count() == 1
    bad = client.post("/tickets/DESK-1/reassign", data={**data, "name": "Carol", "level": "high"})
    assert bad.status_code == 400 and "level: expected a level from 1 to 9" in bad.get_data(as_text=True)
    empty = client.post(
        "/tickets/DESK-1/comment", data={**data, "name": "Carol", "text": " "}, follow_redirects=True
    )
    assert "Write the comment first" in empty.get_data(as_text=True)


@pytest.fixture
def jira_desk(monkeypatch, make_services):
    configure(monkeypatch)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        jira = FakeJira(rsps)
        svc = make_services(registry=one_prompt_registry())
        with svc.store.tx() as s:
            s.add(Ticket(source="jira", key="VOIP-7", summary="App cannot register", status="open"))
        yield svc, create_app(svc.settings, svc).test_client(), jira


def test_a_jira_ticket_is_commented_closed_and_reassigned_through_jira(jira_desk):
    svc, client, jira = jira_desk
    page = client.get("/tickets/VOIP-7").get_data(as_text=True)
    assert "https://example.atlassian.net/browse/VOIP-7" in page
    _act(client, "VOIP-7", "comment", name="Carol", text="Asked for the logs")
    assert any("Asked for the logs" in c for c in jira.issue("VOIP-7").comments)
    _act(client, "VOIP-7", "close", name="Carol")
    assert jira.issue("VOIP-7").status == "Done"
    with svc.store.tx() as s:
        assert s.query(Ticket).one().status == "closed"
        assert s.query(Comment).count() == 0  # Jira's comments stay in Jira


def test_errors_are_pages_in_the_browser_and_json_under_api(desk):
    _, client = desk
    page = client.get("/runs/abc")
    assert page.status_code == 404 and page.content_type.startswith("text/html")
    assert (
        "Not found" in page.get_data(as_text=True)
        and "{" not in page.get_data(as_text=True).split("<main>")[1]
    )
    missing = client.get("/runs/999")
    assert missing.status_code == 404 and "no run 999" in missing.get_data(as_text=True)
    assert "text/html" in missing.content_type
    bad = client.get("/?status=opne")
    assert bad.status_code == 400 and "text/html" in bad.content_type
    api = client.get("/api/runs/abc")
    assert api.status_code == 404 and api.get_json()["error"] == "Not Found"
    api = client.get("/api/runs/999")
    assert api.get_json() == {"error": "Not Found", "message": "no run 999"}


def test_an_internal_error_is_a_page_that_says_so_without_details(desk):
    svc, client = desk
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    with svc.store.tx() as s:  # the database breaks under the running app
        s.execute(text("DROP TABLE comments"))
    page = client.get("/tickets/DESK-1")
    assert page.status_code == 500 and "text/html" in page.content_type
    body = page.get_data(as_text=True)
    assert "connbot hit an internal error; see its log" in body and "comments" not in body
    api = client.get("/api/tickets/DESK-1")
    assert (
        api.status_code == 500 and api.get_json()["message"] == "connbot hit an internal error; see its log"
    )
