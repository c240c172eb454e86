"""The outbox: effects (comments, closing, escalating, replies to the customer, showing and settling
prompts) are recorded in the transaction of the transition that causes them, then made one by one,
oldest first, each once per idempotency key; a transient failure (or a refused connection) is
retried with backoff, a permanent one given up on."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, Field, TypeAdapter
from sqlalchemy import (
    Boolean,
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from bot.runs import prompts
from bot.runs.context import RunContext
from bot.runs.trail import has_customers, ticket_ref
from bot.state.models import Effect, EffectState, Incident, IncidentState, Prompt, Run, Ticket
from integrations.base import AdapterError, PermanentError, RefusedError, TransientError
from integrations.prompts import PromptChannel, PromptView
from integrations.tickets import Audience, Note

log = logging.getLogger(__name__)

EFFECTS_ADDED = "connbot.effects_added"

# The failures of an effect worth another attempt. A refused connection is one: to a step's check it
# is a finding (a stopped Asterisk), but an effect is connbot's own write to its ticket system or a
# channel, which refuses connections while it is down or restarting, and that passes.
RETRIED = (TransientError, RefusedError)


class TicketNote(BaseModel):
    """A note on the run's ticket; `close` also closes it."""

    kind: Literal["comment", "close"]
    ticket_id: int
    note: Note


class Escalation(BaseModel):
    """The run's ticket handed to a level's queue (of the run's PBX instance, where it has its own)."""

    kind: Literal["escalate"]
    ticket_id: int
    note: Note
    level: int
    pbx: str | None = None


class IncidentJoin(BaseModel):
    """The run's ticket joined to its incident: the note, and the link to the incident's parent issue
    in the same write once there is one (a late parent links with no note)."""

    kind: Literal["incident.join"]
    ticket_id: int
    incident_id: int
    note: Note | None = None


class CustomerReply(BaseModel):
    """A public reply to the ticket's customer from a reply template, written in the reporter's
    language (asked of the ticket system when the reply is made)."""

    kind: Literal["reply"]
    ticket_id: int
    template: str
    values: dict[str, str] = Field(default_factory=dict)


class PromptShown(BaseModel):
    """A prompt posted in, settled in or reminded of in one prompt channel."""

    kind: Literal["prompt.post", "prompt.settle", "prompt.remind"]
    prompt_id: str
    channel: str


Payload = Annotated[
    TicketNote | Escalation | IncidentJoin | CustomerReply | PromptShown, Field(discriminator="kind")
]
_PAYLOAD: TypeAdapter[Payload] = TypeAdapter(Payload)


def payload_of(effect: Effect) -> Payload:
    """An effect's payload as its kind's model (the kind is kept in its own column)."""
    return _PAYLOAD.validate_python({**effect.payload, "kind": effect.kind})


def add_effect(s: Session, run: Run | None, key: str, payload: Payload) -> None:
    s.add(
        Effect(
            key=key,
            run_id=run.id if run else None,
            kind=payload.kind,
            payload=payload.model_dump(exclude={"kind"}),
        )
    )
    s.info[EFFECTS_ADDED] = True


def added_effects(s: Session) -> bool:
    """Whether this transaction recorded an effect (so there is something to make after it)."""
    return bool(s.info.get(EFFECTS_ADDED))


def note_effect(
    s: Session, run: Run, key: str, note: Note, kind: Literal["comment", "close"] = "comment"
) -> None:
    add_effect(s, run, f"run:{run.id}:{key}", TicketNote(kind=kind, ticket_id=run.ticket_id, note=note))


def escalation_effect(s: Session, run: Run, key: str, note: Note, level: int) -> None:
    add_effect(
        s,
        run,
        f"run:{run.id}:{key}",
        Escalation(kind="escalate", ticket_id=run.ticket_id, note=note, level=level, pbx=run.pbx),
    )


# The run's record of the replies its customer was sent: template (or key) -> when it was recorded.
REPLIED = "replied"


