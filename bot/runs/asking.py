"""Questions to people in a run: who the ticket is about (`identify_user`), which PBX serves it
(`ask_route`), a playbook step's question or approval (`ask`, to people or to the customer), and
what their answer (or its absence) does to the run (`resume`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from bot import tracing
from bot.runs import identify, prompts, records, routing, sla
from bot.runs.context import RunContext
from bot.runs.fixes import ASKED_CAUSE, stated, tried
from bot.runs.outbox import (
    customer_reply,
    note_effect,
    prompt_effects,
)
from bot.runs.redact import redact
from bot.runs.trail import has_customers, reporter_id, rows
from bot.state import counters
from bot.state.models import Prompt, PromptState, Run, RunState, Ticket
from integrations.base import (
    ActionInput,
    AdapterError,
    Registry,
)
from integrations.tickets import VIA, Note, StepRow, answered_by, answerer
from playbook import engine
from playbook.engine import Ask, Position
from playbook.models import APPROVE

log = logging.getLogger(__name__)


def identify_user(
    ctx: RunContext, run: Run, owner: str, registry: Registry, lookup: ActionInput
) -> tuple[bool, bool]:
    """Find the ticket's user by the reporter's e-mail, else ask a person. Says whether the run may go
    on, and whether it recorded effects."""
    started, res, why = ctx.clock(), None, "the ticket names no user and no reporter e-mail"
    failure: AdapterError | None = None
    if lookup.reporter_email and registry.available(identify.ACTION):
        try:
            with tracing.span("connbot.adapter", action=identify.ACTION, run=run.id, step=identify.STEP):
                res = registry.execute(identify.ACTION, lookup)
        except AdapterError as exc:
            why, failure = f"the look-up by e-mail failed: {exc}", exc
    elif lookup.reporter_email:
        why = f"no adapter is configured for {identify.ACTION}"
    step = identify.IdentifyStep()
    with ctx.store.tx() as s:
        records.hold(ctx, s, run, owner)
        if failure is not None:
            counters.adapter_error(s, identify.ACTION, failure)
        if res is not None:
            records.record(
                s,
                run,
                step,
                records.StepRecord(
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
    said = ""
    who = answerer(prompt.answered_by or "", prompt.answered_via)  # as a ticket names them
    # The row reads the outcome and who answered; its summary what follows (the user named).
    if user:
        run.ticket.user_ref = user
        outcome, summary = identify.GIVEN, user
        trail = f"{who} named the user: {user}."
    else:
        run.facts = {**run.facts, "identify_done": True}
        outcome, summary = identify.UNKNOWN, "The steps that need the user fail or ask a person."
        if prompt.state != PromptState.ANSWERED:
            outcome, said = "timed_out", records.UNANSWERED
        trail = (
            "Nobody named the user"
            + (f" ({who})" if prompt.answered_by else " in time")
            + ": the steps that need the user fail or ask a person."
        )
    records.record(
        s,
        run,
        identify.IdentifyStep(),
        records.human(ctx, prompt, identify.STEP, "human", outcome, summary, said=said),
    )
    run.state = RunState.RUNNING
    _settle(ctx, s, run, prompt, f"{identify.IdentifyStep().title}: {trail}")
    return True


def _new_prompt(
    ctx: RunContext,
    run: Run,
    step: records.StepLike,
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


# The run's fact counting the rows of its steps already on its ticket, in a question's comment or an
# escalation's: a question's comment carries the rows since (a hand-over or a close carries them all).
ROWS_TOLD = "rows_told"


def tell(run: Run, found: list[StepRow]) -> list[StepRow]:
    """Count the run's rows `found` as on its ticket; returns those that were not before."""
    told = run.facts.get(ROWS_TOLD, 0)
    run.facts = {**run.facts, ROWS_TOLD: len(found)}
    return found[told:]


def _show(ctx: RunContext, s: Session, run: Run, prompt: Prompt, heading: str, reason: str) -> None:
    """Store the prompt, make the run wait for it, post it in every channel and note it on the ticket
    with what the checks found since the ticket's last comment that said so."""
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
            rows=tell(run, rows(run)),
            next=f"The run waits for an answer until {prompt.expires_at:%Y-%m-%d %H:%M} UTC.",
        ),
    )


# How much of the ticket's user an approval's question shows (a ticket's field: any length).
USER_SHOWN = 64


def _account(run: Run) -> str:
    """Whose account an approval changes, as far as the run knows: the ticket's user (extension or
    SIP username) and the run's PBX instance."""
    user = run.ticket.user_ref
    if user:
        cut = user if len(user) <= USER_SHOWN else user[: USER_SHOWN - 1] + "…"
        whose = f"the account of {cut}"
    else:
        whose = "the account of the ticket's user (not identified)"
    return whose + (f" on PBX {run.pbx}" if run.pbx else "")


def ask(ctx: RunContext, s: Session, run: Run, plan: Ask) -> None:
    before = run.facts.get(ASKED_CAUSE)
    facts = {k: v for k, v in run.facts.items() if k != ASKED_CAUSE}
    cause = plan.cause and stated(run.facts, plan.cause)
    plan = dataclasses.replace(plan, account=_account(run), cause=cause)
    if cause is not None:
        level = plan.step.level
        # what the closing comment names, and what tells whether the next question puts it again
        asked = {
            "cause": cause.id,
            "title": cause.title,
            "found": cause.found(),
            "level": level,
            "action": cause.action,
        }
        facts[ASKED_CAUSE] = asked
        again = isinstance(before, dict) and all(
            before.get(k) == asked[k] for k in ("cause", "level", "action")
        )
        if again and not plan.step.ask_cause:
            # the same level's people answered about this cause already, and nothing became of its
            # fix since (`stated`): not put to them again
            plan = dataclasses.replace(plan, cause=None)
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


