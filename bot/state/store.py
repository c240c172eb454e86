"""The state store: engine, sessions, migrations, and the few operations that need care with SQL
(leases that serialise work on a run across processes)."""

from __future__ import annotations

import datetime as dt
import fcntl
import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Table, Update, bindparam, create_engine, event, or_, select, text, update
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached, sessionmaker
from sqlalchemy.pool import NullPool, PoolProxiedConnection

from bot.state.models import Base, Event, Run, Ticket, utcnow
from bot.state.outage import OUTAGE_ERRORS, Outage, said

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


# A pooled PostgreSQL connection unused for this long is pinged before it is used again (`_ping_idle`).
IDLE_PING_SECONDS = 10.0
IDLE_SINCE = "connbot.idle_since"  # in a pooled connection's info: when it was last checked in
# How long connecting to PostgreSQL may take before it fails, unless the URL says (`?connect_timeout=`):
# without it, a database host that does not answer holds a thread for the kernel's TCP timeout (minutes).
CONNECT_SECONDS = 10
# The connections a process keeps open to the database, and how many more it opens while busy: for the
# engine's pool, and again for the event INSERT's (`HeldConnections`). How long a webhook waits for one.
POOL_KEPT, POOL_OVERFLOW, EVENT_CONNECTION_WAIT = 10, 20, 30.0


def make_engine(url: str, autocommit: bool = False, idle_ping: float = IDLE_PING_SECONDS) -> Engine:
    """The engine for `url`. On PostgreSQL, a connection that sat idle in the pool for `idle_ping`
    seconds is pinged before it is handed out (`_ping_idle`). `autocommit`: every statement its own
    transaction, on a connection the engine makes and keeps none of (`NullPool`): the event
    INSERT's connections are kept by `HeldConnections`, with no ping (a connection found dead is
    replaced, and the statement retried, by `Store.insert_event`). A PostgreSQL connection not made
    within CONNECT_SECONDS fails, unless the URL names its own `connect_timeout`."""
    autocommitted: dict[str, Any] = (
        {"isolation_level": "AUTOCOMMIT", "poolclass": NullPool} if autocommit else {}
    )
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **autocommitted)

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            if autocommit:  # the event INSERT's: it checkpoints out of its writer lock (`_EventInsert`)
                conn.execute("PRAGMA wal_autocheckpoint=0")

        return engine
    connect = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_SECONDS}
    if autocommit:
        return create_engine(url, connect_args=connect, **autocommitted)
    engine = create_engine(url, pool_size=POOL_KEPT, max_overflow=POOL_OVERFLOW, connect_args=connect)
    _ping_idle(engine, idle_ping)
    return engine


