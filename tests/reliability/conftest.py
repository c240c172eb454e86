"""Fixtures of the reliability suite: a connbot app with Jira (faked at the wire) and Slack (the stub
server) both configured, signed deliveries, and counts of what was stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from sqlalchemy import func, select

from bot.state.models import Event, Prompt, Run, Ticket
from tests.fakes.jira import FakeJira, configure, fixture, sign
from tests.fakes.slack_api import SIGNING_SECRET, make_slack, slack_api  # noqa: F401  (fixtures)

JIRA_SECRET = "s3cret"


@pytest.fixture
def jira(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJira]:
    configure(monkeypatch, RESOLUTION="Fixed")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeJira(rsps)


def jira_headers(body: bytes, delivery: str | None = None, secret: str = JIRA_SECRET) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Hub-Signature": sign(body, secret)}
    if delivery:
        headers["X-Atlassian-Webhook-Identifier"] = delivery
    return headers


def issue_event(
    key: str, kind: str = "jira:issue_created", timestamp: int = 1_720_046_912_109, **fields: Any
) -> bytes:
    """A Jira Cloud webhook body (tests/fixtures/jira/cloud_issue_created.json) for issue `key`."""
    body = fixture("cloud_issue_created.json")
    body.update(timestamp=timestamp, webhookEvent=kind)
    body["issue"].update(key=key, id=str(10000 + sum(map(ord, key))))
    body["issue"]["fields"].update(fields)
    return json.dumps(body).encode()


@dataclass
class Counts:
    events: int
    tickets: int
    runs: int
    answered: int


def counts(svc: Any) -> Counts:
    with svc.store.tx() as s:
        return Counts(
            events=s.scalar(select(func.count()).select_from(Event)) or 0,
            tickets=s.scalar(select(func.count()).select_from(Ticket)) or 0,
            runs=s.scalar(select(func.count()).select_from(Run)) or 0,
            answered=s.scalar(select(func.count()).select_from(Prompt).where(Prompt.state != "open")) or 0,
        )


def assert_json_error(resp: Any, status: int | None = None) -> dict[str, Any]:
    """A refusal a client can read: JSON with an error and a message, never a 5xx."""
    assert resp.status_code < 500, resp.get_data(as_text=True)[:500]
    if status is not None:
        assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    data = resp.get_json(silent=True)
    assert isinstance(data, dict) and data.get("error") and data.get("message"), resp.get_data(as_text=True)[
        :500
    ]
    assert "Traceback" not in resp.get_data(as_text=True)
    return data
