"""Advancing runs: the only code that turns the engine's plans into actions, prompts and effects.

Every transition is committed in one transaction together with the effects it causes (see
`bot.runs.outbox`). A worker holds a lease on a run while it advances it, and every commit checks
the lease is still its own, so a worker that was presumed dead cannot overwrite its successor's work.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, object_session

from bot import logs, tracing
from bot.runs import identify, incidents, prompts, routing, sla
from bot.runs.context import RunContext
from bot.runs.outbox import (
    added_effects,
    customer_reply,
    escalation_effect,
    flush_effects,
    note_effect,
    prompt_effects,
)
from bot.runs.redact import redact, redact_facts
from bot.runs.trail import has_customers, reporter_id, rows
from bot.state import counters
from bot.state.models import Incident, Prompt, PromptState, Run, RunState, StepResult, Ticket
from bot.state.store import after_commit
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
from playbook.diagnosis import diagnose
from playbook.engine import Ask, Decide, Escalate, Execute, Finish, Position
from playbook.models import APPROVE

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker took the run over; this worker's transaction is rolled back."""


class StepLike(Protocol):
    """A playbook step, or one of the steps connbot takes before the playbook (identify, route)."""

    @property
    def title(self) -> str: ...

    @property
    def level(self) -> int: ...

    @property
    def action(self) -> str | None: ...


@dataclass(frozen=True)
class StepRecord:
    """What one step of a run did, as its step result keeps it."""

    step: str
    mode: str  # auto, human, approval, decided (by the findings) or end
    outcome: str
    summary: str
    started: dt.datetime
    finished: dt.datetime
    evidence: dict[str, Any] = field(default_factory=dict)
    by: str | None = None


def start_run(ctx: RunContext, s: Session, ticket: Ticket) -> Run | None:
    """Start the playbook for a ticket that has never had a run. None if it has (or has one now)."""
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
        customer_reply(ctx, s, run, RECEIVED)  # at once: well within the first-response goal
    if ctx.directory is not None and not found:
        _ask_route(ctx, s, run, ticket)
    s.flush()
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
    except LeaseLost:
        log.warning("run %s: lease lost to another worker", run_id)
        return True
    finally:
        ctx.store.release(run_id, owner)
    return True


def _hold(ctx: RunContext, s: Session, run_id: int, owner: str) -> Run:
    """The run, locked and read afresh, for a transaction that writes under this worker's lease."""
    run = ctx.store.held(s, run_id, owner)
    if run is None:
        raise LeaseLost(run_id)
    return run


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
            return _resume(ctx, s, run, pos, owner), added_effects(s)
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
        return _identify(ctx, run_id, owner, registry, lookup)
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
        run = _hold(ctx, s, run_id, owner)
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
            _record(
                s, run, plan.step, StepRecord(pos.step, "auto", outcome, summary, started, finished, evidence)
            )
            run.facts = {**run.facts, **facts}
            _move(run, engine.follow(pb, pos, event))
            if incidents.detect(ctx, s, run, run.facts, health):
                return False, added_effects(s)
        elif isinstance(plan, Decide):
            now = ctx.clock()
            taken = plan.outcome if not plan.step.is_route else f"{plan.outcome}: {plan.target}"
            _record(
                s,
                run,
                plan.step,
                StepRecord(
                    pos.step, "decided", plan.outcome[:64], f"{plan.because or taken} ({taken})", now, now
                ),
            )
            _move(run, engine.decide(pb, pos, plan))
        elif isinstance(plan, Ask):
            _ask(ctx, s, run, plan)
        elif isinstance(plan, Escalate):
            _escalate(ctx, s, run, plan, pos)
        else:
            _finish(ctx, s, run, plan)
        return moved, added_effects(s)


def _join(ctx: RunContext, run_id: int, owner: str) -> tuple[bool, bool]:
    """Join the open incident of the run's PBX (found before its next step), if it is still open."""
    with ctx.store.tx() as s:
        run = _hold(ctx, s, run_id, owner)
        joined = incidents.hold_if_open(ctx, s, run)
        return not joined, added_effects(s)


