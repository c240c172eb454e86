"""Operator verbs: a person cancels a run, retries its current step, re-runs a ticket (from the start
or from a step), starts the triage of a ticket connbot left alone, retries an effect that failed for
good, or hands a question to someone else. One plain function per verb, called by every surface:
the CLI, the desk, the JSON API and Slack.

Each is recorded in `operator_actions` (who, via which surface, when, why, and what it did) and
written on the ticket. A verb that changes a run takes the run's lease first, as a worker does:
on a run whose worker was killed it works once that worker's lease has expired; beside a live
worker it is refused (`BusyError`: try again in a few seconds), never raced.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.errors import BadRequestError, NotFoundError
from bot.runs import prompts
from bot.runs.asking import ROWS_TOLD
from bot.runs.context import RunContext
from bot.runs.endings import end_run
from bot.runs.fixes import ASKED_CAUSE
from bot.runs.outbox import REPLIED, note_effect, prompt_effects
from bot.runs.prompts import Via
from bot.runs.steps import start_run
from bot.state.models import (
    Effect,
    EffectState,
    OperatorAction,
    Prompt,
    PromptState,
    Run,
    RunState,
    Ticket,
)
from bot.state.store import rows_updated
from integrations.tickets import VIA, Note
from playbook import engine

MAX_WHO = 255
MAX_WHY = 1000
# How a run a person ended ended (beside the playbook's `close` and `escalate`).
CANCELLED, RERUN = "cancel", "rerun"
# What a re-run carries over from the run before it, even from the start: the replies its customer
# was already sent (not sent twice) and nothing else.
KEPT_FROM_THE_START = (REPLIED,)


class Verb(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"
    RERUN = "rerun"
    TRIAGE = "triage"
    RETRY_EFFECT = "effect.retry"
    HAND = "hand"


class BusyError(BadRequestError):
    """The verb cannot be taken now: a worker holds the run, or the thing is not in a state for it."""

    def __init__(self, message: str):
        super().__init__(message, status=409)


@dataclass(frozen=True)
class Actor:
    """Who acts, through which surface, and why (said on the ticket)."""

    who: str
    via: Via
    why: str = ""

    def checked(self) -> Actor:
        who, why = " ".join(self.who.split()), " ".join(self.why.split())
        if not who:
            raise BadRequestError("say who acts (a name)")
        if len(who) > MAX_WHO:
            raise BadRequestError(f"who acts: longer than {MAX_WHO} characters")
        if len(why) > MAX_WHY:
            raise BadRequestError(f"why: longer than {MAX_WHY} characters")
        return Actor(who, self.via, why)


@dataclass(frozen=True)
class Done:
    """What a verb did, in a sentence, and the run it concerns (a re-run's new run)."""

    said: str
    run_id: int | None


def find_run(s: Session, ref: str) -> Run:
    """A run by its id, or a ticket's latest run by the ticket's key."""
    ref = ref.strip()
    if ref.isdigit():
        run = s.get(Run, int(ref))
    else:
        run = s.scalars(
            select(Run)
            .join(Ticket, Ticket.id == Run.ticket_id)
            .where(Ticket.key == ref)
            .order_by(Run.id.desc())
        ).first()
    if run is None:
        raise NotFoundError(f"no run {ref[:64]!r}" if ref.isdigit() else f"no run for ticket {ref[:64]!r}")
    return run


@contextmanager
def _leased(ctx: RunContext, run_id: int) -> Iterator[tuple[Session, Run]]:
    """A transaction on the run under a lease of the operator's own (as a worker takes one)."""
    with ctx.store.tx() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        until = run.lease_until
    owner = f"operator:{secrets.token_hex(8)}"
    if not ctx.store.acquire(run_id, owner, ctx.limits.lease_seconds):
        raise BusyError(
            f"a worker is advancing run {run_id} right now"
            + (f" (its lease runs until {until:%H:%M:%S} UTC)" if until else "")
            + ": nothing changed, try again in a few seconds"
        )
    try:
        with ctx.store.tx() as s:
            held = ctx.store.held(s, run_id, owner)
            if held is None:
                raise BusyError(f"a worker took run {run_id} over: nothing changed, try again")
            yield s, held
    finally:
        ctx.store.release(run_id, owner)


def _record(
    ctx: RunContext,
    s: Session,
    verb: Verb,
    by: Actor,
    said: str,
    run: Run | None,
    *,
    effect_id: int | None = None,
    prompt_id: str | None = None,
    next_: str = "",
) -> OperatorAction:
    """Keep the action and write it on the run's ticket."""
    action = OperatorAction(
        verb=verb.value,
        run_id=run.id if run else None,
        effect_id=effect_id,
        prompt_id=prompt_id,
        who=by.who,
        via=by.via.value,
        why=by.why,
        done=said,
        at=ctx.clock(),
    )
    s.add(action)
    s.flush()
    if run is not None:
        note_effect(
            s,
            run,
            f"operator:{action.id}",
            Note(heading=said, lines=[f"Why: {by.why}" if by.why else "No reason was given."], next=next_),
        )
    return action


def _withdraw(ctx: RunContext, s: Session, run: Run) -> Prompt | None:
    """Cancel the run's open question, if it has one, and settle it in every channel it was shown in."""
    prompt = prompts.open_for(s, run)
    if prompt is None or prompt.state != PromptState.OPEN:
        return None
    if not rows_updated(
        s,
        update(Prompt)
        .where(Prompt.id == prompt.id, Prompt.state == PromptState.OPEN)
        .values(state=PromptState.CANCELLED),
    ):
        return None  # answered this very moment: the answer stands
    prompt_effects(s, run, prompt.id, () if prompt.kind == prompts.CUSTOMER else ctx.channels, "settle")
    return prompt


def _because(by: Actor) -> str:
    return f" ({VIA[by.via.value]})"


def _title(ctx: RunContext, run: Run) -> str:
    step = ctx.playbooks.of(run).steps.get(run.step or "")
    return step.title if step else (run.step or "the start")


def cancel(ctx: RunContext, run_id: int, by: Actor) -> Done:
    """End a run for good: its open question is withdrawn, connbot does nothing more on its ticket.
    A run held by an incident leaves it (the incident goes on for its other tickets)."""
    by = by.checked()
    with _leased(ctx, run_id) as (s, run):
        if run.state == RunState.ENDED:
            raise BusyError(f"run {run_id} has already ended ({run.end_kind}): nothing to cancel")
        held = run.incident_id if run.state == RunState.HELD else None
        _withdraw(ctx, s, run)
        said = f"{by.who} cancelled run {run_id} at '{_title(ctx, run)}'{_because(by)}"
        end_run(ctx, run, CANCELLED, None, f"cancelled by {by.who}" + (f": {by.why}" if by.why else ""))
        if held is not None:
            said += f"; it leaves incident {held}"
        _record(ctx, s, Verb.CANCEL, by, said, run, next_="connbot does nothing more on this ticket.")
    ctx.waker.advance(run_id)  # its effects: the note, the question settled in its channels
    return Done(said, run_id)


def retry(ctx: RunContext, run_id: int, by: Actor) -> Done:
    """Take the run's current step again now: an action waiting to be retried runs at once, a question
    is withdrawn and the step planned afresh (it runs if its adapter is configured now, else asks again)."""
    by = by.checked()
    with _leased(ctx, run_id) as (s, run):
        if run.state == RunState.ENDED:
            raise BusyError(f"run {run_id} has ended: re-run the ticket instead")
        if run.state == RunState.HELD:
            raise BusyError(
                f"run {run_id} is held by incident {run.incident_id} until its PBX is back: re-run or "
                "cancel it, or say on the incident that the PBX is restored or not a PBX problem"
            )
        said = f"{by.who} retried '{_title(ctx, run)}' of run {run_id}{_because(by)}"
        if run.state == RunState.WAITING:
            prompt = prompts.open_for(s, run)
            if prompt is not None and prompt.kind == "route":
                raise BusyError(f"run {run_id} waits for someone to say which PBX serves the customer")
            if _withdraw(ctx, s, run) is not None:
                run.state = RunState.RUNNING
                said += ": the question is withdrawn and the step taken again"
        run.attempts, run.retry_at = 0, None
        _record(ctx, s, Verb.RETRY, by, said, run)
    ctx.waker.advance(run_id)
    return Done(said, run_id)


def rerun(ctx: RunContext, run_id: int, by: Actor, step: str | None = None) -> Done:
    """Run the ticket again on the current playbook, from its start or from `step` (with what the
    run found so far): the run ends (if it had not) and a new run of the ticket starts."""
    by = by.checked()
    with _leased(ctx, run_id) as (s, run):
        latest = s.scalar(select(func.max(Run.id)).where(Run.ticket_id == run.ticket_id))
        if latest != run_id:
            raise BusyError(f"run {run_id} is not its ticket's latest: re-run run {latest}")
        version, pb = ctx.playbooks.pin(s)
        if step is not None and step not in pb.steps:
            raise BadRequestError(
                f"no step {step[:64]!r} in the playbook {pb.name} (see `connbot playbook render`)"
            )
        held = run.incident_id if run.state == RunState.HELD else None
        if run.state != RunState.ENDED:
            _withdraw(ctx, s, run)
            end_run(ctx, run, RERUN, None, f"re-run by {by.who}" + (f": {by.why}" if by.why else ""))
            s.flush()  # the ticket's one active run is the new one
        pos = engine.enter(pb, step, {}) if step is not None else engine.start(pb)
        facts = (
            dict(run.facts)
            if step is not None
            else {k: v for k, v in run.facts.items() if k in KEPT_FROM_THE_START}
        )
        # of the run before, not findings; what became of a fix put for approval (`TRIED_FIXES`) goes
        # with the findings: the account it changed is as it left it
        for bookkeeping in (ASKED_CAUSE, ROWS_TOLD):
            facts.pop(bookkeeping, None)
        new = Run(
            ticket_id=run.ticket_id,
            active_ticket_id=run.ticket_id,
            playbook=pb.name,
            playbook_version=version,
            step=pos.step,
            visits=dict(pos.visits),
            facts=facts,
            pbx=run.pbx,
            pbx_reason=run.pbx_reason,
        )
        s.add(new)
        s.flush()
        where = f"from '{pb.steps[pos.step].title}'" if step is not None else "from the start"
        said = f"{by.who} re-ran ticket {run.ticket.key} {where} as run {new.id}{_because(by)}"
        then = "connbot starts again and writes what it finds here."
        if held is not None:
            then += f" While incident {held} is open, the new run waits for it as the old one did."
        _record(ctx, s, Verb.RERUN, by, said, run, next_=then)
        new_id = new.id
    ctx.waker.advance(run_id)  # the old run's effects: this note, its question settled
    ctx.waker.advance(new_id)
    return Done(said, new_id)


def triage(ctx: RunContext, key: str, by: Actor) -> Done:
    """Start the playbook for a ticket connbot knows but left alone (it did not look like a connection
    issue). A ticket with a run is re-run instead."""
    by = by.checked()
    with ctx.store.tx() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.key == key.strip()).order_by(Ticket.id.desc())).first()
        if ticket is None:
            raise NotFoundError(f"connbot has not heard of ticket {key.strip()[:64]!r}")
        if ticket.runs:
            last = ticket.runs[-1]
            raise BusyError(
                f"ticket {ticket.key} already has run {last.id} ({last.state}): re-run it instead"
            )
        ticket.matched = True
        ticket.match_reason = f"Triaged at the request of {by.who}" + (f": {by.why}" if by.why else ".")
        run = start_run(ctx, s, ticket)
        if run is None:
            raise BusyError(f"ticket {ticket.key} got a run meanwhile")
        said = f"{by.who} asked connbot to triage ticket {ticket.key} (run {run.id}){_because(by)}"
        _record(ctx, s, Verb.TRIAGE, by, said, run)
        return Done(said, run.id)


