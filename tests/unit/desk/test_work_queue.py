"""The ticket list as a work queue: search, filters, sorting and pages on the desk and on /api/tickets."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.runs import intake
from bot.state.models import Run, Ticket


def _file(svc, summary: str, user: str = "1001", reporter: str = "alice@example.com") -> str:
    ticket, _ = intake.file_desk_ticket(svc.context, summary, "", reporter, user)
    return ticket.key


def _set(svc, key: str, **values) -> None:
    """Move a stored ticket along (as its runs and ticket system would), for setting up a list."""
    with svc.store.tx() as s:
        ticket = s.query(Ticket).filter_by(key=key).one()
        for name, value in values.items():
            setattr(ticket, name, value)


def _keys(client, query: str = "") -> list[str]:
    resp = client.get(f"/api/tickets{query}")
    assert resp.status_code == 200, resp.get_json()
    return [t["key"] for t in resp.get_json()["tickets"]]


@pytest.fixture
def queue(desk):
    """Three tickets: DESK-1 waits for a person (its run asked a question), DESK-2 is closed at
    level 2 and two days old, DESK-3 is open at level 3 and was filed by Bob."""
    svc, client = desk
    _file(svc, "Alice can't connect")
    svc.queue.run_pending()  # DESK-1's run goes to its question and waits
    _file(svc, "Carol: registration fails", user="1002")
    _file(svc, "Bob: one-way audio", user="1003", reporter="bob@example.com")
    _set(svc, "DESK-2", status="closed", level=2, created_at=svc.context.clock() - dt.timedelta(days=2))
    _set(svc, "DESK-3", level=3)
    return svc, client


def test_status_open_filters_and_closed_too(queue):
    _, client = queue
    assert _keys(client, "?status=open") == ["DESK-3", "DESK-1"]
    assert _keys(client, "?status=closed") == ["DESK-2"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?status=opne", "status: unknown value 'opne'; expected one of open, closed"),
        ("?colour=red", "unknown filter 'colour'"),
        ("?level=high", "level: expected a whole number from 1 to 9, got 'high'"),
        ("?waiting=maybe", "waiting: unknown value 'maybe'"),
        ("?sort=colour", "sort: unknown value 'colour'"),
        ("?min_age=soon", "min_age: expected a duration such as 30m, 4h or 2d, got 'soon'"),
        ("?pbx=pbx-z", "pbx: no PBX named 'pbx-z'"),
        ("?limit=0", "limit: expected a whole number from 1 to 500"),
    ],
)
def test_an_unknown_filter_or_value_is_a_400_naming_it(queue, query, says):
    _, client = queue
    resp = client.get(f"/api/tickets{query}")
    assert resp.status_code == 400 and says in resp.get_json()["message"]
    page = client.get(f"/{query}")  # the desk's list says the same, as a page
    assert page.status_code == 400 and "text/html" in page.content_type
    assert says.replace("'", "&#39;") in page.get_data(as_text=True)


def test_level_waiting_search_and_age_filters(queue):
    _, client = queue
    assert _keys(client, "?level=3") == ["DESK-3"]
    assert _keys(client, "?waiting=yes") == ["DESK-1"]
    assert _keys(client, "?waiting=no") == ["DESK-3", "DESK-2"]
    assert _keys(client, "?q=BOB") == ["DESK-3"]  # reporter, any case
    assert _keys(client, "?q=1002") == ["DESK-2"]  # the user
    assert _keys(client, "?q=desk-1") == ["DESK-1"]  # the key
    assert _keys(client, "?q=100%25") == []  # % is searched for, not a wildcard
    assert _keys(client, "?min_age=1d") == ["DESK-2"]
    assert _keys(client, "?max_age=1d&status=open") == ["DESK-3", "DESK-1"]


def test_sorting_and_the_time_waiting(queue):
    _, client = queue
    assert _keys(client, "?sort=key") == ["DESK-1", "DESK-2", "DESK-3"]
    assert _keys(client, "?sort=-level") == ["DESK-3", "DESK-2", "DESK-1"]
    assert _keys(client, "?sort=-waiting")[0] == "DESK-1"
    rows = {t["key"]: t for t in client.get("/api/tickets").get_json()["tickets"]}
    assert rows["DESK-1"]["waiting_since"] is not None and rows["DESK-1"]["waiting_seconds"] >= 0
    assert rows["DESK-3"]["waiting_since"] is None
    assert rows["DESK-1"]["updated_at"] >= rows["DESK-1"]["created_at"]


def test_pbx_filter_takes_the_pbxs_runs_were_checked_against(queue):
    svc, client = queue
    with svc.store.tx() as s:
        s.query(Run).filter(Run.ticket.has(Ticket.key == "DESK-3")).one().pbx = "pbx-b"
    assert _keys(client, "?pbx=pbx-b") == ["DESK-3"]
    assert client.get("/api/tickets").get_json()["tickets"][0]["pbx"] == "pbx-b"


def test_no_silent_cap_the_list_says_how_many_and_pages(desk):
    svc, client = desk
    for n in range(1, 56):
        _file(svc, f"ticket {n}")
    first = client.get("/api/tickets").get_json()
    assert (first["total"], first["pages"], first["page"], len(first["tickets"])) == (55, 2, 1, 50)
    second = client.get("/api/tickets?page=2").get_json()
    assert [t["key"] for t in second["tickets"]] == [f"DESK-{n}" for n in range(5, 0, -1)]
    page = client.get("/").get_data(as_text=True)
    assert "55 tickets; showing 1–50, page 1 of 2" in page
    assert 'href="/?page=2"' in page
    page2 = client.get("/?page=2&status=open").get_data(as_text=True)
    assert "showing 51–55, page 2 of 2" in page2 and 'href="/?status=open"' in page2  # back to page 1
