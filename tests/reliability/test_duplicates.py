"""Duplicates and disorder: every Jira webhook delivered three times, some out of order, some 30
minutes late. Exactly one run per ticket; a late `issue_updated` never reopens a finished run."""

from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import select

from bot.state.models import Event, Run, Ticket
from bot.web.app import create_app
from tests.fakes.adapters import scripted_registry
from tests.reliability.conftest import issue_event, jira_headers

T0 = 1_720_046_912_109
HALF_HOUR = 30 * 60 * 1000
KEYS = [f"VOIP-{n}" for n in range(1, 13)]


def deliveries(key: str) -> list[tuple[str, bytes]]:
    """created, then two updates; each delivery id is kept across its retries, as Jira does."""
    return [
        (f"{key}-c", issue_event(key, timestamp=T0)),
        (f"{key}-u1", issue_event(key, "jira:issue_updated", timestamp=T0 + 1000)),
        (f"{key}-u2", issue_event(key, "jira:issue_updated", timestamp=T0 + 2000, labels=["voip"])),
    ]


def test_each_ticket_runs_once_whatever_the_order_and_the_retries(jira, make_services) -> None:
    script = {"app.get_status": ["failed"] * len(KEYS), "app.reconnect": ["reconnected"] * len(KEYS)}
    svc = make_services(registry=scripted_registry(script))
    client = create_app(services=svc).test_client()
    rng = random.Random(7)
    sends = [d for key in KEYS for d in deliveries(key) for _ in range(3)]
    rng.shuffle(sends)  # updates before creates, retries interleaved with other tickets
    statuses = Counter()
    for i, (delivery, body) in enumerate(sends):
        # Some signed without Jira's identifier header: the dedupe key is then a hash of the body's event.
        headers = jira_headers(body, delivery if i % 4 else None)
        statuses[client.post("/webhooks/jira", data=body, headers=headers).status_code] += 1
        if rng.random() < 0.3:
            svc.queue.run_pending()  # a worker gets to some of it between deliveries
    svc.queue.run_pending()
    assert statuses[500] == statuses[503] == 0
    with svc.store.tx() as s:
        runs = list(s.scalars(select(Run)))
        assert sorted(r.ticket.key for r in runs) == sorted(KEYS), "exactly one run per ticket"
        assert all(r.state == "ended" and r.end_kind == "close" for r in runs)
        assert all(t.fields.get("labels") == ["voip"] for t in s.scalars(select(Ticket))), (
            "the newest update applied"
        )
    for key in KEYS:
        issue = jira.issue(key)
        assert issue.status == "Done"
        assert len(issue.comments) == len(set(issue.comments)) == 2, "start and close, each once"

    # 30 minutes late: retries of the old deliveries and a new, stale update arrive after the runs ended.
    comments_before = {key: list(jira.issue(key).comments) for key in KEYS}
    for key in KEYS:
        for delivery, body in deliveries(key):
            assert (
                client.post("/webhooks/jira", data=body, headers=jira_headers(body, delivery)).status_code
                == 200
            )
        stale = issue_event(key, "jira:issue_updated", timestamp=T0 - HALF_HOUR, summary="Printer on fire")
        assert (
            client.post("/webhooks/jira", data=stale, headers=jira_headers(stale, f"{key}-late")).status_code
            == 202
        )
        newer = issue_event(
            key, "jira:issue_updated", timestamp=T0 + HALF_HOUR, summary="Softphone can't connect again"
        )
        assert (
            client.post("/webhooks/jira", data=newer, headers=jira_headers(newer, f"{key}-later")).status_code
            == 202
        )
    svc.queue.run_pending()
    with svc.store.tx() as s:
        runs = list(s.scalars(select(Run)))
        assert len(runs) == len(KEYS) and all(r.state == "ended" for r in runs), (
            "no finished run reopened or restarted"
        )
        assert "Printer on fire" not in {t.summary for t in s.scalars(select(Ticket))}, (
            "a stale update changes nothing"
        )
        late = {
            e.delivery_id: e.outcome
            for e in s.scalars(select(Event).where(Event.delivery_id.like("%-late%")))
        }
        assert late and all(outcome == "ticket already has a run" for outcome in late.values())
    assert {key: jira.issue(key).comments for key in KEYS} == comments_before, "nothing written to Jira again"
