"""Counts kept in the store (table `counters`): each process adds to one row per name and labels,
and `/metrics` reads the totals, so a scrape of any process reports what all of them counted.

A count is added to in the caller's transaction (so the count of what a transition did commits
with it), or in one of its own with `count()`, which never fails the caller: a count lost to a
database outage is logged, not raised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from bot.state.models import Counter
from bot.state.store import Store, rows_updated
from integrations.base import (
    AdapterError,
    NotConfiguredError,
    PermanentError,
    RefusedError,
    TransientError,
    UnsupportedError,
)

log = logging.getLogger(__name__)

ADAPTER_ERRORS = "adapter_errors"
WEBHOOKS_REFUSED = "webhooks_refused"
MAX_LABEL = 40


def _key(labels: dict[str, str]) -> str:
    return json.dumps({k: v[:MAX_LABEL] for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))


def add(s: Session, name: str, **labels: str) -> None:
    """Add one to the count of `name` with `labels`, in the session's transaction."""
    key = _key(labels)
    bump = update(Counter).where(Counter.name == name, Counter.labels == key).values(value=Counter.value + 1)
    if rows_updated(s, bump):
        return
    try:
        with s.begin_nested():
            s.add(Counter(name=name, labels=key, value=1))
    except IntegrityError:  # another process made the row first
        rows_updated(s, bump)


# The kind of an adapter error, by the nearest class of the tree in `integrations.base`.
KINDS = (
    (NotConfiguredError, "not_configured"),
    (UnsupportedError, "unsupported"),
    (TransientError, "transient"),
    (RefusedError, "refused"),
    (PermanentError, "permanent"),
)


def adapter_error(s: Session, action: str, exc: AdapterError) -> None:
    """Count a failed call of `action` (system.verb_object) by its system and the kind of error."""
    kind = next((name for cls, name in KINDS if isinstance(exc, cls)), "other")
    add(s, ADAPTER_ERRORS, system=action.split(".", 1)[0], kind=kind)


def count(store: Store, name: str, **labels: str) -> None:
    """Add one in a transaction of its own; a failure to count is logged, never raised."""
    try:
        with store.tx() as s:
            add(s, name, **labels)
    except SQLAlchemyError as exc:
        log.warning("could not count %s %s: %s", name, labels, type(exc).__name__)


def totals(s: Session, name: str) -> Iterator[tuple[dict[str, str], int]]:
    """Every count of `name`: its labels and its total."""
    for labels, value in s.execute(select(Counter.labels, Counter.value).where(Counter.name == name)):
        yield json.loads(labels), value
