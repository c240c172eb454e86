"""Chat control: the `/connbot` slash command, the App Home tab and the "connbot this ticket"
message shortcut, as bolt lazy listeners (acknowledged first, like every Slack request).

`/connbot status KEY`, `triage KEY`, `rerun KEY [why]`, `cancel KEY [why]`, `retry KEY [why]`,
`hand KEY @someone [why]`, `incidents`. The same permission rules as answering
(`SlackChannel.may_answer`): reading needs what answering a level-1 question needs; acting on a
ticket needs what answering a question of the ticket's level needs. Acting goes through the
operator verbs (`bot.runs.operate`), recorded as done via Slack.
Answers are ephemeral, through the request's `response_url`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import BadRequestError, NotFoundError
from bot.runs import incidents as held_by
from bot.runs import operate, prompts
from bot.runs.prompts import Via
from bot.services import Services
from bot.state.models import Incident, IncidentState, Prompt, PromptState, Run, RunState, Ticket
from bot.web.views import run_label
from integrations.slack.blocks import escape, link
from integrations.slack.channel import SlackChannel
from integrations.slack.client import quietly
from integrations.slack.home import HomeItem, home_view

log = logging.getLogger(__name__)

COMMAND = "/connbot"
SHORTCUT = "connbot_ticket"
USAGE = (
    "`/connbot status KEY` · `/connbot triage KEY` · `/connbot rerun KEY [why]` · "
    "`/connbot cancel KEY [why]` · `/connbot retry KEY [why]` · `/connbot hand KEY @someone [why]` · "
    "`/connbot incidents`"
)
ACTS = ("triage", "rerun", "cancel", "retry", "hand")
# A user mention as Slack escapes it in a command's text (the manifest's `should_escape: true`).
MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>")
# A ticket key as Jira and the desk make them (PROJECT-123), alone or in a link's path.
KEY = re.compile(r"\b([A-Z][A-Z0-9_]{0,30}-[1-9][0-9]{0,9})\b")
MAX_SHORTCUT_KEYS = 5


class Commands:
    """What happens after a slash command, a Home tab opening or a shortcut has been acknowledged."""

    def __init__(self, svc: Services, channel: SlackChannel):
        self.svc, self.channel = svc, channel

    def command(self, body: dict[str, Any]) -> None:
        user, text = str(body.get("user_id", "")), str(body.get("text", ""))
        verb, _, rest = " ".join(text.split()).partition(" ")
        key, _, why = rest.partition(" ")
        reply = self.run(user, verb.lower(), key.upper(), why)
        log.info("slack: /connbot %s %s by %s", verb[:20], key[:64], user)
        quietly(self.channel.respond, body["response_url"], reply)

    def run(self, user: str, verb: str, key: str, why: str) -> str:
        """The answer to `/connbot VERB KEY WHY` from `user`, in mrkdwn."""
        if verb in ("", "help"):
            return USAGE
        if verb == "incidents":
            return self._incidents() if self._may(user, 1) else self._refused(1)
        if verb != "status" and verb not in ACTS:
            return f"connbot knows no command `{escape(verb[:40])}`. {USAGE}"
        if not KEY.fullmatch(key):
            return f"Say which ticket, e.g. `/connbot {verb} OPS-12`."
        with self.svc.store.tx() as s:
            ticket = s.scalars(select(Ticket).where(Ticket.key == key).order_by(Ticket.id.desc())).first()
            level = ticket.level if ticket is not None else 1
        if not self._may(user, 1 if verb == "status" else level):
            return self._refused(level)
        if verb == "status":
            return self.status(key)
        to = MENTION.match(why) if verb == "hand" else None
        if verb == "hand" and to is None:
            return f"Say whom to hand the question to, e.g. `/connbot hand {key} @someone`."
        if to is not None:
            why = why[to.end() :].strip()
        by = operate.Actor(user, Via.SLACK, why)
        try:
            if verb == "triage":
                done = operate.triage(self.svc.context, key, by)
            elif to is not None:
                done = operate.hand(self.svc.context, self._open_question(key), to.group(1), by)
            else:
                done = operate.on_run(self.svc.context, key, verb, by)
        except (BadRequestError, NotFoundError) as exc:
            return f"connbot could not do this: {escape(str(exc))}"
        return self._said(done.said, user)

    def _open_question(self, key: str) -> str:
        """The id of the question the ticket's run waits for."""
        with self.svc.store.tx() as s:
            prompt = prompts.open_for(s, operate.find_run(s, key))
            if prompt is None or prompt.state != PromptState.OPEN:
                raise operate.BusyError(f"no question of ticket {key} waits for an answer")
            return prompt.id

    @staticmethod
    def _said(said: str, user: str) -> str:
        """What a verb did, escaped, with the acting user as a mention."""
        return escape(said).replace(escape(user), f"<@{user}>", 1)

    def status(self, key: str) -> str:
        """A ticket's latest run in a few lines: its state, where it is, its open question, its page."""
        ctx = self.svc.context
        with self.svc.store.tx() as s:
            try:
                run = operate.find_run(s, key)
            except NotFoundError:
                known = s.scalars(select(Ticket).where(Ticket.key == key)).first()
                if known is None:
                    return f"{escape(key)}: connbot has not heard of this ticket."
                why = escape(known.match_reason[:200] or "not a connection issue")
                return f"{key}: connbot left this ticket alone ({why}). `/connbot triage {key}` starts it."
            page = link(f"{ctx.desk_url}/runs/{run.id}", f"run {run.id}")
            lines = [
                f"*{escape(key)}* {escape(run.ticket.summary[:200])}: {page} is {escape(run_label(run))}"
            ]
            if run.state == RunState.ENDED:
                lines.append(escape(run.end_reason[:500]))
            else:
                step = ctx.playbooks.of(run).steps.get(run.step or "")
                lines.append(f"At: {escape(step.title if step else run.step or '-')}")
                if run.state == RunState.HELD and run.incident_id is not None:
                    inc = s.get(Incident, run.incident_id)
                    where = held_by.where(inc.pbx) if inc else "its PBX"
                    lines.append(
                        f"Held by incident {run.incident_id} ({escape(where)}) until the PBX is back."
                    )
                prompt = prompts.open_for(s, run)
                if prompt is not None and prompt.state == PromptState.OPEN:
                    to = f", handed to {escape(prompt.handed_to)}" if prompt.handed_to else ""
                    lines.append(f"Waits for an answer to “{escape(prompt.title)}”{to}.")
            return "\n".join(lines)

    def _incidents(self) -> str:
        ctx = self.svc.context
        with self.svc.store.tx() as s:
            rows = list(
                s.scalars(
                    select(Incident).where(Incident.state != IncidentState.CLOSED).order_by(Incident.id)
                )
            )
            if not rows:
                return "No incident is open."
            return "\n".join(
                f"{link(f'{ctx.desk_url}/incidents/{inc.id}', f'Incident {inc.id}')} ({inc.state}): "
                f"{escape(inc.title)} on {escape(held_by.where(inc.pbx))}, "
                f"since {inc.opened_at:%Y-%m-%d %H:%M} UTC"
                for inc in rows[:20]
            )

    def home(self, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        if event.get("tab", "home") != "home":
            return
        user = str(event["user"])
        with self.svc.store.tx() as s:
            view = home_view(self._questions(s, user), self._runs(s, user), self.svc.context.desk_url)
        quietly(self.channel.publish_home, user, view)

    def _questions(self, s: Session, user: str) -> list[HomeItem]:
        """The open questions handed to `user`, then those of the levels they may answer (not handed on)."""
        found = s.scalars(
            select(Prompt)
            .where(Prompt.state == PromptState.OPEN, Prompt.kind != prompts.CUSTOMER)
            .order_by(Prompt.expires_at)
        )
        mine = [
            p
            for p in found
            if p.handed_to == user
            or (p.handed_to is None and quietly(self.channel.may_answer, user, p.level, p.kind))
        ]
        mine.sort(key=lambda p: p.handed_to != user)
        return [
            HomeItem(
                p.run.ticket.key,
                f"{p.title} (level {p.level}, until {p.expires_at:%Y-%m-%d %H:%M} UTC)"
                + (" — handed to you" if p.handed_to == user else ""),
                f"{self.svc.context.desk_url}/runs/{p.run_id}",
            )
            for p in mine
        ]

    def _runs(self, s: Session, user: str) -> list[HomeItem]:
        """Runs waiting (for a person, or held by an incident) on tickets of the levels `user` answers."""
        runs = s.scalars(
            select(Run).where(Run.state.in_((RunState.WAITING, RunState.HELD))).order_by(Run.id).limit(500)
        )
        return [
            HomeItem(
                r.ticket.key,
                f"{r.ticket.summary[:120]}: {r.state} (level {r.ticket.level})",
                f"{self.svc.context.desk_url}/runs/{r.id}",
            )
            for r in runs
            if self._may(user, r.ticket.level)
        ]

    def shortcut(self, body: dict[str, Any]) -> None:
        """The message shortcut: the status of each ticket the message names or links to."""
        user = str((body.get("user") or {}).get("id", ""))
        message = body.get("message") or {}
        keys = list(dict.fromkeys(KEY.findall(str(message.get("text", "")))))[:MAX_SHORTCUT_KEYS]
        if not keys:
            reply = "This message names no ticket (a key like OPS-12, or a link to one)."
        elif not self._may(user, 1):
            reply = self._refused(1)
        else:
            reply = "\n\n".join(self.status(key) for key in keys) + f"\n\n{USAGE}"
        quietly(self.channel.respond, body["response_url"], reply)

    def _may(self, user: str, level: int) -> bool:
        return bool(quietly(self.channel.may_answer, user, level, "question"))

    def _refused(self, level: int) -> str:
        return (
            f"Sorry, only people who may answer level-{level} questions may do this "
            f"({self.channel.answerers_hint(level)} may). Nothing changed."
        )