def _ping_idle(engine: Engine, seconds: float) -> None:
    """Ping a pooled connection before it is handed out again only when it sat idle for `seconds`: a
    database restarted while the process was quiet is found out before the first statement, but a
    busy process pays no round trip per transaction (the pool's `pre_ping` paid two per automated
    step). A restart under a busy process fails the one statement that meets a dead connection; the
    driver's disconnect error then invalidates the whole pool, and what failed is tried again like
    any outage (a run's work item 1 s later by its task, an event by the event taker)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi: Any, record: Any) -> None:
        record.info[IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(IDLE_SINCE)
        if since is None or time.monotonic() - since < seconds:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except engine.dialect.loaded_dbapi.Error as exc:  # one dead: the database restarted, all are
            raise InvalidatePoolError(f"an idle connection is gone: {exc}") from exc


class WriterLock:
    """One writer at a time across the processes sharing a SQLite file, for a write that is one
    statement: a thread lock within the process, `flock` on a file beside the database across them.
    SQLite's busy handler sleeps 1 to 100 ms between tries when another process holds its write lock;
    a waiter on `flock` is woken the moment the holder lets go (bench/RESULTS.md, item 1)."""

    def __init__(self, path: str):
        self._path, self._thread = path, threading.Lock()
        self._fd, self._pid = -1, -1

    def __enter__(self) -> None:
        self._thread.acquire()
        try:
            if self._pid != os.getpid():  # a descriptor inherited over a fork is the parent's lock too
                if self._fd >= 0:
                    os.close(self._fd)
                self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def __exit__(self, *_: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


# PostgreSQL's channel on which a stored event is announced to every listening worker.
EVENTS_CHANNEL = "connbot_events"
# On a SQLite file, how many new events a process stores between checkpoints of the write-ahead log
# (`_EventInsert.wrote`): about as often as SQLite's own, every 1,000 pages of log (an event writes six).
CHECKPOINT_EVERY = 200
# At most this many passes of the checkpoint while the webhooks write, and the pages a pass may find
# still to copy for the rest to be copied under the writer lock.
CHECKPOINT_PASSES, CHECKPOINT_LEFT = 4, 100


Held = tuple[PoolProxiedConnection, Any]  # a driver connection and its cursor, used again and again


class HeldConnections:
    """The event INSERT's connections, each with its cursor, made by the autocommit engine (which
    keeps none: `make_engine`) and kept here between webhooks: at most `size` in use at once, a
    webhook beyond them waiting up to `wait` seconds, then failing with SQLAlchemy's pool
    `TimeoutError` (answered 503: Jira retries); the last `kept` given back stay open. SQLAlchemy's
    pool, and a cursor made for every INSERT, cost a webhook 35 µs of CPU, a fifth of its whole in
    process (bench/RESULTS.md); here it is a token from a queue and a connection from a list."""

    def __init__(
        self,
        engine: Engine,
        size: int = POOL_KEPT + POOL_OVERFLOW,
        kept: int = POOL_KEPT,
        wait: float = EVENT_CONNECTION_WAIT,
    ):
        self._engine, self.size, self.kept, self.wait = engine, size, kept, wait
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()  # one for each connection not in use
        for _ in range(size):
            self._tokens.put(None)
        self._idle: list[Held] = []
        self._lock = threading.Lock()

    def take(self) -> Held:
        """A connection and its cursor, the last given back or a new one. Raises PoolTimeout, or the
        driver's error when a new one cannot be made."""
        try:
            self._tokens.get(timeout=self.wait)
        except queue.Empty:
            raise PoolTimeout(
                f"no database connection for the event INSERT within {self.wait:g} s: {self.size} in use"
            ) from None
        try:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
            conn = self._engine.raw_connection()
            return conn, conn.cursor()
        except BaseException:
            self._tokens.put(None)
            raise

    def give(self, held: Held, keep: bool) -> None:
        """Back from its use: kept for the next one if `keep` and fewer than `kept` are, else closed."""
        try:
            if keep:
                with self._lock:
                    if len(self._idle) < self.kept:
                        self._idle.append(held)
                        return
            held[0].close()
        finally:
            self._tokens.put(None)

    def drop(self) -> None:
        """Close every connection kept: the database cut one (a restart cuts them all), or the store is
        disposed of."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _cursor in idle:
            conn.close()


class _EventInsert:
    """The INSERT of an inbound event, compiled once for the database's driver and executed on a
    raw driver connection: no ORM unit of work, no SQLAlchemy statement handling per request (the
    webhook's path: bench/profile.py). Its `payload` is the raw JSON text as received; no row comes
    back when the (source, delivery id) is stored already, and `stored` then finds the first's id.
    On PostgreSQL the same statement announces a new event on EVENTS_CHANNEL (`<id> <note>`), heard
    by the workers' `EventListener`s once it is committed: the signal costs no round trip of its own.
    On a SQLite file it is made under the processes' `WriterLock` (`writer`), and the write-ahead
    log is checkpointed by this process's events (`wrote`), not by SQLite's commit. Its
    connections are `held`."""

    def __init__(self, engine: Engine):
        self.engine, dialect = engine, engine.dialect
        self.held = HeldConnections(engine)
        insert = (
            "INSERT INTO events (source, delivery_id, kind, ticket_key, payload, received_at, outcome) "
            "VALUES (:source, :delivery_id, :kind, :ticket_key, {payload}, :received_at, '') "
            "ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id"
        )
        if dialect.name == "postgresql":
            insert = (
                f"WITH new AS ({insert.format(payload='CAST(:payload AS JSON)')}) "
                f"SELECT id, pg_notify('{EVENTS_CHANNEL}', id || ' ' || :note) FROM new"
            )
        self.new = self._compile(engine, insert.format(payload=":payload"))
        database = engine.url.database
        self.writer: AbstractContextManager[None] = (
            WriterLock(f"{database}.writer")
            if dialect.name == "sqlite" and database and database != ":memory:"
            else nullcontext()
        )
        self._written, self._checkpointing = itertools.count(1), threading.Lock()
        self.stored = self._compile(
            engine, "SELECT id FROM events WHERE source = :source AND delivery_id = :delivery_id"
        )
        # How SQLAlchemy binds the timestamp on this database (SQLite: text in its own format, the
        # same the ORM writes, so that times compare as text).
        column = Event.__table__.c.received_at.type
        stamp: Callable[[Any], Any] | None = column.dialect_impl(dialect).bind_processor(dialect)
        self.stamp: Callable[[Any], Any] = stamp or (lambda value: value)

    def wrote(self) -> None:
        """After a new event: on a SQLite file, every CHECKPOINT_EVERY events of this process, copy
        the write-ahead log into the database, in a thread of its own (`_checkpoint`). SQLite's own
        checkpoint, made by the commit that fills the log, held the writer lock, so every webhook
        waited for its writes and flushes (some 30 ms: bench/RESULTS.md)."""
        if (
            isinstance(self.writer, WriterLock)
            and next(self._written) % CHECKPOINT_EVERY == 0
            and self._checkpointing.acquire(blocking=False)
        ):
            threading.Thread(target=self._checkpoint, name="connbot-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        """Passive passes copy the log while the webhooks go on writing, until a pass finds little
        left; the rest is copied under the writer lock, so that the next write starts the log afresh
        (a checkpoint that never catches up with the writers would let the log grow without bound).
        Another process's checkpoint in progress does the work; one that fails is said in a line and
        tried again at the next count."""
        try:
            conn = self.engine.raw_connection()
            try:
                cursor, copied = conn.cursor(), 0
                for _ in range(CHECKPOINT_PASSES):
                    busy, _log, now = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if busy:
                        return
                    if now - copied <= CHECKPOINT_LEFT:
                        break
                    copied = now
                with self.writer:
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except (sqlite3.Error, DBAPIError) as exc:
            log.warning("the database's write-ahead log could not be checkpointed: %s", exc)
        finally:
            self._checkpointing.release()

    @staticmethod
    def _compile(engine: Engine, sql: str) -> tuple[str, tuple[str, ...] | None]:
        """The statement in the driver's parameter style, and the order of its positional parameters."""
        compiled = text(sql).compile(dialect=engine.dialect)
        return compiled.string, tuple(compiled.positiontup) if compiled.positiontup else None

    @staticmethod
    def params(statement: tuple[str, tuple[str, ...] | None], values: dict[str, Any]) -> Any:
        order = statement[1]
        return tuple(values[k] for k in order) if order is not None else values


AFTER_COMMIT = "connbot.after_commit"


def after_commit(s: Session, fn: Callable[[], None]) -> None:
    """Call `fn` once the session's transaction has committed (e.g. to enqueue work it made)."""
    s.info.setdefault(AFTER_COMMIT, []).append(fn)


def _run_after_commit(s: Session) -> None:
    for fn in s.info.pop(AFTER_COMMIT, []):
        try:
            fn()
        except (
            OUTAGE_ERRORS
        ) as exc:  # the transaction is committed; the sweeper picks up what was not enqueued
            log.warning("after-commit callback failed, the sweeper will redo it: %s", said(exc))
        except Exception:
            log.exception("after-commit callback failed")


RUNS, TICKETS = cast(Table, Run.__table__), cast(Table, Ticket.__table__)
# A run's lease taken for `owner`, if it is free, expired or `owner`'s already; ended runs too: the
# effects of their last transition may still be to make (a worker killed right after the end), and
# a refusal would reschedule the wake-up forever. Built once, executed with its parameters.
TAKE = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"))
    .where(
        or_(
            RUNS.c.lease_until.is_(None),
            RUNS.c.lease_until < bindparam("now", type_=RUNS.c.lease_until.type),
            RUNS.c.lease_owner == bindparam("owner"),
        )
    )
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until", type_=RUNS.c.lease_until.type))
)
RELEASE = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"), RUNS.c.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_until=None)
)


