"""Outages of the database or the queue, said once rather than as a traceback per attempt."""

from __future__ import annotations

import logging
import sqlite3
import threading

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

# What a dependency that is down (or on its way back) raises.
OUTAGE_ERRORS = (RedisError, sqlite3.OperationalError, OSError, SQLAlchemyError)
MAX_SAID = 500


def said(exc: BaseException) -> str:
    """An error in one bounded line: the driver's own message for a database error (SQLAlchemy's
    would carry the statement and its parameters, a run's findings among them), the exception's
    otherwise."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {text}"[:MAX_SAID]


class Outage:
    """Says once that a dependency went away and once that it came back, instead of a traceback
    at every attempt while it is down (huey's threads retry every second; sweepers every sweep)."""

    def __init__(self, what: str, logger: logging.Logger):
        self.what, self.log = what, logger
        self.failures = 0
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            first = self.failures == 1
        if first:
            self.log.warning("%s unreachable (%s); retrying until it is back", self.what, said(exc))

    def ok(self) -> None:
        with self._lock:
            failures, self.failures = self.failures, 0
        if failures:
            self.log.warning("%s reachable again after %s failed attempt(s)", self.what, failures)
