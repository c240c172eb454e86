"""What every benchmark shares: the machine, backends (SQLite files, or a fresh PostgreSQL schema
plus a flushed Redis db), server processes on loopback, and percentiles."""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/13"  # the tests use db 15; the bench flushes its own
# issue 16's gunicorn settings for every intake comparison (the Procfile's web command runs 64 threads a
# process instead, so that slow clients leave threads for everyone else: README, guarantee 12)
GUNICORN = ["--workers", "2", "--threads", "4"]


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, Python and the date, for RESULTS.md."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load() -> float:
    """The 1-minute load average now (the machine is shared: say what else was running)."""
    return round(os.getloadavg()[0], 2)


def _cpu_ticks() -> tuple[int, int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4], fields[7]  # all, idle + iowait, steal


class CpuMeter:
    """How the CPUs were used between `start()` and now (from /proc/stat): `busy()`, a benchmark
    that keeps every CPU busy cannot go faster by adding processes; `stolen()`, the time the
    hypervisor gave another machine (seen here: the p99 of a fixed-rate run follows it)."""

    def start(self) -> CpuMeter:
        self.t0 = _cpu_ticks()
        return self

    def _since(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.t0, _cpu_ticks(), strict=True))

    def busy(self) -> float:
        """The share of CPU time not idle (0..1), stolen time included."""
        total, idle, _ = self._since()
        return round(1 - idle / total, 3) if total else 0.0

    def stolen(self) -> float:
        """The share of CPU time the hypervisor took (0..1)."""
        total, _, steal = self._since()
        return round(steal / total, 3) if total else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    """Where connbot keeps its state for one benchmark: `env` holds the CONNBOT_* names."""

    name: str
    env: dict[str, str]
    url: str  # SQLAlchemy URL, for the bench's own checks
    cleanup: list[object] = field(default_factory=list)

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"


@contextmanager
def backend(name: str, workdir: Path) -> Iterator[Backend]:
    """`sqlite`: files under `workdir`; `postgres+redis`: a fresh schema and a flushed Redis db, dropped
    after."""
    data = workdir / f"data-{uuid.uuid4().hex[:6]}"
    if name == "sqlite":
        yield Backend(name, {"CONNBOT_DATA_DIR": str(data)}, f"sqlite:///{data / 'connbot.db'}")
        return
    import redis
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    rds = redis.Redis.from_url(REDIS_URL)
    rds.flushdb()
    url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    try:
        yield Backend(
            name,
            {"CONNBOT_DATA_DIR": str(data), "CONNBOT_DATABASE_URL": url, "CONNBOT_QUEUE_URL": REDIS_URL},
            url.replace("postgresql://", "postgresql+psycopg://"),
        )
    finally:
        rds.flushdb()
        rds.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def env_with(*parts: dict[str, str]) -> dict[str, str]:
    """This process's environment without any CONNBOT_* of the machine, plus `parts`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONNBOT_")}
    for part in parts:
        base.update(part)
    base["PYTHONPATH"] = str(ROOT)
    return base


def upgrade(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "connbot"), "db", "upgrade"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.1)


@dataclass(frozen=True)
class Served:
    """A gunicorn serving on loopback: its base URL, and its master's pid (for its workers' CPU time)."""

    base: str
    pid: int

    def worker_ticks(self) -> list[int]:
        """The CPU time (user + system, in clock ticks) each worker process has used so far."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        ticks = []
        for child in children:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(") ", 1)[1].split()
            ticks.append(int(fields[11]) + int(fields[12]))
        return ticks


@contextmanager
def gunicorn(app: str, env: dict[str, str], log: Path, cwd: Path = ROOT) -> Iterator[Served]:
    """gunicorn with the GUNICORN settings serving `app` (from `cwd`) on a free loopback port."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", *GUNICORN, app],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz")
        yield Served(base, proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def count_rows(url: str, sql: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()
