"""Jira wiki markup from hostile text. Every string connbot did not write itself (ticket fields,
evidence from outside systems, the name of whoever answered on the desk) reaches a Jira comment
inert: no image (`!url!`), no link or mention, no macro, no extra table cell, even after a
backslash. And the idempotency marker counts only in comments of connbot's own account: a
reporter who pastes one does not make a retried close or escalation skip itself."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.state.models import Prompt
from bot.web.app import create_app
from integrations.jira.render import marker_tag, render
from integrations.jira.settings import JiraSettings
from integrations.jira.tickets import JiraTickets
from integrations.tickets import Note, StepRow, TicketRef
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import URL
from tests.reliability.conftest import issue_event, jira_headers

HOSTILE = (
    r"Eve !http://evil.example/x.png! [~accountid:123] {color:red}x{color} a\|b [phish|http://e.example] \\"
)
REPORTER = {"accountId": "557058:reporter", "displayName": "Rita Reporter"}


def live(text: str, chars: str) -> list[str]:
    """The markup characters in `text` that Jira would act on: those no backslash escapes."""
    return re.findall(r"(?<!\\)[" + re.escape(chars) + "]", text)


def test_a_hostile_answerer_name_and_summary_stay_inert_in_the_jira_comment(jira, make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(registry=scripted_registry({}, systems=()))  # every step asks a person
    client = create_app(services=svc).test_client()
    body = issue_event("VOIP-1", summary="cannot connect " + HOSTILE)
    assert client.post("/webhooks/jira", data=body, headers=jira_headers(body, "d1")).status_code == 202
    svc.queue.run_pending()
    while True:
        with svc.store.tx() as s:
            prompt = s.scalars(select(Prompt).where(Prompt.state == "open")).first()
        if prompt is None:
            break
        resp = client.post(
            f"/api/prompts/{prompt.id}/answer", json={"answer": prompt.options[0][0], "by": HOSTILE}
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        svc.queue.run_pending()
    comments = jira.issue("VOIP-1").comments
    with_name = [c for c in comments if "Eve" in c]
    assert with_name, comments
    for comment in with_name:
        assert not live(comment, "![]"), comment  # no image, link or mention
        assert "{color:red}" not in comment and "\\{color:red\\}" in comment
        for line in comment.splitlines():
            if line.startswith("|") and not line.startswith("||"):
                assert len(live(line, "|")) == 7, line  # six cells: the table has six columns


def test_a_marker_pasted_by_someone_else_does_not_stop_the_write(jira) -> None:  # type: ignore[no-untyped-def]
    settings = JiraSettings(url=URL, email="bot@example.com", api_token="api-token-not-real")
    tickets = JiraTickets(settings)
    marker = "run:7:close"
    ref = TicketRef(source="jira", key="VOIP-7", first_attempt=False)  # a retried close looks first
    tag = marker_tag(marker)
    jira.comment_as("VOIP-7", REPORTER, f"Still broken. Bot said {tag} {{color:#97a0af}}{tag}{{color}}")
    tickets.close(ref, Note(heading="Fixed: the app reconnected"), marker)
    issue = jira.issue("VOIP-7")
    assert issue.status == "Done"
    assert len(issue.comments) == 2
    # connbot's own comment does count: the same close again is not made twice.
    tickets.close(ref, Note(heading="Fixed: the app reconnected"), marker)
    assert len(jira.issue("VOIP-7").comments) == 2


def test_the_escalation_marker_too(jira) -> None:  # type: ignore[no-untyped-def]
    tickets = JiraTickets(JiraSettings(url=URL, email="bot@example.com", api_token="api-token-not-real"))
    marker = "run:8:escalate:2"
    jira.comment_as("VOIP-8", REPORTER, marker_tag(marker))
    ref = TicketRef(source="jira", key="VOIP-8", first_attempt=False)
    tickets.escalate(ref, 2, Note(heading="Escalated to level 2"), marker)
    assert any("Escalated" in c for c in jira.issue("VOIP-8").comments)


BLOCKS = ("h1. URGENT: reset your password", "bq. quoted", "# one", "* two", "- three", "---- ", "H2. x")


def test_text_that_begins_like_a_block_does_not_open_one_and_controls_are_not_passed_on() -> None:
    """A desk agent's comment (or a ticket's words quoted in a paragraph or a step's cell) that
    begins with `h1. `, `bq. `, a list's bullet or a rule stays a plain paragraph in Jira; a terminal
    escape or a right-to-left override in it is shown as U+FFFD."""
    rows = [
        StepRow(step="s", title=text, level=1, outcome="found", said=text, summary=text, at="t", seconds=1.0)
        for text in BLOCKS
    ]
    body = render(
        Note(heading="Comment from Mallory", lines=[*BLOCKS, "a\x1b[2J b\u202eevil"], rows=rows), "m"
    )
    paragraphs = body.split("\n\n")
    for text in BLOCKS:
        assert "\u200b" + text.strip() in paragraphs
    block = re.compile(r"(h[1-6]|bq)\.\s|[*#-]+\s|-{4}", re.I)
    assert [line for line in body.splitlines() if block.match(line)] == ["h3. Comment from Mallory"]
    cells = [cell for line in body.splitlines() if line[:1] == "|" != line[1:2] for cell in line.split("|")]
    assert "\u200bh1. URGENT: reset your password" in cells and "\u200b* two" in cells
    assert cells.count("\u200b* two") == 3  # the step's title, its outcome's words, its summary
    assert "a\ufffd\\[2J b\ufffdevil" in paragraphs
    assert not re.search("[\x00-\x1f\u202e]", body.replace("\n", ""))
    assert "we saw h1. and - lists" in render(Note(heading="h", lines=["we saw h1. and - lists"]), "m")
