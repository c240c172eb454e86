"""Jira Service Management end to end: a signed `jira:issue_created` for a service request goes
through the receiver, the queue and the playbook; the agents see every note, the customer only the
public replies."""

from __future__ import annotations

import pytest
import responses

from tests.fakes import jira as fake_jira
from tests.fakes.adapters import LEVEL_1_CANNOT_FIX, scripted_registry
from tests.fakes.jira import FakeJira, configure, fixture

L2 = '{"2": {"assignee": "5b10ac8d82e05b22cc7d4ef5", "components": ["Voice L2"]}}'
FIXED_BY_RECONNECTING = {"app.get_status": ["failed"], "app.reconnect": ["reconnected"]}


@pytest.fixture
def rsps(monkeypatch):
    configure(monkeypatch, ESCALATION=L2)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def jira(rsps):
    return FakeJira(rsps)


def deliver(svc, payload: dict, delivery: str) -> None:
    resp = fake_jira.deliver(svc, payload, delivery)
    assert resp.status_code == 202, resp.get_json()


REQUEST = fixture("cloud_service_request_created.json")
CUSTOMER = REQUEST["issue"]["fields"]["reporter"]


def first_lines(comments: list[str]) -> list[str]:
    return [c.split("\n")[0] for c in comments]


def test_on_a_service_request_agents_see_every_note_and_the_customer_only_the_reply(jira, make_services):
    svc = make_services(registry=scripted_registry(FIXED_BY_RECONNECTING))
    deliver(svc, REQUEST, "d-1")
    issue = jira.issue("HELP-12")
    assert issue.status == "Done"
    assert first_lines([c for i, c in enumerate(issue.comments) if i in issue.internal]) == [
        "h3. connbot is triaging this ticket",
        "h3. Closed: Close - temporary network problem",
    ]
    [reply] = issue.portal
    assert reply.startswith(
        "Your app has reconnected; it was a temporary network problem. Reply here if it happens again."
    )
    # The reply goes out before the closing transition (whose note is internal).
    assert issue.comments.index(reply) < len(issue.comments) - 1


def test_a_reply_is_in_the_reporters_language_and_a_hand_over_is_said_once(jira, make_services):
    jira.jira.users[CUSTOMER["accountId"]] = {**CUSTOMER, "locale": "it_IT"}
    svc = make_services(registry=scripted_registry(LEVEL_1_CANNOT_FIX, systems=("app", "pbx")))
    deliver(svc, REQUEST, "d-1")
    issue = jira.issue("HELP-12")
    assert first_lines(issue.portal) == [
        "Abbiamo passato la tua richiesta ai nostri specialisti; ti aggiorneremo qui."
    ]
    assert issue.assignee == {"accountId": "5b10ac8d82e05b22cc7d4ef5"}
    escalation = next(c for c in issue.comments if "escalated to level 2" in c)
    assert issue.comments.index(escalation) in issue.internal


def test_a_project_that_is_not_a_service_project_is_unchanged(jira, make_services):
    svc = make_services(registry=scripted_registry(FIXED_BY_RECONNECTING))
    deliver(svc, fixture("cloud_issue_created.json"), "d-1")
    issue = jira.issue("VOIP-7")
    assert len(issue.comments) == 2 and issue.internal == set() and issue.properties == {}
    assert issue.portal == issue.comments
