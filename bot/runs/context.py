"""What the runs wing works with, handed to it by the composition root (`bot.services`).

Nothing in `bot.runs` reaches for settings or builds its own clients: the store, the queue's
wake-ups, the playbook versions, the adapters of a PBX instance, the ticket systems, the prompt channels,
the PBX directory, the clock and the limits all come in through a `RunContext`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from bot.fleet.directory import Directory
from bot.runs.replies import Replies
from bot.runs.versions import Playbooks
from bot.state.models import Event, Ticket, utcnow
from bot.state.store import Store
from integrations.base import Registry
from integrations.prompts import PromptChannel
from integrations.tickets import TicketSystem


class Waker(Protocol):
    """Wakes a worker for a run or a stored event (the queue)."""

    def advance(self, run_id: int, delay: float | None = None) -> None: ...

    def advance_after_commit(self, s: Session, run_id: int) -> None: ...

    def wake_event(self, event_id: int) -> None: ...

    def waiting(self) -> bool:
        """Whether other work waits in the queue now (a run hands its worker back after a step)."""
        ...


@dataclass(frozen=True)
class Limits:
    """How long a worker holds a run, how often it sweeps, how often a step or an effect is tried."""

    lease_seconds: float
    sweep_seconds: float
    step_attempts: int
    effect_attempts: int


@dataclass(frozen=True)
class IncidentPolicy:
    """When an incident opens, how a failing PBX is re-checked and its tickets released (README,
    Incidents). `threshold` 0: never by count; `health_every` 0: no periodic check of every PBX."""

    enabled: bool = True
    threshold: int = 5
    window: dt.timedelta = dt.timedelta(minutes=10)
    check: float = 30.0
    check_max: float = 300.0
    batch: int = 20
    remind: float = 1800.0
    health_every: float = 60.0


# Turns a stored inbound event of one source into a ticket (None: leave it alone).
Handler = Callable[["RunContext", Session, Event], Ticket | None]


def no_channel(pbx: str | None) -> str | None:
    """No PBX instance has a chat channel of its own (no PBX directory)."""
    return None


@dataclass
class RunContext:
    store: Store
    waker: Waker
    playbooks: Playbooks  # the current playbook, and the version each run follows
    registry_for: Callable[[str | None], Registry]
    tickets: Mapping[str, TicketSystem]
    channels: Sequence[PromptChannel]
    limits: Limits
    directory: Directory | None = None
    channel_for: Callable[[str | None], str | None] = no_channel
    intake: Mapping[str, Handler] = field(default_factory=dict)
    incidents: IncidentPolicy = field(default_factory=IncidentPolicy)
    instances: Callable[[], Sequence[str]] = tuple
    desk_url: str = "http://127.0.0.1:8080"  # where people reach the desk's pages (CONNBOT_PUBLIC_URL)
    clock: Callable[[], dt.datetime] = utcnow
    replies: Replies = field(default_factory=Replies.load)

    def channel(self, name: str) -> PromptChannel | None:
        return next((c for c in self.channels if c.name == name), None)
