"""The prompt-channel port: how a question to people is shown in a channel (Slack, ...).

A channel only shows a prompt and relays answers; the prompt's lifecycle (open, remind, answer,
expire) lives in `bot.runs.prompts`, independent of any channel.
"""

from __future__ import annotations

import abc
import datetime as dt
from typing import ClassVar

from pydantic import BaseModel

from integrations.settings import Sections
from integrations.tickets import StepRow

GROUP = "connbot.channels"  # the entry-point group prompt channels are installed under, by `name`


class PromptView(BaseModel):
    """Everything a channel needs to show a prompt, or its settled state."""

    id: str
    ticket_key: str
    ticket_source: str
    ticket_summary: str
    ticket_url: str | None
    user: str | None
    level: int
    kind: str
    title: str
    question: str
    options: list[tuple[str, str]]
    text_label: str | None
    found: list[StepRow]
    state: str
    answer: str | None
    answer_said: str | None  # the answer as its outcome reads ("Fixed", "Approved"), as on the ticket
    answer_text: str | None
    answered_by: str | None
    answered_via: str | None = None  # where: slack (then `answered_by` is a Slack user id), desk, ...
    answered_at: dt.datetime | None
    expires_at: dt.datetime
    channel_refs: dict[str, object]
    channel: str | None = None  # where the run's PBX instance wants its prompts, overriding the default
    handed_to: str | None = None  # whom a person handed the question to (a Slack user id or a name)
    sla: str | None = (
        None  # the ticket's SLA clock with the least time left, e.g. "Time to resolution: 25 min left"
    )
    repeat: bool = False
    """True when an earlier attempt of this call was made and may have landed (its answer was lost)."""


class IncidentView(BaseModel):
    """Everything a channel needs to show an incident's one message, and to remind of it."""

    id: int
    pbx: str
    title: str
    statement: str
    state: str  # open, recovering, closed
    opened_at: dt.datetime
    tickets: int
    users: int
    closed_tickets: int
    health: str
    checked_at: dt.datetime | None
    owner: str | None
    owner_via: str | None = None  # where they took it: slack (then `owner` is a Slack user id), desk, ...
    restored_by: str | None
    restored_via: str | None = None  # where they said so, as `owner_via`
    dismissed_by: str | None = None  # who said it is not a PBX problem
    dismissed_via: str | None = None  # where they said so, as `owner_via`
    parent_key: str | None
    parent_url: str | None
    url: str  # the incident's desk page
    summary: str  # how it ended, once closed
    channel: str | None = None  # the PBX instance's own channel, overriding the level's
    message: dict[str, object]  # the channel's references to the message, once posted
    repeat: bool = False  # an earlier post may have landed


class PromptChannel(abc.ABC):
    """A place prompts are shown to people. Each call must be idempotent for the same prompt."""

    name: ClassVar[str]

    @classmethod
    def configure(cls, sections: Sections) -> PromptChannel | None:
        """The channel built from its settings sections, None when they do not configure it."""
        return None

    @abc.abstractmethod
    def post(self, prompt: PromptView) -> dict[str, object] | None:
        """Show the prompt; returns references to store (e.g. channel and message ts). With
        `prompt.repeat`, a message from the earlier attempt may exist: find it rather than post twice."""

    @abc.abstractmethod
    def settle(self, prompt: PromptView) -> None:
        """Replace the question with who answered what, or that it timed out."""

    @abc.abstractmethod
    def remind(self, prompt: PromptView) -> None:
        """Nudge the people who can answer."""

    def show_incident(self, incident: IncidentView) -> dict[str, object] | None:
        """Post the incident's one message, or edit it in place once posted (`incident.message`);
        returns references to keep. A channel that shows no incidents returns None (the desk has its
        incident page)."""
        return None

    def remind_incident(self, incident: IncidentView) -> None:
        """Remind of the open incident in its message's thread."""
        return None
