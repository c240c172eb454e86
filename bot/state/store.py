"""The state store: engine, sessions, migrations, and the few operations that need care with SQL
(leases that serialise work on a run across processes)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import TextClause, Update, bindparam, create_engine, event, or_, select, text, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot.state.models import Event, Run, utcnow
from bot.state.outage import OUTAGE_ERRORS

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, autocommit: bool = False) -> Engine:
    """The engine for `url`. `autocommit`: every statement its own transaction, and on PostgreSQL
    no ping before each checkout (a connection found dead is replaced, and the statement retried,
    by the caller: `Store.insert_event`)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            isolation_level="AUTOCOMMIT" if autocommit else None,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")

        return engine
    if autocommit:
        return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=20)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _new_event(dialect: str) -> TextClause:
    """One INSERT of an event whose payload is the raw JSON text it came as; no row when the
    (source, delivery id) is stored already."""
    payload = "CAST(:payload AS JSON)" if dialect == "postgresql" else ":payload"
    return text(
        "INSERT INTO events (source, delivery_id, kind, ticket_key, payload, received_at, outcome) "
        f"VALUES (:source, :delivery_id, :kind, :ticket_key, {payload}, :received_at, '') "
        "ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id"
    ).bindparams(bindparam("received_at", type_=Event.__table__.c.received_at.type))


STORED_EVENT = text("SELECT id FROM events WHERE source = :source AND delivery_id = :delivery_id")


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
            log.warning(
                "after-commit callback failed, the sweeper will redo it: %s: %s", type(exc).__name__, exc
            )
        except Exception:
            log.exception("after-commit callback failed")


def rows_updated(s: Session, statement: Update) -> int:
    """Run an UPDATE in the session; the number of rows it matched."""
    # An UPDATE's result is a cursor result, which has the count; the session types it as a plain Result.
    return cast(CursorResult[Any], s.execute(statement)).rowcount


class Store:
    """Owns the database engine. `tx()` is a transaction; everything else builds on it."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "after_commit", _run_after_commit)
        event.listen(self._sessions, "after_rollback", lambda s: s.info.pop(AFTER_COMMIT, None))
        self._autocommit: Engine | None = None
        self._new_event = _new_event(self.engine.dialect.name)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def insert_event(
        self, source: str, delivery_id: str, kind: str, ticket_key: str, payload: str
    ) -> tuple[int, bool]:
        """Store an inbound event, its `payload` the JSON text as received, in one autocommitted
        INSERT (on PostgreSQL one round trip). Returns (event id, whether it is new): a second
        delivery of the same (source, delivery id) stores nothing and returns the first's id."""
        if self._autocommit is None:
            self._autocommit = make_engine(self.url, autocommit=True)
        values = {
            "source": source,
            "delivery_id": delivery_id,
            "kind": kind,
            "ticket_key": ticket_key,
            "payload": payload,
            "received_at": utcnow(),
        }
        for attempt in (1, 2):
            try:
                with self._autocommit.connect() as conn:
                    new = conn.execute(self._new_event, values).scalar()
                    if new is not None:
                        return int(new), True
                    return int(conn.execute(STORED_EVENT, values).scalar_one()), False
            except DBAPIError as exc:
                # A pooled connection the database dropped (a restart) is replaced, once: the
                # ping the other engine makes before every checkout, paid only when needed.
                if not exc.connection_invalidated or attempt == 2:
                    raise
        raise AssertionError("unreachable")

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
        if self._autocommit is not None:
            self._autocommit.dispose()

    # Leases: one worker at a time advances a run. A lease that outlives its holder (a killed
    # worker) expires, and the run is then taken over. Writes made under a lease check that it
    # is still held, so a worker that lost its lease cannot overwrite its successor's work.

    def acquire(self, run_id: int, owner: str, seconds: float) -> bool:
        now = utcnow()
        with self.tx() as s:
            return bool(
                rows_updated(
                    s,
                    update(Run)
                    # Ended runs too: the effects of their last transition may still be to make (a worker
                    # killed right after the end), and a refusal would reschedule the wake-up forever.
                    .where(Run.id == run_id)
                    .where(or_(Run.lease_until.is_(None), Run.lease_until < now, Run.lease_owner == owner))
                    .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=seconds)),
                )
            )

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
        with self.tx() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )
