"""Advancing runs: the only code that turns the engine's plans into actions, prompts and effects.

Every transition is committed in one transaction together with the effects it causes (an
outbox): comments, closing, escalating, showing and settling prompts. Effects are then made one
by one, each once per idempotency key. A worker holds a lease on a run while it advances it, and
every commit checks the lease is still its own, so a worker that was presumed dead cannot
overwrite its successor's work.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bot.runs import identify, prompts, routing
from bot.runs.redact import redact
from bot.state.models import Effect, Event, Prompt, Run, StepResult, Ticket
from bot.state.store import after_commit
from integrations.base import (
    ActionInput,
    AdapterError,
    NotConfiguredError,
    Registry,
    TransientError,
    UnsupportedError,
)
from integrations.tickets import Note, StepRow, TicketRef
from playbook import engine
from playbook.engine import Ask, Escalate, Execute, Finish, Position

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker took the run over; this worker's transaction is rolled back."""


def ticket_ref(ticket: Ticket) -> TicketRef:
    return TicketRef(source=ticket.source, key=ticket.key, summary=ticket.summary)


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


EFFECTS_ADDED = "connbot.effects_added"


def add_effect(s: Session, run: Run | None, key: str, kind: str, payload: dict[str, Any]) -> None:
    s.add(Effect(key=key, run_id=run.id if run else None, kind=kind, payload=payload))
    s.info[EFFECTS_ADDED] = True


def _added_effects(s: Session) -> bool:
    """Whether this transaction recorded an effect (so there is something to make after it)."""
    return bool(s.info.get(EFFECTS_ADDED))


def note_effect(s: Session, run: Run, key: str, note: Note, kind: str = "comment", **extra: Any) -> None:
    add_effect(
        s, run, f"run:{run.id}:{key}", kind, {"ticket_id": run.ticket_id, "note": note.model_dump(), **extra}
    )


def start_run(svc: Services, s: Session, ticket: Ticket) -> Run | None:
    """Start the playbook for a ticket that has never had a run. None if it has (or has one now)."""
    if s.scalar(select(func.count()).select_from(Run).where(Run.ticket_id == ticket.id)):
        return None
    pos = engine.start(svc.playbook)
    run = Run(
        ticket_id=ticket.id,
        active_ticket_id=ticket.id,
        playbook=svc.playbook.name,
        step=pos.step,
        visits=dict(pos.visits),
    )
    try:
        with s.begin_nested():
            s.add(run)
            s.flush()
    except IntegrityError:
        return None
    lines = [f"It runs the '{svc.playbook.title}' playbook and writes what it finds here, level by level."]
    lines += [ticket.match_reason] if ticket.match_reason else []
    found = routing.route(s, svc.fleet.directory, ticket) if svc.fleet else None
    if found:
        run.pbx, run.pbx_reason = found.pbx, found.reason
        lines.append(f"Checked against PBX {found.pbx} ({found.reason}).")
    elif svc.fleet:
        lines.append(
            "No PBX is known for this ticket's customer: a person is asked which PBX to check it against."
        )
    note_effect(s, run, "start", Note(heading="connbot is triaging this ticket", lines=lines))
    if svc.fleet and not found:
        _ask_route(svc, s, run, ticket)
    s.flush()
    svc.queue.advance_after_commit(s, run.id)
    return run


def advance(svc: Services, run_id: int, owner: str) -> bool:
    """Advance a run as far as it can go now. False if another worker holds it."""
    if not svc.store.acquire(run_id, owner, svc.settings.lease_seconds):
        return False
    try:
        # Effects first, in order; while one cannot be made, the run waits (a retry is scheduled).
        # After a step, only that step's effects can be pending (whoever records an effect for a
        # run outside its lease also wakes the run up), so a step that recorded none needs no look.
        ready = flush_effects(svc, run_id)
        while ready:
            moved, added = _step(svc, run_id, owner)
            if added:
                ready = flush_effects(svc, run_id)
            if not moved:
                break
    except LeaseLost:
        log.warning("run %s: lease lost to another worker", run_id)
        return True
    finally:
        svc.store.release(run_id, owner)
    return True


def _hold(svc: Services, s: Session, run_id: int, owner: str) -> Run:
    """The run, locked and read afresh, for a transaction that writes under this worker's lease."""
    run = svc.store.held(s, run_id, owner)
    if run is None:
        raise LeaseLost(run_id)
    return run


