"""PostgreSQL restarted under connbot: every connection it held is cut by the server (what a restart
does to its clients, done here by `pg_terminate_backend`). A connection that sat idle is found dead
by a ping before it is used; a busy worker meets the cut in one statement, drops its whole pool, and
the work that failed is done again: every run ends, every comment is made once."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import OperationalError

from bench.triage import LONG as SCRIPT  # five automated steps, then closed
from bot.runs import intake
from bot.settings import Settings
from bot.state.models import Comment, Effect, Run
from bot.state.store import make_engine
from tests.fakes.adapters import scripted_registry
from tests.reliability.procs import start_worker, stop, wait_for

pytestmark = pytest.mark.postgres

PATH = ["check_status", "force_reconnect", "record_error", "check_config", "fix_config", "close_config_fixed"]
RUNS = 60


def _named(pg_url: str, name: str) -> str:
    """The URL with an application_name, by which the server's sessions of this client are found."""
    return f"{pg_url}&application_name={name}"


def _restart(admin: Engine, name: str) -> int:
    """Cut every session of the client `name`, as a restart of the server does; how many were cut."""
    with admin.connect() as conn:
        cut = conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        ).scalars()
        return sum(1 for ok in cut if ok)


@pytest.fixture
def admin(pg_url: str):  # type: ignore[no-untyped-def]
    engine = create_engine(Settings(database_url=pg_url).sqlalchemy_url)
    yield engine
    engine.dispose()


def test_an_idle_connection_cut_by_a_restart_is_replaced_before_it_is_used(
    pg_url: str, admin: Engine
) -> None:
    engine = make_engine(Settings(database_url=_named(pg_url, "idle")).sqlalchemy_url, idle_ping=0.2)
    try:
        with engine.connect() as conn:
            before = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert _restart(admin, "idle") == 1
        time.sleep(0.3)  # idle in the pool for longer than idle_ping
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != before
    finally:
        engine.dispose()


def test_a_busy_connection_cut_fails_one_statement_and_the_whole_pool_is_renewed(
    pg_url: str, admin: Engine
) -> None:
    """In use again at once, no ping is paid: the statement that meets the cut fails (the caller's
    retry does it again), and every connection pooled before it is replaced, not met one by one."""
    engine = make_engine(Settings(database_url=_named(pg_url, "busy")).sqlalchemy_url, idle_ping=60)
    try:
        first, second = engine.connect(), engine.connect()  # two pooled connections
        first.close(), second.close()
        assert _restart(admin, "busy") == 2
        with pytest.raises(OperationalError) as failed, engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert failed.value.connection_invalidated
        with engine.connect() as a, engine.connect() as b:
            assert a.execute(text("SELECT 1")).scalar_one() == b.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.slow
def test_runs_all_end_once_when_the_database_restarts_under_a_busy_worker(
    tmp_path: Path, pg_url: str, admin: Engine, make_services
) -> None:
    svc = make_services(
        settings=Settings(data_dir=tmp_path / "data", database_url=pg_url), registry=scripted_registry({})
    )
    run_ids = [
        intake.file_desk_ticket(svc.context, f"User {n} can't connect", "", "bob@example.com", str(1000 + n))[
            1
        ]
        for n in range(RUNS)
    ]
    env = {
        "CONNBOT_DATA_DIR": str(tmp_path / "data"),
        "CONNBOT_DATABASE_URL": _named(pg_url, "worker"),
        "CONNBOT_SWEEP_SECONDS": "0.5",
        "CONNBOT_LEASE_SECONDS": "2",
        "TEST_SCRIPT": json.dumps(SCRIPT),
        "TEST_LOG": str(tmp_path / "actions.log"),
        "TEST_DELAY": "0.1",  # long enough that the runs are still worked through several restarts
    }

    def ended() -> int:  # runs ended with every effect made (the close on the ticket included)
        with svc.store.tx() as s:
            waiting = set(s.scalars(select(Effect.run_id).where(Effect.state == "pending")))
            return sum(1 for r in run_ids if s.get(Run, r).state == "ended" and r not in waiting)

    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = start_worker(env, log=out)
    restarts = 0
    try:
        wait_for(lambda: ended() > 0, 30, "the worker to end a first run")
        while ended() < RUNS and restarts < 5:  # cut while it works, again and again
            restarts += _restart(admin, "worker") > 0
            time.sleep(0.4)
        wait_for(lambda: ended() == RUNS, 60, "every run to end after the restarts")
        assert worker.poll() is None, "the worker did not crash:\n" + log.read_text(errors="replace")[-2000:]
    finally:
        stop(worker)
    assert restarts >= 3, "the database was restarted while runs were still being worked"
    said = log.read_text(errors="replace")
    assert "its work item failed, tried again in 1 s: " in said
    assert "Traceback" not in said and "[parameters:" not in said, (
        "said in a line, without the statement's values"
    )

    with svc.store.tx() as s:
        for run in (s.get(Run, r) for r in run_ids):
            assert run.end_kind == "close" and run.ticket.status == "closed"
            assert [r.step for r in run.steps] == PATH, f"run {run.id}: each step recorded once, in order"
        markers = Counter(s.scalars(select(Comment.marker)))
    assert set(markers) == {f"run:{r}:{m}" for r in run_ids for m in ("start", "end")}, "no comment lost"
    assert max(markers.values()) == 1, "no comment made twice"
