from __future__ import annotations

import json

import pytest
import responses

from integrations import http
from integrations.base import PermanentError, TransientError
from integrations.jira.client import JiraClient
from integrations.jira.render import LIMIT, render
from integrations.jira.settings import JiraSettings
from integrations.jira.tickets import JiraTickets
from integrations.tickets import Note, StepRow, TicketRef
from tests.fakes.jira import URL

REF = TicketRef(source="jira", key="VOIP-7", summary="can't connect")
ESCALATION = {
    2: {
        "assignee": "5b10ac8d82e05b22cc7d4ef5",
        "components": ["Voice L2"],
        "labels": ["connbot-l2"],
        "request_type": "42",
        "fields": {"customfield_10060": {"value": "Voice team"}},
    }
}


def settings(**extra) -> JiraSettings:
    base = dict(url=URL, email="bot@example.com", api_token="api-token-not-real", escalation=ESCALATION)
    return JiraSettings(**{**base, **extra})


def row(i: int, summary: str = "found it", **evidence) -> StepRow:
    return StepRow(
        step=f"s{i}",
        title=f"Step {i} | check",
        level=1,
        outcome="failed",
        said="Registration failed [403]",
        summary=summary,
        evidence=evidence,
        at="2024-07-04T01:48:31+00:00",
        seconds=0.5,
    )


def test_comment_is_wiki_markup_with_a_table_and_the_marker():
    body = render(
        Note(
            heading="Level 1 checks done",
            lines=["Found a {weird} thing"],
            rows=[row(1, registration="failed [403]")],
            next="Level 2 takes over.",
        ),
        "run:1:escalate:2",
    )
    assert body.startswith("h3. Level 1 checks done\n\nFound a \\{weird\\} thing")
    assert "||Step||Level||Outcome||Found||By||When||" in body
    # the outcome in the playbook's words (escaped like the title: an operator wrote them), not its code
    assert "|Step 1 \\| check|L1|Registration failed \\[403\\]|found it|connbot|" in body
    assert "|failed|" not in body
    assert "*Next:* Level 2 takes over." in body
    assert "|registration|failed \\[403\\]|" in body
    assert body.rstrip().endswith("(connbot ref run:1:escalate:2){color}")


def test_a_slack_answerer_is_named_by_their_user_id_said_to_be_one():
    """Jira cannot resolve a Slack user id: the table says it is one, and a desk user who calls
    themselves by such an id is not taken for that Slack user."""
    slack, desk = row(1).model_copy(update={"by": "W111", "via": "slack"}), row(2, summary="fixed")
    body = render(
        Note(heading="Escalated", rows=[slack, desk.model_copy(update={"by": "W111", "via": "desk"})]), "m"
    )
    assert "|Step 1 \\| check|L1|Registration failed \\[403\\]|found it|W111 in Slack|" in body
    assert "|Step 2 \\| check|L1|Registration failed \\[403\\]|fixed|W111|" in body


def test_each_step_row_is_one_sentence_and_the_full_evidence_is_a_collapsed_table_never_json():
    status = row(
        1,
        summary=(
            "The app on device d1 failed to register with pbx1:5061/tls; last error: 408 Request Timeout."
        ),
        device_id="d1",
        registrar={"host": "pbx1", "port": 5061, "transport": "tls"},
        probes=[{"probe": "tcp_sip", "ok": True, "ms": 3.25}, {"probe": "tls", "ok": False, "ms": None}],
        modules={},
        missing=[],
        app_password_set=False,
    )
    body = render(Note(heading="Escalated to level 2", rows=[status, row(2, summary="no evidence")]), "m")
    found = "The app on device d1 failed to register with pbx1:5061/tls; last error: 408 Request Timeout."
    assert f"|Step 1 \\| check|L1|Registration failed \\[403\\]|{found}|connbot|" in body
    assert "\\{" not in body and '"host"' not in body and "registrar:" not in body
    evidence = body[body.index("{expand:Full evidence, step by step}") : body.rindex("{expand}")]
    assert evidence.splitlines()[2:] == [
        "*1. Step 1 \\| check*",
        "||Name||Value||",
        "|device_id|d1|",
        "|registrar.host|pbx1|",
        "|registrar.port|5061|",
        "|registrar.transport|tls|",
        "|probes 1|probe: tcp_sip; ok: yes; ms: 3.25|",
        "|probes 2|probe: tls; ok: no; ms: -|",
        "|modules|none|",
        "|missing|none|",
        "|app_password_set|no|",
        "",
    ]
    assert "Step 2" not in evidence  # a step without evidence has no table