def _step(svc: Services, run_id: int, owner: str) -> tuple[bool, bool]:
    """Take one step. Says whether the run moved (and may move again), and whether it recorded effects."""
    pb = svc.playbook
    with svc.store.tx() as s:
        run = s.get(Run, run_id, options=[joinedload(Run.ticket)])
        if run is None or run.state == "ended":
            return False, False
        pos = Position(run.step or pb.start, run.visits, run.approved)
        if run.state == "waiting":
            return _resume(svc, s, run, pos, owner), _added_effects(s)
        if run.retry_at is not None and run.retry_at > svc.clock():
            return False, False  # woken early: the step is retried at retry_at
        registry = svc.registry_for(run.pbx)
        lookup = (
            ActionInput(ticket_key=run.ticket.key, reporter_email=identify.email(run.ticket))
            if identify.needed(run)
            else None
        )
        plan = engine.plan(pb, pos, registry.available)
        if isinstance(plan, Execute):
            inp = ActionInput(
                ticket_key=run.ticket.key,
                user=run.ticket.user_ref,
                reporter_email=identify.email(run.ticket),
                facts=dict(run.facts),
                params=dict(plan.step.params),
            )
            action = plan.step.action
            assert action is not None
    if lookup is not None:
        return _identify(svc, run_id, owner, registry, lookup)
    # The action runs outside any transaction: it may take a while.
    if isinstance(plan, Execute):
        started = svc.clock()
        t0 = time.perf_counter()
        try:
            res = registry.execute(action, inp)
            event: engine.Event = engine.Outcome(res.outcome)
            summary, evidence, facts = res.summary, redact(res.evidence), redact(res.facts)
        except (NotConfiguredError, UnsupportedError) as exc:
            plan = engine.plan(pb, pos, registry.available, reason=str(exc))
        except AdapterError as exc:
            attempts = run.attempts + 1
            retry = isinstance(exc, TransientError) and attempts < svc.settings.step_attempts
            why = f"{action} failed" + (f" {attempts} times" if attempts > 1 else "") + f": {exc}"
            event, summary, evidence, facts = engine.Failed(str(exc)), why, {"error": str(exc)}, {}
        finished = started + dt.timedelta(seconds=time.perf_counter() - t0)
    with svc.store.tx() as s:
        run = _hold(svc, s, run_id, owner)
        if isinstance(plan, Execute) and isinstance(event, engine.Failed) and retry:
            _retry_later(svc, s, run, why)
            return False, False
        moved = isinstance(plan, (Execute, Escalate))
        if isinstance(plan, Execute):
            outcome = event.value if isinstance(event, engine.Outcome) else "error"
            _record(s, run, plan.step, pos.step, "auto", outcome, summary, evidence, None, started, finished)
            run.facts = {**run.facts, **facts}
            _move(run, engine.follow(pb, pos, event))
        elif isinstance(plan, Ask):
            _ask(svc, s, run, plan)
        elif isinstance(plan, Escalate):
            _escalate(svc, s, run, plan, pos)
        else:
            _finish(svc, s, run, plan)
        return moved, _added_effects(s)


def _identify(
    svc: Services, run_id: int, owner: str, registry: Registry, lookup: ActionInput
) -> tuple[bool, bool]:
    """Find the ticket's user by the reporter's e-mail, else ask a person. Says whether the run may go
    on, and whether it recorded effects."""
    started, res, why = svc.clock(), None, "the ticket names no user and no reporter e-mail"
    if lookup.reporter_email and registry.available(identify.ACTION):
        try:
            res = registry.execute(identify.ACTION, lookup)
        except AdapterError as exc:
            why = f"the look-up by e-mail failed: {exc}"
    elif lookup.reporter_email:
        why = f"no adapter is configured for {identify.ACTION}"
    step = identify.IdentifyStep()
    with svc.store.tx() as s:
        run = _hold(svc, s, run_id, owner)
        if res is not None:
            _record(
                s,
                run,
                step,
                identify.STEP,
                "auto",
                res.outcome,
                res.summary,
                redact(res.evidence),
                None,
                started,
                svc.clock(),
            )
            if res.outcome == "found":
                run.ticket.user_ref = str(res.facts["user"])
                return True, False
            why = "the app backend does not know the reporter's e-mail"
        prompt = _new_prompt(
            svc,
            run,
            identify.STEP,
            "identify",
            step.level,
            step.title,
            identify.QUESTION,
            identify.OPTIONS,
            identify.TEXT_LABEL,
            svc.playbook.timeout,
        )
        _show(svc, s, run, prompt, f"Question for a person: {step.title}", why)
    return False, True