def customer_reply(ctx: RunContext, s: Session, run: Run, template: str, key: str | None = None) -> bool:
    """Reply to the customer of the run's ticket with the template `template` (a public comment, in
    the reporter's language), once per run and `key` (default: the template's name). Nothing on a
    ticket without customers (not a service project's request). Says whether a reply was recorded.

    For any wing that speaks to customers, e.g. `customer_reply(ctx, s, run, "incident_joined")`."""
    if not has_customers(run.ticket):
        return False
    if not ctx.replies.has(template):
        raise KeyError(f"no reply template {template!r}")
    key = key or template
    replied = dict(run.facts.get(REPLIED) or {})
    if key in replied:
        return False
    run.facts = {**run.facts, REPLIED: {**replied, key: ctx.clock().isoformat()}}
    add_effect(
        s,
        run,
        f"run:{run.id}:reply:{key}",
        CustomerReply(
            kind="reply", ticket_id=run.ticket_id, template=template, values={"ticket": run.ticket.key}
        ),
    )
    return True


def prompt_effects(
    s: Session,
    run: Run,
    prompt_id: str,
    channels: Iterable[PromptChannel],
    what: Literal["post", "settle", "remind"],
    key: str | None = None,
) -> None:
    """Post, settle or remind of a prompt in every channel (once per `key`, default: `what`)."""
    for channel in channels:
        add_effect(
            s,
            run,
            f"prompt:{prompt_id}:{channel.name}:{key or what}",
            PromptShown(kind=f"prompt.{what}", prompt_id=prompt_id, channel=channel.name),
        )


# In a RETURNING clause, whether the run of the effect returned has later ones pending (written out:
# SQLAlchemy renders the columns of a RETURNING clause unqualified, subqueries' too).
MORE_PENDING: ColumnElement[bool] = literal_column(
    "EXISTS (SELECT 1 FROM effects AS later WHERE later.run_id = effects.run_id "
    f"AND later.state = '{EffectState.PENDING.value}' AND later.id > effects.id)",
    Boolean(),
)


# SQL saying whether the `runs` row has effects still to make.
PENDING_SQL = (
    "EXISTS (SELECT 1 FROM effects WHERE effects.run_id = runs.id "
    f"AND effects.state = '{EffectState.PENDING.value}')"
)


EFFECTS = cast(Table, Effect.__table__)
_OTHER = EFFECTS.alias("other")
# Whether the effect is a write in connbot's own store: a note, close or escalation of a ticket whose
# system keeps its tickets there (the desk: its source among `in_store`), not a prompt shown in a
# channel (every effect of a run is on the run's ticket).
IN_STORE: ColumnElement[bool] = and_(
    EFFECTS.c.kind.not_like("prompt.%"),
    literal_column(
        "(SELECT tickets.source FROM runs JOIN tickets ON tickets.id = runs.ticket_id "
        "WHERE runs.id = effects.run_id)",
        String(),
    ).in_(bindparam("in_store", expanding=True)),
)


NOW = bindparam("now", type_=EFFECTS.c.done_at.type)
# The run's oldest pending effect.
OLDEST = (
    select(func.min(_OTHER.c.id))
    .where(_OTHER.c.run_id == bindparam("of_run"), _OTHER.c.state == EffectState.PENDING.value)
    .scalar_subquery()
)
# The attempt is counted before it is made: after a crash mid-call, the next attempt knows an earlier
# one may have landed (channels without idempotency keys look for it first). One statement, built
# once, takes the run's oldest pending effect unless its next attempt is not due yet, counts its
# attempt and says whether more wait; an effect made in connbot's own store (IN_STORE) is marked done
# by it too, as its write joins the same transaction (they commit or roll back together).
CLAIM = (
    update(EFFECTS)
    .where(EFFECTS.c.id == OLDEST, or_(EFFECTS.c.retry_at.is_(None), EFFECTS.c.retry_at <= NOW))
    .values(
        attempts=EFFECTS.c.attempts + 1,
        state=case((IN_STORE, EffectState.DONE.value), else_=EFFECTS.c.state),
        done_at=case((IN_STORE, NOW), else_=EFFECTS.c.done_at),
    )
    .returning(*EFFECTS.c, MORE_PENDING)
)
# Whether the run has a pending effect (when none was claimed: one whose next attempt is not due yet).
WAITING = select(OLDEST.is_not(None))
DONE = (
    update(EFFECTS)
    .where(EFFECTS.c.id == bindparam("effect_id"))
    .values(state=EffectState.DONE.value, done_at=NOW)
)


