"""A new ticket hears from connbot at once, however many runs are queued before it: its first
comment is made by the work that takes its event, not behind the runs already waiting for a worker."""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.runs import intake
from bot.settings import Settings
from bot.state.models import Event, Run, RunState, StepResult
from bot.state.store import Store
from bot.web.app import create_app
from tests.conftest import transactions
from tests.fakes.adapters import scripted_registry
from tests.reliability.conftest import issue_event, jira_headers
from tests.reliability.procs import wait_for

QUEUED = 30


def file_on_jira(svc: Any, key: str) -> None:
    """Jira's webhook for the new issue `key`, stored (not processed yet)."""
    body = issue_event(key)
    resp = (
        create_app(services=svc)
        .test_client()
        .post("/webhooks/jira", data=body, headers=jira_headers(body, key))
    )
    assert resp.status_code == 202


def test_a_new_tickets_first_comment_does_not_wait_for_the_queued_runs(jira, make_services) -> None:
    script = {"app.get_status": ["failed"] * (QUEUED + 1), "app.reconnect": ["reconnected"] * (QUEUED + 1)}
    svc = make_services(registry=scripted_registry(script))
    for n in range(QUEUED):  # runs waiting for a worker, ahead of the new ticket
        intake.file_desk_ticket(svc.context, f"User {n} can't connect", "", "user@example.com", str(1000 + n))
    file_on_jira(svc, "VOIP-7")

    assert svc.queue.take_events() == 1  # what a worker's event taker does; the queued runs wait
    # made beside the taker (bot.state.queue.ACK_THREADS), so the next event need not wait for Jira
    wait_for(lambda: jira.issue("VOIP-7").comments, 10, "the first comment")
    (comment,) = jira.issue("VOIP-7").comments
    assert "connbot is triaging this ticket" in comment
    with svc.store.tx() as s:
        assert s.scalars(select(StepResult)).first() is None, "no queued run advanced meanwhile"

    svc.queue.run_pending()  # then the runs, the new one among them, go on as before
    with svc.store.tx() as s:
        runs = list(s.scalars(select(Run)))
        assert len(runs) == QUEUED + 1 and all(r.state == RunState.ENDED for r in runs)
    assert jira.issue("VOIP-7").comments[0] == comment, "the first comment not made twice"


def test_a_jira_tickets_acknowledgement_lets_the_lease_go_with_its_done_mark(jira, make_services) -> None:
    """The first comment on a Jira ticket: the lease taken and the run read with its ticket, the
    attempt committed before the call, then the done mark and the lease's release in one commit."""
    svc = make_services(registry=scripted_registry({"app.get_status": ["failed"]}))
    file_on_jira(svc, "VOIP-8")
    with transactions(svc) as done:
        assert svc.queue.take_events(inline=True) == 1
    assert done[-3:] == [["UPDATE effects"], ["UPDATE effects", "UPDATE runs"], []], done
    assert done[-4] == ["UPDATE runs", "SELECT"], done  # the lease, the run and its ticket
    assert len(jira.issue("VOIP-8").comments) == 1
    with svc.store.tx() as s:
        run = s.scalars(select(Run)).one()
        assert run.lease_owner is None and run.lease_until is None


@contextmanager
def _listened(pg_url: str) -> Iterator[tuple[Store, queue.Queue[tuple[int, str]]]]:
    """A web tier's store, and what a worker's event listener (on a store of its own: another
    process's connections) hears, as (event id, note)."""
    url = Settings(database_url=pg_url).sqlalchemy_url
    web, worker = Store(url), Store(url)
    web.upgrade()
    heard: queue.Queue[tuple[int, str]] = queue.Queue()
    listener = worker.event_listener(lambda event_id, note: heard.put((event_id, note)))
    assert listener is not None
    listener.start()
    try:
        yield web, heard
    finally:
        listener.stop()
        listener.join(5)
        web.dispose()
        worker.dispose()


def _until_heard(web: Store, heard: queue.Queue[tuple[int, str]], tag: str) -> None:
    """Store events until the listener hears one (it is listening), then forget what it heard."""
    for n in range(100):
        web.insert_event("jira", f"{tag}-{n}", "jira:issue_created", "VOIP-0", "{}")
        try:
            heard.get(timeout=0.1)
            break
        except queue.Empty:
            continue
    else:
        raise AssertionError(f"the listener never heard a stored event ({tag})")
    while not heard.empty():
        heard.get()


@pytest.mark.postgres
def test_on_postgres_storing_an_event_wakes_every_worker_in_the_same_statement(pg_url: str) -> None:
    """The web tier's one round trip also announces the event: a worker in another process hears
    its id (and the request's trace) at once, without a queue message or a wait for its next look;
    a second delivery of the same event announces nothing."""
    with _listened(pg_url) as (web, heard):
        _until_heard(web, heard, "probe")
        body = issue_event("VOIP-8").decode()
        event_id, new = web.insert_event("jira", "d-8", "jira:issue_created", "VOIP-8", body, "00-trace-01")
        assert new and heard.get(timeout=5) == (event_id, "00-trace-01")
        assert web.insert_event("jira", "d-8", "jira:issue_created", "VOIP-8", body, "x") == (event_id, False)
        time.sleep(0.5)
        assert heard.empty(), "a duplicate delivery woke the workers"
        with web.tx() as s:
            assert s.get(Event, event_id).payload["issue"]["key"] == "VOIP-8"  # stored as JSON


@pytest.mark.postgres
def test_the_event_listener_comes_back_after_its_connection_is_cut(pg_url: str, caplog) -> None:
    """PostgreSQL restarted under a worker (its listening connection terminated): the listener says so
    once, connects again and hears the next stored event."""
    with _listened(pg_url) as (web, heard):
        _until_heard(web, heard, "before")
        with web.engine.connect() as conn:  # what a restart does to the worker's connection
            cut = conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'")
            ).scalars()
            assert any(cut)
        _until_heard(web, heard, "after")
    assert "the database (event listener) unreachable" in caplog.text
    assert "reachable again" in caplog.text


@pytest.mark.postgres
def test_on_postgres_events_stored_at_once_by_many_threads_are_each_announced_once(pg_url: str) -> None:
    """Of 400 events stored by 8 threads at once, every one is heard by the worker, once, with its
    own note."""
    with _listened(pg_url) as (web, heard):
        _until_heard(web, heard, "probe")

        def store(thread: int) -> list[tuple[int, str]]:
            return [
                (
                    web.insert_event(
                        "jira", f"t{thread}-{n}", "jira:issue_created", "VOIP-1", "{}", f"n{thread}-{n}"
                    )[0],
                    f"n{thread}-{n}",
                )
                for n in range(50)
            ]

        with ThreadPoolExecutor(8) as pool:
            stored = sorted(x for part in pool.map(store, range(8)) for x in part)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < len(stored) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                got.append(heard.get(timeout=0.2))
        time.sleep(0.3)
        while not heard.empty():
            got.append(heard.get())
        assert sorted(got) == stored