def _resume_identify(svc: Services, s: Session, run: Run, prompt: Prompt) -> bool:
    """A person named the ticket's user, or nobody could: the playbook starts either way."""
    user = (
        identify.accept(prompt.answer_text)
        if prompt.state == "answered" and prompt.answer == identify.GIVEN
        else None
    )
    if user:
        run.ticket.user_ref = user
        outcome, trail = identify.GIVEN, f"{prompt.answered_by} named the user: {user}."
    else:
        run.facts = {**run.facts, "identify_done": True}
        outcome = identify.UNKNOWN if prompt.state == "answered" else "timed_out"
        trail = (
            "Nobody named the user"
            + (f" ({prompt.answered_by})" if prompt.answered_by else " in time")
            + ": the steps that need the user fail or ask a person."
        )
    _record(
        s,
        run,
        identify.IdentifyStep(),
        identify.STEP,
        "human",
        outcome,
        trail,
        {},
        prompt.answered_by,
        prompt.created_at,
        prompt.answered_at or svc.clock(),
    )
    run.state = "running"
    _settle(svc, s, run, prompt, f"{identify.IdentifyStep().title}: {trail}")
    return True


def _record(
    s: Session,
    run: Run,
    step: Any,
    step_id: str,
    mode: str,
    outcome: str,
    summary: str,
    evidence: dict[str, Any],
    by: str | None,
    started: dt.datetime,
    finished: dt.datetime,
) -> None:
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
            step=step_id,
            title=step.title,
            level=step.level,
            action=step.action or "",
            mode=mode,
            outcome=outcome,
            summary=summary[:2000],
            evidence=evidence,
            answered_by=by,
            started_at=started,
            finished_at=finished,
        )
    )
    log.info("run %s step %s: %s", run.id, step_id, outcome)


def _move(run: Run, pos: Position) -> None:
    run.step, run.visits, run.approved = pos.step, dict(pos.visits), pos.approved
    run.state, run.attempts, run.retry_at = "running", 0, None


def _retry_later(svc: Services, s: Session, run: Run, why: str) -> None:
    """An outside system is still failing after the transport's retries: try the step again later."""
    run.attempts += 1
    delay = min(300.0, 2.0**run.attempts)
    run.retry_at = svc.clock() + dt.timedelta(seconds=delay)
    run_id = run.id
    after_commit(s, lambda: svc.queue.advance(run_id, delay=delay))
    log.warning("run %s step %s: %s; trying again in %g s", run.id, run.step, why, delay)


def _new_prompt(
    svc: Services,
    run: Run,
    step: str,
    kind: str,
    level: int,
    title: str,
    question: str,
    options: list[tuple[str, str]],
    text_label: str | None,
    wait: float,
) -> Prompt:
    now = svc.clock()
    return Prompt(
        id=prompts.new_id(),
        run_id=run.id,
        seq=len(run.steps) + 1,
        step=step,
        kind=kind,
        level=level,
        title=title,
        question=question,
        options=[list(o) for o in options],
        text_label=text_label,
        created_at=now,
        remind_at=now + dt.timedelta(seconds=wait / 2),
        expires_at=now + dt.timedelta(seconds=wait),
    )


def _show(svc: Services, s: Session, run: Run, prompt: Prompt, heading: str, reason: str) -> None:
    """Store the prompt, make the run wait for it, post it in every channel and note it on the ticket."""
    s.add(prompt)
    run.state = "waiting"
    s.flush()
    for channel in svc.channels:
        add_effect(
            s,
            run,
            f"prompt:{prompt.id}:{channel.name}:post",
            "prompt.post",
            {"prompt_id": prompt.id, "channel": channel.name},
        )
    note_effect(
        s,
        run,
        f"prompt:{prompt.id}:asked",
        Note(
            heading=heading,
            lines=[
                prompt.question,
                f"Asked because of {reason}. Answers: " + ", ".join(l for _, l in prompt.options) + ".",
            ],
            next=f"The run waits for an answer until {prompt.expires_at:%Y-%m-%d %H:%M} UTC.",
        ),
    )


