"""Jira Service Management end to end: a signed `jira:issue_created` for a service request goes
through the receiver, the queue and the playbook; the agents see every note, the customer only the
public replies."""

from __future__ import annotations

import pytest
import responses

from tests.fakes import jira as fake_jira
from tests.fakes.adapters import scripted_registry
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


def test_on_a_service_request_the_agents_notes_are_internal(jira, make_services):
    svc = make_services(registry=scripted_registry(FIXED_BY_RECONNECTING))
    deliver(svc, fixture("cloud_service_request_created.json"), "d-1")
    issue = jira.issue("HELP-12")
    assert issue.status == "Done"
    notes = [c for i, c in enumerate(issue.comments) if i in issue.internal]
    assert [n.split("\n")[0] for n in notes] == [
        "h3. connbot is triaging this ticket",
        "h3. Closed: Close - temporary network problem",
    ]
    assert not any("h3." in c for c in issue.portal)


def test_a_project_that_is_not_a_service_project_is_unchanged(jira, make_services):
    svc = make_services(registry=scripted_registry(FIXED_BY_RECONNECTING))
    deliver(svc, fixture("cloud_issue_created.json"), "d-1")
    issue = jira.issue("VOIP-7")
    assert len(issue.comments) == 2 and issue.internal == set() and issue.properties == {}
    assert issue.portal == issue.comments