def attribute_keys(model: type[Base]) -> tuple[str, ...]:
    """The model's attribute for each of its table's columns, in the table's order (`detached`). The
    mappers are configured first (else done at the first query), as `detached` needs them to be."""
    configure_mappers()
    mapper = model.__mapper__
    return tuple(mapper.get_property_by_column(c).key for c in cast(Table, model.__table__).c)


M = TypeVar("M", bound=Base)


def detached(model: type[M], keys: tuple[str, ...], values: Sequence[Any]) -> M:
    """A row read with Core (its table's columns, in order) as the detached instance a session's load
    leaves behind once closed: the same state, for a fraction of the ORM's loading work."""
    instance = cast(M, model.__mapper__.class_manager.new_instance())
    instance.__dict__.update(zip(keys, values, strict=True))
    make_transient_to_detached(instance)
    return instance


def rows_updated(s: Session, statement: Update) -> int:
    """Run an UPDATE in the session; the number of rows it matched."""
    # An UPDATE's result is a cursor result, which has the count; the session types it as a plain Result.
    return cast(CursorResult[Any], s.execute(statement)).rowcount


# The transaction this thread has open through `Store.begin`, with its store.
_BEGUN: ContextVar[tuple[Store, Connection] | None] = ContextVar("connbot.store.begun", default=None)