def _ask(svc: Services, s: Session, run: Run, plan: Ask) -> None:
    prompt = _new_prompt(
        svc,
        run,
        run.step or "",
        plan.kind,
        plan.step.level,
        plan.step.title,
        _question(plan),
        list(plan.options),
        plan.text_label,
        svc.playbook.wait_for(plan.step),
    )
    what = "Approval needed" if plan.kind == "approval" else "Question for a person"
    _show(svc, s, run, prompt, f"{what}: {plan.step.title}", plan.reason)


def _ask_route(svc: Services, s: Session, run: Run, ticket: Ticket) -> None:
    """Ask which PBX serves the ticket's customer; the run starts once someone answers."""
    assert svc.fleet is not None
    directory, step = svc.fleet.directory, routing.RouteStep()
    prompt = _new_prompt(
        svc,
        run,
        routing.STEP,
        "route",
        step.level,
        step.title,
        routing.question(directory, ticket),
        routing.options(directory, ticket),
        None,
        svc.playbook.timeout,
    )
    _show(
        svc,
        s,
        run,
        prompt,
        f"Question for a person: {step.title}",
        "no routing rule matching a known customer",
    )


def _question(plan: Ask) -> str:
    if plan.kind == "approval":
        return f"connbot wants to run {plan.step.action}: {plan.step.instructions} Approve?"
    return plan.step.instructions or plan.step.title


def _resume(svc: Services, s: Session, run: Run, pos: Position, owner: str) -> bool:
    prompt = prompts.open_for(s, run)
    if prompt is None or prompt.state == "open":
        return False
    _hold(svc, s, run.id, owner)
    if prompt.kind == "route":
        return _resume_route(svc, s, run, prompt)
    if prompt.kind == "identify":
        return _resume_identify(svc, s, run, prompt)
    step = svc.playbook.steps[pos.step]
    if prompt.state == "answered":
        label = dict((v, l) for v, l in prompt.options).get(prompt.answer or "", prompt.answer)
        summary = f"{prompt.answered_by} answered: {label}" + (
            f" ({prompt.answer_text})" if prompt.answer_text else ""
        )
        trail = f"Answered by {prompt.answered_by} via {prompt.answered_via} at {prompt.answered_at:%Y-%m-%d %H:%M} UTC: {label}"
        if prompt.kind == "approval":
            if prompt.answer == engine.APPROVE:
                new_pos = engine.approve(pos)
                _record(
                    s,
                    run,
                    step,
                    pos.step,
                    "approval",
                    "approved",
                    summary,
                    {},
                    prompt.answered_by,
                    prompt.created_at,
                    prompt.answered_at or svc.clock(),
                )
            else:
                new_pos = engine.follow(svc.playbook, pos, engine.Rejected())
                _record(
                    s,
                    run,
                    step,
                    pos.step,
                    "approval",
                    "rejected",
                    summary,
                    {},
                    prompt.answered_by,
                    prompt.created_at,
                    prompt.answered_at or svc.clock(),
                )
        else:
            evidence: dict[str, Any] = {"answer_text": prompt.answer_text} if prompt.answer_text else {}
            if step.collect and prompt.answer_text:
                run.facts = {**run.facts, step.collect: prompt.answer_text}
            _record(
                s,
                run,
                step,
                pos.step,
                "human",
                prompt.answer or "",
                summary,
                evidence,
                prompt.answered_by,
                prompt.created_at,
                prompt.answered_at or svc.clock(),
            )
            new_pos = engine.follow(svc.playbook, pos, engine.Outcome(prompt.answer or ""))
    else:  # expired or cancelled
        trail = (
            f"No answer within {svc.playbook.wait_for(step) / 3600:g} h: following the step's timeout edge."
        )
        _record(
            s,
            run,
            step,
            pos.step,
            prompt.kind if prompt.kind == "approval" else "human",
            "timed_out",
            trail,
            {},
            None,
            prompt.created_at,
            svc.clock(),
        )
        new_pos = engine.follow(svc.playbook, pos, engine.TimedOut())
    _move(run, new_pos)
    _settle(svc, s, run, prompt, f"{step.title}: {trail}")
    return True


def _settle(svc: Services, s: Session, run: Run, prompt: Prompt, heading: str) -> None:
    for channel in svc.channels:
        add_effect(
            s,
            run,
            f"prompt:{prompt.id}:{channel.name}:settle",
            "prompt.settle",
            {"prompt_id": prompt.id, "channel": channel.name},
        )
    note_effect(s, run, f"prompt:{prompt.id}:settled", Note(heading=heading))