def ask_route(ctx: RunContext, s: Session, run: Run, ticket: Ticket) -> None:
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
        "checking the wrong PBX would read, or change, another customer's accounts",
    )


def resume(ctx: RunContext, s: Session, run: Run, pos: Position, owner: str) -> bool:
    prompt = prompts.open_for(s, run)
    if prompt is None or prompt.state == PromptState.OPEN:
        return False
    records.hold(ctx, s, run, owner)
    if prompt.kind == "route":
        return _resume_route(ctx, s, run, prompt)
    if prompt.kind == "identify":
        return _resume_identify(ctx, s, run, prompt)
    pb = ctx.playbooks.of(run)  # the version the run started on, whatever is loaded now
    step = pb.steps[pos.step]
    if prompt.state == PromptState.ANSWERED:
        # The answer as its outcome reads (not the button's "Fixed (connbot checks again)"); the row
        # says who gave it, its summary only what they wrote.
        approved = prompt.kind == "approval" and prompt.answer == APPROVE
        said = prompts.said(prompt, step)
        summary = prompt.answer_text or ""
        # as a ticket names them (a Slack user id said to be one): what a cause's statement says
        who = answerer(prompt.answered_by or "", prompt.answered_via)
        trail = (
            f"Answered by {answered_by(prompt.answered_by or '', prompt.answered_via)}"
            f" at {prompt.answered_at:%Y-%m-%d %H:%M} UTC: {said}"
        )
        if prompt.kind == "approval":
            tried(
                run,
                pos.step,
                kind="approval",
                step=step.title,
                by=who,
                approved=approved,
                result=None,
            )
            records.record(
                s,
                run,
                step,
                records.human(
                    ctx,
                    prompt,
                    pos.step,
                    "approval",
                    "approved" if approved else "rejected",
                    summary,
                    said=said,
                ),
            )
            new_pos = engine.approve(pos) if approved else engine.follow(pb, pos, engine.Rejected())
        else:
            if step.collect and prompt.answer_text:
                run.facts = {**run.facts, step.collect: prompt.answer_text}
            evidence = {"answer_text": prompt.answer_text} if prompt.answer_text else {}
            records.record(
                s,
                run,
                step,
                records.human(
                    ctx, prompt, pos.step, "human", prompt.answer or "", summary, evidence, said=said
                ),
            )
            if pos.approved:  # an approved step that a person did after all (it could not be automated)
                tried(
                    run,
                    pos.step,
                    result=f"{who} answered: {said}" + (f" ({summary})" if summary else ""),
                )
            elif step.ask_cause or step.fixes_cause:  # asked to do the fix of the cause it states
                tried(run, pos.step, kind="answer", by=who, answer=said, text=summary)
            new_pos = engine.follow(pb, pos, engine.Outcome(prompt.answer or ""))
    else:  # expired or cancelled
        new_pos = engine.follow(pb, pos, engine.TimedOut())
        waited = f"{pb.wait_for(step) / 3600:g} h"
        trail = f"No answer within {waited}: on to “{pb.steps[new_pos.step].title}”."
        mode = "approval" if prompt.kind == "approval" else "human"
        if prompt.kind == "approval":
            tried(run, pos.step, kind="approval", step=step.title, by=None, approved=None, waited=waited)
        elif step.ask_cause or step.fixes_cause:  # asked to do the fix of the cause it states; no one did
            tried(run, pos.step, kind="unanswered", level=step.level, waited=waited)
        records.record(
            s,
            run,
            step,
            records.StepRecord(
                pos.step, mode, "timed_out", trail, prompt.created_at, ctx.clock(), said=records.UNANSWERED
            ),
        )
    records.move(run, new_pos)
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
        who = answerer(prompt.answered_by, prompt.answered_via)
        found = routing.answer(s, ctx.directory, run.ticket, prompt.answer, who, now)
        run.pbx, run.pbx_reason, outcome, said = found.pbx, found.reason, found.pbx, ""
        where = VIA.get(prompt.answered_via or "", "")
        trail = f"Checked against PBX {found.pbx} ({found.reason})" + (
            f", answered {where}." if where else "."
        )
        # the row reads the PBX and who chose it already: its summary only what else the answer did
        summary = f"Remembered for {found.remembered}." if found.remembered else ""
    else:
        run.pbx_reason, outcome = "no PBX was chosen in time: a person does every step", "timed_out"
        said = records.UNANSWERED
        trail = (
            f"No answer within {ctx.playbooks.of(run).timeout / 3600:g} h: no PBX is used, a person does "
            "every step."
        )
        summary = trail
    records.record(
        s,
        run,
        step,
        records.human(ctx, prompt, routing.STEP, "human", outcome, summary, said=said),
    )
    run.state = RunState.RUNNING
    _settle(ctx, s, run, prompt, f"{step.title}: {trail}")
    return True
