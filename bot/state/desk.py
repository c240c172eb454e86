"""The built-in desk as a ticket system: tickets and comments live in connbot's own store."""

from __future__ import annotations

from sqlalchemy import literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.state.models import Comment, Ticket, utcnow
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
        """The comment, once per `marker` (a second write with it changes nothing), and `changes` to
        the ticket with it: an INSERT ... SELECT that does nothing on the marker's conflict, then
        the ticket's UPDATE if the comment is new."""
        mine = (Ticket.source == self.source, Ticket.key == ticket.key)
        insert = postgresql.insert if self.store.engine.dialect.name == "postgresql" else sqlite.insert
        new = (
            insert(Comment)
            .from_select(
                ["ticket_id", "author", "body", "marker", "created_at"],
                select(
                    Ticket.id,
                    literal(AUTHOR),
                    literal(render_text(note)),
                    literal(marker),
                    literal(utcnow(), Comment.created_at.type),
                ).where(*mine),
            )
            .on_conflict_do_nothing(index_elements=[Comment.marker])
            .returning(Comment.ticket_id)
        )
        with self.store.tx() as s:
            added = s.execute(new).first()
            if added is not None and changes:
                s.execute(update(Ticket).where(Ticket.id == added[0]).values(**changes))

    def comment(self, ticket: TicketRef, note: Note, marker: str) -> None:
        self._write(ticket, note, marker)

    def close(self, ticket: TicketRef, note: Note, marker: str) -> None:
        self._write(ticket, note, marker, status="closed")

    def escalate(self, ticket: TicketRef, level: int, note: Note, marker: str) -> None:
        self._write(ticket, note, marker, level=level, queue=f"Level {level}")
