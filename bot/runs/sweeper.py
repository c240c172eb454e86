"""The sweep every worker runs periodically: prompts expire and are reminded, runs whose wake-up was
lost (a worker killed mid-task, the queue restarted) are woken again, and incidents are tended
(`bot.runs.recovery`). Stored events need no sweep: workers take them from the store
(`bot.state.queue.Queue.event_taker`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.runs import prompts, recovery, sla
from bot.runs.context import RunContext
from bot.runs.outbox import prompt_effects
from bot.state.models import Effect, EffectState, Prompt, PromptState, Run, RunState


def sweep(ctx: RunContext) -> dict[str, int]:
    """Periodic housekeeping: expire and remind prompts, resume runs that were dropped, tend
    incidents."""
    now = ctx.clock()
    counts = {"expired": 0, "reminded": 0, "resumed": 0}
    stale = now - dt.timedelta(seconds=ctx.limits.sweep_seconds)
    with ctx.store.tx() as s:
        expired, remind = prompts.due(s, now)
        for prompt in expired:
            if prompts.expire(s, prompt):
                counts["expired"] += 1
                ctx.waker.advance_after_commit(s, prompt.run_id)
        for prompt in remind:
            # reminded again when an SLA breach becomes near, if that is still to come
            later = sla.next_warning(prompt.run.ticket, now)
            prompt.remind_at = later if later is not None and later < prompt.expires_at else None
            counts["reminded"] += 1
            prompt_effects(s, prompt.run, prompt.id, ctx.channels, "remind")
            ctx.waker.advance_after_commit(s, prompt.run_id)
        free = (Run.lease_until.is_(None)) | (Run.lease_until < now)
        idle = select(Run.id).where(
            Run.state == RunState.RUNNING,
            Run.updated_at < stale,
            free,
            (Run.retry_at.is_(None)) | (Run.retry_at <= now),
        )
        # Waiting with no open prompt: answered or expired, and the wake-up that followed was lost
        # (a worker killed while advancing it); the run would otherwise wait for ever.
        open_prompt = (
            select(Prompt.id).where(Prompt.run_id == Run.id, Prompt.state == PromptState.OPEN).exists()
        )
        unblocked = select(Run.id).where(
            Run.state == RunState.WAITING, ~open_prompt, Run.updated_at < stale, free
        )
        with_effects = select(Effect.run_id).where(
            Effect.state == EffectState.PENDING, Effect.created_at < stale, Effect.run_id.is_not(None)
        )
        effects_of = {run_id for run_id in s.scalars(with_effects) if run_id is not None}
        for run_id in set(s.scalars(idle)) | set(s.scalars(unblocked)) | effects_of:
            counts["resumed"] += 1
            ctx.waker.advance_after_commit(s, run_id)
    counts.update(recovery.tend(ctx))
    return counts
