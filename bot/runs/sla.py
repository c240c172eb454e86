"""A ticket's SLA clocks (kept on the ticket by its intake, `Ticket.fields["sla"]`) as the runs
wing uses them: a first reply while the first-response clock runs, a question's reminder brought
forward to when a breach is near, and the time left in words for reminders, the desk and the API.
"""

from __future__ import annotations

import datetime as dt

from bot.state.models import Ticket
from integrations.tickets import SlaClock

FIELD = "sla"  # where a ticket keeps its clocks


def clocks(ticket: Ticket) -> list[SlaClock]:
    return [SlaClock.model_validate(c) for c in ticket.fields.get(FIELD) or []]


def first_response_running(ticket: Ticket) -> bool:
    """Whether the ticket's first-response clock is running: nobody answered the customer yet."""
    return any(c.first_response and c.ongoing and not c.paused for c in clocks(ticket))


def next_warning(ticket: Ticket, after: dt.datetime) -> dt.datetime | None:
    """The first time after `after` a running clock's breach becomes near."""
    times = [c.warn_at for c in clocks(ticket) if c.ongoing and not c.paused and c.warn_at is not None]
    later = [t for t in times if t > after]
    return min(later) if later else None


def reminder_at(ticket: Ticket, default: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When a new question is reminded of: `default`, or at once when a breach is near already, or
    when it becomes near, whichever comes first."""
    if any(c.near(now) and not c.breached for c in clocks(ticket)):
        return now
    warning = next_warning(ticket, now)
    return min(default, warning) if warning is not None else default


def nearest(ticket: Ticket, now: dt.datetime) -> SlaClock | None:
    """The running clock with the least time left."""
    running = [c for c in clocks(ticket) if c.seconds_left(now) is not None]
    return min(running, key=lambda c: c.seconds_left(now) or 0.0, default=None)


def _duration(seconds: float) -> str:
    minutes = round(abs(seconds) / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h".replace(".0 h", " h")


def time_left(clock: SlaClock, now: dt.datetime) -> str:
    """`Time to resolution: 25 min left` (or `breached 5 min ago`, `paused, 2 h left`)."""
    left = clock.seconds_left(now)
    if left is None:
        return f"{clock.name}: {'missed' if clock.breached else 'met'}"
    if left < 0 or clock.breached:
        return f"{clock.name}: breached {_duration(left)} ago" if left < 0 else f"{clock.name}: breached"
    return f"{clock.name}: {'paused, ' if clock.paused else ''}{_duration(left)} left"
