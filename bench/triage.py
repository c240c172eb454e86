"""Items 2 and 3: triage throughput with 1, 2 and 4 worker processes whose adapters take 20 ms a
call, the engine's own time per step, and a worker's memory as runs accumulate.

Sizes as the issue asks (1,000 tickets per triage configuration, 10,000 runs for memory) fit
`make bench` in about 8 minutes on 2 CPUs. RSS is sampled along the way, so a leak would show as a
slope per run after warm-up.

`compare` is issue 16's storm: 500 desk tickets filed at once, 1 and 2 workers, 20 ms adapters, ROUNDS
rounds: runs per second, statements, commits and CPU per step, and each ticket's time to its first
comment. `make bench` runs this code; with the checkout of the code before a change in BENCH_BEFORE,
the two run alternately. `python -m bench.run triage_compare` runs it alone and rewrites its part of
results.json and RESULTS.md."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    BIN,
    ROOT,
    Backend,
    CpuMeter,
    backend,
    count_rows,
    env_with,
    load,
    percentile,
    upgrade,
)

# Five automated steps, then closed: status, reconnect, error, config (wrong port), fix.
LONG = {
    "app.get_status": "failed",
    "app.reconnect": "still_failing",
    "app.get_last_error": "found",
    "app.check_config": "wrong_port",
    "app.fix_config": "fixed_connected",
}
# Two automated steps, then closed: the shortest run (for the memory benchmark).
SHORT = {"app.get_status": "failed", "app.reconnect": "reconnected"}
TICKETS, DELAY, WORKERS = 1000, 0.020, (1, 2, 4)
STORM, STORM_WORKERS, ROUNDS = 500, (1, 2), 3
MEMORY_AT = (100, 1000, 5000, 10_000)
DONE_SQL = "SELECT count(*) FROM runs WHERE state IN ('ended', 'waiting')"


def file_tickets(env: dict[str, str], n: int, first: int = 0) -> None:
    """File `n` desk tickets in this process (each enqueues its run), as a burst would arrive."""
    from bot.runs import intake
    from bot.services import Services
    from bot.settings import load_settings

    svc = Services.build(load_settings(env), environ=env)
    try:
        for i in range(first, first + n):
            intake.file_desk_ticket(
                svc.context, f"User {i} can't connect", "", "user@example.com", str(1000 + i)
            )
    finally:
        svc.close()


@contextmanager
def workers(
    n: int, env: dict[str, str], script: dict[str, str], delay: float, workdir: Path, root: Path = ROOT
) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[Path], Path]]:
    """`n` bench workers, built and waiting; touch the yielded go file to let them take work. `root`:
    the checkout whose connbot they run."""
    go = workdir / f"go-{time.monotonic_ns()}"
    stats = [workdir / f"stats-{go.name}-{i}.json" for i in range(n)]
    with open(workdir / "worker.log", "ab") as log:  # each worker gets its own copy of the descriptor
        procs = [
            subprocess.Popen(
                [str(BIN / "python"), "-m", "bench.worker"],
                cwd=root,
                env={
                    **env,
                    "PYTHONPATH": str(root),
                    "BENCH_SCRIPT": json.dumps(script),
                    "BENCH_DELAY": str(delay),
                    "BENCH_GO": str(go),
                    "BENCH_STATS": str(path),
                },
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for path in stats
        ]
    try:
        deadline = time.monotonic() + 60
        while not all(p.exists() for p in stats):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"bench workers did not start; see {workdir / 'worker.log'}")
            time.sleep(0.05)
        yield procs, stats, go
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_done(be: Backend, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count_rows(be.url, DONE_SQL) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"runs not done within {timeout} s")
        time.sleep(0.05)


def throughput(
    kind: str, n_workers: int, workdir: Path, tickets: int = TICKETS, root: Path = ROOT
) -> dict[str, Any]:
    """`tickets` filed at once, then `n_workers` workers (of the checkout `root`) let go; time until every
    run ended or asks, and each ticket's time to its first comment."""
    with backend(kind, workdir) as be:
        env = env_with(be.env)
        upgrade(env)
        file_tickets(env, tickets)
        with workers(n_workers, env, LONG, DELAY, workdir, root) as (_, stats, go):
            t0, cpu, load_before = time.perf_counter(), CpuMeter().start(), load()
            went = dt.datetime.now(dt.UTC)
            go.touch()
            wait_done(be, tickets, 600)
            elapsed, busy = time.perf_counter() - t0, cpu.busy()
            time.sleep(0.5)  # the workers' last tallies
            tallies = [json.loads(p.read_text()) for p in stats]
        steps = count_rows(be.url, "SELECT count(*) FROM step_results")
        ended = count_rows(be.url, "SELECT count(*) FROM runs WHERE state = 'ended'")
        first = [(at - went).total_seconds() for at in first_comments(be.url)]
    task_s = sum(t["task_seconds"] for t in tallies)
    adapter_s = sum(t["adapter_seconds"] for t in tallies)
    return {
        "backend": kind,
        "workers": n_workers,
        "runs": tickets,
        "ended": ended,
        "steps": steps,
        "cpu_busy": busy,
        "load": [load_before, load()],
        "cpu_ms_per_step": round(sum(t["task_cpu_seconds"] for t in tallies) / steps * 1000, 2),
        "seconds": round(elapsed, 2),
        "runs_per_s": round(tickets / elapsed, 1),
        "runs_per_s_per_worker": round(tickets / elapsed / n_workers, 1),
        "adapter_calls": sum(t["adapter_calls"] for t in tallies),
        "overhead_ms_per_step": round((task_s - adapter_s) / steps * 1000, 2),
        "statements_per_step": round(sum(t["statements"] for t in tallies) / steps, 1),
        "commits_per_step": round(sum(t["commits"] for t in tallies) / steps, 1),
        "first_comment_p50_s": round(percentile(first, 50), 2),
        "first_comment_p99_s": round(percentile(first, 99), 2),
        "first_comments": len(first),
    }


