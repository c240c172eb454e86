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
from sqlalchemy import Update, create_engine, event, or_, text, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.state.models import Run, utcnow
from bot.state.outage import OUTAGE_ERRORS

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


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

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

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

    def release(self, run_id: int, owner: str) -> None:
        with self.tx() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )
