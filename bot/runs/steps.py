"""Advancing runs: the only code that turns the engine's plans into actions, prompts and effects.

Every transition is committed in one transaction together with the effects it causes (see
`bot.runs.outbox`). A worker holds a lease on a run while it advances it, and every commit checks
the lease is still its own, so a worker that was presumed dead cannot overwrite its successor's work.
Questions to people live in `bot.runs.asking`, the ends of a run in `bot.runs.endings`, what a step
leaves behind in `bot.runs.records`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bot import logs, tracing
from bot.runs import asking, endings, identify, incidents, records, routing, sla
from bot.runs.context import RunContext
from bot.runs.outbox import (
    added_effects,
    customer_reply,
    flush_effects,
    note_effect,
)
from bot.runs.redact import redact, redact_facts
from bot.state import counters
from bot.state.models import Run, RunState, Ticket
from bot.state.store import after_commit
from integrations.base import (
    ActionInput,
    AdapterError,
    NotConfiguredError,
    TransientError,
    UnsupportedError,
)
from integrations.tickets import Note
from playbook import engine
from playbook.engine import Ask, Decide, Escalate, Execute, Position

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
    lines = [f"It runs the '{pb.title}' playbook and writes what it finds here, level by level."]
    lines += [ticket.match_reason] if ticket.match_reason else []
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
    note_effect(s, run, "start", Note(heading="connbot is triaging this ticket", lines=lines))
    if sla.first_response_running(ticket):
        customer_reply(ctx, s, run, endings.RECEIVED)  # at once: well within the first-response goal
    if ctx.directory is not None and not found:
        asking.ask_route(ctx, s, run, ticket)
    s.flush()
    if wake:
        ctx.waker.advance_after_commit(s, run.id)
    return run


def advance(ctx: RunContext, run_id: int, owner: str) -> bool:
    """Advance a run as far as it can go now. False if another worker holds it."""
    with logs.bound(run=run_id):  # what is logged meanwhile names the run (and, once read, more)
        return _advance(ctx, run_id, owner)


def _advance(ctx: RunContext, run_id: int, owner: str) -> bool:
    if not ctx.store.acquire(run_id, owner, ctx.limits.lease_seconds):
        return False
    try:
        # Effects first, in order; while one cannot be made, the run waits (a retry is scheduled).
        # After a step, only that step's effects can be pending (whoever records an effect for a
        # run outside its lease also wakes the run up), so a step that recorded none needs no look.
        ready = flush_effects(ctx, run_id)
        while ready:
            moved, added = _step(ctx, run_id, owner)
            if added:
                ready = flush_effects(ctx, run_id)
            if not moved:
                break
    except records.LeaseLost:
        log.warning("run %s: lease lost to another worker", run_id)
        return True
    finally:
        ctx.store.release(run_id, owner)
    return True


def _step(ctx: RunContext, run_id: int, owner: str) -> tuple[bool, bool]:
    """Take one step. Says whether the run moved (and may move again), and whether it recorded effects."""
    with ctx.store.tx() as s:
        run = s.get(Run, run_id, options=[joinedload(Run.ticket)])
        if run is None or run.state in (RunState.ENDED, RunState.HELD):
            return False, False
        pb = ctx.playbooks.of(run)
        logs.bind(ticket=run.ticket.key, step=run.step, pbx=run.pbx)
        pos = Position(run.step or pb.start, run.visits, run.approved)
        if run.state == RunState.WAITING:
            return asking.resume(ctx, s, run, pos, owner), added_effects(s)
        if run.retry_at is not None and run.retry_at > ctx.clock():
            return False, False  # woken early: the step is retried at retry_at
        registry = ctx.registry_for(run.pbx)
        lookup = (
            ActionInput(ticket_key=run.ticket.key, reporter_email=identify.email(run.ticket))
            if identify.needed(run)
            else None
        )
        plan = engine.plan(pb, pos, registry.available, facts=run.facts)
        # Before acting (or asking, or escalating) for a user of a PBX that has an open incident: join it.
        held = isinstance(plan, (Execute, Ask, Escalate)) and incidents.holding(ctx, s, run)
        if isinstance(plan, Execute):
            inp = ActionInput(
                ticket_key=run.ticket.key,
                user=run.ticket.user_ref,
                reporter_email=identify.email(run.ticket),
                facts=dict(run.facts),
                params=dict(plan.step.params),
            )
            assert plan.step.action is not None
            action: str = plan.step.action
    if held:
        return _join(ctx, run_id, owner)
    if lookup is not None:
        return asking.identify_user(ctx, run_id, owner, registry, lookup)
    # The action runs outside any transaction: it may take a while.
    failure: AdapterError | None = None
    if isinstance(plan, Execute):
        started = ctx.clock()
        t0 = time.perf_counter()
        try:
            with tracing.span("connbot.adapter", action=action, run=run_id, step=pos.step):
                res = registry.execute(action, inp)
            event: engine.Event = engine.Outcome(res.outcome)
            summary, evidence, facts = res.summary, redact(res.evidence), redact_facts(res.facts)
        except (NotConfiguredError, UnsupportedError) as exc:
            failure = exc
            plan = engine.plan(pb, pos, registry.available, reason=str(exc), facts=run.facts)
        except AdapterError as exc:
            failure, attempts = exc, run.attempts + 1
            retry = isinstance(exc, TransientError) and attempts < ctx.limits.step_attempts
            why = f"{action} failed" + (f" {attempts} times" if attempts > 1 else "") + f": {exc}"
            # what the adapter saw before it failed (e.g. ARI refused) is kept as findings
            event, summary, evidence = engine.Failed(str(exc)), why, {"error": str(exc)}
            facts = redact_facts(exc.facts)
        finished = started + dt.timedelta(seconds=time.perf_counter() - t0)
        # A fault of the whole PBX in the findings is confirmed by a check of the PBX first.
        health = incidents.confirm(ctx, run, {**run.facts, **facts}) if isinstance(plan, Execute) else None
    with ctx.store.tx() as s:
        run = records.hold(ctx, s, run_id, owner)
        if failure is not None:
            counters.adapter_error(s, action, failure)
        if isinstance(plan, Execute) and isinstance(event, engine.Failed) and retry:
            # What the failure showed (e.g. ARI refused) may already name a fault of the whole PBX.
            if incidents.detect(ctx, s, run, {**run.facts, **facts}, health):
                return False, added_effects(s)
            _retry_later(ctx, s, run, why)
            return False, False
        moved = isinstance(plan, (Execute, Escalate, Decide))
        if isinstance(plan, Execute):
            outcome = event.value if isinstance(event, engine.Outcome) else "error"
            records.record(
                s,
                run,
                plan.step,
                records.StepRecord(pos.step, "auto", outcome, summary, started, finished, evidence),
            )
            run.facts = {**run.facts, **facts}
            records.move(run, engine.follow(pb, pos, event))
            if incidents.detect(ctx, s, run, run.facts, health):
                return False, added_effects(s)
        elif isinstance(plan, Decide):
            now = ctx.clock()
            taken = plan.outcome if not plan.step.is_route else f"{plan.outcome}: {plan.target}"
            records.record(
                s,
                run,
                plan.step,
                records.StepRecord(
                    pos.step, "decided", plan.outcome[:64], f"{plan.because or taken} ({taken})", now, now
                ),
            )
            records.move(run, engine.decide(pb, pos, plan))
        elif isinstance(plan, Ask):
            asking.ask(ctx, s, run, plan)
        elif isinstance(plan, Escalate):
            endings.escalate(ctx, s, run, plan, pos)
        else:
            endings.finish(ctx, s, run, plan)
        return moved, added_effects(s)


def _join(ctx: RunContext, run_id: int, owner: str) -> tuple[bool, bool]:
    """Join the open incident of the run's PBX (found before its next step), if it is still open."""
    with ctx.store.tx() as s:
        run = records.hold(ctx, s, run_id, owner)
        joined = incidents.hold_if_open(ctx, s, run)
        return not joined, added_effects(s)


def _retry_later(ctx: RunContext, s: Session, run: Run, why: str) -> None:
    """An outside system is still failing after the transport's retries: try the step again later."""
    run.attempts += 1
    delay = min(300.0, 2.0**run.attempts)
    run.retry_at = ctx.clock() + dt.timedelta(seconds=delay)
    run_id = run.id
    after_commit(s, lambda: ctx.waker.advance(run_id, delay=delay))
    log.warning("run %s step %s: %s; trying again in %g s", run.id, run.step, why, delay)
