"""A run as outside systems are told about it: its ticket's reference and the rows of its steps."""

from __future__ import annotations

from bot.state.models import Run, Ticket
from integrations.tickets import StepRow, TicketRef


def ticket_ref(ticket: Ticket) -> TicketRef:
    return TicketRef(
        source=ticket.source,
        key=ticket.key,
        summary=ticket.summary,
        customers=bool(ticket.fields.get("service_desk")),
    )


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
