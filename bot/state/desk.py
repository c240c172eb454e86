"""The built-in desk as a ticket system: tickets and comments live in connbot's own store."""

from __future__ import annotations

from sqlalchemy import select

from bot.state.models import Comment, Ticket
from bot.state.store import Store
from integrations.tickets import Note, TicketRef, TicketSystem

AUTHOR = "connbot"


def render_text(note: Note) -> str:
    """A note as plain text, the desk's comment format."""
    parts = [note.heading]
    parts += note.lines
    if note.rows:
        parts.append(
            "\n".join(
                f"- [L{r.level}] {r.title}: {r.outcome}"
                + (f" by {r.by}" if r.by else "")
                + (f" ({r.summary})" if r.summary else "")
                for r in note.rows
            )
        )
    if note.next:
        parts.append(f"Next: {note.next}")
    return "\n\n".join(p for p in parts if p)


class DeskTickets(TicketSystem):
    source = "desk"

    def __init__(self, store: Store):
        self.store = store

    def _write(self, ticket: TicketRef, note: Note, marker: str, **changes: object) -> None:
        with self.store.tx() as s:
            row = s.scalars(
                select(Ticket).where(Ticket.source == self.source, Ticket.key == ticket.key)
            ).one()
            if s.scalars(select(Comment.id).where(Comment.marker == marker)).first() is not None:
                return
            s.add(Comment(ticket_id=row.id, author=AUTHOR, body=render_text(note), marker=marker))
            for name, value in changes.items():
                setattr(row, name, value)

    def comment(self, ticket: TicketRef, note: Note, marker: str) -> None:
        self._write(ticket, note, marker)

    def close(self, ticket: TicketRef, note: Note, marker: str) -> None:
        self._write(ticket, note, marker, status="closed")

    def escalate(self, ticket: TicketRef, level: int, note: Note, marker: str) -> None:
        self._write(ticket, note, marker, level=level, queue=f"Level {level}")