def test_a_huge_note_is_truncated_visibly_within_the_limit():
    note = Note(heading="Evidence", rows=[row(i, summary="x" * 500) for i in range(60)])
    body = render(note, "run:1:end")
    assert len(body) <= LIMIT
    assert "truncated to fit Jira's limit" in body and "(connbot ref run:1:end)" in body
    small = render(Note(heading="ok", rows=[row(1)]), "m")
    assert "truncated" not in small


def test_evidence_too_long_for_a_comment_is_left_out_first_and_the_steps_stay():
    rows = [row(i, summary=f"step {i} found it", log="E" * 290, lines=list(range(50))) for i in range(80)]
    body = render(Note(heading="Escalated", rows=rows, next="Level 2 takes over."), "m")
    assert len(body) <= LIMIT and "truncated" not in body
    assert "{expand" not in body and "it is on the run's page in connbot" in body
    assert "|step 79 found it|" in body and "*Next:* Level 2 takes over." in body


def test_comment_is_written_once_per_marker(fake):
    jira = JiraTickets(settings())
    note = Note(heading="connbot is triaging this ticket")
    jira.comment(REF, note, "run:1:start")
    jira.comment(REF, note, "run:1:start")  # the retried job
    jira.comment(REF, note, "run:1:start2")
    assert len(fake.issue("VOIP-7").comments) == 2


def test_close_is_one_transition_with_resolution_and_comment(fake, rsps):
    JiraTickets(settings(resolution="Fixed")).close(REF, Note(heading="Closed: fixed"), "run:1:end")
    issue = fake.issue("VOIP-7")
    assert (issue.status, issue.resolution) == ("Done", "Fixed")
    assert len(issue.comments) == 1 and "h3. Closed: fixed" in issue.comments[0]
    posted = [c.request for c in rsps.calls if c.request.method == "POST"]
    assert len(posted) == 1 and json.loads(posted[0].body)["transition"] == {"id": "31"}


def test_close_with_an_unknown_status_names_the_setting_and_the_choices(fake):
    with pytest.raises(PermanentError, match=r"CONNBOT_JIRA_RESOLVED_STATUS.*'In Progress', 'Done'"):
        JiraTickets(settings(resolved_status="Resolved")).close(REF, Note(heading="x"), "run:1:end")


def test_escalate_on_cloud_assigns_by_account_id_and_sets_the_level_fields(fake, rsps):
    JiraTickets(settings()).escalate(
        REF, 2, Note(heading="Escalated to level 2", rows=[row(1)]), "run:1:escalate:2"
    )
    issue = fake.issue("VOIP-7")
    assert issue.assignee == {"accountId": "5b10ac8d82e05b22cc7d4ef5"}
    assert issue.components == ["Voice L2"] and issue.labels == ["connbot-l2"]
    assert issue.fields == {"customfield_10060": {"value": "Voice team"}, "customfield_10010": "42"}
    assert (
        len(issue.comments) == 1
        and "|Step 1 \\| check|L1|Registration failed \\[403\\]|" in issue.comments[0]
    )


def test_escalate_on_data_center_assigns_by_name(fake):
    dc = JiraSettings(url=URL, pat="pat-not-real", escalation={3: {"assignee": "jdoe"}})
    JiraTickets(dc).escalate(REF, 3, Note(heading="Escalated to level 3"), "run:1:end")
    assert fake.issue("VOIP-7").assignee == {"name": "jdoe"}


