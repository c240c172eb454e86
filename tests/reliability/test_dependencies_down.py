"""Dependencies down at start: with the database or the queue unreachable, /readyz says which and
answers 503; web and worker processes keep retrying at a calm pace (no crash loop, no stream of
tracebacks) and recover by themselves once the dependency is back."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bot.runs import intake
from bot.settings import Settings
from bot.state.models import Run
from bot.web.app import create_app
from tests.conftest import PG_ADMIN_URL
from tests.fakes.adapters import scripted_registry
from tests.reliability.procs import TcpProxy, free_port, start_web, start_worker, stop, wait_for

SCRIPT = {"app.get_status": "failed", "app.reconnect": "reconnected"}


def test_readyz_names_what_is_down(tmp_path: Path, make_services) -> None:
    dead = free_port()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"postgresql://postgres@127.0.0.1:{dead}/test",
        queue_url=f"redis://127.0.0.1:{dead}/0",
    )
    from bot.services import Services

    services = Services.build(settings, registry=scripted_registry({}))
    try:
        resp = create_app(services=services).test_client().get("/readyz")
    finally:
        services.close()
    assert resp.status_code == 503
    problems = resp.get_json()["problems"]
    assert set(problems) == {"database", "queue"} and all("unreachable" in p for p in problems.values())


@pytest.fixture
def redis_port() -> int:
    return free_port()


@pytest.fixture
def redis_later(redis_port: int, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start a throwaway redis-server on `redis_port` when called; stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
@pytest.mark.redis
def test_worker_and_web_wait_for_the_queue_and_recover(
    tmp_path: Path, make_services, redis_port: int, redis_later
) -> None:
    data = tmp_path / "data"
    queue = f"redis://127.0.0.1:{redis_port}/0"
    svc_settings = Settings(data_dir=data)
    svc = make_services(settings=svc_settings, registry=scripted_registry({}))
    log = tmp_path / "worker.log"
    env = {
        "CONNBOT_DATA_DIR": str(data),
        "CONNBOT_QUEUE_URL": queue,
        "CONNBOT_SWEEP_SECONDS": "0.5",
        "TEST_SCRIPT": json.dumps(SCRIPT),
        "TEST_LOG": str(tmp_path / "actions.log"),
        "TEST_DELAY": "0",
    }
    port = free_port()
    with log.open("wb") as out:
        worker = start_worker(env, log=out)
        web = start_web(env, port, workers=1)
    try:

        def readyz() -> requests.Response | None:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except requests.RequestException:
                return None

        wait_for(lambda: readyz() is not None, 30, "gunicorn")
        resp = readyz()
        assert resp is not None and resp.status_code == 503 and set(resp.json()["problems"]) == {"queue"}
        down_since = time.monotonic()
        _, run_id = _file_while_down(svc)
        time.sleep(3)  # the worker keeps failing to reach Redis for a while
        assert worker.poll() is None and web.poll() is None, "no crash"
        tracebacks = log.read_text(errors="replace").count("Traceback")
        rate = tracebacks / (time.monotonic() - down_since)
        assert rate < 1, f"{tracebacks} tracebacks in 3 s: the worker spins on the outage"
        redis_later()
        wait_for(lambda: (r := readyz()) is not None and r.status_code == 200, 30, "/readyz to recover")

        wait_for(
            lambda: run_ended(svc, run_id),
            30,
            "the worker to recover and run the ticket filed during the outage",
        )
    finally:
        stop(worker)
        stop(web)


def run_ended(svc, run_id: int) -> bool:  # type: ignore[no-untyped-def]
    with svc.store.tx() as s:
        return s.get(Run, run_id).state == "ended"


def _file_while_down(svc):  # type: ignore[no-untyped-def]
    """File a desk ticket while the queue is down: stored, its wake-up lost (the sweeper finds it)."""
    return intake.file_desk_ticket(svc.context, "Bob can't connect", "", "bob@example.com", "1002")


@pytest.mark.slow
@pytest.mark.postgres
def test_worker_waits_for_the_database_and_recovers(tmp_path: Path, pg_url: str, make_services) -> None:
    real = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    svc = make_services(settings=real, registry=scripted_registry({}))
    _, run_id = intake.file_desk_ticket(svc.context, "Bob can't connect", "", "bob@example.com", "1002")
    port = free_port()
    behind_proxy = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    log = tmp_path / "worker.log"
    env = {
        "CONNBOT_DATA_DIR": str(tmp_path / "data"),
        "CONNBOT_DATABASE_URL": behind_proxy,
        "CONNBOT_SWEEP_SECONDS": "0.5",
        "TEST_SCRIPT": json.dumps(SCRIPT),
        "TEST_LOG": str(tmp_path / "actions.log"),
        "TEST_DELAY": "0",
    }
    with log.open("wb") as out:
        worker = start_worker(env, log=out)
    proxy = None
    try:
        time.sleep(3)
        assert worker.poll() is None, (
            "no crash while the database is down:\n" + log.read_text(errors="replace")[-2000:]
        )
        assert log.read_text(errors="replace").count("Traceback") < 3, "a calm pace of retries, said once"
        proxy = TcpProxy(int(PG_ADMIN_URL.rsplit(":", 1)[1].split("/")[0]), port=port)
        proxy.start()

        wait_for(lambda: run_ended(svc, run_id), 30, "the worker to run the ticket once the database is back")
    finally:
        stop(worker)
        if proxy:
            proxy.close()
