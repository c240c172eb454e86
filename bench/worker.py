"""A real connbot worker process for the triage benchmarks: scripted adapters that sleep a fixed
time per call, and a tally of where the time goes.

BENCH_SCRIPT is a JSON object {action: outcome}; BENCH_DELAY the seconds each call sleeps;
BENCH_GO a file the worker waits for before it takes work (so start-up is not timed);
BENCH_STATS a file it rewrites every 0.2 s with {tasks, task_seconds, task_cpu_seconds, adapter_calls,
adapter_seconds, statements, commits}. Task time is measured with Huey's executing/complete signals
in the thread that runs the task, as wall time and as the thread's CPU time (wall time also counts
waiting for the GIL, a CPU or a lock); adapter time with perf_counter around the adapter call.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from huey import signals
from sqlalchemy import event

from bot.services import Services
from bot.settings import load_settings
from integrations.base import ActionInput, ActionResult, ActionSpec, Adapter, Registry, discover
from integrations.settings import Sections


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: dict[int, tuple[float, float]] = {}
        self.tasks = self.adapter_calls = self.statements = self.commits = 0
        self.task_seconds = self.task_cpu_seconds = self.adapter_seconds = 0.0

    def adapter(self, seconds: float) -> None:
        with self.lock:
            self.adapter_calls += 1
            self.adapter_seconds += seconds

    def statement(self, *_: Any) -> None:
        with self.lock:
            self.statements += 1

    def commit(self, *_: Any) -> None:
        with self.lock:
            self.commits += 1

    def begin(self) -> None:
        self.started[threading.get_ident()] = (time.perf_counter(), time.thread_time())

    def end(self) -> None:
        wall, cpu = self.started.pop(threading.get_ident())
        took, cpu_took = time.perf_counter() - wall, time.thread_time() - cpu
        with self.lock:
            self.tasks += 1
            self.task_seconds += took
            self.task_cpu_seconds += cpu_took

    def dump(self, path: Path) -> None:
        with self.lock:
            data = {
                "tasks": self.tasks,
                "task_seconds": self.task_seconds,
                "task_cpu_seconds": self.task_cpu_seconds,
                "statements": self.statements,
                "commits": self.commits,
                "adapter_calls": self.adapter_calls,
                "adapter_seconds": self.adapter_seconds,
            }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)


class SleepyAdapter(Adapter):
    """Answers each action's scripted outcome after `delay` seconds (a remote system's latency)."""

    name = "sleepy"

    def __init__(self, name: str, script: dict[str, str], delay: float, tally: Tally):
        self.name = name  # type: ignore[misc]
        self.script, self.delay, self.tally = script, delay, tally

    @classmethod
    def configure(cls, sections: Sections) -> None:
        return None

    def run(self, spec: ActionSpec, inp: ActionInput) -> ActionResult:
        t0 = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        outcome = self.script[spec.name]
        self.tally.adapter(time.perf_counter() - t0)
        return ActionResult(outcome=outcome, summary=f"{spec.name}: {outcome}")


def main() -> None:
    tally = Tally()
    script: dict[str, str] = json.loads(os.environ["BENCH_SCRIPT"])
    delay = float(os.environ["BENCH_DELAY"])
    systems = sorted({action.split(".")[0] for action in script})
    registry = Registry(discover(), [SleepyAdapter(s, script, delay, tally) for s in systems])
    settings = load_settings()
    services = Services.build(settings, registry=registry)
    huey = services.queue.huey
    event.listen(services.store.engine, "before_cursor_execute", tally.statement)
    event.listen(services.store.engine, "commit", tally.commit)
    huey.signal(signals.SIGNAL_EXECUTING)(lambda *_: tally.begin())
    huey.signal(signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR)(lambda *_: tally.end())
    stats, go = Path(os.environ["BENCH_STATS"]), Path(os.environ["BENCH_GO"])

    def report() -> None:
        while True:
            tally.dump(stats)
            time.sleep(0.2)

    threading.Thread(target=report, daemon=True).start()
    while not go.exists():
        time.sleep(0.01)
    services.queue.consumer(settings.worker_threads, in_process=False).run()


if __name__ == "__main__":
    main()