def first_comments(url: str) -> list[dt.datetime]:
    """When each ticket got its first comment."""
    from sqlalchemy import create_engine, func, select

    from bot.state.models import Comment

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            first = func.min(Comment.created_at, type_=Comment.created_at.type)
            return [at for (at,) in conn.execute(select(first).group_by(Comment.ticket_id))]
    finally:
        engine.dispose()


FIGURES = (
    "runs_per_s",
    "cpu_busy",
    "cpu_ms_per_step",
    "overhead_ms_per_step",
    "statements_per_step",
    "commits_per_step",
    "first_comment_p50_s",
    "first_comment_p99_s",
)


def compare(workdir: Path, kinds: tuple[str, ...] = ("sqlite", "postgres+redis")) -> dict[str, Any]:
    """The storm of STORM tickets for each backend and number of workers, ROUNDS rounds, with this
    code ("after") and, when BENCH_BEFORE names a checkout, the code before, alternately; every run's
    figures and the medians with ranges."""
    before = Path(os.environ["BENCH_BEFORE"]).resolve() if os.environ.get("BENCH_BEFORE") else None
    codes = {"before": before, "after": ROOT} if before is not None else {"after": ROOT}
    rounds: list[dict[str, Any]] = []
    for r in range(1, ROUNDS + 1):
        for kind in kinds:
            for n in STORM_WORKERS:
                for side, root in codes.items():
                    print(f"bench: triage compare round {r} {kind} {n} worker(s) {side}", file=sys.stderr)
                    row = throughput(kind, n, workdir, STORM, root)
                    rounds.append({**row, "round": r, "side": side})
    median: dict[str, Any] = {}
    for kind in kinds:
        for n in STORM_WORKERS:
            for side in codes:
                rows = [x for x in rounds if (x["backend"], x["workers"], x["side"]) == (kind, n, side)]
                median[f"{kind}|{n}|{side}"] = {
                    k: {
                        "median": statistics.median(x[k] for x in rows),
                        "min": min(x[k] for x in rows),
                        "max": max(x[k] for x in rows),
                    }
                    for k in FIGURES
                }
    return {
        "before": _commit(before) if before is not None else None,
        "tickets": STORM,
        "rounds": rounds,
        "median": median,
    }


def _commit(checkout: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def memory(kind: str, workdir: Path, at: tuple[int, ...] = MEMORY_AT) -> dict[str, Any]:
    """One worker, adapters answering at once: its RSS after each number of runs in `at`. Tickets are
    filed in batches while it works, so it never runs dry for long."""
    with backend(kind, workdir) as be:
        env = env_with(be.env)
        upgrade(env)
        file_tickets(env, at[0])
        with workers(1, env, SHORT, 0.0, workdir) as (procs, _, go):
            pid, samples, filed = procs[0].pid, [], at[0]
            t0, load_before = time.perf_counter(), load()
            go.touch()
            for n in at:
                if n > filed:
                    file_tickets(env, n - filed, filed)
                    filed = n
                wait_done(be, n, 600)
                samples.append({"runs": n, "rss_mb": round(rss_kb(pid) / 1024, 1)})
            elapsed = time.perf_counter() - t0
    first, last = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    # After the first batch (imports, caches, connection pools warm), growth per run is the leak rate.
    per_run_kb = (last - samples[1]["rss_mb"]) * 1024 / (samples[-1]["runs"] - samples[1]["runs"])
    return {
        "backend": kind,
        "samples": samples,
        "first": samples[0]["runs"],
        "total": samples[-1]["runs"],
        "rss_first_mb": first,
        "rss_total_mb": last,
        "growth": round(last / first - 1, 3),
        "kb_per_run_after_warmup": round(per_run_kb, 3),
        "rss_10000_mb_extrapolated": round(last + per_run_kb * (10_000 - samples[-1]["runs"]) / 1024, 1),
        "seconds": round(elapsed, 1),
        "load": [load_before, load()],
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="connbot-bench-") as tmp:
        if sys.argv[1] == "memory":
            print(
                json.dumps(memory(sys.argv[2], Path(tmp), tuple(int(n) for n in sys.argv[3:]) or MEMORY_AT))
            )
        else:
            print(json.dumps(throughput(sys.argv[2], int(sys.argv[3]), Path(tmp))))