def _identify(
    ctx: RunContext, run_id: int, owner: str, registry: Registry, lookup: ActionInput
) -> tuple[bool, bool]:
    """Find the ticket's user by the reporter's e-mail, else ask a person. Says whether the run may go
    on, and whether it recorded effects."""
    started, res, why = ctx.clock(), None, "the ticket names no user and no reporter e-mail"
    failure: AdapterError | None = None
    if lookup.reporter_email and registry.available(identify.ACTION):
        try:
            with tracing.span("connbot.adapter", action=identify.ACTION, run=run_id, step=identify.STEP):
                res = registry.execute(identify.ACTION, lookup)
        except AdapterError as exc:
            why, failure = f"the look-up by e-mail failed: {exc}", exc
    elif lookup.reporter_email:
        why = f"no adapter is configured for {identify.ACTION}"
    step = identify.IdentifyStep()
    with ctx.store.tx() as s:
        run = _hold(ctx, s, run_id, owner)
        if failure is not None:
            counters.adapter_error(s, identify.ACTION, failure)
        if res is not None:
            _record(
                s,
                run,
                step,
                StepRecord(
                    identify.STEP,
                    "auto",
                    res.outcome,
                    res.summary,
                    started,
                    ctx.clock(),
                    redact(res.evidence),
                ),
            )
            if res.outcome == "found":
                run.ticket.user_ref = str(res.facts["user"])
                return True, False
            why = "the app backend does not know the reporter's e-mail"
        prompt = _new_prompt(
            ctx,
            run,
            step,
            step_id=identify.STEP,
            kind="identify",
            question=identify.QUESTION,
            options=identify.OPTIONS,
            text_label=identify.TEXT_LABEL,
            wait=ctx.playbooks.of(run).timeout,
        )
        _show(ctx, s, run, prompt, f"Question for a person: {step.title}", why)
    return False, True


def _resume_identify(ctx: RunContext, s: Session, run: Run, prompt: Prompt) -> bool:
    """A person named the ticket's user, or nobody could: the playbook starts either way."""
    user = (
        identify.accept(prompt.answer_text)
        if prompt.state == PromptState.ANSWERED and prompt.answer == identify.GIVEN
        else None
    )
    if user:
        run.ticket.user_ref = user
        outcome, trail = identify.GIVEN, f"{prompt.answered_by} named the user: {user}."
    else:
        run.facts = {**run.facts, "identify_done": True}
        outcome = identify.UNKNOWN if prompt.state == PromptState.ANSWERED else "timed_out"
        trail = (
            "Nobody named the user"
            + (f" ({prompt.answered_by})" if prompt.answered_by else " in time")
            + ": the steps that need the user fail or ask a person."
        )
    _record(s, run, identify.IdentifyStep(), _human(ctx, prompt, identify.STEP, "human", outcome, trail))
    run.state = RunState.RUNNING
    _settle(ctx, s, run, prompt, f"{identify.IdentifyStep().title}: {trail}")
    return True


def _human(
    ctx: RunContext,
    prompt: Prompt,
    step_id: str,
    mode: str,
    outcome: str,
    summary: str,
    evidence: dict[str, Any] | None = None,
) -> StepRecord:
    """The record of a step a person settled (or nobody did, in time), from the prompt's question."""
    return StepRecord(
        step_id,
        mode,
        outcome,
        summary,
        prompt.created_at,
        prompt.answered_at or ctx.clock(),
        evidence or {},
        prompt.answered_by,
    )


def _record(s: Session, run: Run, step: StepLike, rec: StepRecord) -> None:
    # Numbered in the INSERT itself: no need to load the run's earlier results (the run row is locked).
    seq = (
        select(func.coalesce(func.max(StepResult.seq), 0) + 1)
        .where(StepResult.run_id == run.id)
        .scalar_subquery()
    )
    s.add(
        StepResult(
            run=run,
            seq=seq,
            step=rec.step,
            title=step.title,
            level=step.level,
            action=step.action or "",
            mode=rec.mode,
            outcome=rec.outcome,
            summary=rec.summary[:2000],
            evidence=rec.evidence,
            answered_by=rec.by,
            started_at=rec.started,
            finished_at=rec.finished,
        )
    )
    log.info("run %s step %s: %s", run.id, rec.step, rec.outcome)


