"""The only module that knows the task queue (Huey): task definitions, enqueueing, the consumer.

Tasks carry ids, never objects. One task exists: `advance_run(run_id)`. The queue is a wake-up
mechanism, not the source of truth: the store is. A task that is lost (a worker killed mid-task,
Redis restarted) is found again by the sweeper, which every worker runs.

Stored events are taken from the store itself: every worker's `event_taker` processes the events not
yet processed, woken by a best-effort signal (within the process, and on PostgreSQL the INSERT's own
notice, heard by the store's `EventListener`), else looking every EVENT_POLL_SECONDS, so storing an
event is the web request's only write and only round trip. A run an event starts has its first
effects made by that same work, ahead of the queued runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from huey.api import Huey
from huey.consumer import Consumer, Scheduler, Worker
from huey.storage import RedisStorage, SqliteStorage
from redis import ConnectionPool
from sqlalchemy.orm import Session

from bot import tracing
from bot.state.outage import OUTAGE_ERRORS, Outage, said
from bot.state.store import after_commit

log = logging.getLogger(__name__)


# How long connecting to Redis, and then any one reply, may take before the call fails, unless the URL
# says (`?socket_connect_timeout=`, `?socket_timeout=`): without them, a Redis host that does not answer
# holds a thread for the kernel's TCP timeout, or for ever. Longer than huey's blocking read (1 s).
REDIS_SECONDS = 10


def make_huey(url: str) -> Huey:
    if url.startswith(("redis://", "rediss://")):
        # The URL's own options override these.
        pool = ConnectionPool.from_url(
            url, socket_connect_timeout=REDIS_SECONDS, socket_timeout=REDIS_SECONDS
        )
        return _Huey(
            "connbot", storage_class=RedisStorage, connection_pool=pool, blocking=True, read_timeout=1
        )
    filename = url.split("///", 1)[-1]
    os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
    return _Huey("connbot", storage_class=_SqliteStorage, filename=filename, timeout=30)


class _Huey(Huey):
    """Huey without revocation and results, neither of which connbot uses (its task returns nothing,
    and a run is stopped in the store, not by revoking its wake-ups). Huey looks up whether each task
    was revoked before it runs and deletes its revocation after: two round trips to Redis a task, a
    read and a write transaction on SQLite, saved."""

    def __init__(self, name: str, **kwargs: Any):
        super().__init__(name, results=False, **kwargs)

    def is_revoked(self, task: Any, timestamp: dt.datetime | None = None, peek: bool = True) -> bool:
        return False

    def delete(self, key: str) -> bool:
        # A task's revocation ("r:<task id>"), cleared after every task it ran: there is none.
        return False if key.startswith("r:") else super().delete(key)


class _SqliteStorage(SqliteStorage):
    """Huey's SQLite storage with `synchronous=NORMAL`, as the store has: in WAL mode a commit then
    survives a crash of the process without an fsync per enqueue (which serialised the webhook at
    ~2 ms a request). A wake-up lost to a power cut is found again by the sweeper: the store, not
    the queue, is the source of truth."""

    def _create_connection(self) -> sqlite3.Connection:
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


AGAIN_SECONDS = 1.0  # how soon a run's work item is tried again when it could not be done
EVENT_POLL_SECONDS = 0.25  # how often a worker looks for stored events, signalled or not
EVENT_RETRY_SECONDS = 5.0  # how long an event whose processing failed transiently is left alone
SIGNALS = 1000  # events signalled within the process and not yet taken, at most (the oldest dropped)
# Acknowledgements (a new ticket's first comment) made at once by a worker's event taker: each waits
# for the ticket system's answer, so they run side by side (bench/storm.py, a 0.3 s Jira).
ACK_THREADS = 8


@dataclass(frozen=True)
class Tasks:
    """What the queue's task and the event taker do, given by the composition root:
    `advance(run_id, owner)` advances a run (False when another worker holds it), `process(event_id)`
    processes a stored event (raising what may pass) and returns the run it started,
    `acknowledge(run_id)` makes such a run's first effects and wakes it, `pending(skip)` lists the
    stored events still to process."""

    advance: Callable[[int, str], bool]
    process: Callable[[int], int | None]
    acknowledge: Callable[[int], None]
    pending: Callable[[Collection[int]], list[int]]


class Queue:
    """Huey, connbot's task and the event taker. `bind()` gives them what they do."""

    def __init__(self, url: str):
        self.url = url
        self.huey = make_huey(url)
        self._tasks: Tasks | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

        @self.huey.task(name="advance_run")
        def advance_run(run_id: int, trace: str | None = None) -> None:
            owner = f"{self.owner}:{threading.get_ident()}"
            with tracing.continued(trace), tracing.span("connbot.advance_run", run=run_id):
                try:
                    advanced = self.tasks.advance(run_id, owner)
                except OUTAGE_ERRORS as exc:  # e.g. the database restarted under the work item
                    log.warning(
                        "run %s: its work item failed, tried again in %g s: %s",
                        run_id,
                        AGAIN_SECONDS,
                        said(exc),
                    )
                    advanced = False
                if not advanced:
                    # Another worker holds the run, or the work failed: look again shortly so no
                    # wake-up is lost (and, should the queue be away too, the sweeper finds the run).
                    self.advance(run_id, delay=AGAIN_SECONDS)

        self._advance = advance_run
        # Within the process: the events stored here since the taker last looked, with their traces.
        self._signalled: deque[tuple[int, str | None]] = deque(maxlen=SIGNALS)
        self._signal = threading.Event()
        self._retry_at: dict[int, float] = {}
        self._acks: ThreadPoolExecutor | None = None

    def bind(self, tasks: Tasks) -> None:
        self._tasks = tasks

    @property
    def tasks(self) -> Tasks:
        if self._tasks is None:
            raise RuntimeError("queue tasks ran before Queue.bind()")
        return self._tasks

    # Each task carries the trace of the span that enqueued it, if tracing is on (`bot.tracing`).
    def advance(self, run_id: int, delay: float | None = None) -> None:
        if delay:
            self._advance.schedule(args=(run_id, tracing.carrier()), delay=delay)
        else:
            self._advance(run_id, tracing.carrier())

    def _take(self, event_id: int, inline: bool) -> None:
        """Process a stored event; a run it starts is acknowledged at once: in this thread (`inline`),
        else by one of ACK_THREADS beside it, so that the next event need not wait for the ticket
        system's answer. An acknowledgement lost with its process is made when the sweeper wakes the
        run (its effect is stored)."""
        started = self.tasks.process(event_id)
        if started is None:
            return
        if inline:
            self.tasks.acknowledge(started)
            return
        if self._acks is None:
            self._acks = ThreadPoolExecutor(max_workers=ACK_THREADS, thread_name_prefix="connbot-ack")
        self._acks.submit(self._acknowledge, started)

    def _acknowledge(self, run_id: int) -> None:
        try:
            self.tasks.acknowledge(run_id)
        except OUTAGE_ERRORS as exc:  # the sweeper wakes the run later; its effect is stored
            log.warning("run %s: first effects not made yet: %s", run_id, said(exc))
        except Exception:
            log.exception("run %s: making its first effects failed; the sweeper wakes it again", run_id)

    def advance_after_commit(self, s: Session, run_id: int) -> None:
        after_commit(s, lambda: self.advance(run_id))

    def wake_event(self, event_id: int, trace: str | None = None) -> None:
        """Best effort: tell this process's event taker that a stored event waits, within the trace
        `trace` (by default the current span's). Never fails; a signal nobody takes (a web process
        without a worker) is dropped after SIGNALS more, and the other workers' takers find the
        event when they look (`event_taker`) or, on PostgreSQL, when the INSERT's notice reaches them."""
        self._signalled.append((event_id, trace if trace is not None else tracing.carrier()))
        if not self._signal.is_set():  # set and not yet cleared: the taker has yet to look, and will see it
            self._signal.set()

    def take_events(self, inline: bool = False) -> int:
        """Process the stored events not yet processed (signalled ones within the trace of the request
        that stored them); one that fails for a reason that may pass is left for EVENT_RETRY_SECONDS.
        Returns how many were offered."""
        traces: dict[int, str | None] = {}
        while self._signalled:
            event_id, trace = self._signalled.popleft()
            traces[event_id] = trace
        now = time.monotonic()
        self._retry_at = {k: t for k, t in self._retry_at.items() if t > now}
        done = 0
        for event_id in self.tasks.pending(list(self._retry_at)):
            with (
                tracing.continued(traces.get(event_id)),
                tracing.span("connbot.process_event", event=event_id),
            ):
                try:
                    self._take(event_id, inline)
                except OUTAGE_ERRORS as exc:  # the database or the queue is away: said in a line
                    self._retry_at[event_id] = time.monotonic() + EVENT_RETRY_SECONDS
                    log.warning("event %s: processing failed, tried again later: %s", event_id, said(exc))
                except Exception:  # a bug: loudly, with its traceback; the event is tried again later
                    self._retry_at[event_id] = time.monotonic() + EVENT_RETRY_SECONDS
                    log.exception("event %s: processing failed, tried again later", event_id)
            done += 1
        return done

    def depth(self) -> int:
        return int(self.huey.pending_count())

    def waiting(self) -> bool:
        return self.depth() > 0

    def ping(self) -> None:
        """Raise if the queue's storage cannot be reached."""
        self.huey.pending_count()

    def run_pending(self) -> int:
        """Process the stored events and run every task that is due now, in this thread (tests and
        `connbot runs resume`)."""
        done = self.take_events(inline=True)
        while (task := self.huey.dequeue()) is not None:
            self.huey.execute(task)
            done += 1
        return done

    def event_taker(self) -> Sweeper:
        """The thread that takes stored events in a worker: at once when signalled (`wake_event`),
        else every EVENT_POLL_SECONDS. A new ticket's first comment (`Tasks.acknowledge`) so never
        waits behind the runs queued before it."""
        return Sweeper(self.take_events, EVENT_POLL_SECONDS, "stored events", self._signal)

    def consumer(self, threads: int, in_process: bool) -> Consumer:
        """A Huey consumer. In-process consumers leave signal handling to the host server."""
        cls = _InProcessConsumer if in_process else _Consumer
        return cls(
            self.huey,
            workers=threads,
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            max_delay=1.0,
            check_worker_health=True,
        )


