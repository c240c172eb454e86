"""The prompt message as Slack shows it: right blocks, within Block Kit's limits."""

from __future__ import annotations

import datetime as dt
import json

from integrations.prompts import IncidentView, PromptView
from integrations.slack import blocks
from integrations.tickets import StepRow
from tests.conftest import shared_json

LIMITS = shared_json("specs/slack/block_kit_limits.json", "Slack's Block Kit limits")


def limit(group: str, name: str) -> int:
    return int(LIMITS[group][name]["value"])


def make_view(**changes) -> PromptView:
    data = dict(
        id="p-opaque-1",
        ticket_key="DESK-7",
        ticket_source="desk",
        ticket_summary="Alice's softphone can't connect",
        ticket_url="http://desk.example/tickets/DESK-7",
        user="1001",
        level=1,
        kind="question",
        title="Write down the exact error message",
        question="Write down the exact error message <b>now</b>.",
        options=[("found", "Found an error"), ("none", "No error shown")],
        text_label="The exact error message",
        found=[
            StepRow(
                step="check_status",
                title="Check status",
                level=1,
                outcome="failed",
                said="The app fails to register <!here>",
                summary="app says failed",
                evidence={"state": "failed"},
                at="2024-05-06T09:00:00",
                seconds=0.1,
            )
        ],
        state="open",
        answer=None,
        answer_said=None,
        answer_text=None,
        answered_by=None,
        answered_at=None,
        expires_at=dt.datetime(2024, 5, 6, 13, 0, tzinfo=dt.UTC),
        channel_refs={},
    )
    data.update(changes)
    return PromptView(**data)


def assert_within_limits(body: list[dict]) -> None:
    assert len(body) <= limit("surfaces", "message.blocks.max_items")
    assert len(json.dumps(body)) <= 13000
    for block in body:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= limit("blocks", "section.text.max_length")
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= limit("blocks", "header.text.max_length")
        if block["type"] == "actions":
            assert len(block["elements"]) <= limit("blocks", "actions.elements.max_items")
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= limit("elements", "button.text.max_length")
                assert len(button["action_id"]) <= limit("ids", "action_id.max_length")


def test_prompt_message_has_the_ticket_user_findings_question_and_one_button_per_answer():
    text, body = blocks.prompt_message(make_view())
    assert body[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "DESK-7: Alice's softphone can't connect", "emoji": True},
    }
    assert (
        "<http://desk.example/tickets/DESK-7|DESK-7>" in body[1]["text"]["text"]
        and "1001" in body[1]["text"]["text"]
    )
    assert "&lt;b&gt;now&lt;/b&gt;" in body[2]["text"]["text"]  # ticket text cannot inject mrkdwn links
    # each step in one sentence, its outcome in the playbook's words (escaped: an operator wrote them,
    # they mention nobody); its evidence stays on the ticket, never dumped as key=value or JSON
    assert (
        body[3]["text"]["text"]
        == "*What connbot found so far:*\n• [L1] Check status: *The app fails to register &lt;!here&gt;* — "
        "app says failed"
    )
    buttons = [b for block in body if block["type"] == "actions" for b in block["elements"]]
    assert [(b["text"]["text"], b["action_id"], b["value"]) for b in buttons] == [
        ("Found an error", "connbot_answer:found", "p-opaque-1"),
        ("No error shown", "connbot_answer:none", "p-opaque-1"),
        ("More detail…", "connbot_detail", "p-opaque-1"),
    ]
    assert text == "DESK-7: Write down the exact error message"
    assert_within_limits(body)


def test_a_ticket_link_cannot_be_broken_out_of_by_its_url_or_key():
    """A key or URL from Jira (a signed webhook, but only its length checked) stays one link."""
    _, body = blocks.prompt_message(make_view(ticket_key="K|<!here>", ticket_url="http://x/browse/K>|<!here"))
    assert body[1]["text"]["text"].startswith("*<http://x/browse/K%3E%7C%3C!here|K¦&lt;!here&gt;>*")


def test_no_detail_button_without_a_text_label_and_approvals_confirm():
    _, body = blocks.prompt_message(
        make_view(
            kind="approval",
            text_label=None,
            options=[("approve", "Approve"), ("reject", "Reject")],
            question="connbot wants to run pbx.create_account: create it. Approve?",
        )
    )
    buttons = [b for block in body if block["type"] == "actions" for b in block["elements"]]
    assert [b["action_id"] for b in buttons] == ["connbot_answer:approve", "connbot_answer:reject"]
    assert buttons[0]["style"] == "primary" and "pbx.create_account" in buttons[0]["confirm"]["text"]["text"]
    assert "Approval needed" in body[2]["text"]["text"] and "pbx.create_account" in body[2]["text"]["text"]


