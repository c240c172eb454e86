"""A worker started without the Jira settings has no handler for Jira events: it leaves them for a
worker that has one (it used to mark them processed, and those tickets never ran)."""

from __future__ import annotations

import pytest
import responses
from sqlalchemy import select

from bot.runs import intake
from bot.state.models import Event, Run
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import FakeJira, configure
from tests.reliability.conftest import issue_event


def test_jira_events_wait_for_a_worker_with_the_jira_settings(
    make_services, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    script = {"app.get_status": ["failed"], "app.reconnect": ["reconnected"]}
    plain = make_services(registry=scripted_registry(script))  # no CONNBOT_JIRA_* set
    assert "jira" not in plain.intake
    event_id, _ = intake.record(
        plain.store,
        "jira",
        "d-1",
        "jira:issue_created",
        "VOIP-1",
        issue_event("VOIP-1").decode(),
        plain.queue.wake_event,
    )
    intake.process(plain.context, event_id)
    assert plain.queue.run_pending() == 0, "not offered to a worker that cannot handle it"
    with plain.store.tx() as s:
        assert s.get(Event, event_id).processed_at is None

    configure(monkeypatch, RESOLUTION="Fixed")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeJira(rsps)
        with_jira = make_services(registry=scripted_registry(script))
        assert intake.pending(with_jira.context) == [event_id]
        with_jira.queue.run_pending()
        with with_jira.store.tx() as s:
            assert s.get(Event, event_id).processed_at is not None
            assert [r.ticket.key for r in s.scalars(select(Run))] == ["VOIP-1"]
