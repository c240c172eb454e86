"""Inbound events: stored first (deduplicated by delivery id), then processed by a worker.

Each source registers a handler that turns its stored event into a ticket (or None to leave it
alone); a ticket that matches the connection-issue rules and never had a run starts one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.runs.context import RunContext
from bot.runs.steps import start_run
from bot.state.models import Event, Ticket, utcnow
from bot.state.store import Store

log = logging.getLogger(__name__)

NEW_EVENT = insert(Event).returning(Event.id)


def record(
    store: Store,
    source: str,
    delivery_id: str,
    kind: str,
    ticket_key: str,
    payload: dict[str, Any],
    enqueue: Callable[[Session, int], None],
) -> tuple[int, bool]:
    """Store an inbound event once per (source, delivery id). Returns (event id, whether it is new)."""
    try:
        with store.tx() as s:
            # A plain INSERT with its values as parameters (a cached statement): this is every webhook's
            # path, and the ORM's unit of work cost more than the SQL.
            event_id = (
                s.connection()
                .execute(
                    NEW_EVENT,
                    {
                        "source": source,
                        "delivery_id": delivery_id,
                        "kind": kind,
                        "ticket_key": ticket_key,
                        "payload": payload,
                    },
                )
                .scalar_one()
            )
            enqueue(s, event_id)
            return event_id, True
    except IntegrityError:
        with store.tx() as s:
            existing = s.scalars(
                select(Event.id).where(Event.source == source, Event.delivery_id == delivery_id)
            ).one()
            return existing, False


def process(ctx: RunContext, event_id: int) -> None:
    """Turn a stored event into a ticket update and, where it matches, a run."""
    with ctx.store.tx() as s:
        event = s.get(Event, event_id)
        if event is None or event.processed_at is not None:
            return
        handler = ctx.intake.get(event.source)
        if handler is None:
            event.outcome = f"no handler for source {event.source!r}"
        else:
            ticket = handler(ctx, s, event)
            event.outcome = _start(ctx, s, ticket)
        event.processed_at = utcnow()
        log.info("event %s (%s %s): %s", event.id, event.source, event.kind, event.outcome)


def _start(ctx: RunContext, s: Session, ticket: Ticket | None) -> str:
    if ticket is None:
        return "ignored"
    if not ticket.matched:
        return f"not a connection issue: {ticket.match_reason}"
    run = start_run(ctx, s, ticket)
    return f"started run {run.id}" if run else "ticket already has a run"


def file_desk_ticket(
    ctx: RunContext,
    summary: str,
    description: str,
    reporter: str,
    user_ref: str | None,
    fields: dict[str, Any] | None = None,
) -> tuple[Ticket, int]:
    """File a ticket on the built-in desk and start its run. Returns the ticket and the run id."""
    with ctx.store.tx() as s:
        ticket = Ticket(
            source="desk",
            key=f"new-{uuid.uuid4().hex}",
            summary=summary,
            description=description,
            reporter=reporter,
            user_ref=user_ref or None,
            fields=fields or {},
            matched=True,
            match_reason="Filed on the desk as a connection issue.",
        )
        s.add(ticket)
        s.flush()
        ticket.key = f"DESK-{ticket.id}"
        run = start_run(ctx, s, ticket)
        assert run is not None
        return ticket, run.id