def _move(run: Run, pos: Position) -> None:
    run.step, run.visits, run.approved = pos.step, dict(pos.visits), pos.approved
    run.state, run.attempts, run.retry_at = RunState.RUNNING, 0, None


def _retry_later(ctx: RunContext, s: Session, run: Run, why: str) -> None:
    """An outside system is still failing after the transport's retries: try the step again later."""
    run.attempts += 1
    delay = min(300.0, 2.0**run.attempts)
    run.retry_at = ctx.clock() + dt.timedelta(seconds=delay)
    run_id = run.id
    after_commit(s, lambda: ctx.waker.advance(run_id, delay=delay))
    log.warning("run %s step %s: %s; trying again in %g s", run.id, run.step, why, delay)


def _new_prompt(
    ctx: RunContext,
    run: Run,
    step: StepLike,
    *,
    step_id: str,
    kind: str,
    question: str,
    options: list[tuple[str, str]],
    text_label: str | None,
    wait: float,
) -> Prompt:
    now = ctx.clock()
    return Prompt(
        id=prompts.new_id(),
        run_id=run.id,
        # after the steps so far, and after a question a person withdrew (`operate.retry`) with no step since
        seq=max(len(run.steps), _last_prompt_seq(run)) + 1,
        step=step_id,
        kind=kind,
        level=step.level,
        title=step.title,
        question=question,
        options=[list(o) for o in options],
        text_label=text_label,
        created_at=now,
        remind_at=sla.reminder_at(run.ticket, now + dt.timedelta(seconds=wait / 2), now),
        expires_at=now + dt.timedelta(seconds=wait),
    )


def _last_prompt_seq(run: Run) -> int:
    s = object_session(run)
    assert s is not None
    return s.scalar(select(func.coalesce(func.max(Prompt.seq), 0)).where(Prompt.run_id == run.id)) or 0


def _wait(s: Session, run: Run, prompt: Prompt) -> None:
    """Store the prompt and make the run wait for it."""
    s.add(prompt)
    run.state = RunState.WAITING
    s.flush()


def _show(ctx: RunContext, s: Session, run: Run, prompt: Prompt, heading: str, reason: str) -> None:
    """Store the prompt, make the run wait for it, post it in every channel and note it on the ticket."""
    _wait(s, run, prompt)
    prompt_effects(s, run, prompt.id, ctx.channels, "post")
    note_effect(
        s,
        run,
        f"prompt:{prompt.id}:asked",
        Note(
            heading=heading,
            lines=[
                prompt.question,
                f"Why a person is asked: {reason}. Answers: "
                + ", ".join(label for _, label in prompt.options)
                + ".",
            ],
            next=f"The run waits for an answer until {prompt.expires_at:%Y-%m-%d %H:%M} UTC.",
        ),
    )


# The run's fact naming the cause the last question (or approval) was asked about, if any: what a
# closing comment names, since the findings after a fix no longer show the fault.
ASKED_CAUSE = "asked_cause"


def _ask(ctx: RunContext, s: Session, run: Run, plan: Ask) -> None:
    facts = {k: v for k, v in run.facts.items() if k != ASKED_CAUSE}
    if plan.cause is not None:
        facts[ASKED_CAUSE] = {"cause": plan.cause.id, "title": plan.cause.title, "found": plan.cause.found()}
    run.facts = facts
    if _for_customer(ctx, run, plan):
        _ask_customer(ctx, s, run, plan)
        return
    prompt = _new_prompt(
        ctx,
        run,
        plan.step,
        step_id=run.step or "",
        kind=plan.kind,
        question=plan.question,
        options=list(plan.options),
        text_label=plan.text_label,
        wait=ctx.playbooks.of(run).wait_for(plan.step),
    )
    what = "Approval needed" if plan.kind == "approval" else "Question for a person"
    _show(ctx, s, run, prompt, f"{what}: {plan.step.title}", plan.reason)


def ask_template(step_id: str) -> str:
    """The reply template a step that the user can do asks the customer with."""
    return f"ask_{step_id}"


