"""Scale-out on the real PostgreSQL and Redis: two gunicorn processes (the Procfile's web command)
and three workers; 500 tickets filed at once through the HTTP API. 500 runs, each ended once, no
effect made twice, no deadlock; one worker killed mid-way, the others finish its runs."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from bot.settings import Settings
from bot.state.models import Comment, Effect, Run, StepResult
from tests.fakes.adapters import scripted_registry
from tests.reliability.procs import free_port, kill, start_web, start_worker, stop, wait_for

TICKETS = 500
SCRIPT = {"app.get_status": "failed", "app.reconnect": "reconnected"}
PATH = ["check_status", "force_reconnect", "close_transient"]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_500_tickets_on_2_web_and_3_worker_processes(
    pg_url: str, redis_url: str, tmp_path: Path, make_services
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url, queue_url=redis_url)
    svc = make_services(settings=settings, registry=scripted_registry({}))
    env = {
        "CONNBOT_DATABASE_URL": pg_url,
        "CONNBOT_QUEUE_URL": redis_url,
        "CONNBOT_DATA_DIR": str(tmp_path / "data"),
        "CONNBOT_LEASE_SECONDS": "3",
        "CONNBOT_SWEEP_SECONDS": "1",
        "CONNBOT_WORKER_THREADS": "4",
        "TEST_SCRIPT": json.dumps(SCRIPT),
        "TEST_LOG": str(tmp_path / "actions.log"),
        "TEST_DELAY": "0.01",
    }
    port = free_port()
    web = start_web(env, port, workers=2)
    workers = [start_worker(env) for _ in range(3)]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), 30, "gunicorn")
        http = requests.Session()
        http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

        def file(n: int) -> int:
            resp = http.post(
                f"{base}/api/tickets",
                json={"summary": f"User {n} can't connect", "user": str(1000 + n)},
                timeout=30,
            )
            assert resp.status_code == 201, resp.text
            return int(resp.json()["run"])

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            run_ids = list(pool.map(file, range(TICKETS)))
        assert len(set(run_ids)) == TICKETS

        def ended() -> int:
            with svc.store.tx() as s:
                return s.scalar(select(func.count()).select_from(Run).where(Run.state == "ended")) or 0

        wait_for(lambda: ended() >= TICKETS // 3, 120, "a third of the runs to end")
        kill(workers.pop(0))  # mid-way: its leases expire and the other two take its runs over

        def settled() -> (
            bool
        ):  # every run ended and every effect made (a killed worker's are made by the sweeper)
            with svc.store.tx() as s:
                return not s.scalar(select(func.count()).select_from(Effect).where(Effect.state != "done"))

        wait_for(lambda: ended() == TICKETS and settled(), 150, "every run to end", every=0.5)
        elapsed = time.monotonic() - started
    finally:
        stop(web)
        for w in workers:
            stop(w)

    with svc.store.tx() as s:
        runs = list(s.scalars(select(Run)))
        assert len(runs) == TICKETS and all(r.end_kind == "close" for r in runs)
        steps = Counter(s.execute(select(StepResult.run_id, StepResult.step)).all())
        assert max(steps.values()) == 1 and len(steps) == TICKETS * len(PATH), (
            "each step recorded once per run"
        )
        assert s.scalar(select(func.count()).select_from(Effect).where(Effect.state != "done")) == 0
        markers = Counter(s.scalars(select(Comment.marker)))
    assert len(markers) == TICKETS * 2 and max(markers.values()) == 1, (
        "start and end comment, once each, per ticket"
    )
    print(f"500 runs in {elapsed:.1f} s")


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
