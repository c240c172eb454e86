"""Upgrading a database in use keeps what its rows mean."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from bot.runs.trail import rows
from bot.state.models import Event, Incident, Prompt, Run, StepResult, Ticket
from bot.state.store import MIGRATIONS, Store
from bot.web.views import incident_dict


def _migrate(store: Store, to: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, to)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_steps_answered_before_0011_keep_where_they_were_answered(backend, request, tmp_path):
    """A run in flight at the upgrade still shows its Slack answerers as mentions, and a desk user
    named like a Slack user id as a name: each step answered takes the surface its question kept."""
    url = f"sqlite:///{tmp_path}/connbot.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = Store(url)
    store.upgrade()
    at = dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.UTC)
    with store.tx() as s:
        ticket = Ticket(source="desk", key="DESK-1", summary="Alice can't connect")
        s.add(ticket)
        s.flush()
        run = Run(ticket_id=ticket.id, playbook="connection-issues")
        s.add(run)
        s.flush()
        answers = [("W111", "slack"), ("U024BE7LH", "desk")]
        for seq, (who, via) in enumerate(answers, 1):
            answered = at + dt.timedelta(minutes=seq)
            s.add(
                Prompt(
                    id=f"p{seq}",
                    run_id=run.id,
                    seq=seq,
                    step=f"s{seq}",
                    kind="question",
                    title="t",
                    question="q",
                    answered_by=who,
                    answered_via=via,
                    answered_at=answered,
                    expires_at=at + dt.timedelta(hours=4),
                )
            )
            s.add(
                StepResult(
                    run_id=run.id,
                    seq=seq,
                    step=f"s{seq}",
                    action="",
                    mode="human",
                    outcome="done",
                    answered_by=who,
                    started_at=at,
                    finished_at=answered,
                )
            )
        s.add(StepResult(run_id=run.id, seq=3, step="s3", action="a", mode="auto", outcome="ok"))
        run_id = run.id
    _migrate(store, "0010_effect_retries", down=True)  # as the database was before the upgrade
    _migrate(store, "head")
    with store.tx() as s:
        assert [(r.by, r.via) for r in rows(s.get(Run, run_id))] == [*answers, (None, None)]
    store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_incidents_dismissed_before_0013_are_named_by_where_they_were_dismissed(backend, request, tmp_path):
    """An incident dismissed in Slack before the upgrade is known to have been, from the click connbot
    stored: its dismisser reads as a Slack user; one dismissed on the desk by a name like a Slack user
    id (a refused Slack click of someone else on it) stays a name."""
    url = f"sqlite:///{tmp_path}/connbot.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = Store(url)
    store.upgrade()
    at = dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.UTC)
    with store.tx() as s:
        for n, by in enumerate(("W222", "U024BE7LH"), 1):
            s.add(
                Incident(
                    pbx=f"pbx{n}",
                    cause="asterisk_down",
                    title="Asterisk is down",
                    opened_by="a check",
                    next_check_at=at,
                    dismissed_by=by,
                )
            )
        for n, (incident, user) in enumerate([("1", "W222"), ("2", "W999")]):
            s.add(
                Event(
                    source="slack",
                    delivery_id=f"action:{user}:{n}",
                    kind="incident",
                    payload={"incident": incident, "action": "dismiss", "user": user},
                )
            )
    _migrate(store, "0012_step_words", down=True)  # as the database was before the upgrade
    _migrate(store, "head")
    with store.tx() as s:
        shown = [incident_dict(s, inc) for inc in s.scalars(select(Incident).order_by(Incident.id))]
    assert [(i["dismissed_by"], i["dismissed_via"]) for i in shown] == [
        ("W222", "slack"),
        ("U024BE7LH", None),
    ]
    store.dispose()