def _for_customer(ctx: RunContext, run: Run, plan: Ask) -> bool:
    """Whether to ask the ticket's customer: a step the user can do, on a ticket with a customer."""
    return (
        plan.kind == "question"
        and plan.step.ask_customer is not None
        and has_customers(run.ticket)
        and reporter_id(run.ticket) is not None
        and ctx.replies.has(ask_template(run.step or ""))
    )


def _ask_customer(ctx: RunContext, s: Session, run: Run, plan: Ask) -> None:
    """Ask the customer on the ticket (a public reply) and wait for the reporter's reply; shown in no
    channel, and never reminded (one question, one e-mail)."""
    step, step_id = plan.step, run.step or ""
    assert step.ask_customer is not None
    question = ctx.replies.text(ask_template(step_id))
    pb = ctx.playbooks.of(run)
    wait = pb.wait_for(step)
    prompt = _new_prompt(
        ctx,
        run,
        step,
        step_id=step_id,
        kind=prompts.CUSTOMER,
        question=question,
        options=[(step.ask_customer, "The customer replied")],
        text_label="The customer's reply",
        wait=wait,
    )
    prompt.remind_at = None
    _wait(s, run, prompt)
    customer_reply(ctx, s, run, ask_template(step_id), key=f"ask:{prompt.id}")
    then = pb.steps[step.on_timeout or step.on_failure or step_id].title
    note_effect(
        s,
        run,
        f"prompt:{prompt.id}:asked",
        Note(
            heading=f"Question for the customer: {step.title}",
            lines=[
                f"Asked on the ticket: {question}",
                f"Why the customer is asked: {plan.reason}, and the user can do this step. Their "
                f"reply is taken as '{step.label(step.ask_customer)}', its text kept as the step's input.",
            ],
            next=f"The run waits for the reporter's reply until {prompt.expires_at:%Y-%m-%d %H:%M} UTC, "
            f"then goes on to '{then}'.",
        ),
    )


def _ask_route(ctx: RunContext, s: Session, run: Run, ticket: Ticket) -> None:
    """Ask which PBX serves the ticket's customer; the run starts once someone answers."""
    assert ctx.directory is not None
    directory, step = ctx.directory, routing.RouteStep()
    prompt = _new_prompt(
        ctx,
        run,
        step,
        step_id=routing.STEP,
        kind="route",
        question=routing.question(directory, ticket),
        options=routing.options(directory, ticket),
        text_label=None,
        wait=ctx.playbooks.of(run).timeout,
    )
    _show(
        ctx,
        s,
        run,
        prompt,
        f"Question for a person: {step.title}",
        "no routing rule matching a known customer",
    )


def _resume(ctx: RunContext, s: Session, run: Run, pos: Position, owner: str) -> bool:
    prompt = prompts.open_for(s, run)
    if prompt is None or prompt.state == PromptState.OPEN:
        return False
    _hold(ctx, s, run.id, owner)
    if prompt.kind == "route":
        return _resume_route(ctx, s, run, prompt)
    if prompt.kind == "identify":
        return _resume_identify(ctx, s, run, prompt)
    pb = ctx.playbooks.of(run)  # the version the run started on, whatever is loaded now
    step = pb.steps[pos.step]
    if prompt.state == PromptState.ANSWERED:
        label = dict(prompt.options).get(prompt.answer or "", prompt.answer)
        summary = f"{prompt.answered_by} answered: {label}" + (
            f" ({prompt.answer_text})" if prompt.answer_text else ""
        )
        trail = (
            f"Answered by {prompt.answered_by} via {prompt.answered_via}"
            f" at {prompt.answered_at:%Y-%m-%d %H:%M} UTC: {label}"
        )
        if prompt.kind == "approval":
            approved = prompt.answer == APPROVE
            _record(
                s,
                run,
                step,
                _human(ctx, prompt, pos.step, "approval", "approved" if approved else "rejected", summary),
            )
            new_pos = engine.approve(pos) if approved else engine.follow(pb, pos, engine.Rejected())
        else:
            if step.collect and prompt.answer_text:
                run.facts = {**run.facts, step.collect: prompt.answer_text}
            evidence = {"answer_text": prompt.answer_text} if prompt.answer_text else {}
            _record(
                s, run, step, _human(ctx, prompt, pos.step, "human", prompt.answer or "", summary, evidence)
            )
            new_pos = engine.follow(pb, pos, engine.Outcome(prompt.answer or ""))
    else:  # expired or cancelled
        trail = f"No answer within {pb.wait_for(step) / 3600:g} h: following the step's timeout edge."
        mode = "approval" if prompt.kind == "approval" else "human"
        _record(s, run, step, StepRecord(pos.step, mode, "timed_out", trail, prompt.created_at, ctx.clock()))
        new_pos = engine.follow(pb, pos, engine.TimedOut())
    _move(run, new_pos)
    _settle(ctx, s, run, prompt, f"{step.title}: {trail}")
    return True


