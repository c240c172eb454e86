"""Inbound events: stored first (deduplicated by delivery id), then processed by a worker.

Each source registers a handler that turns its stored event into a ticket (or None to leave it
alone); a ticket that matches the connection-issue rules and never had a run starts one.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Collection
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from bot import tracing
from bot.runs.context import RunContext
from bot.runs.outbox import flush_effects
from bot.runs.steps import start_run, take
from bot.state.models import Event, Ticket, utcnow
from bot.state.outage import said
from bot.state.store import Store

log = logging.getLogger(__name__)

PENDING_BATCH = 200
QUARANTINED = "quarantined: "
DESK_FILED = "desk:ticket_filed"
# Failures that may pass: raised, so that the event is offered again.
TRANSIENT = (
    RedisError,
    OSError,
    sqlite3.OperationalError,
    OperationalError,
    InterfaceError,
    IntegrityError,
    PoolTimeout,
)


def record(
    store: Store,
    source: str,
    delivery_id: str,
    kind: str,
    ticket_key: str,
    payload: str,
    wake: Callable[[int], None],
) -> tuple[int, bool]:
    """Store an inbound event once per (source, delivery id), `payload` the JSON text it came as,
    and `wake` this process's worker for a new one (best effort: workers take their work from the
    stored events, `pending`; on PostgreSQL the INSERT itself wakes every worker, carrying the
    request's trace). Returns (event id, whether it is new)."""
    note = tracing.carrier() or ""
    event_id, new = store.insert_event(source, delivery_id, kind, ticket_key, payload, note)
    if new:
        wake(event_id)
    return event_id, new


def pending(ctx: RunContext, skip: Collection[int] = ()) -> list[int]:
    """The stored events not yet processed that this process has a handler for, oldest first
    (at most PENDING_BATCH), but those in `skip`."""
    with ctx.store.tx() as s:
        query = select(Event.id).where(Event.processed_at.is_(None), Event.source.in_(list(ctx.intake)))
        if skip:
            query = query.where(Event.id.not_in(list(skip)))
        return list(s.scalars(query.order_by(Event.id).limit(PENDING_BATCH)))


def process(ctx: RunContext, event_id: int) -> int | None:
    """Turn a stored event into a ticket update and, where it matches, a run. Returns the run it
    started, which no worker is woken for yet: `acknowledge` it.

    An event whose source this process has no handler for (a worker started without the Jira
    settings) is left unprocessed for a worker that has one. An event that fails for a reason
    trying again cannot cure (a value the database refuses, a payload of the wrong shape) is
    quarantined: marked processed with the reason, said once in the log, listed by `GET
    /api/events?state=quarantined` and counted in `connbot_events_quarantined`. What may pass
    (the database or the queue unreachable, two workers racing for one ticket) is raised, and the
    event is offered again (`pending`)."""
    try:
        with ctx.store.tx() as s:
            event = ctx.store.claim_event(s, event_id)
            if event is None:  # processed already, or another worker has it now
                return None
            handler = ctx.intake.get(event.source)
            if handler is None:
                log.debug(
                    "event %s (%s): no handler here; left for a worker that has one", event_id, event.source
                )
                return None
            ticket = handler(ctx, s, event)
            event.outcome, started = _start(ctx, s, ticket)
            event.processed_at = utcnow()
            log.info("event %s (%s %s): %s", event.id, event.source, event.kind, event.outcome)
            return started
    except TRANSIENT:
        raise
    except Exception as exc:
        quarantine(ctx, event_id, said(exc))
    return None


def acknowledge(ctx: RunContext, run_id: int) -> None:
    """A run just started from an event: its first effects (the start note on the ticket) are made
    now, by the event's own work and not behind the runs already queued, under the run's lease like
    any advance; then a worker is woken for its steps. A run someone else holds already is only woken."""
    owner = f"acknowledge:{uuid.uuid4().hex}"
    taken = take(ctx, run_id, owner)
    if taken is not None:
        made = False
        try:  # the lease ends in the commit of the last effect's done mark
            made = flush_effects(ctx, run_id, taken.run.ticket, release=owner)
        finally:
            if not made:
                ctx.store.release(run_id, owner)
        if not made:
            return  # a transient failure: flush_effects has woken the run for a later try
    ctx.waker.advance(run_id)


def quarantine(ctx: RunContext, event_id: int, why: str) -> None:
    """Set an event aside for good, with the reason; no worker takes it again."""
    with ctx.store.tx() as s:
        event = s.get(Event, event_id)
        if event is None or event.processed_at is not None:
            return
        event.outcome = QUARANTINED + why
        event.processed_at = utcnow()
        log.error("event %s (%s %r) quarantined: %r", event.id, event.source, event.kind[:64], why)


def _start(ctx: RunContext, s: Session, ticket: Ticket | None) -> tuple[str, int | None]:
    if ticket is None:
        return "ignored", None
    if not ticket.matched:
        return f"not a connection issue: {ticket.match_reason}", None
    run = start_run(ctx, s, ticket, wake=False)
    return (f"started run {run.id}", run.id) if run else ("ticket already has a run", None)


def file_desk_ticket(
    ctx: RunContext,
    summary: str,
    description: str,
    reporter: str,
    user_ref: str | None,
    fields: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> tuple[Ticket, int]:
    """File a ticket on the built-in desk and start its run. Returns the ticket and the run id.
    With an `idempotency_key`, the filing is recorded as an event of source "desk" in the same
    transaction: a second filing with the key raises IntegrityError and files nothing
    (`filed_with` then finds the first)."""
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
        if idempotency_key is not None:
            s.add(
                Event(
                    source="desk",
                    delivery_id=idempotency_key,
                    kind=DESK_FILED,
                    ticket_key=ticket.key,
                    payload={"run": run.id},
                    processed_at=utcnow(),
                    outcome=f"started run {run.id}",
                )
            )
            s.flush()
        return ticket, run.id


def filed_with(ctx: RunContext, idempotency_key: str) -> tuple[str, int] | None:
    """The ticket key and run id a desk filing with this idempotency key made, if one did."""
    with ctx.store.tx() as s:
        event = s.scalars(
            select(Event).where(Event.source == "desk", Event.delivery_id == idempotency_key)
        ).first()
        return (event.ticket_key, int(event.payload["run"])) if event is not None else None