_Logger = logging.Logger | logging.LoggerAdapter[Any]


class _OutageLogger(logging.LoggerAdapter[_Logger]):
    """The logger of a huey consumer thread: an error reaching the queue goes to the `Outage`."""

    def __init__(self, logger: _Logger, outage: Outage):
        super().__init__(logger, {})
        self.outage = outage

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OUTAGE_ERRORS):
            self.outage.failed(exc)
        else:
            super().exception(msg, *args, **kwargs)


class _Worker(Worker):
    outage: Outage

    def loop(self, now: dt.datetime | None = None) -> None:
        failures = self.outage.failures
        super().loop(now)
        if failures and self.outage.failures == failures:
            self.outage.ok()


class _Consumer(Consumer):
    """huey's consumer, calm through a queue outage (see `Outage`)."""

    worker_class = _Worker

    def __init__(self, *args: Any, **kwargs: Any):
        self.outage = Outage("the queue", log)
        super().__init__(*args, **kwargs)

    def _create_worker(self) -> _Worker:
        worker = super()._create_worker()
        assert isinstance(worker, _Worker)  # made from worker_class
        worker.outage = self.outage
        worker._logger = _OutageLogger(worker._logger, self.outage)
        return worker

    def _create_scheduler(self) -> Scheduler:
        scheduler = super()._create_scheduler()
        scheduler._logger = _OutageLogger(scheduler._logger, self.outage)
        return scheduler


class _InProcessConsumer(_Consumer):
    def _set_signal_handlers(self) -> None:  # the web server owns the process's signals
        pass


class Sweeper(threading.Thread):
    """Runs `sweep` every `interval` seconds until stopped, and at once whenever `signal` is set."""

    def __init__(
        self,
        sweep: Callable[[], Any],
        interval: float,
        what: str = "sweeper",
        signal: threading.Event | None = None,
    ):
        super().__init__(name=f"connbot-{what.replace(' ', '-')}", daemon=True)
        self._sweep, self._interval = sweep, interval
        self._signal = signal or threading.Event()
        self._stopped = False
        self.outage = Outage(f"the database or the queue ({what})", log)

    def run(self) -> None:
        while True:
            self._signal.wait(self._interval)
            self._signal.clear()
            if self._stopped:
                return
            try:
                self._sweep()
            except OUTAGE_ERRORS as exc:  # said once per outage; tried again next round
                self.outage.failed(exc)
            except Exception:  # a bug: loudly, and the next round still comes
                log.exception("%s failed", self.name)
            else:
                self.outage.ok()

    def stop(self) -> None:
        self._stopped = True
        self._signal.set()
