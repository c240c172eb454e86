"""A run as outside systems are told about it: its ticket's reference and the rows of its steps."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import object_session

from bot.state.models import Run, StepResult, Ticket
from integrations.tickets import StepRow, TicketRef


def ticket_ref(ticket: Ticket) -> TicketRef:
    return TicketRef(
        source=ticket.source,
        key=ticket.key,
        summary=ticket.summary,
        customers=has_customers(ticket),
        reporter=reporter_id(ticket),
    )


def has_customers(ticket: Ticket) -> bool:
    """Whether the ticket is a request customers follow (on a Jira Service Management project)."""
    return bool(ticket.fields.get("service_desk"))


def reporter_id(ticket: Ticket) -> str | None:
    """The reporter as the ticket system knows them: accountId (Jira Cloud), else user name or key."""
    who = ticket.fields.get("reporter") or {}
    return who.get("account_id") or who.get("name") or who.get("key") or None


STEPS = cast(Table, StepResult.__table__)
# A run's step results as its rows, in order: a Core SELECT built once (no ORM objects to load).
ROWS = (
    select(
        STEPS.c.step,
        STEPS.c.title,
        STEPS.c.level,
        STEPS.c.outcome,
        STEPS.c.said,
        STEPS.c.summary,
        STEPS.c.evidence,
        STEPS.c.answered_by,
        STEPS.c.answered_via,
        STEPS.c.started_at,
        STEPS.c.finished_at,
    )
    .where(STEPS.c.run_id == bindparam("of_run"))
    .order_by(STEPS.c.seq)
)


def rows(run: Run) -> list[StepRow]:
    """The rows of a run attached to a session (what it has recorded in it so far included). A summary
    that only repeats the row's words (an end's "Escalated to level 2") is left out."""
    s = object_session(run)
    assert s is not None
    return [
        StepRow(
            step=r.step,
            title=r.title,
            level=r.level,
            outcome=r.outcome,
            said=r.said,
            summary="" if r.summary == r.said else r.summary,  # a run's end says it once
            evidence=r.evidence,
            by=r.answered_by,
            via=r.answered_via,
            at=r.finished_at.isoformat(timespec="seconds"),
            seconds=round((r.finished_at - r.started_at).total_seconds(), 3),
        )
        for r in s.execute(ROWS, {"of_run": run.id})
    ]
