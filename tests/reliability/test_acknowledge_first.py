"""A new ticket hears from connbot at once, however many runs are queued before it: its first
comment is made by the work that takes its event, not behind the runs already waiting for a worker."""

from __future__ import annotations

from sqlalchemy import select

from bot.runs import intake
from bot.state.models import Run, RunState, StepResult
from bot.web.app import create_app
from tests.fakes.adapters import scripted_registry
from tests.reliability.conftest import issue_event, jira_headers
from tests.reliability.procs import wait_for

QUEUED = 30


def test_a_new_tickets_first_comment_does_not_wait_for_the_queued_runs(jira, make_services) -> None:
    script = {"app.get_status": ["failed"] * (QUEUED + 1), "app.reconnect": ["reconnected"] * (QUEUED + 1)}
    svc = make_services(registry=scripted_registry(script))
    for n in range(QUEUED):  # runs waiting for a worker, ahead of the new ticket
        intake.file_desk_ticket(svc.context, f"User {n} can't connect", "", "user@example.com", str(1000 + n))
    body = issue_event("VOIP-7")
    resp = (
        create_app(services=svc)
        .test_client()
        .post("/webhooks/jira", data=body, headers=jira_headers(body, "d-7"))
    )
    assert resp.status_code == 202

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
