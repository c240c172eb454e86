"""The event INSERT's connections, kept between webhooks (`HeldConnections`): bounded, replaced when
the database cuts them (a restart, done here by `pg_terminate_backend`), and none kept beyond `kept`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.settings import Settings
from bot.state.store import HeldConnections, Store, make_engine

pytestmark = pytest.mark.postgres

NAME = "connbot-intake"  # the application_name by which the server's sessions of the store are found


@pytest.fixture
def admin(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(Settings(database_url=pg_url).sqlalchemy_url)
    yield engine
    engine.dispose()


def _url(pg_url: str) -> str:
    return Settings(database_url=f"{pg_url}&application_name={NAME}").sqlalchemy_url


def _sessions(admin: Engine) -> set[int]:
    with admin.connect() as conn:
        return set(
            conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"), {"name": NAME}
            ).scalars()
        )


def _cut(admin: Engine) -> None:
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": NAME},
        )


def test_connections_cut_by_a_restart_are_all_replaced_and_the_next_delivery_is_stored(
    pg_url: str, admin: Engine
) -> None:
    store = Store(_url(pg_url))
    store.upgrade()
    store.engine.dispose()  # only the event INSERT's sessions are left to count
    try:
        with ThreadPoolExecutor(8) as pool:  # webhooks at once: several connections are kept
            ids = list(
                pool.map(
                    lambda n: store.insert_event("jira", f"d-{n}", "jira:issue_created", "VOIP-1", "{}"),
                    range(200),
                )
            )
        assert all(new for _, new in ids) and len({i for i, _ in ids}) == 200
        kept = _sessions(admin)
        assert len(kept) >= 2, "the webhooks at once should have left more than one connection kept"
        _cut(admin)
        # The first delivery meets a cut connection, and is stored on a new one; the others kept were
        # cut too, and are not met one by one by the next deliveries.
        assert store.insert_event("jira", "after-1", "jira:issue_created", "VOIP-2", "{}")[1]
        assert store.insert_event("jira", "after-2", "jira:issue_created", "VOIP-2", "{}")[1]
        now = _sessions(admin)
        assert len(now) == 1 and not now & kept
    finally:
        store.dispose()
    assert _sessions(admin) == set()


def test_at_most_size_in_use_one_more_waits_then_fails_saying_why_and_only_kept_stay_open(
    pg_url: str, admin: Engine
) -> None:
    engine = make_engine(_url(pg_url), autocommit=True)
    held = HeldConnections(engine, size=2, kept=1, wait=0.3)
    try:
        first, second = held.take(), held.take()
        assert len(_sessions(admin)) == 2
        started = time.monotonic()
        with pytest.raises(PoolTimeout, match=r"within 0.3 s: 2 in use"):
            held.take()
        assert time.monotonic() - started >= 0.3
        held.give(first, keep=True)
        assert held.take() is first  # used again, its cursor with it: no new session
        held.give(first, keep=True)
        held.give(second, keep=True)  # one is kept already: this one is closed
        assert len(_sessions(admin)) == 1
        third = held.take()
        assert third is first
        held.give(third, keep=False)  # e.g. found cut: closed, not kept
        assert _sessions(admin) == set()
    finally:
        held.drop()
        engine.dispose()