def test_a_write_retried_after_a_crash_does_not_comment_or_transition_twice(fake, rsps):
    jira = JiraTickets(settings())
    note = Note(heading="Escalated to level 2")
    jira.escalate(REF, 2, note, "run:1:escalate:2")
    jira.close(REF, note, "run:1:end")
    # The worker died after Jira made the writes but before connbot recorded them: the job runs again.
    writes = len([c for c in rsps.calls if c.request.method != "GET"])
    jira.escalate(REF, 2, note, "run:1:escalate:2")
    jira.close(REF, note, "run:1:end")
    assert len([c for c in rsps.calls if c.request.method != "GET"]) == writes
    assert len(fake.issue("VOIP-7").comments) == 2


def test_429_is_retried_after_at_least_retry_after(rsps):
    slept: list[float] = []
    client = JiraClient(settings(), http.RetryPolicy(sleep=slept.append, backoff=0.01))
    api = f"{URL}/rest/api/2/issue/VOIP-7/comment"
    rsps.add(
        responses.POST,
        api,
        status=429,
        headers={"Retry-After": "7"},
        json={"errorMessages": ["Rate limited"]},
    )
    rsps.add(responses.POST, api, status=201, json={"id": "1", "body": "hi"})
    client.add_comment("VOIP-7", "hi")
    assert len(slept) == 1 and slept[0] >= 7
    assert len(rsps.calls) == 2


def test_retries_are_bounded_then_transient(rsps):
    slept: list[float] = []
    client = JiraClient(settings(), http.RetryPolicy(sleep=slept.append, attempts=3, backoff=0.01))
    rsps.add(responses.POST, f"{URL}/rest/api/2/issue/VOIP-7/comment", status=503)
    with pytest.raises(TransientError):
        client.add_comment("VOIP-7", "hi")
    assert len(slept) == 2


def test_4xx_is_permanent_with_jiras_message(rsps):
    client = JiraClient(settings(), http.RetryPolicy(sleep=lambda s: None))
    rsps.add(
        responses.POST,
        f"{URL}/rest/api/2/issue/VOIP-7/comment",
        status=400,
        json={"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}},
    )
    with pytest.raises(PermanentError, match=r"HTTP 400.*Comment body can not be empty") as err:
        client.add_comment("VOIP-7", "")
    assert err.value.status == 400 and len(rsps.calls) == 1


def test_auth_headers_cloud_and_data_center(rsps, fake):
    JiraClient(settings()).add_comment("VOIP-7", "a")
    JiraClient(JiraSettings(url=URL, pat="pat-not-real")).add_comment("VOIP-7", "b")
    cloud, dc = [c.request.headers["Authorization"] for c in rsps.calls]
    assert cloud.startswith("Basic ") and dc == "Bearer pat-not-real"


def test_link_is_the_browse_url():
    assert JiraTickets(settings()).link(REF) == f"{URL}/browse/VOIP-7"


def test_a_first_attempt_writes_without_reading_the_comments_a_repeat_reads_them_first(fake, rsps):
    jira = JiraTickets(settings())
    note = Note(heading="connbot is triaging this ticket")
    jira.comment(REF.model_copy(update={"first_attempt": True}), note, "run:1:start")
    assert [c.request.method for c in rsps.calls] == ["POST"]
    jira.comment(REF, note, "run:1:start")  # a later attempt: the first may have landed, so it looks
    # who connbot is (asked once), then the comments
    assert [c.request.url.split("/rest/api/2/")[1].split("?")[0] for c in rsps.calls[1:]] == [
        "myself",
        "issue/VOIP-7/comment",
    ]
    jira.comment(REF, note, "run:1:start")
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "GET", "GET"]
    assert len(fake.issue("VOIP-7").comments) == 1
