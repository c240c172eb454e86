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
    answer_label: str | None
    answer_text: str | None
    answered_by: str | None
    answered_at: dt.datetime | None
    expires_at: dt.datetime
    channel_refs: dict[str, object]
    channel: str | None = None  # where the run's PBX instance wants its prompts, overriding the default
    repeat: bool = False
    """True when an earlier attempt of this call was made and may have landed (its answer was lost)."""


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