def _resume_route(svc: Services, s: Session, run: Run, prompt: Prompt) -> bool:
    """A person chose the run's PBX (or no one did in time): the playbook starts."""
    assert svc.fleet is not None
    now, step = svc.clock(), routing.RouteStep()
    if prompt.state == "answered" and prompt.answer and prompt.answered_by:
        found = routing.answer(s, svc.fleet.directory, run.ticket, prompt.answer, prompt.answered_by, now)
        run.pbx, run.pbx_reason, outcome = found.pbx, found.reason, found.pbx
        trail = f"Checked against PBX {found.pbx} ({found.reason} via {prompt.answered_via})."
    else:
        run.pbx_reason, outcome = "no PBX was chosen in time: a person does every step", "timed_out"
        trail = (
            f"No answer within {svc.playbook.timeout / 3600:g} h: no PBX is used, a person does every step."
        )
    _record(
        s,
        run,
        step,
        routing.STEP,
        "human",
        outcome,
        trail,
        {},
        prompt.answered_by,
        prompt.created_at,
        prompt.answered_at or now,
    )
    run.state = "running"
    _settle(svc, s, run, prompt, f"{step.title}: {trail}")
    return True


def _escalate(svc: Services, s: Session, run: Run, plan: Escalate, pos: Position) -> None:
    now = svc.clock()
    _record(
        s,
        run,
        plan.step,
        pos.step,
        "end",
        f"escalated_l{plan.level}",
        f"Escalated to level {plan.level}",
        {},
        None,
        now,
        now,
    )
    note_effect(
        s,
        run,
        f"escalate:{plan.level}",
        Note(
            heading=f"Level {plan.step.level} checks done: escalated to level {plan.level}",
            lines=[plan.step.instructions] if plan.step.instructions else [],
            rows=rows(run),
            next=f"connbot goes on with the level {plan.level} checks.",
        ),
        kind="escalate",
        level=plan.level,
        pbx=run.pbx,
    )
    _move(run, engine.continue_after(svc.playbook, pos, plan))


def _finish(svc: Services, s: Session, run: Run, plan: Finish) -> None:
    now = svc.clock()
    outcome = "closed" if plan.kind == "close" else f"escalated_l{plan.level}"
    _record(s, run, plan.step, run.step or "", "end", outcome, plan.reason, {}, None, now, now)
    run.state, run.end_kind, run.end_level, run.end_reason = "ended", plan.kind, plan.level, plan.reason
    run.active_ticket_id, run.ended_at = None, now
    if plan.kind == "close":
        note_effect(
            s,
            run,
            "end",
            Note(heading=f"Closed: {plan.step.title}", lines=[plan.reason], rows=rows(run)),
            kind="close",
        )
    else:
        note_effect(
            s,
            run,
            "end",
            Note(
                heading=f"Escalated to level {plan.level}",
                lines=[plan.reason],
                rows=rows(run),
                next=f"Level {plan.level} takes over from the evidence above.",
            ),
            kind="escalate",
            level=plan.level,
            pbx=run.pbx,
        )
    log.info("run %s ended: %s", run.id, outcome)


def flush_effects(svc: Services, run_id: int) -> bool:
    """Make the pending effects of a run, oldest first. False at the first transient failure.

    A transient failure is retried with backoff (the run waits, its effects stay in order) until
    the effect has had `CONNBOT_EFFECT_ATTEMPTS` attempts; then it is failed for good like a
    permanent one, and the run goes on. A prompt that could not be shown in a channel is said on
    the ticket, so people know to answer it on the desk."""
    more = True
    while more:  # once more only when giving up on an effect recorded a note about it
        more = False
        with svc.store.tx() as s:
            pending = list(
                s.scalars(
                    select(Effect)
                    .where(Effect.run_id == run_id, Effect.state == "pending")
                    .order_by(Effect.id)
                )
            )
        for effect in pending:
            # The attempt is counted before it is made: after a crash mid-call, the next attempt knows
            # an earlier one may have landed (channels without idempotency keys look for it first).
            with svc.store.tx() as s:
                effect.attempts = s.execute(
                    update(Effect)
                    .where(Effect.id == effect.id)
                    .values(attempts=Effect.attempts + 1)
                    .returning(Effect.attempts)
                ).scalar_one()
            try:
                refs = svc.effector.make(effect)
            except TransientError as exc:
                if effect.attempts < svc.settings.effect_attempts:
                    _update_effect(svc, effect, error=str(exc)[:2000])
                    log.warning("effect %s (%s) failed, will retry: %s", effect.key, effect.kind, exc)
                    svc.queue.advance(run_id, delay=min(300.0, 2.0 ** min(effect.attempts, 8)))
                    return False
                more |= _give_up(svc, effect, f"still failing after {effect.attempts} attempts: {exc}")
                continue
            except AdapterError as exc:
                more |= _give_up(svc, effect, str(exc))
                continue
            _update_effect(svc, effect, refs, state="done", done_at=svc.clock())
    return True