def _settle(ctx: RunContext, s: Session, run: Run, prompt: Prompt, heading: str) -> None:
    shown_in = () if prompt.kind == prompts.CUSTOMER else ctx.channels
    prompt_effects(s, run, prompt.id, shown_in, "settle")
    note_effect(s, run, f"prompt:{prompt.id}:settled", Note(heading=heading))


def _resume_route(ctx: RunContext, s: Session, run: Run, prompt: Prompt) -> bool:
    """A person chose the run's PBX (or no one did in time): the playbook starts."""
    assert ctx.directory is not None
    now, step = ctx.clock(), routing.RouteStep()
    if prompt.state == PromptState.ANSWERED and prompt.answer and prompt.answered_by:
        found = routing.answer(s, ctx.directory, run.ticket, prompt.answer, prompt.answered_by, now)
        run.pbx, run.pbx_reason, outcome = found.pbx, found.reason, found.pbx
        trail = f"Checked against PBX {found.pbx} ({found.reason} via {prompt.answered_via})."
    else:
        run.pbx_reason, outcome = "no PBX was chosen in time: a person does every step", "timed_out"
        trail = (
            f"No answer within {ctx.playbooks.of(run).timeout / 3600:g} h: no PBX is used, a person does "
            "every step."
        )
    _record(
        s,
        run,
        step,
        _human(ctx, prompt, routing.STEP, "human", outcome, trail),
    )
    run.state = RunState.RUNNING
    _settle(ctx, s, run, prompt, f"{step.title}: {trail}")
    return True


def _escalate(ctx: RunContext, s: Session, run: Run, plan: Escalate, pos: Position) -> None:
    now = ctx.clock()
    customer_reply(ctx, s, run, ESCALATED)
    _record(
        s,
        run,
        plan.step,
        StepRecord(pos.step, "end", f"escalated_l{plan.level}", f"Escalated to level {plan.level}", now, now),
    )
    escalation_effect(
        s,
        run,
        f"escalate:{plan.level}",
        Note(
            heading=f"Level {plan.step.level} checks done: escalated to level {plan.level}",
            lines=([plan.step.instructions] if plan.step.instructions else []) + _diagnosis(ctx, run),
            rows=rows(run),
            next=f"connbot goes on with the level {plan.level} checks.",
        ),
        plan.level,
    )
    _move(run, engine.continue_after(ctx.playbooks.of(run), pos, plan))


def _diagnosis(ctx: RunContext, run: Run) -> list[str]:
    """The leading cause and the next candidates, from the run's findings, one sentence each."""
    rules = ctx.playbooks.rules
    causes = diagnose(rules, run.facts)
    lead, rest = causes[0], [c for c in causes[1:3] if c.confidence > 0]
    if lead.id == rules.fallback:
        first = "The findings point at no single cause" + (
            f" (weaker candidates: {', '.join(f'{c.title} {c.confidence:.0%}' for c in rest)})."
            if rest
            else "."
        )
        return [first]
    lines = [f"Leading cause: {lead.title} ({lead.confidence:.0%}). {lead.question()}"]
    if lead.contrary:
        lines.append(f"Against it: {'; '.join(lead.contrary)}.")
    if rest:
        lines.append("Also possible: " + ", ".join(f"{c.title} ({c.confidence:.0%})" for c in rest) + ".")
    return lines


