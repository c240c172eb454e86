"""What a step of a run leaves behind: its step result (`record`, `insert`), the run's new position
(`move`, `write`), the lease a transaction writes under (`lock`, `hold`, `write`).

A run is read once, when its lease is taken (`bot.runs.steps`), and carried from one transaction to
the next while the lease is held: nobody writes a run without its lease, so the carried row is the
stored one. Each write checks the lease is still this worker's in its own WHERE clause."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import (
    BindParameter,
    Boolean,
    ScalarSelect,
    Table,
    Update,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy import insert as insert_into
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot.runs.context import RunContext
from bot.state.models import Prompt, Run, RunState, StepResult, utcnow
from bot.state.store import RUNS
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

    def label(self, outcome: str) -> str:
        """One of its outcomes in the words people read."""
        ...


@dataclass(frozen=True)
class StepRecord:
    """What one step of a run did, as its step result keeps it. `said`: the outcome in words, where
    it is not one of the step's own (whose words are the step's `label`)."""

    step: str
    mode: str  # auto, human, approval, decided (by the findings) or end
    outcome: str
    summary: str
    started: dt.datetime
    finished: dt.datetime
    evidence: dict[str, Any] = field(default_factory=dict)
    by: str | None = None
    via: str | None = None  # where `by` answered (`prompts.Via`)
    said: str = ""


# The words of outcomes connbot records itself, whatever the step (beside their codes).
UNANSWERED = "No answer in time"  # timed_out
FAILED = "Failed"  # error: the action failed, its summary says how


# What a step may change of its run (written by `write` from the carried run).
STEP_COLUMNS = (
    "step",
    "visits",
    "approved",
    "state",
    "attempts",
    "retry_at",
    "facts",
    "error_class",
    "incident_id",
)


def lock(s: Session, run: Run, owner: str) -> None:
    """Inside a transaction: lock the run's row (on SQLite, the database's write lock: Python's sqlite3
    begins a transaction only at its first write) unless this worker lost its lease (LeaseLost)."""
    if not s.connection().execute(LOCK, {"run_id": run.id, "owner": owner}).rowcount:
        raise LeaseLost(run.id)


def hold(ctx: RunContext, s: Session, run: Run, owner: str) -> Run:
    """The carried run, locked under this worker's lease and attached to the transaction, for code that
    changes it through the ORM (its changes are flushed at the commit)."""
    lock(s, run, owner)
    return attach(s, run)


def attach(s: Session, run: Run) -> Run:
    """The carried run attached to the transaction, whose `lock` or `write` has checked the lease."""
    if run not in s:
        s.add(run)
    s.expire(run, ["steps"])  # results inserted since it was carried (`insert`) are read when needed
    return run


def write(
    ctx: RunContext, conn: Connection, run: Run, owner: str, holding: str, release: bool = False
) -> bool:
    """Write what a step changed of the carried run in one UPDATE that checks the lease (LeaseLost
    when it is not this worker's any more) and extends it, or `release`s it in the same commit.
    Returns the SQL `holding` evaluated in the same statement: whether its PBX has an open incident."""
    values = {name: getattr(run, name) for name in STEP_COLUMNS}
    params = {f"v_{name}": value for name, value in values.items()}
    params.update(run_id=run.id, owner=owner)
    if not release:
        params["until"] = utcnow() + dt.timedelta(seconds=ctx.limits.lease_seconds)
    found = conn.execute(_write(holding, release), params).first()
    if found is None:
        raise LeaseLost(run.id)
    for name, value in values.items():  # stored now: nothing left for a later flush to write
        set_committed_value(run, name, value)
    return bool(found[0])


STEP_RESULTS = cast(Table, StepResult.__table__)
# `lock`'s statement, built once: it changes nothing but takes the row's lock (and SQLite's).
LOCK = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"), RUNS.c.lease_owner == bindparam("owner"))
    .values(lease_owner=bindparam("owner"))
)


def _typed(table: Table, *names: str) -> dict[str, BindParameter[Any]]:
    return {name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names}


@functools.cache
def _write(holding: str, release: bool) -> Update:
    """`write`'s UPDATE, built once per kind."""
    lease = (
        {"lease_owner": None, "lease_until": None}
        if release
        else {"lease_until": bindparam("until", type_=RUNS.c.lease_until.type)}
    )
    return (
        update(RUNS)
        .where(RUNS.c.id == bindparam("run_id"), RUNS.c.lease_owner == bindparam("owner"))
        .values(**_typed(RUNS, *STEP_COLUMNS), **lease)
        .returning(literal_column(holding, Boolean))
    )


def human(
    ctx: RunContext,
    prompt: Prompt,
    step_id: str,
    mode: str,
    outcome: str,
    summary: str,
    evidence: dict[str, Any] | None = None,
    said: str = "",
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
        prompt.answered_via,
        said,
    )


RESULT_COLUMNS = (
    "step",
    "title",
    "level",
    "action",
    "mode",
    "outcome",
    "said",
    "summary",
    "evidence",
    "answered_by",
    "answered_via",
    "started_at",
    "finished_at",
)


def _values(run: Run, step: StepLike, rec: StepRecord) -> dict[str, Any]:
    """A step result's columns but its number (and the result said in the log, once, as it is recorded)."""
    log.info("run %s step %s: %s", run.id, rec.step, rec.outcome)
    return {
        "step": rec.step,
        "title": step.title,
        "level": step.level,
        "action": step.action or "",
        "mode": rec.mode,
        "outcome": rec.outcome,
        "said": (rec.said or step.label(rec.outcome))[:200],
        "summary": rec.summary[:2000],
        "evidence": rec.evidence,
        "answered_by": rec.by,
        "answered_via": rec.via,
        "started_at": rec.started,
        "finished_at": rec.finished,
    }


def _next_seq(run_id: Any) -> ScalarSelect[int]:
    """Numbered in the INSERT itself: no need to load the run's earlier results (the run is locked)."""
    return (
        select(func.coalesce(func.max(StepResult.seq), 0) + 1)
        .where(StepResult.run_id == run_id)
        .scalar_subquery()
    )


# `insert`'s statement, built once.
INSERT = insert_into(STEP_RESULTS).values(
    run_id=bindparam("v_run_id"),
    seq=_next_seq(bindparam("v_run_id")),
    **_typed(STEP_RESULTS, *RESULT_COLUMNS),
)


def record(s: Session, run: Run, step: StepLike, rec: StepRecord) -> None:
    """Record a step result of a run attached to the session (`hold`): in the ORM's unit of work."""
    s.add(StepResult(run=run, seq=_next_seq(run.id), **_values(run, step, rec)))


def insert(conn: Connection, run: Run, step: StepLike, rec: StepRecord) -> None:
    """Record a step result of a carried run at once, in one INSERT (no unit of work)."""
    values = _values(run, step, rec)
    conn.execute(INSERT, {"v_run_id": run.id, **{f"v_{k}": v for k, v in values.items()}})


def move(run: Run, pos: Position) -> None:
    run.step, run.visits, run.approved = pos.step, dict(pos.visits), pos.approved
    run.state, run.attempts, run.retry_at = RunState.RUNNING, 0, None
