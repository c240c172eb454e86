"""Block Kit for prompts (the question message, its settled form, the "more detail" modal) and for
an incident's one message.

Pure functions of a `PromptView`, kept within Slack's limits (shared/specs/slack/block_kit_limits.json):
text that does not fit is cut with a visible "see the ticket for the full output". Buttons carry
only the opaque prompt id (value) and the choice (action id); all state stays in connbot's store.
"""

from __future__ import annotations

import re
from typing import Any

from integrations.prompts import IncidentView, PromptView
from integrations.tickets import SLACK
from playbook.models import APPROVE, REJECT

MAX_BLOCKS = 50
SECTION = 3000
HEADER = 150
BUTTON = 75
OPTION = 75
MODAL_TITLE = 24
TEXT_INPUT = 3000
ACTIONS_PER_BLOCK = 25
TOTAL = 12000
TRUNCATED = "… (see the ticket for the full output)"

ANSWER = "connbot_answer:"
DETAIL = "connbot_detail"
INCIDENT = "connbot_incident:"
# An incident message's actions: (action, button label); the button's value is the incident's id.
INCIDENT_ACTIONS = (
    ("restored", "Restored (connbot checks)"),
    ("dismiss", "Not a PBX problem"),
    ("assign", "Assign to me"),
)
MODAL = "connbot_modal"
CHOICE_BLOCK, TEXT_BLOCK = "choice", "text"
Block = dict[str, Any]

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def escape(text: str) -> str:
    """Text from tickets and adapters, safe inside mrkdwn (no accidental links or mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    """A mrkdwn link whose label cannot break out of it."""
    url = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{url}|{escape(label).replace('|', '¦')}>"


def clip(text: str, limit: int, marker: str = TRUNCATED) -> str:
    return text if len(text) <= limit else text[: limit - len(marker)].rstrip() + marker


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit, "…"), "emoji": True}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION)}}


def mention(who: str | None, via: str | None) -> str:
    """A person who acted `via` somewhere: a mention when that was Slack (`who` is their Slack user
    id); anyone else by name, as text, whatever the name looks like: a desk user who calls
    themselves `U024BE7LH` pings nobody."""
    if not who:
        return "someone"
    return f"<@{who}>" if via == SLACK and _SLACK_USER.match(who) else escape(who)


def answer_action(choice: str) -> str:
    return ANSWER + choice


def choice_of(action_id: str) -> str:
    return action_id.removeprefix(ANSWER)


def _found(view: PromptView) -> str:
    if not view.found:
        return "*What connbot found so far:* nothing yet."
    lines = ["*What connbot found so far:*"]
    for row in view.found:
        by = f" (answered by {mention(row.by, row.via)})" if row.by else ""
        line = f"• [L{row.level}] {escape(row.title)}: *{escape(row.said)}*{by}"
        if row.summary:  # the one-sentence summary; the full evidence is on the ticket
            line += f" — {escape(row.summary)}"
        lines.append(line)
    return "\n".join(lines)


def _heading(view: PromptView) -> list[Block]:
    key = link(view.ticket_url, view.ticket_key) if view.ticket_url else escape(view.ticket_key)
    who = f" · user *{escape(view.user)}*" if view.user else ""
    what = "Approval needed" if view.kind == "approval" else "Question"
    return [
        {"type": "header", "text": plain(f"{view.ticket_key}: {view.ticket_summary}", HEADER)},
        section(f"*{key}*{who} · level {view.level}"),
        section(f"*{what}: {escape(view.title)}*\n{escape(view.question)}"),
        section(_found(view)),
    ]


def _buttons(view: PromptView) -> list[Block]:
    buttons: list[Block] = []
    for value, label in view.options:
        button: Block = {
            "type": "button",
            "text": plain(label, BUTTON),
            "value": view.id,
            "action_id": answer_action(value),
        }
        if value == APPROVE and view.kind == "approval":
            button["style"] = "primary"
            button["confirm"] = {
                "title": plain("Approve this change?", 100),
                "text": plain(view.question, 300),
                "confirm": plain("Approve", 30),
                "deny": plain("Cancel", 30),
            }
        elif value == REJECT and view.kind == "approval":
            button["style"] = "danger"
        buttons.append(button)
    if view.text_label:
        buttons.append(
            {"type": "button", "text": plain("More detail…", BUTTON), "value": view.id, "action_id": DETAIL}
        )
    return [
        {"type": "actions", "block_id": f"answers{n}", "elements": buttons[n : n + ACTIONS_PER_BLOCK]}
        for n in range(0, len(buttons), ACTIONS_PER_BLOCK)
    ]


def _fit(blocks: list[Block]) -> list[Block]:
    """Keep the message under Slack's total size: shorten the findings (block 3) first."""
    over = sum(len(str(b)) for b in blocks) - TOTAL
    if over > 0:
        text = blocks[3]["text"]["text"]
        blocks[3] = section(clip(text, max(len(TRUNCATED) + 40, len(text) - over)))
    return blocks[:MAX_BLOCKS]


def prompt_message(view: PromptView) -> tuple[str, list[Block]]:
    """The question: fallback text and blocks with one button per answer."""
    deadline = {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": (
                    f"Waiting for an answer until {view.expires_at:%Y-%m-%d %H:%M} UTC; "
                    "with none by then, connbot goes on as the playbook says for no answer."
                    + (" Only the level's approvers may approve." if view.kind == "approval" else "")
                ),
            }
        ],
    }
    blocks = _fit([*_heading(view), *_buttons(view), deadline])
    return clip(f"{view.ticket_key}: {view.title}", 300, "…"), blocks


def outcome_line(view: PromptView) -> str:
    """What became of the prompt, in one line."""
    if view.state == "answered":
        at = f"{view.answered_at:%Y-%m-%d %H:%M} UTC" if view.answered_at else "an unknown time"
        text = f" — “{escape(clip(view.answer_text, 500, '…'))}”" if view.answer_text else ""
        said = escape(view.answer_said or view.answer or "")
        return f"✅ Answered by {mention(view.answered_by, view.answered_via)} at {at}: *{said}*{text}"
    if view.state == "expired":
        return "⏱ No answer in time: connbot went on as the playbook says for no answer."
    return f"This question was {view.state}."


def settled_message(view: PromptView) -> tuple[str, list[Block]]:
    """The question with its buttons replaced by who answered what, or that it timed out."""
    line = outcome_line(view)
    return clip(f"{view.ticket_key}: {view.title}: {line}", 300, "…"), _fit([*_heading(view), section(line)])


def reminder_text(view: PromptView, group: str) -> str:
    """A reminder to the level's group, or to the person the question was handed to."""
    if view.handed_to:
        # Whom to hand it to is given as a Slack user id or a desk name (`operate.hand`), wherever it
        # was handed: the hander chose whom to call, and the Slack user it names may answer.
        who = f"{mention(view.handed_to, SLACK)}, handed to you: "
    else:
        who = f"<!subteam^{group}> " if group else ""
    return (
        f"{who}Reminder: {escape(view.ticket_key)} still waits for an answer to “{escape(view.title)}”, "
        f"until {view.expires_at:%Y-%m-%d %H:%M} UTC." + (f" SLA: {escape(view.sla)}." if view.sla else "")
    )


def detail_modal(view: PromptView) -> Block:
    """The "more detail" form: the answer and a text (e.g. the exact error message)."""
    options = [{"text": plain(label, OPTION), "value": value} for value, label in view.options]
    return {
        "type": "modal",
        "callback_id": MODAL,
        "private_metadata": view.id,
        "title": plain(f"Answer {view.ticket_key}", MODAL_TITLE),
        "submit": plain("Send", MODAL_TITLE),
        "close": plain("Cancel", MODAL_TITLE),
        "blocks": [
            section(f"*{escape(view.title)}*\n{escape(view.question)}"),
            {
                "type": "input",
                "block_id": CHOICE_BLOCK,
                "label": plain("Answer", 2000),
                "element": {"type": "static_select", "action_id": CHOICE_BLOCK, "options": options[:100]},
            },
            {
                "type": "input",
                "block_id": TEXT_BLOCK,
                "optional": True,
                "label": plain(view.text_label or "Details", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": TEXT_BLOCK,
                    "multiline": True,
                    "max_length": TEXT_INPUT,
                },
            },
        ],
    }