def test_long_evidence_and_many_steps_are_truncated_with_a_pointer_to_the_ticket():
    rows = [
        StepRow(
            step=f"s{n}",
            title=f"Step {n}",
            level=1,
            outcome="failed",
            summary="x" * 400,
            evidence={"log": "E" * 5000},
            at="2024-05-06T09:00:00",
            seconds=1,
        )
        for n in range(40)
    ]
    long_label = "L" * 200
    _, body = blocks.prompt_message(
        make_view(
            found=rows,
            question="Q" * 9000,
            ticket_summary="S" * 400,
            options=[(f"o{n}", long_label) for n in range(30)],
        )
    )
    assert_within_limits(body)
    assert (
        body[3]["text"]["text"].endswith(blocks.TRUNCATED)
        and "see the ticket for the full output" in blocks.TRUNCATED
    )
    assert body[2]["text"]["text"].endswith(blocks.TRUNCATED)
    assert (
        sum(len(b["elements"]) for b in body if b["type"] == "actions") == 31
    )  # every answer stays clickable


def test_settled_message_replaces_the_buttons_with_who_answered_what():
    answered = make_view(
        state="answered",
        answer="found",
        answer_said="Found an error",
        answer_text="403 Forbidden",
        answered_by="W111",
        answered_via="slack",
        answered_at=dt.datetime(2024, 5, 6, 9, 30, tzinfo=dt.UTC),
    )
    _, body = blocks.settled_message(answered)
    assert not [b for b in body if b["type"] == "actions"]
    assert (
        body[-1]["text"]["text"]
        == "✅ Answered by <@W111> at 2024-05-06 09:30 UTC: *Found an error* — “403 Forbidden”"
    )
    _, body = blocks.settled_message(make_view(state="expired"))
    said = "⏱ No answer in time: connbot went on as the playbook says for no answer."
    assert body[-1]["text"]["text"] == said


def test_detail_modal_carries_the_prompt_id_and_reads_back_choice_and_text():
    modal = blocks.detail_modal(make_view())
    assert modal["private_metadata"] == "p-opaque-1" and modal["callback_id"] == blocks.MODAL
    assert len(modal["title"]["text"]) <= limit("views", "modal.title.max_length")
    assert [o["value"] for o in modal["blocks"][1]["element"]["options"]] == ["found", "none"]
    values = {
        "choice": {"choice": {"selected_option": {"value": "found"}}},
        "text": {"text": {"value": " 403 \n"}},
    }
    assert blocks.submitted(values) == ("found", "403")


def _incident(**changes: object) -> IncidentView:
    return IncidentView(
        id=3,
        pbx="acme",
        title="Asterisk is down",
        statement="Asterisk on pbx1 does not answer",
        state="open",
        opened_at=dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC),
        tickets=4,
        users=3,
        closed_tickets=0,
        health="ARI refused the connection",
        checked_at=None,
        owner=None,
        restored_by=None,
        parent_key=None,
        parent_url=None,
        url="https://desk.example/incidents/3",
        summary="",
        message={},
    ).model_copy(update=changes)


def test_a_dismissed_incident_says_who_dismissed_it_not_that_the_pbx_is_back():
    """Between a person's *Not a PBX problem* and the incident's close, its message says so: not
    'Back: re-checking the users' apps' (nothing is re-checked), and no buttons to act on it again."""
    for state in ("open", "recovering"):
        _, shown = blocks.incident_message(_incident(state=state, dismissed_by="W222", dismissed_via="slack"))
        text = json.dumps(shown)
        assert "<@W222> said it is not a PBX problem: its tickets are checked on their own again." in text
        assert "Back: re-checking" not in text and '"actions"' not in text
    # a desk name shaped like a Slack id is no mention
    _, shown = blocks.incident_message(_incident(dismissed_by="U024BE7LH", dismissed_via="desk"))
    assert "U024BE7LH said it is not a PBX problem" in json.dumps(shown) and "<@U024BE7LH>" not in json.dumps(
        shown
    )
    # while the PBX really is back, the re-checks are counted
    _, shown = blocks.incident_message(_incident(state="recovering", closed_tickets=1))
    assert "Back: re-checking the users' apps (1 of 4 done)." in json.dumps(shown)
