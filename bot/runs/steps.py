"""Advancing runs: the only code that turns the engine's plans into actions, prompts and effects.

Every transition is committed in one transaction together with the effects it causes (see
`bot.runs.outbox`). A worker holds a lease on a run while it advances it, and every commit checks
the lease is still its own, so a worker that was presumed dead cannot overwrite its successor's work.
Questions to people live in `bot.runs.asking`, the ends of a run in `bot.runs.endings`, what a step
leaves behind in `bot.runs.records`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Select, bindparam, func, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot import logs, tracing
from bot.runs import asking, endings, fixes, identify, incidents, records, routing, sla
from bot.runs.context import RunContext
from bot.runs.outbox import (
    PENDING_SQL,
    added_effects,
    customer_reply,
    flush_effects,
    note_effect,
)
from bot.runs.redact import redact, redact_facts
from bot.state import counters
from bot.state.models import Run, RunState, Ticket
from bot.state.store import RUNS, TICKETS, after_commit, attribute_keys, detached
from integrations.base import (
    ActionInput,
    AdapterError,
    NotConfiguredError,
    Registry,
    TransientError,
    UnsupportedError,
)
from integrations.tickets import Note
from playbook import engine
from playbook.engine import Ask, Decide, Escalate, Execute, Finish, Plan, Position
from playbook.models import Playbook

log = logging.getLogger(__name__)


def start_run(ctx: RunContext, s: Session, ticket: Ticket, wake: bool = True) -> Run | None:
    """Start the playbook for a ticket that has never had a run. None if it has (or has one now).
    `wake`: a worker is woken for the run once the transaction commits (else the caller does it)."""
    if s.scalar(select(func.count()).select_from(Run).where(Run.ticket_id == ticket.id)):
        return None
    version, pb = ctx.playbooks.pin(s)
    pos = engine.start(pb)
    run = Run(
        ticket_id=ticket.id,
        active_ticket_id=ticket.id,
        playbook=pb.name,
        playbook_version=version,
        step=pos.step,
        visits=dict(pos.visits),
    )
    try:
        with s.begin_nested():
            s.add(run)
            s.flush()
    except IntegrityError:
        return None
    lines = [ticket.match_reason] if ticket.match_reason else []
    found = routing.route(s, ctx.directory, ticket) if ctx.directory is not None else None
    if found:
        run.pbx, run.pbx_reason = found.pbx, found.reason
        lines.append(f"Checked against PBX {found.pbx} ({found.reason}).")
    elif ctx.directory is not None:
        lines.append(
            "No PBX is known for this ticket's customer: a person is asked which PBX to check it against."
        )
    if incidents.hold_if_open(ctx, s, run, lines):  # one comment: the start and the incident together
        return run
    runs = f"It runs the '{pb.title}' playbook and writes what it finds here, level by level."
    note_effect(s, run, "start", Note(heading="connbot is triaging this ticket", lines=[runs, *lines]))
    if sla.first_response_running(ticket):
        customer_reply(ctx, s, run, endings.RECEIVED)  # at once: well within the first-response goal
    if ctx.directory is not None and not found:
        asking.ask_route(ctx, s, run, ticket)
    s.flush()
    if wake:
        ctx.waker.advance_after_commit(s, run.id)
    return run


def advance(ctx: RunContext, run_id: int, owner: str) -> bool:
    """Advance a run by one work item. False if another worker holds it."""
    with logs.bound(run=run_id):  # what is logged meanwhile names the run (and, once read, more)
        return _advance(ctx, run_id, owner)


@dataclass
class Taken:
    """A run as its lease was taken: read once, carried to the writes of the steps under the lease."""

    run: Run
    holding: bool  # its PBX has an open incident (that it joins before its next step)
    effects: bool  # it has effects still to make


def take(ctx: RunContext, run_id: int, owner: str) -> Taken | None:
    """Take the run's lease and read the run with its ticket, whether an incident holds its PBX and
    whether effects wait: two statements, one commit, on a connection of its own (no ORM session:
    the rows are made into detached instances, as a session's load would leave them after it)."""
    with ctx.store.engine.begin() as conn:
        if not ctx.store.take(conn, run_id, owner, ctx.limits.lease_seconds):
            return None
        row = conn.execute(_read(incidents.open_sql(ctx)), {"run_id": run_id}).one()
    n = len(_RUN_KEYS)
    run, ticket = detached(Run, _RUN_KEYS, row[:n]), detached(Ticket, _TICKET_KEYS, row[n:-2])
    set_committed_value(run, "ticket", ticket)
    return Taken(run, bool(row[-2]), bool(row[-1]))


_RUN_KEYS, _TICKET_KEYS = attribute_keys(Run), attribute_keys(Ticket)


@functools.cache
def _read(holding: str) -> Select[Any]:
    """The run's columns, its ticket's, `holding` and whether effects wait: one SELECT, built once."""
    return (
        select(
            *RUNS.c,
            *(c.label(f"ticket_{c.name}") for c in TICKETS.c),
            literal_column(holding, Boolean),
            literal_column(PENDING_SQL, Boolean),
        )
        .join_from(RUNS, TICKETS, TICKETS.c.id == RUNS.c.ticket_id)
        .where(RUNS.c.id == bindparam("run_id"))
    )


def _advance(ctx: RunContext, run_id: int, owner: str) -> bool:
    """One work item: the run's pending effects, in order, then its steps until the next would call an
    outside system (an adapter's action) a second time in the item: effects made count as the first
    (a comment on the ticket is a call to the ticket system), so an item that begins with effects
    while other work waits ends with them. Then the run goes back to the queue, behind the work
    already waiting (fair scheduling: one long run does not hold a worker, and a new run's first
    comment does not wait for the steps of the runs before it). While no other work waits, the
    worker goes on with the same run under the same lease instead. An item that ends with effects
    releases the lease in the commit of the last one."""
    taken = take(ctx, run_id, owner)
    if taken is None:
        return False
    run, holding, leased = taken.run, taken.holding, True
    try:
        # Effects first, in order; while one cannot be made, the run waits (a retry is scheduled).
        # After a step, only that step's effects can be pending (whoever records an effect for a
        # run outside its lease also wakes the run up), so a step that recorded none needs no look.
        queues = taken.effects and run.state == RunState.RUNNING and ctx.waker.waiting()
        ready = not taken.effects or flush_effects(ctx, run_id, run.ticket, owner if queues else None)
        if queues and ready:
            leased = False
            ctx.waker.advance(run_id)
            return True
        called = taken.effects
        while ready:
            done = _step(ctx, run, holding, owner, called)
            leased = not done.released
            holding = done.holding if done.holding is not None else done.moved and _holding(ctx, run)
            called = called or done.called or done.added
            if done.added:
                # When the work item ends with these effects, the lease ends with the last one's commit.
                ends = not done.moved or done.yielded
                ready = flush_effects(ctx, run_id, run.ticket, owner if ends and leased else None)
                leased = leased and not (ends and ready)
            if not done.moved:
                break
            if done.yielded:  # an outside system was called and other work waits: queue up again
                if leased:
                    ctx.store.release(run_id, owner)
                    leased = False
                ctx.waker.advance(run_id)
                break
    except records.LeaseLost:
        log.warning("run %s: lease lost to another worker", run_id)
        leased = False
    finally:
        if leased:
            ctx.store.release(run_id, owner)
    return True


@dataclass(frozen=True)
class _Done:
    """What one step did: whether the run moved (and may move again), recorded effects, yields to the
    work waiting (its next step would call an outside system again), had its lease released in the
    step's own commit, called an adapter; and whether its PBX has an open incident now."""

    moved: bool
    added: bool = False
    yielded: bool = False
    released: bool = False
    holding: bool | None = None  # None: not known (looked up before the next step)
    called: bool = False  # an adapter's action was called


def _step(ctx: RunContext, run: Run, holding: bool, owner: str, called: bool) -> _Done:
    """Take one step of the run as read when its lease was taken (and carried since). `called`:
    whether this work item called an outside system already (then a step that would call one
    yields to the work waiting, if any)."""
    if run.state in (RunState.ENDED, RunState.HELD):
        return _Done(False)
    pb = ctx.playbooks.of(run)
    logs.bind(ticket=run.ticket.key, step=run.step, pbx=run.pbx)
    pos = Position(run.step or pb.start, run.visits, run.approved)
    if run.state == RunState.WAITING:
        with ctx.store.tx() as s:
            s.add(run)
            return _Done(asking.resume(ctx, s, run, pos, owner), added_effects(s))
    if run.retry_at is not None and run.retry_at > ctx.clock():
        return _Done(False)  # woken early: the step is retried at retry_at
    registry = ctx.registry_for(run.pbx)
    plan = engine.plan(pb, pos, registry.available, facts=run.facts)
    # Before acting (or asking, or escalating) for a user of a PBX that has an open incident: join it.
    if holding and isinstance(plan, (Execute, Ask, Escalate)):
        return _join(ctx, run, owner)
    if called and (identify.needed(run) or isinstance(plan, Execute)) and ctx.waker.waiting():
        return _Done(True, yielded=True, holding=holding)
    if identify.needed(run):
        lookup = ActionInput(ticket_key=run.ticket.key, reporter_email=identify.email(run.ticket))
        moved, added = asking.identify_user(ctx, run, owner, registry, lookup)
        return _Done(moved, added, called=True)
    if isinstance(plan, Execute):
        return _execute(ctx, run, pb, pos, plan, registry, owner)
    return _settle(ctx, run, pb, pos, plan, owner)


def _settle(
    ctx: RunContext,
    run: Run,
    pb: Playbook,
    pos: Position,
    plan: Plan,
    owner: str,
    failure: tuple[str, AdapterError] | None = None,
) -> _Done:
    """A step that calls no outside system: a decision by the findings, a question, an escalation,
    the end. `failure`: the action this step could not automate after all (counted)."""
    with ctx.store.tx() as s:
        if failure is not None:
            counters.adapter_error(s, *failure)
        if isinstance(plan, Decide):
            now = ctx.clock()
            moved = engine.decide(pb, pos, plan)  # past the target's last visit: where that leads
            # A decision's outcome (`route 2`, `otherwise`) reads as where it went, a step the findings
            # answered as its own outcome's words (the next row is where it went); the summary says why.
            why = plan.because
            rec = records.StepRecord(
                pos.step,
                "decided",
                plan.outcome[:64],
                f"{_capital(why)}." if why else "",
                now,
                now,
                said=pb.steps[moved.step].title if plan.step.is_route else "",
            )
            records.move(run, moved)
            holding = records.write(ctx, s.connection(), run, owner, incidents.open_sql(ctx))
            records.insert(s.connection(), run, plan.step, rec)
            return _Done(True, holding=holding)
        records.hold(ctx, s, run, owner)
        if isinstance(plan, Ask):
            asking.ask(ctx, s, run, plan)
        elif isinstance(plan, Escalate):
            endings.escalate(ctx, s, run, plan, pos)
        else:
            assert isinstance(plan, Finish)
            endings.finish(ctx, s, run, plan)
        return _Done(isinstance(plan, Escalate), added_effects(s))


def _execute(
    ctx: RunContext,
    run: Run,
    pb: Playbook,
    pos: Position,
    plan: Execute,
    registry: Registry,
    owner: str,
) -> _Done:
    """An automated step: the adapter's action, outside any transaction (it may take a while), then
    its result written under the lease (with the run's end, when the end follows)."""
    assert plan.step.action is not None
    action: str = plan.step.action
    inp = ActionInput(
        ticket_key=run.ticket.key,
        user=run.ticket.user_ref,
        reporter_email=identify.email(run.ticket),
        facts=dict(run.facts),
        params=dict(plan.step.params),
    )
    failure: AdapterError | None = None
    started = ctx.clock()
    t0 = time.perf_counter()
    retry, why = False, ""
    try:
        with tracing.span("connbot.adapter", action=action, run=run.id, step=pos.step):
            res = registry.execute(action, inp)
        event: engine.Event = engine.Outcome(res.outcome)
        summary, evidence, facts = res.summary, redact(res.evidence), redact_facts(res.facts)
    except (NotConfiguredError, UnsupportedError) as exc:  # not automated after all: planned afresh
        unsupported = engine.plan(pb, pos, registry.available, reason=str(exc), facts=run.facts)
        return _settle(ctx, run, pb, pos, unsupported, owner, (action, exc))
    except AdapterError as exc:
        failure, attempts = exc, run.attempts + 1
        retry = isinstance(exc, TransientError) and attempts < ctx.limits.step_attempts
        why = f"{action} failed" + (f" {attempts} times" if attempts > 1 else "") + f": {exc}"
        # The row reads the step's title, "Failed" and why in the adapter's words (the action's id
        # is for the log); what the adapter saw before it failed (e.g. ARI refused) is kept as findings.
        reason = _capital(str(exc)) + (f"; tried {attempts} times." if attempts > 1 else "")
        event, summary, evidence = engine.Failed(str(exc)), reason, {"error": str(exc)}
        facts = redact_facts(exc.facts)
    finished = started + dt.timedelta(seconds=time.perf_counter() - t0)
    # A fault of the whole PBX in the findings is confirmed by a check of the PBX first.
    health = incidents.confirm(ctx, run, {**run.facts, **facts})
    if retry:
        assert failure is not None
        with ctx.store.tx() as s:
            counters.adapter_error(s, action, failure)
            records.hold(ctx, s, run, owner)
            # What the failure showed (e.g. ARI refused) may already name a fault of the whole PBX.
            if incidents.detect(ctx, s, run, {**run.facts, **facts}, health):
                return _Done(False, added_effects(s), called=True)
            _retry_later(ctx, s, run, why)
            return _Done(False, called=True)
    outcome, said = (event.value, "") if isinstance(event, engine.Outcome) else ("error", records.FAILED)
    rec = records.StepRecord(pos.step, "auto", outcome, summary, started, finished, evidence, said=said)
    run.facts = {**run.facts, **facts}
    if pos.approved:
        fixes.tried(run, pos.step, result=summary)
    elif "recheck" in facts:  # the app made to reconnect after a fix people made or approved
        fixes.checked(run, summary)
    records.move(run, engine.follow(pb, pos, event))
    # The steps after it that call no outside system (decisions, a question, the end) are taken in
    # this work item too; before the next call, the run yields to the work already waiting.
    after = Position(run.step or pb.start, run.visits, run.approved)
    following = engine.plan(pb, after, registry.available, facts=run.facts)
    yielded = isinstance(following, Execute) and ctx.waker.waiting()
    if failure is None and not incidents.may_detect(ctx, run, run.facts, health):
        if isinstance(following, Finish) and not identify.needed(run):
            # The end follows: written with the result, in one commit (the lease checked by the write).
            with ctx.store.tx() as s:
                records.write(ctx, s.connection(), run, owner, incidents.open_sql(ctx))
                records.insert(s.connection(), run, plan.step, rec)
                logs.bind(step=run.step)  # what is logged from here on is about the end
                endings.finish(ctx, s, records.attach(s, run), following)
                return _Done(False, added_effects(s), called=True)
        # Nothing to count, nothing an incident could be found from: one UPDATE and one INSERT on a
        # connection (no ORM session), and when the run yields, its lease released in the same commit.
        with ctx.store.engine.begin() as conn:
            holding = records.write(ctx, conn, run, owner, incidents.open_sql(ctx), release=yielded)
            records.insert(conn, run, plan.step, rec)
        return _Done(True, False, yielded, yielded, holding, called=True)
    # Through the ORM's unit of work: the failure counted with the step, and the incident threshold
    # counts this run's error with the others.
    with ctx.store.tx() as s:
        if failure is not None:
            counters.adapter_error(s, action, failure)
        records.hold(ctx, s, run, owner)
        records.record(s, run, plan.step, rec)
        joined = incidents.detect(ctx, s, run, run.facts, health)
        return _Done(not joined, added_effects(s), yielded, False, called=True)


def _holding(ctx: RunContext, run: Run) -> bool:
    """Whether the run's PBX has an open incident now, after a step that did not say (a question
    answered, an escalation, the user found, an incident's look-up): read on its own."""
    with ctx.store.tx() as s:
        sql = literal_column(incidents.open_sql(ctx), Boolean)
        return bool(s.scalar(select(sql).select_from(Run).where(Run.id == run.id)))


def _join(ctx: RunContext, run: Run, owner: str) -> _Done:
    """Join the open incident of the run's PBX (found before its next step), if it is still open."""
    with ctx.store.tx() as s:
        records.hold(ctx, s, run, owner)
        joined = incidents.hold_if_open(ctx, s, run)
        return _Done(not joined, added_effects(s), holding=False)


def _retry_later(ctx: RunContext, s: Session, run: Run, why: str) -> None:
    """An outside system is still failing after the transport's retries: try the step again later."""
    run.attempts += 1
    delay = min(300.0, 2.0**run.attempts)
    run.retry_at = ctx.clock() + dt.timedelta(seconds=delay)
    run_id = run.id
    after_commit(s, lambda: ctx.waker.advance(run_id, delay=delay))
    log.warning("run %s step %s: %s; trying again in %g s", run.id, run.step, why, delay)


def _capital(said: str) -> str:
    """A reason (a decision's, an adapter's error) as the start of a row's sentence."""
    return said[:1].upper() + said[1:]
