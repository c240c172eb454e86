from __future__ import annotations

import datetime as dt

import responses
from sqlalchemy import select

from bot.runs import intake, jira_intake, steps
from bot.state.models import Event, Run, Ticket
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import FakeJira, configure


def issue(key: str, summary: str) -> dict:
    return {
        "id": key.split("-")[1],
        "key": key,
        "fields": {
            "summary": summary,
            "description": None,
            "labels": [],
            "components": [],
            "project": {"key": "VOIP", "name": "VoIP Support"},
            "issuetype": {"name": "Incident"},
            "reporter": {"accountId": "557058:aaaa", "emailAddress": "bob@example.com", "displayName": "Bob"},
            "created": "2024-07-04T01:48:31.971+0300",
        },
    }


def test_backfill_starts_runs_for_missed_tickets_and_not_for_seen_ones(monkeypatch, make_services):
    configure(monkeypatch, PROJECTS="VOIP", BACKFILL_MINUTES="5")
    svc = make_services(registry=scripted_registry({}))
    now = dt.datetime(2024, 7, 4, 12, 0, tzinfo=dt.UTC)
    svc.context.clock = lambda: now
    with svc.store.tx() as s:
        seen = Ticket(
            source="jira",
            key="VOIP-1",
            summary="can't connect",
            matched=True,
            match_reason="seen",
            created_at=now - dt.timedelta(hours=1),
        )
        s.add(seen)
        s.flush()
        steps.start_run(svc.context, s, seen)
    svc.queue.huey.flush()
    found = [
        issue("VOIP-1", "can't connect"),
        issue("VOIP-2", "App is offline since the update"),
        issue("VOIP-3", "New headset please"),
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeJira(rsps, search=found)
        backfill = jira_intake.backfiller(svc.context)
        assert backfill is not None
        assert backfill.tick() == 1
        # Due again only after CONNBOT_JIRA_BACKFILL_MINUTES; then the run it started counts as seen.
        assert backfill.tick() is None
        with svc.store.tx() as s:
            event = s.scalars(select(Event).where(Event.delivery_id == "backfill:VOIP-2")).one()
            event_id = event.id
        intake.process(svc.context, event_id)
        svc.queue.huey.flush()
        now += dt.timedelta(minutes=6)
        assert backfill.tick() == 0
    assert fake.searches[0] == 'project in ("VOIP") AND created >= "-70m" ORDER BY created ASC'
    assert fake.searches[1] == 'project in ("VOIP") AND created >= "-16m" ORDER BY created ASC'
    with svc.store.tx() as s:
        runs = {r.ticket.key for r in s.scalars(select(Run))}
        assert runs == {"VOIP-1", "VOIP-2"}
        t2 = s.scalars(select(Ticket).where(Ticket.key == "VOIP-2")).one()
        assert t2.reporter == "bob@example.com" and "offline" in t2.match_reason
        assert s.scalars(select(Event.delivery_id)).all() == ["backfill:VOIP-2"]


def test_no_backfill_without_jira(make_services):
    assert jira_intake.backfiller(make_services(registry=scripted_registry({})).context) is None