def flush_effects(
    ctx: RunContext, run_id: int, ticket: Ticket | None = None, release: str | None = None
) -> bool:
    """Make the pending effects of a run, oldest first. False at the first transient failure, and
    when the oldest is not due for its next attempt yet (the run was woken before). `ticket`: the
    run's ticket as the caller read it (else it is read for each effect). `release`: the owner of the
    run's lease when the work item ends with these effects: once they are all made (True), the lease
    is released, in the commit of the last one's done mark where it has one.

    A transient failure (`RETRIED`) is retried with backoff, 2 s doubling to 256 s (the run waits,
    its effects stay in order; a wake-up before the next attempt is due, such as the sweep's, makes
    none) until the effect has had `CONNBOT_EFFECT_ATTEMPTS` attempts; then it is failed for good
    like a permanent one, and the run goes on. A prompt that could not be shown in a channel is said on
    the ticket, so people know to answer it on the desk.

    An effect on a ticket of the desk, which lives in connbot's own store, is claimed and marked done
    in one statement and written in the same transaction: one commit, and no attempt can land
    unrecorded."""
    more, lease = True, release  # `lease`: still to be released
    in_store = [source for source, system in ctx.tickets.items() if system.in_store]
    while more:
        with ctx.store.begin() as conn:
            params = {"of_run": run_id, "in_store": in_store, "now": ctx.clock()}
            claimed = conn.execute(CLAIM, params).first()
            if claimed is None:
                if conn.execute(WAITING, params).scalar():
                    return False  # woken early: its scheduled wake-up (or the sweep) comes when it is due
                break
            more = bool(claimed[-1])
            effect = Effect(**{c.key: value for c, value in zip(EFFECTS.c, claimed, strict=False)})
            if effect.state == EffectState.DONE:  # made in the store: marked done with its claim
                make(ctx, effect, ticket)  # the desk's write joins this transaction
                lease = _released(ctx, run_id, lease, last=not more)
                continue
        try:
            refs = make(ctx, effect, ticket)
        except RETRIED as exc:
            if effect.attempts < ctx.limits.effect_attempts:
                delay = 2.0 ** min(effect.attempts, 8)
                retry_at = ctx.clock() + dt.timedelta(seconds=delay)
                _update_effect(ctx, effect, error=str(exc)[:2000], retry_at=retry_at)
                log.warning("effect %s (%s) failed, will retry: %s", effect.key, effect.kind, exc)
                ctx.waker.advance(run_id, delay=delay)
                return False
            more |= _give_up(ctx, effect, f"still failing after {effect.attempts} attempts: {exc}")
            continue
        except AdapterError as exc:
            more |= _give_up(ctx, effect, str(exc))
            continue
        if refs:
            _update_effect(ctx, effect, refs, state=EffectState.DONE, done_at=ctx.clock())
            continue
        with ctx.store.begin() as conn:
            conn.execute(DONE, {"effect_id": effect.id, "now": ctx.clock()})
            lease = _released(ctx, run_id, lease, last=not more)
    if lease is not None:
        ctx.store.release(run_id, lease)
    return True


def _released(ctx: RunContext, run_id: int, lease: str | None, last: bool) -> str | None:
    """After the `last` effect's done mark, release the run's `lease` (its owner's) in the same commit
    (the `Store.begin` in progress). Returns the lease still to be released."""
    if lease is None or not last:
        return lease
    ctx.store.release(run_id, lease)
    return None


