"""The ticket-system interface (the local desk, Jira) and the notes connbot writes on tickets.

A `Note` is neutral structure; each ticket system renders it in its own markup within its own
limits. A note is for the agents (evidence, diagnosis, questions, hand-overs) or for the customer
(a short plain reply): on a ticket that has customers (a Jira Service Management request) the first
kind is an internal note and only the second is public; elsewhere both are ordinary comments.
Every write carries a `marker`, the effect's idempotency key: a system must make a second write
with the same marker a no-op, so a retried job never comments twice.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from integrations.settings import Sections

GROUP = "connbot.tickets"  # the entry-point group ticket systems are installed under, by `source`
# Where connbot records that a person acted in Slack (a step's or a prompt's `via`): only then is the
# name they are recorded by their Slack user id.
SLACK = "slack"
# Where a person answered or acted (a `via`), in the words of a ticket.
VIA = {
    "desk": "on the desk",
    "api": "through the API",
    SLACK: "in Slack",
    "customer": "on the ticket",
    "cli": "with the connbot command",
}


def answered_by(by: str, via: str | None) -> str:
    """Who answered and where, in words: `Carol on the desk`, `U024BE7LH in Slack`."""
    return f"{by} {VIA.get(via or '', '')}".rstrip()


def answerer(by: str, via: str | None) -> str:
    """Who answered, as a ticket names them: a Slack user id said to be one (a ticket system cannot
    resolve it: `U024BE7LH in Slack`, as `answered_by` says it), any other name as it is."""
    return answered_by(by, via) if via == SLACK else by


def plain(value: Any) -> str:
    """A finding's or an evidence value in plain words: yes/no, numbers without trailing zeros, lists
    joined with commas, mappings as `name: value` pairs. Never JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) or "none"
    return str(value)


def evidence_rows(evidence: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A step's evidence as (name, value) rows of a table: nested mappings flattened into dotted
    names, a list of mappings one row per item (`probes 2`), everything else `plain`."""
    out: list[tuple[str, str]] = []
    for key, value in evidence.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += evidence_rows(value, f"{name}.")
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            out += [(f"{name} {n}", plain(v)) for n, v in enumerate(value, 1)]
        else:
            out.append((name, plain(value)))
    return out


class StepRow(BaseModel):
    """One visited step as a line of a table on the ticket: people read its outcome in `said`, the
    words of the playbook (or connbot's own); `outcome` is the code."""

    step: str
    title: str
    level: int
    outcome: str
    # Notes stored before the words were recorded carry none: their code stands in.
    said: str = Field(default_factory=lambda data: str(data["outcome"]))
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    by: str | None = None  # who answered the step's question
    via: str | None = None  # where they answered: slack (`by` is their Slack user id), desk, api, customer
    at: str
    seconds: float

    @property
    def answerer(self) -> str | None:
        """Who answered, as a ticket names them (`answerer`)."""
        return answerer(self.by, self.via) if self.by else None


class Audience(StrEnum):
    """Who a note is for."""

    AGENTS = "agents"  # internal where the ticket has customers
    CUSTOMER = "customer"  # public: the reporter and the request's participants see it


class Note(BaseModel):
    """What connbot writes on a ticket: a heading, paragraphs, a table of steps, what happens next.
    A note for the customer is its `lines` only, as plain text."""

    heading: str = ""
    lines: list[str] = Field(default_factory=list)
    rows: list[StepRow] = Field(default_factory=list)
    next: str = ""
    audience: Audience = Audience.AGENTS


class SlaClock(BaseModel):
    """One service-level clock of a ticket (Jira Service Management's "Time to first response",
    "Time to resolution", ...) as it stood when the ticket system last told connbot about it."""

    name: str = Field(max_length=100)
    ongoing: bool  # a cycle is running (or paused); False once the goal was met or missed
    paused: bool = False
    breached: bool = False
    breach_at: dt.datetime | None = None  # when the running cycle breaches
    remaining_seconds: float | None = None  # as the system said, frozen while paused
    goal_seconds: float | None = None
    first_response: bool = False  # the clock a first public reply stops
    warn_at: dt.datetime | None = None  # from when a breach is near

    def seconds_left(self, now: dt.datetime) -> float | None:
        """Seconds to the breach (negative past it); None when no cycle runs."""
        if not self.ongoing:
            return None
        if self.paused or self.breach_at is None:
            return self.remaining_seconds
        return (self.breach_at - now).total_seconds()

    def near(self, now: dt.datetime) -> bool:
        """Running, and within the warning time of its breach (or past it)."""
        return self.ongoing and not self.paused and self.warn_at is not None and self.warn_at <= now


class TicketRef(BaseModel):
    """Enough of a ticket for a ticket system to act on it."""

    source: str
    key: str
    summary: str = ""
    pbx: str | None = None  # the PBX instance the ticket was checked against, for per-instance targets
    # True when the ticket has customers who read its public comments (a service project's request):
    # notes for the agents are then internal.
    customers: bool = False
    reporter: str | None = None  # the reporter's id in the ticket system (accountId, or user name)
    # True when the store knows no earlier attempt of this write was made (an effect's first attempt,
    # counted before it is made): a system may then skip looking for the write's marker first.
    first_attempt: bool = False


class TicketSystem(abc.ABC):
    """Where tickets live. `source` is the value stored in `tickets.source`."""

    source: ClassVar[str]
    # Whether its tickets live in connbot's own store (the desk): an effect on one is then written in
    # the transaction that claims it and marks it done (`Store.begin`), all or nothing.
    in_store: ClassVar[bool] = False

    @classmethod
    def configure(cls, sections: Sections, by_pbx: Mapping[str, Mapping[int, Any]]) -> TicketSystem | None:
        """The system built from its settings sections, None when they do not configure it. `by_pbx`:
        the escalation targets PBX instances set for themselves (from the PBX directory)."""
        return None

    @abc.abstractmethod
    def comment(self, ticket: TicketRef, note: Note, marker: str) -> None:
        """Write a note on the ticket, once per marker."""

    @abc.abstractmethod
    def close(self, ticket: TicketRef, note: Note, marker: str) -> None:
        """Close the ticket as fixed, with the note saying why."""

    @abc.abstractmethod
    def escalate(self, ticket: TicketRef, level: int, note: Note, marker: str) -> None:
        """Hand the ticket to a level's queue, with the evidence note."""

    def link(self, ticket: TicketRef) -> str | None:
        """A URL people can open for the ticket, if there is one."""
        return None

    # Incidents: a parent issue standing for the outage, its children linked to it, resolved with
    # `close`. A system that keeps no parent issues (the desk: its incident page lists the children)
    # opens none.

    @property
    def parents(self) -> bool:
        """Whether this system gives each incident a parent issue (`open_parent`)."""
        return False

    def open_parent(self, summary: str, note: Note, marker: str) -> str | None:
        """Create the incident's parent issue, once per marker; its key, or None when this system
        creates none."""
        return None

    def link_parent(self, ticket: TicketRef, parent_key: str, note: Note | None, marker: str) -> None:
        """Link the ticket to the parent issue, with the note on the ticket in the same write (once per
        marker); nothing when the link exists."""
        if note is not None:
            self.comment(ticket, note, marker)

    def locale(self, ticket: TicketRef) -> str | None:
        """The reporter's locale (`it_IT`), where the system knows it: the customer replies' language."""
        return None
