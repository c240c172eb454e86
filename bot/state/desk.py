"""The built-in desk as a ticket system: tickets and comments live in connbot's own store."""

from __future__ import annotations

import functools

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.state.models import Comment, Ticket, utcnow
from bot.state.store import TICKETS, Store
from integrations.tickets import Note, StepRow, TicketRef, TicketSystem

AUTHOR = "connbot"


def render_text(note: Note) -> str:
    """A note as plain text, the desk's comment format."""
    parts = [note.heading]
    parts += note.lines
    if note.rows:
        parts.append("\n".join(f"- [L{r.level}] {r.title}: {r.said}{_more(r)}" for r in note.rows))
    if note.next:
        parts.append(f"Next: {note.next}")
    return "\n\n".join(p for p in parts if p)


def _more(row: StepRow) -> str:
    """What a row adds to its words, in parentheses: who answered (and what they wrote), else the summary."""
    more = ": ".join(
        ([f"answered by {row.answerer}"] if row.by else []) + ([row.summary] if row.summary else [])
    )
    return f" ({more})" if more else ""


@functools.cache
def _change(columns: tuple[str, ...]) -> Update:
    """An UPDATE of the ticket's `columns` (parameters of the same names), built once per set."""
    values = {name: bindparam(name, type_=TICKETS.c[name].type) for name in columns}
    return update(TICKETS).where(TICKETS.c.id == bindparam("t_id")).values(**values)


class DeskTickets(TicketSystem):
    source = "desk"
    in_store = True

    def __init__(self, store: Store):
        self.store = store
        insert = postgresql.insert if store.engine.dialect.name == "postgresql" else sqlite.insert
        # The comment, once per marker: an INSERT ... SELECT that does nothing on the marker's
        # conflict and returns the ticket's id when the comment is new. Built once.
        self._comment = (
            insert(Comment)
            .from_select(
                ["ticket_id", "author", "body", "marker", "created_at"],
                select(
                    Ticket.id,
                    bindparam("c_author", type_=Comment.author.type),
                    bindparam("c_body", type_=Comment.body.type),
                    bindparam("c_marker", type_=Comment.marker.type),
                    bindparam("c_at", type_=Comment.created_at.type),
                ).where(Ticket.source == self.source, Ticket.key == bindparam("c_key")),
            )
            .on_conflict_do_nothing(index_elements=[Comment.marker])
            .returning(Comment.ticket_id)
        )

    def _write(self, ticket: TicketRef, note: Note, marker: str, **changes: object) -> None:
        """The comment, once per `marker` (a second write with it changes nothing), and `changes` to
        the ticket with it, if the comment is new."""
        params = {
            "c_author": AUTHOR,
            "c_body": render_text(note),
            "c_marker": marker,
            "c_at": utcnow(),
            "c_key": ticket.key,
        }
        with self.store.begin() as conn:  # an effect's own transaction, when it is made in one
            added = conn.execute(self._comment, params).first()
            if added is not None and changes:
                conn.execute(_change(tuple(changes)), {"t_id": added[0], **changes})

    def comment(self, ticket: TicketRef, note: Note, marker: str) -> None:
        self._write(ticket, note, marker)

    def close(self, ticket: TicketRef, note: Note, marker: str) -> None:
        self._write(ticket, note, marker, status="closed")

    def escalate(self, ticket: TicketRef, level: int, note: Note, marker: str) -> None:
        self._write(ticket, note, marker, level=level, queue=f"Level {level}")