def _update_effect(svc: Services, effect: Effect, refs: dict[str, Any] | None = None, **values: Any) -> None:
    """One statement per outcome of an effect; references a channel gave are kept with the prompt."""
    with svc.store.tx() as s:
        s.execute(update(Effect).where(Effect.id == effect.id).values(**values))
        if refs:
            prompt = s.get(Prompt, effect.payload["prompt_id"])
            if prompt is not None:
                prompt.channel_refs = {**prompt.channel_refs, **refs}


def _give_up(svc: Services, effect: Effect, reason: str) -> bool:
    """Fail an effect for good (kept with its reason, counted in /metrics) and let the run go on.
    Says whether that recorded an effect of its own (the note that a prompt was not posted)."""
    with svc.store.tx() as s:
        row = s.get(Effect, effect.id)
        assert row is not None
        row.state, row.error = "failed", reason[:2000]
        run = s.get(Run, row.run_id) if row.run_id is not None else None
        if effect.kind == "prompt.post" and run is not None:
            channel = effect.payload["channel"]
            note_effect(
                s,
                run,
                f"prompt:{effect.payload['prompt_id']}:{channel}:unposted",
                Note(
                    heading=f"The question could not be posted in {channel}: answer it on the desk",
                    lines=[reason],
                ),
            )
        noted = _added_effects(s)
    log.error("effect %s (%s) failed for good: %s", effect.key, effect.kind, reason)
    return noted


def sweep(svc: Services) -> dict[str, int]:
    """Periodic housekeeping: expire and remind prompts, resume runs and events that were dropped."""
    now = svc.clock()
    counts = {"expired": 0, "reminded": 0, "resumed": 0, "events": 0}
    stale = now - dt.timedelta(seconds=svc.settings.sweep_seconds)
    with svc.store.tx() as s:
        expired, remind = prompts.due(s, now)
        for prompt in expired:
            if prompts.expire(s, prompt):
                counts["expired"] += 1
                svc.queue.advance_after_commit(s, prompt.run_id)
        for prompt in remind:
            prompt.remind_at = None
            counts["reminded"] += 1
            for channel in svc.channels:
                add_effect(
                    s,
                    prompt.run,
                    f"prompt:{prompt.id}:{channel.name}:remind",
                    "prompt.remind",
                    {"prompt_id": prompt.id, "channel": channel.name},
                )
            svc.queue.advance_after_commit(s, prompt.run_id)
        free = (Run.lease_until.is_(None)) | (Run.lease_until < now)
        idle = select(Run.id).where(
            Run.state == "running",
            Run.updated_at < stale,
            free,
            (Run.retry_at.is_(None)) | (Run.retry_at <= now),
        )
        # Waiting with no open prompt: answered or expired, and the wake-up that followed was lost
        # (a worker killed while advancing it); the run would otherwise wait for ever.
        open_prompt = select(Prompt.id).where(Prompt.run_id == Run.id, Prompt.state == "open").exists()
        unblocked = select(Run.id).where(Run.state == "waiting", ~open_prompt, Run.updated_at < stale, free)
        with_effects = select(Effect.run_id).where(
            Effect.state == "pending", Effect.created_at < stale, Effect.run_id.is_not(None)
        )
        for run_id in set(s.scalars(idle)) | set(s.scalars(unblocked)) | set(s.scalars(with_effects)):
            counts["resumed"] += 1
            svc.queue.advance_after_commit(s, run_id)
        for event_id in s.scalars(
            select(Event.id).where(Event.processed_at.is_(None), Event.received_at < stale)
        ):
            counts["events"] += 1
            svc.queue.process_after_commit(s, event_id)
    return counts
