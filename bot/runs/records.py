"""What a step of a run leaves behind: its step result (`record`), the run's new position (`move`),
the lease a transaction writes under (`hold`)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.runs.context import RunContext
from bot.state.models import Prompt, Run, RunState, StepResult
from playbook.engine import Position

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


def hold(ctx: RunContext, s: Session, run_id: int, owner: str) -> Run:
    """The run, locked and read afresh, for a transaction that writes under this worker's lease."""
    run = ctx.store.held(s, run_id, owner)
    if run is None:
        raise LeaseLost(run_id)
    return run


def human(
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


def record(s: Session, run: Run, step: StepLike, rec: StepRecord) -> None:
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


def move(run: Run, pos: Position) -> None:
    run.step, run.visits, run.approved = pos.step, dict(pos.visits), pos.approved
    run.state, run.attempts, run.retry_at = RunState.RUNNING, 0, None
