"""Questions to people: their lifecycle (open, remind, answer, expire) independent of any channel.

A channel (Slack, ...) only shows a prompt and relays answers; the desk reads prompts straight
from the store. Whoever answers first wins: the answer is a conditional update of an open prompt,
so a double click, a retried delivery or an answer in a second channel changes nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.errors import BadRequestError, NotFoundError
from bot.state.models import Prompt, Run

MAX_TEXT = 4000


def new_id() -> str:
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Answered:
    won: bool
    prompt: Prompt


def answer(
    s: Session, prompt_id: str, choice: str, text: str | None, who: str, via: str, now: dt.datetime
) -> Answered:
    """Record an answer if the prompt is still open. Returns whether this answer won."""
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
    won = (
        s.execute(
            update(Prompt)
            .where(Prompt.id == prompt_id, Prompt.state == "open")
            .values(
                state="answered",
                answer=choice,
                answer_text=(text or None),
                answered_by=who,
                answered_via=via,
                answered_at=now,
            )
        ).rowcount
        == 1
    )  # type: ignore[attr-defined]
    s.refresh(prompt)
    return Answered(won, prompt)


def due(s: Session, now: dt.datetime) -> tuple[list[Prompt], list[Prompt]]:
    """Open prompts past their expiry, and open prompts due a reminder."""
    expired = list(s.scalars(select(Prompt).where(Prompt.state == "open", Prompt.expires_at <= now)))
    remind = list(
        s.scalars(
            select(Prompt).where(
                Prompt.state == "open",
                Prompt.remind_at.is_not(None),
                Prompt.remind_at <= now,
                Prompt.expires_at > now,
            )
        )
    )
    return expired, remind


def expire(s: Session, prompt: Prompt) -> bool:
    return (
        s.execute(
            update(Prompt).where(Prompt.id == prompt.id, Prompt.state == "open").values(state="expired")
        ).rowcount
        == 1
    )  # type: ignore[attr-defined]


def open_for(s: Session, run: Run) -> Prompt | None:
    return s.scalars(select(Prompt).where(Prompt.run_id == run.id).order_by(Prompt.seq.desc())).first()
