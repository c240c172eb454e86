"""Jira Service Management end to end: a signed `jira:issue_created` for a service request goes
through the receiver, the queue and the playbook; the agents see every note, the customer only the
public replies."""

from __future__ import annotations

import datetime as dt

import pytest
import responses
from sqlalchemy import select

from bot.runs import sweeper
from bot.state.models import Prompt, PromptState, Run
from integrations.base import UnsupportedError
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
    received, reply = issue.portal
    assert received.startswith("Thank you, we have your request and are checking your connection now.")
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
        "Grazie, abbiamo ricevuto la tua richiesta e stiamo verificando la connessione. Ti aggiorneremo qui.",
        "Abbiamo passato la tua richiesta ai nostri specialisti; ti aggiorneremo qui.",
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


CANNOT_REACH_THE_APP = UnsupportedError("the app of user 1001 takes no remote commands")
THE_USER_MUST_ACT = {
    "app.get_status": ["failed"],
    "app.reconnect": [CANNOT_REACH_THE_APP],
    "app.get_last_error": [CANNOT_REACH_THE_APP],
    "app.check_config": ["ok"],
    "pbx.get_account": ["exists"],
    "pbx.compare_credentials": ["match"],
}


def comment(author: dict, body: str, at: int) -> dict:
    """Cloud's `comment_created` for HELP-12 (the recorded payload's shape), by `author`."""
    payload = fixture("cloud_comment_created.json")
    payload["timestamp"] = REQUEST["timestamp"] + at
    payload["issue"]["key"] = "HELP-12"
    payload["issue"]["fields"]["project"] = REQUEST["issue"]["fields"]["project"]
    payload["comment"].update(author=author, updateAuthor=author, body=body)
    return payload


def waiting_on(svc) -> Prompt | None:
    with svc.store.tx() as s:
        prompt = s.scalars(select(Prompt).where(Prompt.state == PromptState.OPEN)).first()
        if prompt is not None:
            s.expunge(prompt)
        return prompt


def test_steps_the_user_can_do_ask_the_customer_and_their_replies_resume_the_run(jira, make_services):
    svc = make_services(registry=scripted_registry(THE_USER_MUST_ACT, systems=("app", "pbx")))
    deliver(svc, REQUEST, "d-1")
    issue = jira.issue("HELP-12")
    asked = waiting_on(svc)
    assert asked is not None and (asked.kind, asked.step) == ("customer", "force_reconnect")
    assert first_lines(issue.portal)[1:] == [
        "Please close the app completely, open it again and wait a minute. Then reply here: does it "
        "connect now? If not, please write what it shows."
    ]
    note = next(c for c in issue.comments if c.startswith("h3. Question for the customer"))
    assert issue.comments.index(note) in issue.internal and "the app of user 1001" in note

    # Someone else's comment (an agent's, connbot's own) answers nothing.
    agent = {"accountId": "557058:eb43b4a2", "displayName": "Agent Smith"}
    deliver(svc, comment(agent, "I'll look at it", 1000), "c-1")
    assert waiting_on(svc).id == asked.id

    deliver(svc, comment(CUSTOMER, "Still nothing, it shows a red banner", 2000), "c-2")
    asked_again = waiting_on(svc)
    assert (asked_again.kind, asked_again.step) == ("customer", "record_error")
    deliver(svc, comment(CUSTOMER, "SIP/2.0 403 Forbidden {color:red}x{color} [~admin]", 3000), "c-3")

    with svc.store.tx() as s:
        run = s.scalars(select(Run)).one()
        by_step = {r.step: r for r in run.steps}
        assert by_step["force_reconnect"].outcome == "still_failing"
        assert by_step["force_reconnect"].answered_by == "Giulia Rossi"
        assert by_step["force_reconnect"].evidence == {"answer_text": "Still nothing, it shows a red banner"}
        assert by_step["record_error"].outcome == "found"
        assert run.facts["error_message"].startswith("SIP/2.0 403 Forbidden")
        assert run.step not in ("force_reconnect", "record_error")
    # The customer's text reaches the agents' hand-over note escaped: no markup, no mention of its own.
    escalation = next(c for c in issue.comments if "escalated to level 2" in c)
    assert "SIP/2.0 403 Forbidden \\{color:red\\}x\\{color\\} \\[~admin\\]" in escalation
    assert "[~admin]" not in "".join(issue.comments[i] for i in issue.internal)


def test_no_reply_in_time_takes_the_steps_timeout_edge(jira, make_services):
    svc = make_services(registry=scripted_registry(THE_USER_MUST_ACT, systems=("app", "pbx")))
    deliver(svc, REQUEST, "d-1")
    asked = waiting_on(svc)
    svc.context.clock = lambda: asked.expires_at + dt.timedelta(seconds=1)
    sweeper.sweep(svc.context)
    svc.queue.run_pending()
    with svc.store.tx() as s:
        run = s.scalars(select(Run)).one()
        timed_out = next(r for r in run.steps if r.step == "force_reconnect")
        assert timed_out.outcome == "timed_out"
    # on_failure of force_reconnect: the next step the user can do asks the customer in turn
    assert waiting_on(svc).step == "record_error"


def test_on_a_project_that_is_not_a_service_project_an_agent_is_asked_as_before(jira, make_services):
    svc = make_services(registry=scripted_registry(THE_USER_MUST_ACT, systems=("app", "pbx")))
    deliver(svc, fixture("cloud_issue_created.json"), "d-1")
    asked = waiting_on(svc)
    assert (asked.kind, asked.step) == ("question", "force_reconnect")
    assert jira.issue("VOIP-7").internal == set()


def test_a_long_reply_is_bounded(jira, make_services):
    svc = make_services(registry=scripted_registry(THE_USER_MUST_ACT, systems=("app", "pbx")))
    deliver(svc, REQUEST, "d-1")
    deliver(svc, comment(CUSTOMER, "it fails " * 2000, 1000), "c-1")
    with svc.store.tx() as s:
        [answered] = s.scalars(select(Prompt).where(Prompt.state == PromptState.ANSWERED))
        assert len(answered.answer_text) == 4000 and answered.answer_text.endswith("…")
