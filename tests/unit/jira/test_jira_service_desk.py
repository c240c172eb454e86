"""Jira Service Management at the wire: notes for the agents are internal on every path connbot
comments through, replies for the customer are public, and other projects keep plain comments."""

from __future__ import annotations

import json

from integrations.jira.settings import JiraSettings
from integrations.jira.tickets import JiraTickets
from integrations.tickets import Audience, Note, TicketRef
from tests.fakes.jira import URL

INTERNAL = [{"key": "sd.public.comment", "value": {"internal": True}}]
L2 = {2: {"assignee": "5b10ac8d82e05b22cc7d4ef5", "components": ["Voice L2"]}}


def system(**extra) -> JiraTickets:
    return JiraTickets(
        JiraSettings(url=URL, email="bot@example.com", api_token="api-token-not-real", escalation=L2, **extra)
    )


def ref(key: str, customers: bool) -> TicketRef:
    return TicketRef(source="jira", key=key, summary="can't connect", customers=customers, first_attempt=True)


def comments_sent(rsps) -> list[dict]:
    """Every comment connbot sent, as the REST body gave it: on its own, with a transition, with an
    edit, with an issue link."""
    out = []
    for call in rsps.calls:
        if call.request.method not in ("POST", "PUT") or not call.request.body:
            continue
        body = json.loads(call.request.body)
        if call.request.url.endswith("/comment"):
            out.append(body)
        if call.request.url.endswith("/issueLink") and "comment" in body:
            out.append(body["comment"])
        out += [c["add"] for c in (body.get("update") or {}).get("comment", [])]
    return out


def write_on_every_path(tickets: JiraTickets, key: str, customers: bool) -> None:
    note = Note(heading="Level 1 checks done", lines=["PBX pbx1.example.net answered 403 for 1001"])
    tickets.comment(ref(key, customers), note, "run:1:start")
    tickets.escalate(ref(key, customers), 2, note, "run:1:escalate:2")
    tickets.link_parent(ref(key, customers), "OPS-1", note, "run:1:incident")  # joining an incident
    tickets.close(ref(key, customers), note, "run:1:end")


def test_on_a_service_request_every_note_for_the_agents_is_internal_on_every_path(fake, rsps):
    write_on_every_path(system(), "HELP-12", customers=True)
    issue = fake.issue("HELP-12")
    assert len(issue.comments) == 4 and issue.internal == {0, 1, 2, 3}
    assert issue.portal == []  # the customer sees none of the PBX names, addresses, account states
    sent = comments_sent(rsps)
    assert len(sent) == 4 and all(c["properties"] == INTERNAL for c in sent)
    assert (issue.status, issue.assignee) == ("Done", {"accountId": "5b10ac8d82e05b22cc7d4ef5"})


def test_a_reply_for_the_customer_is_public_short_and_plain(fake):
    tickets = system()
    tickets.comment(ref("HELP-12", True), Note(heading="x", lines=["internal detail"]), "run:1:start")
    reply = Note(
        audience=Audience.CUSTOMER,
        lines=["We corrected your app's server settings; please try to connect again."],
    )
    tickets.comment(ref("HELP-12", True), reply, "run:1:reply:fixed")
    issue = fake.issue("HELP-12")
    assert issue.internal == {0}
    [seen] = issue.portal
    assert seen.startswith("We corrected your app's server settings; please try to connect again.")
    assert "h3." not in seen and "||" not in seen and "internal detail" not in seen


def test_a_project_that_is_not_a_service_project_keeps_plain_comments(fake, rsps):
    write_on_every_path(system(), "VOIP-7", customers=False)
    issue = fake.issue("VOIP-7")
    assert len(issue.comments) == 4 and issue.internal == set() and issue.portal == issue.comments
    assert all("properties" not in c for c in comments_sent(rsps))


def test_a_retried_write_finds_its_internal_note_and_does_not_write_again(fake):
    tickets = system()
    note = Note(heading="Level 1 checks done")
    tickets.comment(ref("HELP-12", True), note, "run:1:start")
    again = ref("HELP-12", True).model_copy(update={"first_attempt": False})
    tickets.comment(again, note, "run:1:start")
    tickets.close(again, note, "run:1:start")
    assert len(fake.issue("HELP-12").comments) == 1
