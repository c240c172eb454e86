"""Making recorded effects: each kind of effect to the system that carries it out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.runs.runner import rows, ticket_ref
from bot.state.models import Effect, Prompt, Ticket
from bot.state.store import Store
from integrations.base import PermanentError
from integrations.prompts import PromptChannel, PromptView
from integrations.tickets import Note, TicketSystem


class Effector:
    def __init__(
        self,
        store: Store,
        tickets: Mapping[str, TicketSystem],
        channels: Sequence[PromptChannel],
        channel_for: Callable[[str | None], str | None] = lambda pbx: None,
    ):
        """`channel_for` gives a run's PBX instance's own chat channel, if it has one."""
        self.store = store
        self.tickets = tickets
        self.channels = {c.name: c for c in channels}
        self.channel_for = channel_for

    def make(self, effect: Effect) -> dict[str, Any] | None:
        """Carry out one effect. Returns references to keep with the prompt, if any."""
        if effect.kind.startswith("prompt."):
            channel = self.channels.get(effect.payload["channel"])
            if channel is None:
                raise PermanentError(
                    f"prompt channel {effect.payload['channel']!r} is not configured any more"
                )
            view = self.prompt_view(effect.payload["prompt_id"]).model_copy(
                update={"repeat": effect.attempts > 1}
            )
            call: Callable[[PromptView], Any] = {
                "prompt.post": channel.post,
                "prompt.settle": channel.settle,
                "prompt.remind": channel.remind,
            }[effect.kind]
            return call(view)
        with self.store.tx() as s:
            ticket = s.get(Ticket, effect.payload["ticket_id"])
            assert ticket is not None
            ref = ticket_ref(ticket)
        ref.first_attempt = effect.attempts == 1
        system = self.tickets.get(ref.source)
        if system is None:
            raise PermanentError(f"ticket system {ref.source!r} is not configured any more")
        note = Note.model_validate(effect.payload["note"])
        if effect.kind == "close":
            system.close(ref, note, effect.key)
        elif effect.kind == "escalate":
            ref.pbx = effect.payload.get("pbx")
            system.escalate(ref, int(effect.payload["level"]), note, effect.key)
        else:
            system.comment(ref, note, effect.key)
        return None

    def prompt_view(self, prompt_id: str) -> PromptView:
        with self.store.tx() as s:
            prompt = s.get(Prompt, prompt_id)
            if prompt is None:
                raise PermanentError(f"no prompt {prompt_id}")
            return view(prompt, self.tickets, self.channel_for(prompt.run.pbx))


def view(prompt: Prompt, tickets: Mapping[str, TicketSystem], channel: str | None = None) -> PromptView:
    """A prompt with its ticket and what the run found so far, for showing to people."""
    ticket = prompt.run.ticket
    ref = ticket_ref(ticket)
    system = tickets.get(ticket.source)
    labels = {v: l for v, l in prompt.options}
    return PromptView(
        id=prompt.id,
        ticket_key=ticket.key,
        ticket_source=ticket.source,
        ticket_summary=ticket.summary,
        ticket_url=system.link(ref) if system else None,
        user=ticket.user_ref,
        level=prompt.level,
        kind=prompt.kind,
        title=prompt.title,
        question=prompt.question,
        options=[(v, l) for v, l in prompt.options],
        text_label=prompt.text_label,
        found=rows(prompt.run),
        state=prompt.state,
        answer=prompt.answer,
        answer_label=labels.get(prompt.answer or ""),
        answer_text=prompt.answer_text,
        answered_by=prompt.answered_by,
        answered_at=prompt.answered_at,
        expires_at=prompt.expires_at,
        channel_refs=dict(prompt.channel_refs),
        channel=channel,
    )