class Store:
    """Owns the database engine. `tx()` is a transaction with an ORM session; `engine.begin()` a
    transaction on a connection, for the hot paths that run prebuilt Core statements (a run's
    lease, its step's write); `begin()` such a transaction that the desk's writes made meanwhile in
    the same thread join (an effect's claim: `bot.runs.outbox`)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "after_commit", _run_after_commit)
        event.listen(self._sessions, "after_rollback", lambda s: s.info.pop(AFTER_COMMIT, None))
        self._event_insert: _EventInsert | None = None

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction on a connection; within another `begin` of this store in the same thread,
        that one's connection (what is written commits or rolls back with it)."""
        begun = _BEGUN.get()
        if begun is not None and begun[0] is self:
            yield begun[1]
            return
        with self.engine.begin() as conn:
            token = _BEGUN.set((self, conn))
            try:
                yield conn
            finally:
                _BEGUN.reset(token)

    def insert_event(
        self, source: str, delivery_id: str, kind: str, ticket_key: str, payload: str, note: str = ""
    ) -> tuple[int, bool]:
        """Store an inbound event, its `payload` the JSON text as received, in one autocommitted
        INSERT (on PostgreSQL one round trip, a prepared statement after the connection's first
        few, which also announces the event with `note` to the `EventListener`s). Returns (event
        id, whether it is new): a second delivery of the same (source, delivery id) stores nothing
        and returns the first's id. Raises SQLAlchemy's `DBAPIError`."""
        insert = self._events()
        held, dialect = insert.held, insert.engine.dialect
        values = {
            "source": source,
            "delivery_id": delivery_id,
            "kind": kind,
            "ticket_key": ticket_key,
            "payload": payload,
            "received_at": insert.stamp(utcnow()),
            "note": note,
        }
        for attempt in (1, 2):
            try:
                conn, cursor = held.take()
            except dialect.loaded_dbapi.Error as exc:  # the database refused or did not answer
                raise DBAPIError.instance(
                    None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
                ) from exc
            try:
                statement = insert.new
                try:
                    with insert.writer:
                        cursor.execute(statement[0], insert.params(statement, values))
                        new = cursor.fetchone()
                    if new is not None:
                        insert.wrote()
                        return int(new[0]), True
                    statement = insert.stored
                    cursor.execute(statement[0], insert.params(statement, values))
                    first = cursor.fetchone()
                    assert first is not None  # the INSERT met it
                    return int(first[0]), False
                except dialect.loaded_dbapi.Error as exc:
                    gone = dialect.is_disconnect(exc, conn.dbapi_connection, cursor)
                    if gone:  # the others kept were most likely cut with it (a restart)
                        conn.invalidate(exc)
                        held.drop()
                    # A kept connection the database cut is replaced, once: the ping the other
                    # engine makes before handing out an idle connection, paid only when needed.
                    if not gone or attempt == 2:
                        raise DBAPIError.instance(
                            statement[0],
                            None,
                            exc,
                            dialect.loaded_dbapi.Error,
                            connection_invalidated=gone,
                            dialect=dialect,
                        ) from exc
            finally:
                held.give((conn, cursor), keep=conn.is_valid)
        raise AssertionError("unreachable")

    def _events(self) -> _EventInsert:
        """The event INSERT, with the autocommit engine it runs on, made at first use."""
        if self._event_insert is None:
            self._event_insert = _EventInsert(make_engine(self.url, autocommit=True))
        return self._event_insert

    def event_listener(self, heard: Callable[[int, str], None]) -> EventListener | None:
        """On PostgreSQL, a thread (not started) that calls `heard(event id, note)` for each event
        any process stores; None on SQLite, whose writers share a host and poll."""
        if self.engine.dialect.name != "postgresql":
            return None
        return EventListener(self._events().engine, heard)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._event_insert is not None:
            self._event_insert.held.drop()
            self._event_insert.engine.dispose()

    # Leases: one worker at a time advances a run. A lease that outlives its holder (a killed
    # worker) expires, and the run is then taken over. Writes made under a lease check that it
    # is still held, so a worker that lost its lease cannot overwrite its successor's work.

    def acquire(self, run_id: int, owner: str, seconds: float) -> bool:
        with self.engine.begin() as conn:
            return self.take(conn, run_id, owner, seconds)

    def take(self, conn: Connection, run_id: int, owner: str, seconds: float) -> bool:
        """Inside a transaction: take the run's lease (one UPDATE). False if another worker holds it."""
        now = utcnow()
        params = {"run_id": run_id, "owner": owner, "now": now, "until": now + dt.timedelta(seconds=seconds)}
        return bool(conn.execute(TAKE, params).rowcount)

    def held(self, s: Session, run_id: int, owner: str) -> Run | None:
        """Inside a transaction: lock the run row and read it afresh; None unless `owner` still holds
        its lease. One statement for the check and the read the transaction's writes build on."""
        if self.engine.dialect.name == "sqlite":
            # No row locks, and Python's sqlite3 begins a transaction only at its first write: take
            # the database's write lock now, so the lease read below cannot change before our writes.
            s.execute(update(Run).where(Run.id == run_id).values(lease_owner=Run.lease_owner))
        run = s.get(Run, run_id, with_for_update=True, populate_existing=True)
        return run if run is not None and run.lease_owner == owner else None

    def claim_event(self, s: Session, event_id: int) -> Event | None:
        """Inside a transaction: the event, locked until the transaction ends, unless it is processed
        already or another worker holds it (PostgreSQL skips a locked row; SQLite has one writer, so
        the database's write lock is taken first and the event read after it)."""
        if self.engine.dialect.name == "sqlite":
            s.execute(update(Event).where(Event.id == event_id).values(processed_at=Event.processed_at))
        return s.scalars(
            select(Event)
            .where(Event.id == event_id, Event.processed_at.is_(None))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).first()

    def release(self, run_id: int, owner: str) -> None:
        """End `owner`'s lease on the run (nothing if it is not theirs), in a `begin` in progress if
        there is one: e.g. in the commit that marks the run's last effect done."""
        with self.begin() as conn:
            conn.execute(RELEASE, {"run_id": run_id, "owner": owner})


