"""A run as outside systems are told about it: its ticket's reference and the rows of its steps."""

from __future__ import annotations

from bot.state.models import Run, Ticket
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


def rows(run: Run) -> list[StepRow]:
    return [
        StepRow(
            step=r.step,
            title=r.title,
            level=r.level,
            outcome=r.outcome,
            summary=r.summary,
            evidence=r.evidence,
            by=r.answered_by,
            at=r.finished_at.isoformat(timespec="seconds"),
            seconds=round(r.seconds, 3),
        )
        for r in run.steps
    ]