def _fixed_cause(ctx: RunContext, run: Run) -> list[str]:
    """For a closing comment: the cause a person was asked about (what the fix was for), else the
    diagnosis of the findings."""
    asked = run.facts.get(ASKED_CAUSE)
    if not isinstance(asked, dict):
        return _diagnosis(ctx, run)
    return [f"Cause: {asked['title']}. {asked['found']}."]


def end_run(ctx: RunContext, run: Run, kind: str, level: int | None, reason: str) -> None:
    """End the run for good (closed, escalated, or by a person: `bot.runs.operate`)."""
    run.state, run.end_kind, run.end_level, run.end_reason = RunState.ENDED, kind, level, reason
    run.active_ticket_id, run.ended_at = None, ctx.clock()


# The reply templates of the run's start (where a first-response SLA runs) and ends (a template
# named after the end step, where there is one, says more than `closed`).
RECEIVED, CLOSED, ESCALATED = "received", "closed", "escalated"


def _finish(ctx: RunContext, s: Session, run: Run, plan: Finish) -> None:
    now = ctx.clock()
    outcome = "closed" if plan.kind == "close" else f"escalated_l{plan.level}"
    _record(s, run, plan.step, StepRecord(run.step or "", "end", outcome, plan.reason, now, now))
    end_run(ctx, run, plan.kind, plan.level, plan.reason)
    if plan.kind == "close":
        end = run.step or ""
        customer_reply(ctx, s, run, end if ctx.replies.has(end) else CLOSED)
        note_effect(
            s,
            run,
            "end",
            Note(
                heading=f"Closed: {plan.step.title}",
                lines=[plan.reason, *_fixed_cause(ctx, run)],
                rows=rows(run),
            ),
            kind="close",
        )
    else:
        assert plan.level is not None
        customer_reply(ctx, s, run, ESCALATED)
        escalation_effect(
            s,
            run,
            "end",
            Note(
                heading=f"Escalated to level {plan.level}",
                lines=[plan.reason, *_diagnosis(ctx, run)],
                rows=rows(run),
                next=f"Level {plan.level} takes over from the evidence above.",
            ),
            plan.level,
        )
    log.info("run %s ended: %s", run.id, outcome)


@dataclass(frozen=True)
class RecheckStep:
    """The re-check of a held run's app once its incident's PBX is back, as a step of the run."""

    level: int
    title: str = "Re-check the app now that the PBX is back"
    action: str = incidents.RECHECK


def release(
    ctx: RunContext,
    s: Session,
    run: Run,
    inc: Incident,
    rec: StepRecord | None,
    registered: bool,
    facts: dict[str, Any],
) -> None:
    """A held run leaves its incident: closed when its app registers again (`rec` says how that was
    checked), else back to its own playbook where it was held, with the incident's findings and the
    re-check's. Its effects are made by the worker woken after the commit."""
    step = ctx.playbooks.of(run).steps.get(run.step or "")
    if rec is not None:
        _record(s, run, RecheckStep(step.level if step else 1), rec)
    since = f"{inc.opened_at:%Y-%m-%d %H:%M} UTC"
    if registered:
        reason = f"The PBX is back (incident {inc.id}) and the app registers again."
        end_run(ctx, run, "close", None, reason)
        customer_reply(ctx, s, run, CLOSED)
        note_effect(
            s,
            run,
            "end",
            Note(
                heading=f"Closed: {inc.title} on {incidents.where(inc.pbx)} is resolved (incident {inc.id})",
                lines=[reason, f"Cause: {inc.statement} (since {since})."],
                rows=rows(run),
            ),
            kind="close",
        )
    else:
        run.facts = {**run.facts, **inc.facts, **facts}
        run.state, run.attempts, run.retry_at = RunState.RUNNING, 0, None
        if rec is not None:
            lines = [rec.summary]
        elif inc.dismissed_by:
            lines = [f"{inc.dismissed_by} said incident {inc.id} is not a PBX problem."]
        else:
            lines = ["connbot cannot re-check this user's app: no app backend is configured for it."]
        note_effect(
            s,
            run,
            f"incident:{inc.id}:released",
            Note(
                heading=f"Incident {inc.id} is over; this ticket is checked on its own again",
                lines=lines,
                next="connbot goes on with its checks where the incident held them.",
            ),
        )
    ctx.waker.advance_after_commit(s, run.id)