class EventListener(threading.Thread):
    """PostgreSQL's LISTEN on EVENTS_CHANNEL: `heard(event id, note)` for every event stored, by any
    process, as soon as it is committed. Best effort: a notice missed while the database is away
    only waits for the event taker's next look (it looks every few hundred milliseconds anyway)."""

    WAIT = 1.0  # seconds between looks at whether the listener is stopped

    def __init__(self, engine: Engine, heard: Callable[[int, str], None]):
        super().__init__(name="connbot-event-listener", daemon=True)
        self._engine, self._heard = engine, heard
        self._stopped = threading.Event()
        self.outage = Outage("the database (event listener)", log)

    def run(self) -> None:
        while not self._stopped.is_set():
            conn = None
            try:
                conn = self._engine.raw_connection()  # autocommit: a LISTEN takes effect at once
                pg = conn.dbapi_connection
                assert pg is not None  # a checked-out connection has its driver's connection
                pg.execute(f"LISTEN {EVENTS_CHANNEL}")
                self.outage.ok()
                while not self._stopped.is_set():
                    for notice in pg.notifies(timeout=self.WAIT):
                        event_id, _, note = notice.payload.partition(" ")
                        self._heard(int(event_id), note)
            except self._engine.dialect.loaded_dbapi.Error as exc:
                self.outage.failed(exc)
                if conn is not None:
                    conn.invalidate(exc)
                self._stopped.wait(self.WAIT)
            finally:
                if conn is not None:
                    conn.close()

    def stop(self) -> None:
        self._stopped.set()