def make(ctx: RunContext, effect: Effect, ticket: Ticket | None = None) -> dict[str, Any] | None:
    """Carry out one effect. Returns references to keep with the prompt, if any. `ticket`: the
    effect's run's ticket, if the caller has read it already."""
    payload = payload_of(effect)
    if isinstance(payload, PromptShown):
        channel = ctx.channel(payload.channel)
        if channel is None:
            raise PermanentError(f"prompt channel {payload.channel!r} is not configured any more")
        view = prompts.view_of(ctx, payload.prompt_id).model_copy(update={"repeat": effect.attempts > 1})
        call: Callable[[PromptView], dict[str, Any] | None] = {
            "prompt.post": channel.post,
            "prompt.settle": channel.settle,
            "prompt.remind": channel.remind,
        }[payload.kind]
        return call(view)
    incident: Incident | None = None
    if ticket is None or ticket.id != payload.ticket_id or isinstance(payload, IncidentJoin):
        with ctx.store.tx() as s:
            ticket = s.get(Ticket, payload.ticket_id)
            assert ticket is not None
            incident = s.get(Incident, payload.incident_id) if isinstance(payload, IncidentJoin) else None
    ref = ticket_ref(ticket)
    ref.first_attempt = effect.attempts == 1
    system = ctx.tickets.get(ref.source)
    if system is None:
        raise PermanentError(f"ticket system {ref.source!r} is not configured any more")
    if isinstance(payload, Escalation):
        ref.pbx = payload.pbx
        system.escalate(ref, payload.level, payload.note, effect.key)
    elif isinstance(payload, IncidentJoin):
        assert incident is not None
        if incident.parent_key:
            system.link_parent(ref, incident.parent_key, payload.note, effect.key)
        elif system.parents and not incident.parent_error and incident.state == IncidentState.OPEN:
            raise TransientError(f"the parent issue of incident {incident.id} is not made yet")
        elif payload.note is not None:
            system.comment(ref, payload.note, effect.key)
    elif isinstance(payload, CustomerReply):
        text = ctx.replies.text(payload.template, system.locale(ref), **payload.values)
        system.comment(ref, Note(audience=Audience.CUSTOMER, lines=[text]), effect.key)
    elif payload.kind == "close":
        system.close(ref, payload.note, effect.key)
    else:
        system.comment(ref, payload.note, effect.key)
    return None


def _update_effect(
    ctx: RunContext, effect: Effect, refs: dict[str, Any] | None = None, **values: Any
) -> None:
    """One statement per outcome of an effect; references a channel gave are kept with the prompt."""
    with ctx.store.tx() as s:
        s.execute(update(Effect).where(Effect.id == effect.id).values(**values))
        payload = payload_of(effect)
        if refs and isinstance(payload, PromptShown):
            prompt = s.get(Prompt, payload.prompt_id)
            if prompt is not None:
                prompt.channel_refs = {**prompt.channel_refs, **refs}


def _give_up(ctx: RunContext, effect: Effect, reason: str) -> bool:
    """Fail an effect for good (kept with its reason, counted in /metrics) and let the run go on.
    Says whether that recorded an effect of its own (the note that a prompt was not posted)."""
    with ctx.store.tx() as s:
        row = s.get(Effect, effect.id)
        assert row is not None
        row.state, row.error = EffectState.FAILED, reason[:2000]
        run = s.get(Run, row.run_id) if row.run_id is not None else None
        payload = payload_of(effect)
        if isinstance(payload, PromptShown) and payload.kind == "prompt.post" and run is not None:
            channel = payload.channel
            note_effect(
                s,
                run,
                f"prompt:{payload.prompt_id}:{channel}:unposted",
                Note(
                    heading=f"The question could not be posted in {channel}: answer it on the desk",
                    lines=[reason],
                ),
            )
        noted = added_effects(s)
    log.error("effect %s (%s) failed for good: %s", effect.key, effect.kind, reason)
    return noted
