"""Questions to people: their lifecycle (open, remind, answer, expire) independent of any channel.

A channel (Slack, ...) only shows a prompt and relays answers; the desk reads prompts straight
from the store. Whoever answers first wins: the answer is a conditional update of an open prompt,
so a double click, a retried delivery or an answer in a second channel changes nothing.

A question to the customer (kind `customer`) is asked on the ticket itself, as a public reply, and
shown in no channel; the reporter's reply on the ticket answers it (`customer_replied`), or an
agent on the desk on their behalf.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.errors import BadRequestError, NotFoundError
from bot.runs import sla
from bot.runs.context import RunContext
from bot.runs.trail import rows, ticket_ref
from bot.state.models import Prompt, PromptState, Run, Ticket, utcnow
from bot.state.store import rows_updated
from integrations.base import PermanentError
from integrations.prompts import PromptView
from integrations.tickets import TicketSystem
from playbook.models import APPROVE, Playbook, Step

MAX_TEXT = 4000
MAX_NAME = 255  # prompts.answered_by


class Via(StrEnum):
    """Where an answer was given or a person acted (kept with the prompt or the action, and said on
    the ticket)."""

    DESK = "desk"  # the desk's pages
    API = "api"  # the JSON API
    SLACK = "slack"
    CUSTOMER = "customer"  # the reporter's reply on the ticket
    CLI = "cli"  # the connbot command (operator verbs)


CUSTOMER = "customer"  # the kind of a question to the ticket's customer


def new_id() -> str:
    """A question's id: 144 random bits, safe in a URL, and never beginning with "-", which the
    `connbot prompts` commands would read as an option (one id in 64 did)."""
    return "p" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Answered:
    won: bool
    prompt: Prompt


def answer_prompt(
    ctx: RunContext, s: Session, prompt_id: str, choice: str, text: str | None, who: str, via: Via
) -> Answered:
    """Record an answer in `s` if the prompt is still open; a winning answer wakes the run once `s`
    commits. Returns whether this answer won, and the prompt as it now stands."""
    prompt = s.get(Prompt, prompt_id)
    if prompt is None:
        raise NotFoundError(f"no prompt {prompt_id!r}")
    values = [value for value, _ in prompt.options]
    if choice not in values:
        raise BadRequestError(f"answer must be one of {', '.join(values)}, got {choice!r}")
    if text is not None and len(text) > MAX_TEXT:
        raise BadRequestError(f"text is longer than {MAX_TEXT} characters")
    if not who.strip():
        raise BadRequestError("who answered is missing")
    if len(who) > MAX_NAME:
        raise BadRequestError(f"who answered: longer than {MAX_NAME} characters")
    won = (
        rows_updated(
            s,
            update(Prompt)
            .where(Prompt.id == prompt_id, Prompt.state == PromptState.OPEN)
            .values(
                state=PromptState.ANSWERED,
                answer=choice,
                answer_text=(text or None),
                answered_by=who,
                answered_via=via.value,
                answered_at=ctx.clock(),
            ),
        )
        == 1
    )
    s.refresh(prompt)
    if won:
        ctx.waker.advance_after_commit(s, prompt.run_id)
    return Answered(won, prompt)


def customer_replied(ctx: RunContext, s: Session, ticket: Ticket, text: str, who: str) -> Answered | None:
    """The ticket's reporter replied on the ticket: the answer to its run's open question to the
    customer, if there is one (its one option, the reply's text bounded). None when nothing waits."""
    run = s.scalars(select(Run).where(Run.active_ticket_id == ticket.id)).first()
    prompt = open_for(s, run) if run is not None else None
    if prompt is None or prompt.kind != CUSTOMER or prompt.state != PromptState.OPEN:
        return None
    reply = text.strip()
    if len(reply) > MAX_TEXT:
        reply = reply[: MAX_TEXT - 1] + "…"
    name = " ".join(who.split())[:MAX_NAME] or "the customer"
    return answer_prompt(ctx, s, prompt.id, prompt.options[0][0], reply or None, name, Via.CUSTOMER)


def bring_reminder_forward(s: Session, ticket: Ticket, now: dt.datetime) -> None:
    """The ticket's SLA clocks changed: the open question (to agents) of its run is reminded of
    when a breach becomes near, if that comes before its reminder (or after the one it had)."""
    run = s.scalars(select(Run).where(Run.active_ticket_id == ticket.id)).first()
    prompt = open_for(s, run) if run is not None else None
    if prompt is None or prompt.state != PromptState.OPEN or prompt.kind == CUSTOMER:
        return
    soon = (
        sla.reminder_at(ticket, prompt.remind_at, now)
        if prompt.remind_at is not None
        else sla.next_warning(ticket, now)
    )
    if soon is not None and soon < prompt.expires_at:
        prompt.remind_at = soon


def due(s: Session, now: dt.datetime) -> tuple[list[Prompt], list[Prompt]]:
    """Open prompts past their expiry, and open prompts due a reminder."""
    expired = list(
        s.scalars(select(Prompt).where(Prompt.state == PromptState.OPEN, Prompt.expires_at <= now))
    )
    remind = list(
        s.scalars(
            select(Prompt).where(
                Prompt.state == PromptState.OPEN,
                Prompt.remind_at.is_not(None),
                Prompt.remind_at <= now,
                Prompt.expires_at > now,
            )
        )
    )
    return expired, remind


def expire(s: Session, prompt: Prompt) -> bool:
    return (
        rows_updated(
            s,
            update(Prompt)
            .where(Prompt.id == prompt.id, Prompt.state == PromptState.OPEN)
            .values(state=PromptState.EXPIRED),
        )
        == 1
    )


def open_for(s: Session, run: Run) -> Prompt | None:
    return s.scalars(select(Prompt).where(Prompt.run_id == run.id).order_by(Prompt.seq.desc())).first()


def said(prompt: Prompt, step: Step | None) -> str:
    """A prompt's answer as its outcome reads, what its step's row and the message it is settled in
    say: an approval's "Approved" or "Rejected"; an answer to a playbook step in the step's words
    (`Step.said`: "Fixed", not the button's "Fixed (connbot checks again)"); an answer to a question
    of connbot's own, which has no step (which PBX, which user), as its option reads."""
    answer = prompt.answer or ""
    if prompt.kind == "approval":
        return "Approved" if answer == APPROVE else "Rejected"
    if step is None:
        labels: dict[str, str] = dict(prompt.options)
        return labels.get(answer, answer)
    return step.said(answer)


def view(
    prompt: Prompt,
    tickets: Mapping[str, TicketSystem],
    pb: Playbook,
    channel: str | None = None,
    now: dt.datetime | None = None,
) -> PromptView:
    """A prompt with its ticket, what the run found so far and its SLA's time left, for showing to
    people; `pb` is the playbook version its run follows, whose words its answer is said in."""
    now = now or utcnow()
    ticket = prompt.run.ticket
    system = tickets.get(ticket.source)
    step = None if prompt.kind in ("route", "identify") else pb.steps.get(prompt.step)
    return PromptView(
        id=prompt.id,
        ticket_key=ticket.key,
        ticket_source=ticket.source,
        ticket_summary=ticket.summary,
        ticket_url=system.link(ticket_ref(ticket)) if system else None,
        user=ticket.user_ref,
        level=prompt.level,
        kind=prompt.kind,
        title=prompt.title,
        question=prompt.question,
        options=[(value, label) for value, label in prompt.options],
        text_label=prompt.text_label,
        found=rows(prompt.run),
        state=prompt.state,
        answer=prompt.answer,
        answer_said=said(prompt, step) if prompt.state == PromptState.ANSWERED else None,
        answer_text=prompt.answer_text,
        answered_by=prompt.answered_by,
        answered_via=prompt.answered_via,
        answered_at=prompt.answered_at,
        expires_at=prompt.expires_at,
        channel_refs=dict(prompt.channel_refs),
        channel=channel,
        handed_to=prompt.handed_to,
        sla=sla.time_left(clock, now) if (clock := sla.nearest(ticket, now)) is not None else None,
    )


def view_of(ctx: RunContext, prompt_id: str) -> PromptView:
    """The prompt `prompt_id` as a channel shows it (with its PBX instance's chat channel, if any)."""
    with ctx.store.tx() as s:
        prompt = s.get(Prompt, prompt_id)
        if prompt is None:
            raise PermanentError(f"no prompt {prompt_id}")
        return view(
            prompt, ctx.tickets, ctx.playbooks.of(prompt.run), ctx.channel_for(prompt.run.pbx), ctx.clock()
        )
