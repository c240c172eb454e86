"""The outbox: effects (comments, closing, escalating, showing and settling prompts) are recorded in
the transaction of the transition that causes them, then made one by one, oldest first, each once
per idempotency key; a transient failure is retried with backoff, a permanent one given up on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.runs import prompts
from bot.runs.context import RunContext
from bot.runs.trail import ticket_ref
from bot.state.models import Effect, Prompt, Run, Ticket
from integrations.base import AdapterError, PermanentError, TransientError
from integrations.prompts import PromptView
from integrations.tickets import Note

log = logging.getLogger(__name__)

EFFECTS_ADDED = "connbot.effects_added"


def add_effect(s: Session, run: Run | None, key: str, kind: str, payload: dict[str, Any]) -> None:
    s.add(Effect(key=key, run_id=run.id if run else None, kind=kind, payload=payload))
    s.info[EFFECTS_ADDED] = True


def added_effects(s: Session) -> bool:
    """Whether this transaction recorded an effect (so there is something to make after it)."""
    return bool(s.info.get(EFFECTS_ADDED))


def note_effect(s: Session, run: Run, key: str, note: Note, kind: str = "comment", **extra: Any) -> None:
    add_effect(
        s, run, f"run:{run.id}:{key}", kind, {"ticket_id": run.ticket_id, "note": note.model_dump(), **extra}
    )


def flush_effects(ctx: RunContext, run_id: int) -> bool:
    """Make the pending effects of a run, oldest first. False at the first transient failure.

    A transient failure is retried with backoff (the run waits, its effects stay in order) until
    the effect has had `CONNBOT_EFFECT_ATTEMPTS` attempts; then it is failed for good like a
    permanent one, and the run goes on. A prompt that could not be shown in a channel is said on
    the ticket, so people know to answer it on the desk."""
    more = True
    while more:  # once more only when giving up on an effect recorded a note about it
        more = False
        with ctx.store.tx() as s:
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
            with ctx.store.tx() as s:
                effect.attempts = s.execute(
                    update(Effect)
                    .where(Effect.id == effect.id)
                    .values(attempts=Effect.attempts + 1)
                    .returning(Effect.attempts)
                ).scalar_one()
            try:
                refs = make(ctx, effect)
            except TransientError as exc:
                if effect.attempts < ctx.limits.effect_attempts:
                    _update_effect(ctx, effect, error=str(exc)[:2000])
                    log.warning("effect %s (%s) failed, will retry: %s", effect.key, effect.kind, exc)
                    ctx.waker.advance(run_id, delay=min(300.0, 2.0 ** min(effect.attempts, 8)))
                    return False
                more |= _give_up(ctx, effect, f"still failing after {effect.attempts} attempts: {exc}")
                continue
            except AdapterError as exc:
                more |= _give_up(ctx, effect, str(exc))
                continue
            _update_effect(ctx, effect, refs, state="done", done_at=ctx.clock())
    return True


def make(ctx: RunContext, effect: Effect) -> dict[str, Any] | None:
    """Carry out one effect. Returns references to keep with the prompt, if any."""
    if effect.kind.startswith("prompt."):
        channel = ctx.channel(effect.payload["channel"])
        if channel is None:
            raise PermanentError(f"prompt channel {effect.payload['channel']!r} is not configured any more")
        view = prompts.view_of(ctx, effect.payload["prompt_id"]).model_copy(
            update={"repeat": effect.attempts > 1}
        )
        call: Callable[[PromptView], Any] = {
            "prompt.post": channel.post,
            "prompt.settle": channel.settle,
            "prompt.remind": channel.remind,
        }[effect.kind]
        return call(view)  # type: ignore[no-any-return]
    with ctx.store.tx() as s:
        ticket = s.get(Ticket, effect.payload["ticket_id"])
        assert ticket is not None
        ref = ticket_ref(ticket)
    ref.first_attempt = effect.attempts == 1
    system = ctx.tickets.get(ref.source)
    if system is None:
        raise PermanentError(f"ticket system {ref.source!r} is not configured any more")
    note = Note.model_validate(effect.payload["note"])
    if effect.kind == "close":
        system.close(ref, note, effect.key)
    elif effect.kind == "escalate":
        ref.pbx = effect.payload.get("pbx")
        system.escalate(ref, int(effect.payload["level"]), note, effect.key)
    else:
        system.comment(ref, note, effect.key)
    return None


def _update_effect(
    ctx: RunContext, effect: Effect, refs: dict[str, Any] | None = None, **values: Any
) -> None:
    """One statement per outcome of an effect; references a channel gave are kept with the prompt."""
    with ctx.store.tx() as s:
        s.execute(update(Effect).where(Effect.id == effect.id).values(**values))
        if refs:
            prompt = s.get(Prompt, effect.payload["prompt_id"])
            if prompt is not None:
                prompt.channel_refs = {**prompt.channel_refs, **refs}


def _give_up(ctx: RunContext, effect: Effect, reason: str) -> bool:
    """Fail an effect for good (kept with its reason, counted in /metrics) and let the run go on.
    Says whether that recorded an effect of its own (the note that a prompt was not posted)."""
    with ctx.store.tx() as s:
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
        noted = added_effects(s)
    log.error("effect %s (%s) failed for good: %s", effect.key, effect.kind, reason)
    return noted