def retry_effect(ctx: RunContext, effect_id: int, by: Actor) -> Done:
    """Make an effect that failed for good (a comment, a close, a Slack post, ...) again: it is pending
    once more, with its attempts counted afresh, and its run's worker makes it, in order."""
    by = by.checked()
    with ctx.store.tx() as s:
        effect = s.get(Effect, effect_id)
        if effect is None:
            raise NotFoundError(f"no effect {effect_id}")
        if not rows_updated(
            s,
            update(Effect)
            .where(Effect.id == effect_id, Effect.state == EffectState.FAILED)
            .values(state=EffectState.PENDING, attempts=0, error=""),
        ):
            raise BusyError(f"effect {effect_id} is {effect.state}, not failed: nothing to retry")
        run = s.get(Run, effect.run_id) if effect.run_id is not None else None
        said = f"{by.who} retried the failed {effect.kind} effect {effect_id}{_because(by)}"
        _record(ctx, s, Verb.RETRY_EFFECT, by, said, run, effect_id=effect_id)
        if run is not None:
            ctx.waker.advance_after_commit(s, run.id)
        return Done(said, run.id if run else None)


def hand(ctx: RunContext, prompt_id: str, to: str, by: Actor) -> Done:
    """Hand an open question to someone else (a Slack user id or a desk name): they may answer it
    whatever its level, are reminded of it in its channels, and the ticket says so."""
    by = by.checked()
    to = " ".join(to.split())
    if not to or len(to) > MAX_WHO:
        raise BadRequestError(f"say whom to hand the question to (1 to {MAX_WHO} characters)")
    with ctx.store.tx() as s:
        prompt = s.get(Prompt, prompt_id)
        if prompt is None:
            raise NotFoundError(f"no prompt {prompt_id[:64]!r}")
        if prompt.kind == prompts.CUSTOMER:
            raise BusyError("a question to the customer is answered by the customer: it cannot be handed on")
        if not rows_updated(
            s,
            update(Prompt)
            .where(Prompt.id == prompt_id, Prompt.state == PromptState.OPEN)
            .values(handed_to=to),
        ):
            raise BusyError(f"the question is {prompt.state}, not open: nothing to hand on")
        run = prompt.run
        said = f"{by.who} handed the question '{prompt.title}' to {to}{_because(by)}"
        action = _record(ctx, s, Verb.HAND, by, said, run, prompt_id=prompt_id)
        prompt_effects(s, run, prompt_id, ctx.channels, "remind", key=f"hand:{action.id}")
        ctx.waker.advance_after_commit(s, run.id)
        return Done(said, run.id)


RUN_VERBS = (Verb.CANCEL, Verb.RETRY, Verb.RERUN)


def on_run(ctx: RunContext, ref: str, verb: str, by: Actor, step: str | None = None) -> Done:
    """A verb on a run named by its id or its ticket's key (the ticket's latest run): what the CLI,
    the desk, the API and Slack call."""
    if verb not in RUN_VERBS:
        raise BadRequestError(f"unknown verb {verb[:40]!r}: one of {', '.join(RUN_VERBS)}")
    if step is not None and verb != Verb.RERUN:
        raise BadRequestError("only a re-run starts from a step")
    with ctx.store.tx() as s:
        run_id = find_run(s, ref).id
    if verb == Verb.CANCEL:
        return cancel(ctx, run_id, by)
    if verb == Verb.RETRY:
        return retry(ctx, run_id, by)
    return rerun(ctx, run_id, by, step)
