"""A worker killed between steps: a new worker finishes the run, and no finished step runs again.
On the embedded defaults (SQLite files) and on PostgreSQL + Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.runs import intake
from bot.settings import Settings
from bot.state.models import Effect, Run
from tests.fakes.adapters import scripted_registry

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = {
    "app.get_status": "failed",
    "app.reconnect": "still_failing",
    "app.get_last_error": "found",
    "app.check_config": "wrong_port",
    "app.fix_config": "fixed_connected",
}
PATH = ["check_status", "force_reconnect", "record_error", "check_config", "fix_config", "close_config_fixed"]


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ended_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("end ")] if log.exists() else []


def kill_between_steps_and_resume(
    settings: Settings, env_settings: dict[str, str], make_services, tmp_path: Path
) -> None:
    svc = make_services(settings=settings, registry=scripted_registry({}))
    ticket, run_id = intake.file_desk_ticket(svc.context, "Bob can't connect", "", "bob@example.com", "1002")
    log = tmp_path / "actions.log"
    env = {
        **os.environ,
        **env_settings,
        "TEST_SCRIPT": json.dumps(SCRIPT),
        "TEST_LOG": str(log),
        "TEST_DELAY": "0.3",
        "CONNBOT_LEASE_SECONDS": "2",
        "CONNBOT_SWEEP_SECONDS": "0.5",
        "PYTHONPATH": str(ROOT),
    }

    first = start_worker(env)
    try:
        wait_for(lambda: len(ended_lines(log)) >= 2, 30, "two steps done by the first worker")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    with svc.store.tx() as s:  # the steps whose results were committed before the kill
        done_before_kill = [f"{ticket.key} {r.action}" for r in s.get(Run, run_id).steps]
    assert done_before_kill, "the kill came after at least one committed step"

    second = start_worker(env)
    try:

        def ended() -> bool:  # the end committed, and the effects of the end (closing the ticket) made
            with svc.store.tx() as s:
                pending = s.scalar(
                    select(func.count())
                    .select_from(Effect)
                    .where(Effect.run_id == run_id, Effect.state == "pending")
                )
                return s.get(Run, run_id).state == "ended" and pending == 0

        wait_for(ended, 60, "the second worker to finish the run and its effects")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)

    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        steps = [r.step for r in run.steps]
        assert run.end_kind == "close" and run.ticket.status == "closed"
        comments = Counter(c.body for c in run.ticket.comments)
    assert steps == PATH, "each step recorded once, in order"
    assert all(n == 1 for n in comments.values()), "no comment made twice"
    starts = Counter(
        line.split(" ", 1)[1] for line in log.read_text().splitlines() if line.startswith("start ")
    )
    for action in done_before_kill:
        assert starts[action] == 1, f"{action} ran again after the kill"


@pytest.mark.slow
def test_sqlite(settings: Settings, make_services, tmp_path: Path) -> None:
    env = {"CONNBOT_DATA_DIR": str(settings.data_dir)}
    kill_between_steps_and_resume(settings, env, make_services, tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_postgres_and_redis(pg_url: str, redis_url: str, tmp_path: Path, make_services) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url, queue_url=redis_url)
    env = {
        "CONNBOT_DATABASE_URL": pg_url,
        "CONNBOT_QUEUE_URL": redis_url,
        "CONNBOT_DATA_DIR": str(tmp_path / "data"),
    }
    kill_between_steps_and_resume(settings, env, make_services, tmp_path)
