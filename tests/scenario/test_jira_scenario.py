"""Done-when: a signed, real-format Jira Cloud `jira:issue_created` for a connection issue goes
through the receiver, the queue and the playbook (adapters faked), and Jira ends up with the
comments and the ticket closed, or reassigned to the level-2 target with the evidence."""

from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import select

from bot.runs import prompts
from bot.runs.prompts import Via
from bot.state.models import Prompt, Run
from bot.web.app import create_app
from tests.fakes.adapters import LEVEL_1_CANNOT_FIX, scripted_registry
from tests.fakes.jira import FakeJira, configure, fixture, sign

L2 = (
    '{"2": {"assignee": "5b10ac8d82e05b22cc7d4ef5", "components": ["Voice L2"], '
    '"fields": {"customfield_10060": {"value": "Voice team"}}}}'
)


@pytest.fixture
def rsps(monkeypatch):
    configure(monkeypatch, ESCALATION=L2, RESOLUTION="Fixed")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def jira(rsps):
    return FakeJira(rsps)


def deliver(svc) -> None:
    body = json.dumps(fixture("cloud_issue_created.json")).encode()
    client = create_app(services=svc).test_client()
    resp = client.post(
        "/webhooks/jira",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, "s3cret"),
            "X-Atlassian-Webhook-Identifier": "0b1d6b7e-7d4c-4b4e-9c39-8d7a4f9c6f10",
        },
    )
    assert resp.status_code == 202
    svc.queue.run_pending()


def test_a_ticket_fixed_by_reconnecting_is_commented_and_closed(jira, rsps, make_services):
    svc = make_services(
        registry=scripted_registry({"app.get_status": ["failed"], "app.reconnect": ["reconnected"]})
    )
    deliver(svc)
    issue = jira.issue("VOIP-7")
    assert len(issue.comments) == 2
    start, end = issue.comments
    assert start.startswith("h3. connbot is triaging this ticket") and 'mentions "can\'t connect"' in start
    assert end.startswith("h3. Closed:")
    # Each step's outcome in the playbook's words, not its code.
    assert "|Check the client's connection status|L1|The app's registration failed|" in end
    assert "|Force a manual reconnection of the app|L1|The app reconnected|" in end
    assert "|Close - temporary network problem|L1|Ticket closed|" in end
    assert "|L1|failed|" not in end and "|L1|reconnected|" not in end and "|L1|closed|" not in end
    assert (issue.status, issue.resolution, issue.assignee) == ("Done", "Fixed", None)
    # Each write's first attempt: nothing to look for first (rate limits), so no comment is read.
    assert not [c for c in rsps.calls if c.request.method == "GET" and "/comment" in c.request.url]
    with svc.store.tx() as s:
        run = s.scalars(select(Run)).one()
        assert run.end_kind == "close" and run.ticket.user_ref == "1001"


def test_a_ticket_level_1_cannot_fix_goes_to_the_level_2_target_with_the_evidence(jira, make_services):
    # Only the app and the PBX are automated: the level-2 network check waits for a person.
    svc = make_services(registry=scripted_registry(LEVEL_1_CANNOT_FIX, systems=("app", "pbx")))
    deliver(svc)
    issue = jira.issue("VOIP-7")
    assert issue.assignee == {"accountId": "5b10ac8d82e05b22cc7d4ef5"}
    assert issue.components == ["Voice L2"] and issue.fields == {"customfield_10060": {"value": "Voice team"}}
    escalation = next(c for c in issue.comments if "escalated to level 2" in c)
    for title, said in [
        ("Check the client's connection status", "The app's registration failed"),
        ("Force a manual reconnection of the app", "The app still fails to register"),
        ("Write down the exact error message", "The app shows an error"),
        ("Look for a password mismatch", "The settings match"),
        ("Escalate to the second level", "Escalated to level 2"),
    ]:
        assert f"|{title}|L1|{said}|" in escalation
    for code in ("failed", "still_failing", "found", "match", "escalated_l2"):
        assert f"|L1|{code}|" not in escalation
    assert "|app.reconnect found still_failing|" in escalation and "*Next:*" in escalation
    assert "|seen|still_failing|" in escalation  # the full evidence, as a table in the collapsed block
    assert issue.status == "To Do"
    with svc.store.tx() as s:
        run = s.scalars(select(Run)).one()
        assert run.state == "waiting" and run.step == "check_network"


def test_a_persons_answer_reads_on_jira_as_the_answer_who_gave_it_and_what_they_wrote(jira, make_services):
    """An answer given in Slack: the answer's comment names the person and where, as the rows do;
    the step's row reads the answer, its summary only what they wrote, the By column who answered."""
    steps = {
        **LEVEL_1_CANNOT_FIX,
        "app.test_network": ["ok"],
        "pbx.health": ["up"],
        "pbx.check_database": ["db_ok"],
    }
    svc = make_services(registry=scripted_registry(steps, systems=("app", "pbx")))
    deliver(svc)
    with svc.store.tx() as s:
        run_id = s.scalars(select(Run)).one().id
        prompt = s.scalars(select(Prompt).where(Prompt.run_id == run_id, Prompt.state == "open")).one()
        prompts.answer_prompt(
            svc.context, s, prompt.id, "ok", "Traceroute reaches the PBX", "W111", Via.SLACK
        )
    svc.queue.run_pending()
    issue = jira.issue("VOIP-7")
    answered = next(c for c in issue.comments if "Check the network: Answered" in c)
    assert "Check the network: Answered by W111 in Slack at " in answered and " via " not in answered
    after = issue.comments[issue.comments.index(answered) + 1]
    assert "|Check the network|L2|The path is fine|Traceroute reaches the PBX|W111 in Slack|" in after
    assert "answered:" not in after
