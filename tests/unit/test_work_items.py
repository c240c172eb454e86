"""Runs advance a step per work item, behind the work already queued, and each automated step costs
a bounded number of statements and commits (counted as bench/triage.py counts them)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select

from bench.triage import LONG  # five automated steps, then closed
from bot.runs import intake
from bot.settings import Settings
from bot.state.models import Comment, Effect, Run, RunState, StepResult
from tests.conftest import QUIET, transactions
from tests.fakes.adapters import scripted_registry


def file(svc: Any, n: int) -> list[int]:
    return [
        intake.file_desk_ticket(svc.context, f"User {i} can't connect", "", "u@example.com", str(1000 + i))[1]
        for i in range(n)
    ]


def test_two_queued_runs_take_their_steps_in_turn_on_one_worker_thread(make_services) -> None:
    svc = make_services(registry=scripted_registry({k: [v] * 2 for k, v in LONG.items()}))
    first, second = file(svc, 2)

    svc.queue.run_pending()  # one thread takes the queued work items in order

    with svc.store.tx() as s:
        order = [(r.run_id, r.step) for r in s.scalars(select(StepResult).order_by(StepResult.id))]
        assert all(r.state == RunState.ENDED for r in s.scalars(select(Run)))
    runs = [run_id for run_id, _ in order]
    assert runs.index(second) < len(runs) - 1 - runs[::-1].index(first), (
        "the second run's first step is taken before the first run ends",
        order,
    )
    # each automated step is a work item of its own: the runs alternate (the end, which calls no
    # outside system, follows its run's last check in the same work item)
    assert runs == [first, second] * 4 + [first, first, second, second], order


def tally(done: list[list[str]]) -> dict[str, int]:
    """Statements and commits of what `transactions` recorded (as bench/worker.py counts them)."""
    return {"statements": sum(map(len, done)), "commits": len(done) - 1}


def work_item(svc: Any) -> None:
    """What a worker thread does with the next queued task."""
    task = svc.queue.huey.dequeue()
    assert task is not None
    svc.queue.huey.execute(task)


def test_an_automated_step_is_four_statements_and_two_commits(backend_settings, make_services) -> None:
    """With other work waiting, an automated step takes the run's lease and reads the run (with its
    ticket, whether an incident holds its PBX and whether effects wait) in one transaction, and
    writes its result and releases the lease in the other. The ends and the effects (here the desk's
    comments) cost more: over the whole run, at most 5.6 statements and 2.25 commits a step."""
    n = 4
    svc = make_services(
        settings=backend_settings, registry=scripted_registry({k: [v] * n for k, v in LONG.items()})
    )
    file(svc, n)
    with transactions(svc) as whole:
        for _ in range(n):
            work_item(svc)  # each run's start note (a call to the ticket system: then it yields)
        with transactions(svc) as item:
            work_item(svc)  # the first run's first step: nothing else
        assert tally(item) == {"statements": 4, "commits": 2}
        svc.queue.run_pending()
    with svc.store.tx() as s:
        steps = len(s.scalars(select(StepResult)).all())
        assert all(r.state == RunState.ENDED for r in s.scalars(select(Run)))
    assert steps == 6 * n
    assert tally(whole)["statements"] / steps <= 5.6, tally(whole)
    assert tally(whole)["commits"] / steps <= 2.25, tally(whole)


def test_a_desk_note_is_claimed_written_and_marked_done_in_one_commit(
    backend_settings, make_services
) -> None:
    """The desk keeps its tickets in connbot's own store: the start note's effect is claimed and
    marked done in one statement, and its comment written in the same transaction (a note on a
    ticket elsewhere is claimed in a commit of its own before the call, and marked done in another
    after it). With other
    work waiting, the note is the work item's call: the lease is released in the same commit."""
    svc = make_services(
        settings=backend_settings, registry=scripted_registry({k: [v] for k, v in LONG.items()})
    )
    file(svc, 2)  # two runs: the first one's start note yields to the other's
    with transactions(svc) as done:
        work_item(svc)
    take, note, _ = done
    assert take == ["UPDATE runs", "SELECT"], done
    assert note == ["UPDATE effects", "INSERT comments", "UPDATE runs"], done
    with svc.store.tx() as s:
        made = s.scalars(select(Effect).order_by(Effect.id)).all()
        assert [(e.kind, e.state, e.attempts) for e in made] == [
            ("comment", "done", 1),
            ("comment", "pending", 0),
        ]
        assert [c.marker for c in s.scalars(select(Comment))] == [made[0].key]


def test_a_work_item_that_ends_with_effects_releases_the_lease_in_the_last_ones_commit(
    backend_settings, make_services
) -> None:
    """A new desk ticket's acknowledgement is two commits: the lease taken and the run read with its
    ticket; the start note claimed and marked done, written, and the lease released. A run's last
    work item ends the same way: its last check's result and the end written in one commit, then its
    closing note made, the ticket closed and the lease released in another."""
    svc = make_services(
        settings=backend_settings, registry=scripted_registry({k: [v] for k, v in LONG.items()})
    )
    (run_id,) = file(svc, 1)
    with transactions(svc) as done:
        intake.acknowledge(svc.context, run_id)
    assert done == [
        ["UPDATE runs", "SELECT"],
        ["UPDATE effects", "INSERT comments", "UPDATE runs"],
        [],
    ], done
    with transactions(svc) as done:
        svc.queue.run_pending()
    closing = [c for c in done if "INSERT comments" in c][-1]  # the closing note's commit
    assert closing[-3:] == ["INSERT comments", "UPDATE tickets", "UPDATE runs"], done
    end = done[done.index(closing) - 1]  # the last check's result and the end, in one commit
    assert end.count("INSERT step_results") == 2 and end[-1] == "INSERT effects", done
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.state == RunState.ENDED and run.lease_owner is None
        assert all(e.state == "done" for e in s.scalars(select(Effect)))
    assert svc.store.acquire(run_id, "another worker", 60)  # nobody holds it


@pytest.mark.redis
def test_an_automated_steps_work_item_is_three_commands_to_redis(tmp_path, redis_url, make_services) -> None:
    """Take the task, look whether other work waits, queue the run's next work item behind it: no
    look-up of whether the task was revoked and no clearing of it after (connbot revokes nothing)."""
    settings = Settings(data_dir=tmp_path / "data", queue_url=redis_url, **QUIET)
    svc = make_services(settings=settings, registry=scripted_registry({k: [v] * 2 for k, v in LONG.items()}))
    file(svc, 2)
    work_item(svc), work_item(svc)  # the start notes
    redis = svc.queue.huey.storage.conn
    sent: list[str] = []
    execute = redis.execute_command

    def counted_command(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return execute(*args, **options)

    redis.execute_command = counted_command
    try:
        work_item(svc)  # the first run's first step
    finally:
        redis.execute_command = execute
    assert sorted(sent) == ["BRPOP", "LLEN", "LPUSH"], sent
    with svc.store.tx() as s:
        assert [r.step for r in s.scalars(select(StepResult))] == ["check_status"]


def test_a_run_read_with_core_is_a_detached_instance_even_in_a_process_that_made_no_query() -> None:
    """A worker's first database work may be taking a run's lease: the mappers are not configured
    yet then (SQLAlchemy does that at the first query), and the row must still become a run."""
    code = (
        "from sqlalchemy import inspect\n"
        "from bot.state.models import Run\n"
        "from bot.state.store import attribute_keys, detached\n"
        "keys = attribute_keys(Run)\n"
        "run = detached(Run, keys, [7 if k == 'id' else None for k in keys])\n"
        "assert inspect(run).detached and run.id == 7, inspect(run)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