def submitted(values: dict[str, Any]) -> tuple[str, str | None]:
    """The (choice, text) of a submitted detail modal's `view.state.values`."""
    choice = ((values.get(CHOICE_BLOCK, {}).get(CHOICE_BLOCK) or {}).get("selected_option") or {}).get(
        "value", ""
    )
    text = (values.get(TEXT_BLOCK, {}).get(TEXT_BLOCK) or {}).get("value")
    return choice, (text.strip() or None) if isinstance(text, str) else None


def incident_action(action_id: str) -> str:
    return action_id.removeprefix(INCIDENT)


def _incident_lines(view: IncidentView) -> str:
    where = f"PBX *{escape(view.pbx)}*" if view.pbx else "the PBX"
    lines = [
        f"*{escape(view.statement)}*",
        f"{where} · since {view.opened_at:%Y-%m-%d %H:%M} UTC · "
        f"*{view.tickets}* ticket(s), *{view.users}* user(s)",
    ]
    if view.health:
        at = f" ({view.checked_at:%H:%M:%S} UTC)" if view.checked_at else ""
        lines.append(f"Latest check{at}: {escape(view.health)}")
    if view.owner:
        lines.append(f"Taken by {mention(view.owner, view.owner_via)}")
    if view.dismissed_by and view.state != "closed":
        who = mention(view.dismissed_by, view.dismissed_via)
        lines.append(f"{who} said it is not a PBX problem: its tickets are checked on their own again.")
    elif view.restored_by and view.state == "open":
        who = mention(view.restored_by, view.restored_via)
        lines.append(f"{who} said it is restored; connbot's check does not agree yet.")
    elif view.state == "recovering":
        lines.append(f"Back: re-checking the users' apps ({view.closed_tickets} of {view.tickets} done).")
    if view.state == "closed":
        lines.append(f"Closed: {escape(view.summary)}")
    links = [link(view.url, "incident page")]
    if view.parent_key:
        links.append(link(view.parent_url, view.parent_key) if view.parent_url else escape(view.parent_key))
    lines.append(" · ".join(links))
    return "\n".join(lines)


def incident_message(view: IncidentView) -> tuple[str, list[Block]]:
    """The incident's one message: what fails, how many are affected, the latest health; while it is
    open, its actions."""
    icon = {"open": "🔴", "recovering": "🟡"}.get(view.state, "✅")
    head = f"{icon} Incident {view.id}: {view.title}"
    blocks: list[Block] = [
        {"type": "header", "text": plain(head, HEADER)},
        section(_incident_lines(view)),
    ]
    if view.state == "open" and not view.dismissed_by:
        buttons = [
            {
                "type": "button",
                "text": plain(label, BUTTON),
                "value": str(view.id),
                "action_id": INCIDENT + act,
            }
            for act, label in INCIDENT_ACTIONS
        ]
        buttons[0]["style"] = "primary"
        blocks.append({"type": "actions", "block_id": "incident", "elements": buttons})
    return clip(f"{head} ({view.tickets} tickets)", 300, "…"), blocks


def incident_reminder(view: IncidentView, group: str) -> str:
    who = (
        mention(view.owner, view.owner_via) + " " if view.owner else (f"<!subteam^{group}> " if group else "")
    )
    return (
        f"{who}Reminder: incident {view.id} is still open since {view.opened_at:%Y-%m-%d %H:%M} UTC "
        f"({view.tickets} tickets). {escape(clip(view.health, 500, '…'))}"
    )
