"""Recovery survives a worker SIGKILLed in the middle of it: every held ticket is re-checked and
closed once, none skipped; only a re-check in flight at the kill is made again (its result was never
committed), by the worker that takes over."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.runs import incidents, intake
from bot.settings import Settings
from bot.state.models import Comment, Incident, Run, StepResult
from tests.fakes.adapters import scripted_registry
from tests.reliability.procs import kill, start_worker, stop, wait_for

TICKETS, BATCH = 30, 4


@pytest.mark.slow
def test_a_worker_killed_during_recovery_recloses_nothing_and_skips_nothing(
    settings: Settings, make_services, tmp_path: Path
) -> None:
    svc = make_services(settings=settings, registry=scripted_registry({}))
    with svc.store.tx() as s:
        inc = incidents.open_incident(
            svc.context, s, "", "asterisk_down", "Asterisk is down", "Asterisk does not answer", {}, "a test"
        )
        incident_id = inc.id
    run_ids = [
        intake.file_desk_ticket(svc.context, f"User {n} can't connect", "", "", str(3000 + n))[1]
        for n in range(TICKETS)
    ]
    with svc.store.tx() as s:
        assert {s.get(Run, r).state for r in run_ids} == {"held"}
    log = tmp_path / "actions.log"
    env = {
        "CONNBOT_DATA_DIR": str(settings.data_dir),
        "CONNBOT_LEASE_SECONDS": "2",
        "CONNBOT_SWEEP_SECONDS": "0.3",
        "CONNBOT_INCIDENT_CHECK_SECONDS": "0.1",
        "CONNBOT_INCIDENT_BATCH": str(BATCH),
        "CONNBOT_HEALTH_CHECK_SECONDS": "0",
        "TEST_SCRIPT": json.dumps({"pbx.health": "up", "app.recheck": "registered"}),
        "TEST_LOG": str(log),
        "TEST_DELAY": "0.3",
    }

    def ended() -> int:
        with svc.store.tx() as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(Run).where(Run.id.in_(run_ids), Run.state == "ended")
                )
            )

    worker = start_worker(env)
    try:
        wait_for(lambda: ended() >= 2 * BATCH, 60, "the first batches to be re-checked")
        kill(worker)  # mid-recovery: some re-checked, the rest held
        settled_at_kill = ended()
        assert settled_at_kill < TICKETS
        time.sleep(0.5)
        worker = start_worker(env)
        wait_for(lambda: ended() == TICKETS, 90, "every ticket to be re-checked after the restart")
        wait_for(lambda: _closed(svc) == TICKETS, 30, "every closing comment to be written")
    finally:
        stop(worker)

    with svc.store.tx() as s:
        for run_id in run_ids:
            run = s.get(Run, run_id)
            assert (run.end_kind, run.ticket.status) == ("close", "closed")
            assert [r.step for r in run.steps] == ["incident_recheck"], f"run {run_id}: re-checked once"
        markers = Counter(s.scalars(select(Comment.marker)))
        inc = s.get(Incident, incident_id)
        assert inc.state == "closed" and "30 closed after their app registered again" in inc.close_reason
        assert s.scalar(select(func.count()).select_from(StepResult)) == TICKETS
    assert max(markers.values()) == 1, "no comment made twice"
    assert {m for m in markers if m.endswith(":end")} == {f"run:{r}:end" for r in run_ids}
    started = Counter(
        line.split()[1]
        for line in log.read_text().splitlines()
        if line.endswith("app.recheck") and line[:5] == "start"
    )
    assert set(started) == {f"DESK-{n}" for n in range(1, TICKETS + 1)}, "none skipped"
    again = [key for key, n in started.items() if n > 1]
    assert len(again) <= BATCH, f"only the batch in flight at the kill is re-checked again: {again}"


def _closed(svc) -> int:
    with svc.store.tx() as s:
        return int(
            s.scalar(select(func.count()).select_from(Comment).where(Comment.marker.like("run:%:end")))
        )
