"""The ends of a run and of its levels: an escalation that goes on to the next level's checks
(`escalate`), a close or a final hand-over (`finish`), a run released by its incident (`release`),
each with the comment that says why from the run's findings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.runs import asking, fixes, incidents, records
from bot.runs.context import RunContext
from bot.runs.outbox import (
    customer_reply,
    escalation_effect,
    note_effect,
)
from bot.runs.trail import rows
from bot.state.models import Incident, Run, RunState
from integrations.tickets import Note, answerer
from playbook import engine
from playbook.diagnosis import diagnose
from playbook.engine import Escalate, Finish, Position

log = logging.getLogger(__name__)


def escalate(ctx: RunContext, s: Session, run: Run, plan: Escalate, pos: Position) -> None:
    now = ctx.clock()
    customer_reply(ctx, s, run, ESCALATED)
    records.record(
        s,
        run,
        plan.step,
        records.StepRecord(
            pos.step,
            "end",
            f"escalated_l{plan.level}",
            "",  # the row's words say it, the note's heading too
            now,
            now,
            said=f"Escalated to level {plan.level}",
        ),
    )
    found = rows(run)
    asking.tell(run, found)  # the hand-over carries every row
    escalation_effect(
        s,
        run,
        f"escalate:{plan.level}",
        Note(
            heading=f"Level {plan.step.level} checks done: escalated to level {plan.level}",
            lines=([plan.step.instructions] if plan.step.instructions else []) + _diagnosis(ctx, run),
            rows=found,
            next=f"connbot goes on with the level {plan.level} checks.",
        ),
        plan.level,
    )
    records.move(run, engine.continue_after(ctx.playbooks.of(run), pos, plan))


def _diagnosis(ctx: RunContext, run: Run) -> list[str]:
    """The leading cause and the next candidates, from the run's findings, one sentence each (of a
    fix people acted on, what became of it: `fixes.stated`), then what became of the fixes of causes
    that led earlier and lead no longer."""
    rules = ctx.playbooks.rules
    causes = diagnose(rules, run.facts)
    lead, rest = fixes.stated(run.facts, causes[0]), [c for c in causes[1:3] if c.confidence > 0]
    if lead.id == rules.fallback:
        weaker = ", ".join(f"{c.title} ({c.confidence:.0%})" for c in rest)
        lines = ["The findings point at no single cause."] + (
            [f"Weaker candidates: {weaker}."] if rest else []
        )
    else:
        lines = [f"Leading cause: {lead.title} ({lead.confidence:.0%}). {lead.question()}"]
        if lead.contrary:
            lines.append(f"Against it: {'; '.join(lead.contrary)}.")
        if rest:
            lines.append("Also possible: " + ", ".join(f"{c.title} ({c.confidence:.0%})" for c in rest) + ".")
    earlier = [c for c in run.facts.get(fixes.TRIED_FIXES, {}) if c != lead.id and c in rules.causes]
    return lines + [
        f"Earlier leading cause: {rules.causes[c].title}. {fixes.fates(run.facts, c)}" for c in earlier
    ]


def _fixed_cause(ctx: RunContext, run: Run) -> list[str]:
    """For a closing comment: the cause a person was asked about (what the fix was for), else the
    leading cause of the findings, without what to do about it: that is done."""
    asked = run.facts.get(fixes.ASKED_CAUSE)
    if isinstance(asked, dict):
        return [f"Cause: {asked['title']}. {asked['found']}."]
    lead = engine.leading(ctx.playbooks.of(run), run.facts)
    return [f"Cause: {lead.title}. {lead.found()}."] if lead else []


def end_run(ctx: RunContext, run: Run, kind: str, level: int | None, reason: str) -> None:
    """End the run for good (closed, escalated, or by a person: `bot.runs.operate`)."""
    run.state, run.end_kind, run.end_level, run.end_reason = RunState.ENDED, kind, level, reason
    run.active_ticket_id, run.ended_at = None, ctx.clock()


# The reply templates of the run's start (where a first-response SLA runs) and ends (a template
# named after the end step, where there is one, says more than `closed`).
RECEIVED, CLOSED, ESCALATED = "received", "closed", "escalated"


def finish(ctx: RunContext, s: Session, run: Run, plan: Finish) -> None:
    now = ctx.clock()
    outcome, said = (
        ("closed", "Ticket closed")
        if plan.kind == "close"
        else (f"escalated_l{plan.level}", f"Escalated to level {plan.level}")
    )
    records.insert(
        s.connection(),
        run,
        plan.step,
        # The row's words say how the run ended; why is the note's own paragraph (and the run's end reason).
        records.StepRecord(run.step or "", "end", outcome, "", now, now, said=said),
    )
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
                rows=rows(run),  # the heading and the paragraph say who takes over: no "Next:" again
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

    def label(self, outcome: str) -> str:
        return RECHECK_WORDS.get(outcome, outcome)


# The re-check's outcomes (app.recheck's) in words.
RECHECK_WORDS = {
    incidents.REGISTERED: "The app registers again",
    "still_failing": "The app still fails to register",
    "device_offline": "The device is offline",
    "timeout": "The app did not answer in time",
}


def release(
    ctx: RunContext,
    s: Session,
    run: Run,
    inc: Incident,
    rec: records.StepRecord | None,
    registered: bool,
    facts: dict[str, Any],
) -> None:
    """A held run leaves its incident: closed when its app registers again (`rec` says how that was
    checked), else back to its own playbook where it was held, with the incident's findings and the
    re-check's. Its effects are made by the worker woken after the commit."""
    step = ctx.playbooks.of(run).steps.get(run.step or "")
    if rec is not None:
        records.record(s, run, RecheckStep(step.level if step else 1), rec)
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
                heading=f"Closed: incident {inc.id} is resolved ({inc.title}, on {incidents.where(inc.pbx)})",
                lines=[reason, f"Cause, as found from {since} on: {inc.statement}."],
                rows=rows(run),
            ),
            kind="close",
        )
    else:
        run.facts = {**run.facts, **inc.facts, **facts}
        run.state, run.attempts, run.retry_at = RunState.RUNNING, 0, None
        heading = f"Incident {inc.id} is resolved (the PBX is back)"
        if inc.dismissed_by:
            heading = f"Incident {inc.id} was dismissed as not a PBX problem"
            who = answerer(inc.dismissed_by, inc.dismissed_via)  # as a ticket names them
            lines = [f"{who} said incident {inc.id} is not a PBX problem."]
            # said with its cause wherever the ticket states the cause from now on
            fixes.tried(run, f"incident {inc.id}", inc.cause, kind="dismissal", by=who, incident=inc.id)
        elif rec is not None:
            lines = [rec.summary]
        else:
            lines = ["connbot cannot re-check this user's app: no app backend is configured for it."]
        note_effect(
            s,
            run,
            f"incident:{inc.id}:released",
            Note(
                heading=f"{heading}: this ticket is checked on its own again",
                lines=lines,
                next="connbot goes on with its checks where the incident held them.",
            ),
        )
    ctx.waker.advance_after_commit(s, run.id)
